package flowlog

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchObject generates n lines of a format in memory: a header, then records built
// by line(i) for i in [0, n).
func benchObject(header string, n int, line func(i int) string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteByte('\n')
	for i := range n {
		b.WriteString(line(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

const benchLines = 10000

func benchDefault(i int) string {
	return fmt.Sprintf("2 123456789012 eni-0123456789abcdef0 10.0.%d.%d 10.0.%d.%d %d 443 6 %d %d %d %d ACCEPT OK",
		i%256, i%253+1, (i/7)%256, i%251+1, 1024+i%60000, 1+i%100, 40+i*37, 1796313900+i%60, 1796313960+i%60)
}

func benchCustom(i int) string {
	return fmt.Sprintf("3 vpc-0123456789abcdef0 subnet-0123456789abcdef0 i-0123456789abcdef0 eni-0123456789abcdef0 123456789012 IPv4 "+
		"10.0.%d.%d 10.0.%d.%d %d 443 203.0.113.%d 10.0.%d.%d 6 %d %d %d %d ACCEPT 19 OK us-east-1 use1-az4 - - - S3 egress 8",
		i%256, i%253+1, (i/7)%256, i%251+1, 1024+i%60000, i%250+1, (i/7)%256, i%251+1, 40+i*37, 1+i%100, 1796313900+i%60, 1796313960+i%60)
}

func benchIPv6(i int) string {
	return fmt.Sprintf("2 123456789012 eni-0123456789abcdef0 2600:1f18:abcd:%x::%x 2600:1f18:abcd:%x::%x %d 443 6 %d %d %d %d ACCEPT OK",
		i%4096, i%65535+1, (i/7)%4096, i%65521+1, 1024+i%60000, 1+i%100, 40+i*37, 1796313900+i%60, 1796313960+i%60)
}

func benchmarkReader(b *testing.B, obj []byte, opts Options) {
	src := bytes.NewReader(obj)
	r := NewReader(src, opts)
	var rec Record
	var n int
	b.ReportAllocs()
	b.SetBytes(int64(len(obj)))
	b.ResetTimer()
	for b.Loop() {
		src.Reset(obj)
		r.Reset(src)
		for {
			err := r.Next(&rec)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err) // outside the happy path only
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
}

func BenchmarkReaderDefault(b *testing.B) {
	benchmarkReader(b, benchObject(DefaultHeader, benchLines, benchDefault), Options{})
}

func BenchmarkReaderCustom(b *testing.B) {
	benchmarkReader(b, benchObject(hdrV5, benchLines, benchCustom), Options{PreferPacketAddresses: true})
}

func BenchmarkReaderIPv6(b *testing.B) {
	benchmarkReader(b, benchObject(DefaultHeader, benchLines, benchIPv6), Options{})
}

// TestBenchObjects keeps the generated objects valid, so the benchmarks measure the happy path.
func TestBenchObjects(t *testing.T) {
	for name, obj := range map[string][]byte{
		"default": benchObject(DefaultHeader, 1000, benchDefault),
		"custom":  benchObject(hdrV5, 1000, benchCustom),
		"ipv6":    benchObject(DefaultHeader, 1000, benchIPv6),
	} {
		r := NewReader(bytes.NewReader(obj), Options{PreferPacketAddresses: true})
		var rec Record
		n := 0
		for {
			err := r.Next(&rec)
			if err == io.EOF {
				break
			}
			if err != nil || rec.Status != StatusOK {
				t.Fatalf("%s: %v %v", name, err, rec.Status)
			}
			n++
		}
		if n != 1000 {
			t.Errorf("%s: %d records", name, n)
		}
	}
}

// TestNextAllocs holds the hot path to zero allocations per record: an object of
// 1,000 records costs no more allocations than one of 10 (the header's Format).
func TestNextAllocs(t *testing.T) {
	for name, gen := range map[string]struct {
		header string
		line   func(int) string
	}{
		"default": {DefaultHeader, benchDefault},
		"custom":  {hdrV5, benchCustom},
		"ipv6":    {DefaultHeader, benchIPv6},
	} {
		allocs := func(n int) float64 {
			obj := benchObject(gen.header, n, gen.line)
			src := bytes.NewReader(obj)
			r := NewReader(src, Options{PreferPacketAddresses: true})
			var rec Record
			return testing.AllocsPerRun(20, func() {
				src.Reset(obj)
				r.Reset(src)
				for r.Next(&rec) == nil {
				}
			})
		}
		if small, large := allocs(10), allocs(1000); large != small {
			t.Errorf("%s: %.0f allocations for 10 records, %.0f for 1,000", name, small, large)
		}
	}
}
