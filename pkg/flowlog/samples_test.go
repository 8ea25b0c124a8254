package flowlog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the sample objects in events/")

// The demo's sample objects: plain text for people, gzip for the pipeline.
var samples = []struct {
	name string
	gen  func() string
	// what reading the object must give
	records, noData, skipData int
	malformed                 []int64
}{
	{"sample-default.log", sampleDefault, 39, 1, 1, nil},
	{"sample-custom.log", sampleCustom, 28, 1, 1, []int64{18, 30}},
}

const (
	sampleAccount = "123456789012"
	sampleStart   = 1796313900 // 2026-12-03 16:05:00 UTC
)

// sampleDefault is a default-format object from two interfaces: a web server
// (10.0.1.25) and an application server (10.0.2.40), with IPv6, a large transfer,
// one NODATA and one SKIPDATA record.
func sampleDefault() string {
	const (
		web = "eni-0123456789abcdef0"
		app = "eni-0abcdef1234567890"
	)
	var b strings.Builder
	b.WriteString(DefaultHeader + "\n")
	rec := func(eni, src, dst string, sp, dp, proto int, packets, bytes uint64, start, dur int64, action string) {
		fmt.Fprintf(&b, "2 %s %s %s %s %d %d %d %d %d %d %d %s OK\n",
			sampleAccount, eni, src, dst, sp, dp, proto, packets, bytes, start, start+dur, action)
	}
	t := int64(sampleStart)
	// HTTPS from clients to the web server, and the replies.
	for i := range 8 {
		client := fmt.Sprintf("10.0.%d.%d", 100+i%3, 11+7*i)
		port := 49152 + 1031*i
		pk := uint64(6 + 3*i)
		rec(web, client, "10.0.1.25", port, 443, 6, pk, pk*97+60, t+int64(i), 55, "ACCEPT")
		rec(web, "10.0.1.25", client, 443, port, 6, pk+2, (pk+2)*1380, t+int64(i), 55, "ACCEPT")
	}
	// SSH probes, rejected by the security group.
	for i := range 4 {
		rec(web, fmt.Sprintf("10.0.200.%d", 17+i*29), "10.0.1.25", 40022+i*811, 22, 6, 1, 44, t+12+int64(i)*9, 0, "REJECT")
	}
	// DNS to the VPC resolver and NTP to the time service.
	for i := range 4 {
		rec(web, "10.0.1.25", "10.0.0.2", 53000+i*17, 53, 17, 1, 71+uint64(i)*4, t+3+int64(i)*14, 0, "ACCEPT")
		rec(web, "10.0.0.2", "10.0.1.25", 53, 53000+i*17, 17, 1, 129+uint64(i)*16, t+3+int64(i)*14, 0, "ACCEPT")
	}
	rec(web, "10.0.1.25", "10.0.0.123", 123, 123, 17, 1, 76, t+30, 0, "ACCEPT")
	// Pings: echo request allowed, one from outside the VPC's prefix rejected.
	rec(app, "10.0.1.25", "10.0.2.40", 0, 0, 1, 4, 336, t+5, 3, "ACCEPT")
	rec(app, "10.0.2.40", "10.0.1.25", 0, 0, 1, 4, 336, t+5, 3, "ACCEPT")
	rec(app, "10.0.9.99", "10.0.2.40", 0, 0, 1, 2, 168, t+41, 1, "REJECT")
	// The application server and its database; one large backup transfer (over 2^32 bytes).
	for i := range 3 {
		rec(app, "10.0.2.40", "10.0.3.10", 38200+i*7, 5432, 6, 120+uint64(i)*35, 61440+uint64(i)*9000, t+int64(i)*2, 58, "ACCEPT")
	}
	rec(app, "10.0.2.40", "10.0.4.50", 41876, 873, 6, 4718592, 6442450944+123456, t, 59, "ACCEPT")
	// IPv6 clients of the web server and an ICMPv6 echo.
	rec(web, "2600:1f18:1234:5601::a1", "2600:1f18:1234:5600::25", 51234, 443, 6, 14, 2980, t+17, 40, "ACCEPT")
	rec(web, "2600:1f18:1234:5600::25", "2600:1f18:1234:5601::a1", 443, 51234, 6, 16, 21140, t+17, 40, "ACCEPT")
	rec(web, "2600:1f18:1234:5602::7", "2600:1f18:1234:5600::25", 0, 0, 58, 3, 312, t+22, 2, "ACCEPT")
	// Log statuses: an idle interface, and one whose records were skipped.
	fmt.Fprintf(&b, "2 %s eni-0fedcba9876543210 - - - - - - - %d %d - NODATA\n", sampleAccount, t, t+59)
	fmt.Fprintf(&b, "2 %s eni-0a1b2c3d4e5f60718 - - - - - - - %d %d - SKIPDATA\n", sampleAccount, t, t+59)
	return b.String()
}

// sampleCustom is a version 5 custom-format object from an instance behind a NAT
// gateway: pkt-srcaddr/pkt-dstaddr name the instance where srcaddr/dstaddr name the
// gateway. Two lines are malformed on purpose (a bad address, a port over 65535).
func sampleCustom() string {
	const (
		vpc    = "vpc-0123456789abcdef0"
		subnet = "subnet-0123456789abcdef0"
		inst   = "i-0123456789abcdef0"
		eni    = "eni-0123456789abcdef0"
		natENI = "eni-0bbbbccccddddeeee"
	)
	var b strings.Builder
	b.WriteString(hdrV5 + "\n")
	type row struct {
		eni, inst, typ, src, dst  string
		sp, dp                    any
		psrc, pdst                string
		proto                     int
		bytes, packets            uint64
		start, dur                int64
		action, flags             string
		srcSvc, dstSvc, dir, path string
	}
	write := func(r row) {
		fmt.Fprintf(&b, "5 %s %s %s %s %s %s %s %s %v %v %s %s %d %d %d %d %d %s %s OK us-east-1 use1-az4 - - %s %s %s %s\n",
			vpc, subnet, r.inst, r.eni, sampleAccount, r.typ, r.src, r.dst, r.sp, r.dp, r.psrc, r.pdst, r.proto,
			r.bytes, r.packets, r.start, r.start+r.dur, r.action, r.flags, r.srcSvc, r.dstSvc, r.dir, r.path)
	}
	t := int64(sampleStart)
	n := 0
	add := func(r row) { write(r); n++ }
	// The instance's own interface: HTTPS to S3 through a gateway endpoint, and back.
	for i := range 4 {
		port := 44000 + 337*i
		add(row{eni, inst, "IPv4", "10.0.1.25", "52.216.48.110", port, 443, "10.0.1.25", "52.216.48.110", 6,
			1800 + uint64(i)*240, 12 + uint64(i), t + int64(i)*3, 50, "ACCEPT", "3", "-", "S3", "egress", "7"})
		add(row{eni, inst, "IPv4", "52.216.48.110", "10.0.1.25", 443, port, "52.216.48.110", "10.0.1.25", 6,
			98000 + uint64(i)*4100, 70 + uint64(i)*3, t + int64(i)*3, 50, "ACCEPT", "19", "S3", "-", "ingress", "-"})
	}
	// Through the NAT gateway: srcaddr is the gateway, pkt-srcaddr the instance.
	for i := range 4 {
		port := 33000 + 911*i
		add(row{natENI, "-", "IPv4", "10.0.0.200", "10.0.5.80", port, 443, "10.0.1.25", "10.0.5.80", 6,
			5200 + uint64(i)*100, 20 + uint64(i), t + 10 + int64(i)*5, 45, "ACCEPT", "3", "-", "-", "egress", "8"})
	}
	// DNS over UDP and an ICMP echo.
	for i := range 3 {
		add(row{eni, inst, "IPv4", "10.0.1.25", "10.0.0.2", 52000 + i*29, 53, "10.0.1.25", "10.0.0.2", 17,
			75, 1, t + 4 + int64(i)*15, 0, "ACCEPT", "-", "-", "-", "egress", "1"})
	}
	add(row{eni, inst, "IPv4", "10.0.3.7", "10.0.1.25", 0, 0, "10.0.3.7", "10.0.1.25", 1,
		336, 4, t + 8, 3, "ACCEPT", "-", "-", "-", "ingress", "-"})
	// A malformed line: the source address has an octet over 255.
	b.WriteString("5 " + vpc + " " + subnet + " " + inst + " " + eni + " " + sampleAccount +
		" IPv4 10.0.1.300 10.0.1.25 40404 22 10.0.1.300 10.0.1.25 6 44 1 1796313920 1796313920 REJECT 2 OK us-east-1 use1-az4 - - - - ingress -\n")
	// SSH and RDP probes, rejected; a reset connection.
	for i := range 4 {
		port := 22
		if i%2 == 1 {
			port = 3389
		}
		add(row{eni, inst, "IPv4", fmt.Sprintf("10.0.%d.%d", 150+i, 60+i*13), "10.0.1.25", 50100 + i*409, port,
			fmt.Sprintf("10.0.%d.%d", 150+i, 60+i*13), "10.0.1.25", 6, 44, 1, t + 20 + int64(i)*6, 0, "REJECT", "2", "-", "-", "ingress", "-"})
	}
	add(row{eni, inst, "IPv4", "10.0.1.25", "10.0.3.7", 8080, 39000, "10.0.1.25", "10.0.3.7", 6,
		120, 3, t + 33, 1, "ACCEPT", "4", "-", "-", "egress", "1"})
	// IPv6 to DynamoDB over an internet gateway, and back.
	for i := range 3 {
		port := 58000 + 71*i
		add(row{eni, inst, "IPv6", "2600:1f18:1234:5600::25", "2600:1f18:4000:8100::1c", port, 443,
			"2600:1f18:1234:5600::25", "2600:1f18:4000:8100::1c", 6, 2400 + uint64(i)*80, 15, t + 12 + int64(i)*7, 40, "ACCEPT", "3", "-", "DYNAMODB", "egress", "2"})
		add(row{eni, inst, "IPv6", "2600:1f18:4000:8100::1c", "2600:1f18:1234:5600::25", 443, port,
			"2600:1f18:4000:8100::1c", "2600:1f18:1234:5600::25", 6, 31000 + uint64(i)*900, 26, t + 12 + int64(i)*7, 40, "ACCEPT", "19", "DYNAMODB", "-", "ingress", "-"})
	}
	// A malformed line: destination port over 65535.
	b.WriteString("5 " + vpc + " " + subnet + " " + inst + " " + eni + " " + sampleAccount +
		" IPv4 10.0.1.25 10.0.3.7 40500 70000 10.0.1.25 10.0.3.7 6 60 1 1796313940 1796313941 ACCEPT 2 OK us-east-1 use1-az4 - - - - egress 1\n")
	// A long-lived replication stream of more than 2^32 bytes.
	add(row{eni, inst, "IPv4", "10.0.1.25", "10.0.4.50", 41876, 873, "10.0.1.25", "10.0.4.50", 6,
		5368709120 + 4242, 3728000, t, 59, "ACCEPT", "19", "-", "-", "egress", "1"})
	// Log statuses.
	fmt.Fprintf(&b, "5 %s %s - eni-0fedcba9876543210 %s - - - - - - - - - - %d %d - - NODATA us-east-1 use1-az4 - - - - - -\n", vpc, subnet, sampleAccount, t, t+59)
	fmt.Fprintf(&b, "5 %s %s - eni-0a1b2c3d4e5f60718 %s - - - - - - - - - - %d %d - - SKIPDATA us-east-1 use1-az4 - - - - - -\n", vpc, subnet, sampleAccount, t, t+59)
	return b.String()
}

// gzipped compresses text reproducibly: no name, no modification time.
func gzipped(text string) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	zw.Write([]byte(text))
	zw.Close()
	return buf.Bytes()
}

// TestGenerateSamples writes the sample objects to events/; run with -update.
func TestGenerateSamples(t *testing.T) {
	if !*update {
		t.Skip("writes events/sample-*.log{,.gz}; run with -update")
	}
	for _, s := range samples {
		text := s.gen()
		base := filepath.Join("..", "..", "events", s.name)
		if err := os.WriteFile(base, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".gz", gzipped(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSamples checks the sample objects in events/: up to date with the generator,
// reproducible, and reading as the demo expects.
func TestSamples(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			base := filepath.Join("..", "..", "events", s.name)
			text, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			gz, err := os.ReadFile(base + ".gz")
			if err != nil {
				t.Fatal(err)
			}
			if want := s.gen(); string(text) != want {
				t.Error("plain text is out of date: go test ./pkg/flowlog -run TestGenerateSamples -update")
			}
			if !bytes.Equal(gz, gzipped(string(text))) {
				t.Error("gzip object is out of date or not reproducible: go test ./pkg/flowlog -run TestGenerateSamples -update")
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatal(err)
			}
			if zr.Name != "" || !zr.ModTime.IsZero() {
				t.Errorf("gzip header has name %q, time %v", zr.Name, zr.ModTime)
			}

			textLines := strings.Split(string(text), "\n")
			cols := refColumns(textLines[0])
			r := NewReader(zr, Options{PreferPacketAddresses: true})
			var rec Record
			var records, noData, skipData, ipv6, over32 int
			var malformed []int64
			for {
				err := r.Next(&rec)
				if err == io.EOF {
					break
				}
				var le *LineError
				if errors.As(err, &le) {
					malformed = append(malformed, le.Line)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstRef(t, cols, textLines[rec.Line-1], rec.Line, true, &rec, false)
				switch rec.Status {
				case StatusNoData:
					noData++
					continue
				case StatusSkipData:
					skipData++
					continue
				}
				records++
				if rec.Src.Is6() {
					ipv6++
				}
				if rec.Bytes > 1<<32 {
					over32++
				}
				if rec.Start < sampleStart || rec.End > sampleStart+120 {
					t.Errorf("line %d: times %d-%d outside the sample window", rec.Line, rec.Start, rec.End)
				}
			}
			if records != s.records || noData != s.noData || skipData != s.skipData || !slices.Equal(malformed, s.malformed) {
				t.Errorf("records %d, NODATA %d, SKIPDATA %d, malformed %v; want %d, %d, %d, %v",
					records, noData, skipData, malformed, s.records, s.noData, s.skipData, s.malformed)
			}
			if ipv6 < 2 || over32 != 1 {
				t.Errorf("%d IPv6 records, %d over 2^32 bytes; want at least 2 and exactly 1", ipv6, over32)
			}
		})
	}
}
