package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The collector is goflow2, which nobody here wrote, as a separate process: it decodes
// our IPFIX with its own template cache and writes one JSON line per flow. The mapping
// file teaches it the elements it does not show by default (flowDirection,
// interfaceName and the enterprise elements under the test PEN).

// TestPEN is the documentation PEN (RFC 5612), used as ENTERPRISE_NUMBER in the tests.
const TestPEN = 32473

func goflowMapping() string {
	var b strings.Builder
	b.WriteString("formatter:\n  fields:\n")
	for _, f := range []string{"type", "time_received_ns", "sequence_num", "sampler_address", "observation_domain_id",
		"time_flow_start_ns", "time_flow_end_ns", "bytes", "packets", "src_addr", "dst_addr", "etype", "proto",
		"src_port", "dst_port", "tcp_flags", "forwarding_status", "flow_direction", "if_name"} {
		fmt.Fprintf(&b, "    - %s\n", f)
	}
	for _, f := range awsFields {
		fmt.Fprintf(&b, "    - %s\n", f)
	}
	b.WriteString("  protobuf:\n    - name: flow_direction\n      index: 42\n      type: varint\n")
	b.WriteString("    - name: if_name\n      index: 1001\n      type: string\n")
	for i, f := range awsFields {
		typ := "string"
		if f == "aws_traffic_path" {
			typ = "varint"
		}
		fmt.Fprintf(&b, "    - name: %s\n      index: %d\n      type: %s\n", f, 1002+i, typ)
	}
	b.WriteString("  render:\n    proto: none\n    if_name: string\n")
	for _, f := range awsFields {
		if f != "aws_traffic_path" {
			fmt.Fprintf(&b, "    %s: string\n", f)
		}
	}
	b.WriteString("ipfix:\n  mapping:\n    - field: 61\n      destination: flow_direction\n    - field: 82\n      destination: if_name\n")
	for i, f := range awsFields {
		fmt.Fprintf(&b, "    - field: %d\n      pen: %d\n      penprovided: true\n      destination: %s\n", i+1, TestPEN, f)
	}
	return b.String()
}

// Collector is one goflow2 process listening on 127.0.0.1:Port.
type Collector struct {
	Port     int
	HTTPPort int
	out      string
	proc     *Proc
}

// startCollector starts goflow2 on UDP port (0: any free port) and waits until it is bound.
func (h *Harness) startCollector(ctx context.Context, name string, port int) (*Collector, error) {
	var err error
	if port == 0 {
		if port, err = freePort("udp"); err != nil {
			return nil, err
		}
	}
	httpPort, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	mapping := filepath.Join(dir, "goflow2-mapping.yaml")
	if err := os.WriteFile(mapping, []byte(goflowMapping()), 0o644); err != nil {
		return nil, err
	}
	c := &Collector{Port: port, HTTPPort: httpPort, out: filepath.Join(dir, fmt.Sprintf("goflow2-%d.jsonl", port))}
	os.Remove(c.out)
	c.proc, err = startProc("goflow2", filepath.Join(dir, fmt.Sprintf("goflow2-%d.log", port)), nil, syscall.SIGTERM,
		h.tools.Goflow2,
		// One worker: goflow2's file transport writes a flow and its newline in two
		// unlocked writes, so two workers interleave lines.
		"-listen", fmt.Sprintf("netflow://127.0.0.1:%d?workers=1", port),
		"-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), // its HTTP server listens on all interfaces by default
		"-mapping", mapping,
		"-format", "json",
		"-transport", "file", "-transport.file", c.out,
		"-loglevel", "info")
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitUDP(wctx, port, c.proc); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Stop stops goflow2; its output file stays readable.
func (c *Collector) Stop() {
	if c != nil && c.proc != nil {
		c.proc.Stop()
	}
}

// Flow is one flow as goflow2 printed it.
type Flow struct {
	Type         string         `json:"type"`
	TimeReceived uint64         `json:"time_received_ns"`
	Sequence     uint64         `json:"sequence_num"`
	Domain       uint64         `json:"observation_domain_id"`
	Start        uint64         `json:"time_flow_start_ns"`
	End          uint64         `json:"time_flow_end_ns"`
	Bytes        uint64         `json:"bytes"`
	Packets      uint64         `json:"packets"`
	Src          string         `json:"src_addr"`
	Dst          string         `json:"dst_addr"`
	Etype        string         `json:"etype"`
	Proto        uint64         `json:"proto"`
	SrcPort      uint64         `json:"src_port"`
	DstPort      uint64         `json:"dst_port"`
	TCPFlags     uint64         `json:"tcp_flags"`
	Fwd          uint64         `json:"forwarding_status"`
	Dir          uint64         `json:"flow_direction"`
	If           string         `json:"if_name"`
	raw          map[string]any // everything, for the enterprise elements
}

// Key renders the flow like Want.Key, so that equal keys mean equal fields.
func (f Flow) Key() string {
	w := Want{Src: f.Src, Dst: f.Dst, SrcPort: f.SrcPort, DstPort: f.DstPort, Proto: f.Proto, Packets: f.Packets,
		Bytes: f.Bytes, StartNs: f.Start, EndNs: f.End, Fwd: f.Fwd, TCPFlags: f.TCPFlags, Dir: f.Dir, If: f.If,
		AWS: map[string]string{}}
	for _, k := range awsFields {
		switch v := f.raw[k].(type) {
		case string:
			w.AWS[k] = v
		case float64:
			w.AWS[k] = strconv.FormatUint(uint64(v), 10)
		case nil:
		default:
			w.AWS[k] = fmt.Sprint(v)
		}
	}
	return w.Key()
}

// Flows reads every flow goflow2 has written so far.
func (c *Collector) Flows() ([]Flow, error) {
	f, err := os.Open(c.out)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var flows []Flow
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var fl Flow
			if err := json.Unmarshal(line, &fl); err != nil {
				return flows, fmt.Errorf("goflow2 output %s: %w: %s", c.out, err, line)
			}
			if err := json.Unmarshal(line, &fl.raw); err != nil {
				return flows, err
			}
			flows = append(flows, fl)
		}
		if err == io.EOF {
			return flows, nil
		}
		if err != nil {
			return flows, err
		}
	}
}

// WaitFlows waits until at least n flows arrived and then until none arrive for
// quiet, and returns what arrived. It gives up when nothing arrived for 10 s or ctx ends.
func (c *Collector) WaitFlows(ctx context.Context, n int, quiet time.Duration) ([]Flow, error) {
	last, lastChange := -1, time.Now()
	for {
		flows, err := c.Flows()
		if err != nil {
			return flows, err
		}
		if len(flows) != last {
			last, lastChange = len(flows), time.Now()
		}
		if len(flows) >= n && time.Since(lastChange) >= quiet || time.Since(lastChange) > 10*time.Second {
			return flows, nil
		}
		select {
		case <-ctx.Done():
			return flows, nil // the caller compares counts and says what is missing
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Metrics returns goflow2's Prometheus counters whose names start with prefix,
// summed over their labels.
func (c *Collector) Metrics(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", c.HTTPPort), nil)
	resp, err := localHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, "goflow2_flow_") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			// Labels hold spaces only inside quotes; re-split after the closing brace.
			j := strings.LastIndexByte(line, '}')
			name, rest = line[:i], strings.TrimSpace(line[j+1:])
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, s.Err()
}

// Problems returns goflow2's log lines that report decoding trouble.
func (c *Collector) Problems() []string {
	var out []string
	for _, l := range c.proc.Sink.Lines(0) {
		t := strings.ToLower(l.Text)
		if strings.Contains(t, "level=error") || strings.Contains(t, "level=warn") || strings.Contains(t, "panic") {
			out = append(out, l.Text)
		}
	}
	return out
}

// localHTTP never uses a proxy: every server is on 127.0.0.1.
var localHTTP = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Minute}
