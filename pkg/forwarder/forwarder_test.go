package forwarder_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/goflowcheck"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/forwarder"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
)

const testPEN = 32473

type captureSender struct{ got [][]byte }

func (s *captureSender) Send(_ context.Context, b []byte) error {
	s.got = append(s.got, append([]byte(nil), b...))
	return nil
}

// expected reads a flow log file with deliberately different code (strings.Fields and
// a header map) and returns the flows every valid line must become.
func expected(t *testing.T, path string, preferPkt bool, malformed map[int]bool) []goflowcheck.Flow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	header := strings.Fields(sc.Text())
	var out []goflowcheck.Flow
	for line := 2; sc.Scan(); line++ {
		if malformed[line] {
			continue
		}
		cols := strings.Fields(sc.Text())
		v := map[string]string{}
		for i, name := range header {
			v[name] = cols[i]
		}
		if s := v["log-status"]; s == "NODATA" || s == "SKIPDATA" {
			continue
		}
		num := func(name string) uint64 {
			n, err := strconv.ParseUint(v[name], 10, 64)
			if err != nil {
				t.Fatalf("%s line %d: %s=%q", path, line, name, v[name])
			}
			return n
		}
		addr := func(pkt, iface string) netip.Addr {
			text := v[iface]
			if preferPkt && v[pkt] != "" && v[pkt] != "-" {
				text = v[pkt]
			}
			return netip.MustParseAddr(text)
		}
		fl := goflowcheck.Flow{
			Src: addr("pkt-srcaddr", "srcaddr"), Dst: addr("pkt-dstaddr", "dstaddr"),
			SrcPort: uint16(num("srcport")), DstPort: uint16(num("dstport")), Protocol: uint8(num("protocol")),
			Packets: num("packets"), Bytes: num("bytes"), StartMillis: num("start") * 1000, EndMillis: num("end") * 1000,
			ForwardingStatus: map[string]uint8{"ACCEPT": 64, "REJECT": 129}[v["action"]],
		}
		if t, ok := v["tcp-flags"]; ok && t != "-" {
			n, _ := strconv.ParseUint(t, 10, 16)
			fl.TCPFlags, fl.HasTCPFlags = uint16(n), true
		}
		if d, ok := v["flow-direction"]; ok && d != "-" {
			fl.Direction, fl.HasDirection = map[string]uint8{"ingress": 0, "egress": 1}[d], true
		}
		if i, ok := v["interface-id"]; ok {
			fl.InterfaceName, fl.HasInterface = strings.TrimPrefix(i, "-"), true
		}
		out = append(out, fl)
	}
	return out
}

func newForwarder(t *testing.T, pen uint32, preferPkt bool, logs io.Writer) (*forwarder.Forwarder, *captureSender) {
	t.Helper()
	s := &captureSender{}
	exp, err := exporter.New(s, nil, exporter.Options{DomainID: 3, EnterpriseNumber: pen})
	if err != nil {
		t.Fatal(err)
	}
	fw := forwarder.New(nil, exp, forwarder.Options{
		EnterpriseNumber: pen, PreferPacketAddresses: preferPkt,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Now:    func() time.Time { return time.Unix(1796314000, 0) },
	})
	return fw, s
}

func TestForwardMatchesSourceLines(t *testing.T) {
	for _, tc := range []struct {
		file      string
		pen       uint32
		preferPkt bool
		malformed map[int]bool
		records   uint64
		nodata    uint64
		skipdata  uint64
	}{
		{"default.log.gz", 0, true, map[int]bool{10: true, 11: true, 12: true}, 11, 1, 1},
		{"default.log", 0, true, map[int]bool{10: true, 11: true, 12: true}, 11, 1, 1},
		{"custom.log.gz", 0, true, nil, 4, 1, 0},
		{"custom.log.gz", 0, false, nil, 4, 1, 0},
		{"custom.log.gz", testPEN, true, nil, 4, 1, 0},
	} {
		t.Run(tc.file+"/pen="+strconv.Itoa(int(tc.pen))+"/pkt="+strconv.FormatBool(tc.preferPkt), func(t *testing.T) {
			var logs bytes.Buffer
			fw, s := newForwarder(t, tc.pen, tc.preferPkt, &logs)
			rc, _, err := objectreader.OpenFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			res, err := fw.Forward(context.Background(), rc, tc.file, forwarder.Job{})
			if err != nil {
				t.Fatal(err)
			}
			want := expected(t, filepath.Join("testdata", strings.TrimSuffix(tc.file, ".gz")), tc.preferPkt, tc.malformed)
			d := goflowcheck.NewDecoder()
			for _, b := range s.got {
				if err := d.Decode(b); err != nil {
					t.Fatal(err)
				}
			}
			if len(d.Flows) != len(want) {
				t.Fatalf("goflow2 decoded %d flows, want %d", len(d.Flows), len(want))
			}
			for i := range want {
				got := d.Flows[i]
				ent := got.Enterprise
				got.Domain, got.Sequence, got.TemplateID, got.Enterprise = 0, 0, 0, nil
				if !equalFlow(got, want[i]) {
					t.Errorf("flow %d:\n got %+v\nwant %+v", i, got, want[i])
				}
				if tc.pen != 0 {
					if len(ent[2]) == 0 || string(ent[2]) != "vpc-0123456789abcdef0" {
						t.Errorf("flow %d: awsVpcId %q", i, ent[2])
					}
				} else if ent != nil {
					t.Errorf("flow %d: enterprise elements sent without an enterprise number", i)
				}
			}
			c := res.Counts
			if c.Records != tc.records || c.Exported != uint64(len(want)) || c.NoData != tc.nodata || c.SkipData != tc.skipdata ||
				c.Malformed != uint64(len(tc.malformed)) || c.Datagrams != uint64(len(s.got)) || res.Sent != int64(len(want)) {
				t.Errorf("counts %+v, sent %d", c, res.Sent)
			}
			if c.LagSeconds != 1796314000-1796313960 {
				t.Errorf("lag %v s, want 40", c.LagSeconds)
			}
			for line := range tc.malformed {
				if !strings.Contains(logs.String(), `"line":`+strconv.Itoa(line)+`,`) {
					t.Errorf("malformed line %d not logged with its number:\n%s", line, logs.String())
				}
			}
		})
	}
}

func equalFlow(a, b goflowcheck.Flow) bool {
	return a.Src == b.Src && a.Dst == b.Dst && a.SrcPort == b.SrcPort && a.DstPort == b.DstPort && a.Protocol == b.Protocol &&
		a.Packets == b.Packets && a.Bytes == b.Bytes && a.StartMillis == b.StartMillis && a.EndMillis == b.EndMillis &&
		a.ForwardingStatus == b.ForwardingStatus && a.HasTCPFlags == b.HasTCPFlags && a.TCPFlags == b.TCPFlags &&
		a.HasDirection == b.HasDirection && a.Direction == b.Direction && a.HasInterface == b.HasInterface && a.InterfaceName == b.InterfaceName
}

func TestSkipRecordsSeam(t *testing.T) {
	var logs bytes.Buffer
	fw, s := newForwarder(t, 0, true, &logs)
	rc, _, err := objectreader.OpenFile("testdata/default.log")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	res, err := fw.Forward(context.Background(), rc, "default.log", forwarder.Job{SkipRecords: 4})
	if err != nil {
		t.Fatal(err)
	}
	d := goflowcheck.NewDecoder()
	for _, b := range s.got {
		if err := d.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	// 6 valid flows; the first 4 were sent by an earlier attempt.
	if res.Sent != 2 || len(d.Flows) != 2 || d.Flows[0].Bytes != 336 {
		t.Fatalf("sent %d, decoded %+v", res.Sent, d.Flows)
	}
}

func TestCorruptAndHeaderErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/default.log.gz")
	if err != nil {
		t.Fatal(err)
	}
	truncated := good[:len(good)-20]
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0xff
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated gzip", truncated, "corrupt"},
		{"flipped byte", flipped, "corrupt"},
		{"header without ports", []byte("version srcaddr dstaddr protocol packets bytes start end\n"), "missing srcport, dstport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			fw, _ := newForwarder(t, 0, true, &logs)
			rc, _, err := objectreader.Decompress(io.NopCloser(bytes.NewReader(tc.data)))
			if err == nil {
				_, err = fw.Forward(context.Background(), rc, tc.name, forwarder.Job{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestStopsAtDeadline(t *testing.T) {
	var logs bytes.Buffer
	fw, s := newForwarder(t, 0, true, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rc, _, _ := objectreader.OpenFile("testdata/default.log")
	defer rc.Close()
	_, err := fw.Forward(ctx, rc, "default.log", forwarder.Job{})
	if err == nil || !strings.Contains(err.Error(), "stopped at line") || len(s.got) != 0 {
		t.Fatalf("error %v after %d datagrams", err, len(s.got))
	}
}
