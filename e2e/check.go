package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Comparison of what the collector decoded with what the generator wrote.

// Delivery counts how each expected record arrived.
type Delivery struct {
	Expected, Once, Missing, Duplicated, Unexpected int
	Examples                                        []string
}

func (d Delivery) String() string {
	return fmt.Sprintf("expected %d: once %d, missing %d, duplicated %d, unexpected %d",
		d.Expected, d.Once, d.Missing, d.Duplicated, d.Unexpected)
}

// compare matches flows against wants, field by field (Key renders every field).
func compare(flows []Flow, wants []Want) Delivery {
	want := map[string]int{}
	byBytes := map[uint64]string{}
	for _, w := range wants {
		k := w.Key()
		want[k]++
		byBytes[w.Bytes] = k
	}
	got := map[string]int{}
	for _, f := range flows {
		got[f.Key()]++
	}
	d := Delivery{Expected: len(wants)}
	var examples []string
	for k, n := range want {
		switch g := got[k]; {
		case g == 0:
			d.Missing += n
			if len(examples) < 3 {
				examples = append(examples, "missing: "+k)
			}
		case g == n:
			d.Once += n
		case g > n:
			d.Once += n
			d.Duplicated += n
		default:
			d.Once += g
			d.Missing += n - g
		}
	}
	for k, g := range got {
		if want[k] == 0 {
			d.Unexpected += g
			if len(examples) < 6 {
				examples = append(examples, "unexpected: "+k)
			}
		}
	}
	// Show a field-level difference for an unexpected flow when its record is known.
	for _, f := range flows {
		if want[f.Key()] == 0 {
			if k, ok := byBytes[f.Bytes]; ok {
				examples = append(examples, fmt.Sprintf("record with bytes=%d differs:\n        want %s\n        got  %s", f.Bytes, k, f.Key()))
				break
			}
		}
	}
	sort.Strings(examples)
	d.Examples = examples
	return d
}

// expectExactlyOnce fails t unless every want arrived exactly once and nothing else did.
func expectExactlyOnce(t *T, what string, flows []Flow, wants []Want) Delivery {
	d := compare(flows, wants)
	if d.Missing+d.Duplicated+d.Unexpected > 0 || d.Once != len(wants) {
		t.Errorf("%s: %s\n        %s", what, d, strings.Join(d.Examples, "\n        "))
	}
	return d
}

// sequenceCheck checks RFC 7011 sequence numbers per observation domain: each data
// message carries the number of data records sent before it, so sorted by sequence
// number the messages must follow each other without gaps or overlaps.
func sequenceCheck(flows []Flow) []string {
	type msgKey struct {
		domain, seq uint64
	}
	count := map[msgKey]uint64{}
	for _, f := range flows {
		count[msgKey{f.Domain, f.Sequence}]++
	}
	byDomain := map[uint64][]uint64{}
	for k := range count {
		byDomain[k.domain] = append(byDomain[k.domain], k.seq)
	}
	var problems []string
	for dom, seqs := range byDomain {
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for i := 1; i < len(seqs); i++ {
			prev := seqs[i-1]
			if want := prev + count[msgKey{dom, prev}]; seqs[i] != want && len(problems) < 5 {
				problems = append(problems, fmt.Sprintf("domain %d: message with sequence %d after %d records at %d (want %d)",
					dom, seqs[i], count[msgKey{dom, prev}], prev, want))
			}
		}
	}
	return problems
}

// collectorHealth checks goflow2's own counters: what it received and whether it failed
// to decode anything. It returns the number of datagrams it received.
func collectorHealth(ctx context.Context, t *T, c *Collector) uint64 {
	m, err := c.Metrics(ctx)
	if err != nil {
		t.Errorf("goflow2 metrics: %v", err)
		return 0
	}
	for _, name := range []string{"goflow2_flow_decoder_error_total", "goflow2_flow_process_nf_errors_total"} {
		if m[name] != 0 {
			t.Errorf("goflow2 %s = %v", name, m[name])
		}
	}
	if p := c.Problems(); len(p) > 0 {
		t.Errorf("goflow2 logged problems: %s", strings.Join(p[:min(3, len(p))], " | "))
	}
	return uint64(m["goflow2_flow_traffic_packets_total"])
}
