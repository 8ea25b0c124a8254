package forwarder_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/forwarder"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
)

type discardSender struct{}

func (discardSender) Send(context.Context, []byte) error { return nil }

// sampleObject is a deterministic default-format .log.gz of n records.
func sampleObject(n int) []byte {
	var text bytes.Buffer
	text.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
	for i := 0; i < n; i++ {
		action := "ACCEPT"
		if i%7 == 0 {
			action = "REJECT"
		}
		fmt.Fprintf(&text, "2 123456789012 eni-0123456789abcdef%d 10.%d.%d.%d 172.31.%d.%d %d %d 6 %d %d %d %d %s OK\n",
			i%10, i>>16&255, i>>8&255, i&255, i>>8&255, i&255, 1024+i%60000, 443, 1+i%100, 40+i*13%100000, 1796313900+i%600, 1796313960+i%600, action)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(text.Bytes())
	w.Close()
	return gz.Bytes()
}

// BenchmarkPipeline is the whole path from .log.gz bytes to datagrams handed to the
// sender: gunzip, parse, map, encode, pack. One op is one object of 10,000 records.
func BenchmarkPipeline(b *testing.B) {
	const records = 10000
	obj := sampleObject(records)
	exp, _ := exporter.New(discardSender{}, nil, exporter.Options{})
	fw := forwarder.New(nil, exp, forwarder.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(obj)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		rc, _, err := objectreader.Decompress(io.NopCloser(bytes.NewReader(obj)))
		if err != nil {
			b.Fatal(err)
		}
		res, err := fw.Forward(ctx, rc, "bench", forwarder.Job{})
		rc.Close()
		if err != nil || res.Sent != records {
			b.Fatalf("sent %d: %v", res.Sent, err)
		}
	}
	runtime.ReadMemStats(&after)
	n := float64(b.N) * records
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/record")
}

// BenchmarkForwardText leaves gunzip out: parse, map, encode and pack only.
func BenchmarkForwardText(b *testing.B) {
	const records = 10000
	zr, _ := gzip.NewReader(bytes.NewReader(sampleObject(records)))
	text, _ := io.ReadAll(zr)
	exp, _ := exporter.New(discardSender{}, nil, exporter.Options{})
	fw := forwarder.New(nil, exp, forwarder.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	r := bytes.NewReader(text)
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		r.Reset(text)
		if res, err := fw.Forward(ctx, r, "bench", forwarder.Job{}); err != nil || res.Sent != records {
			b.Fatalf("sent %d: %v", res.Sent, err)
		}
	}
	runtime.ReadMemStats(&after)
	n := float64(b.N) * records
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/record")
}
