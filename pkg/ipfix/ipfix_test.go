package ipfix_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/goflowcheck"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testPEN = 32473 // RFC 5612: the PEN reserved for documentation

// message builds one message: the templates of layouts, then one data set per flow.
func message(t testing.TB, pen uint32, seq uint32, flows []ipfix.Flow, layouts []ipfix.Layout) []byte {
	b := ipfix.AppendHeader(nil)
	at := len(b)
	b = ipfix.AppendSetHeader(b, ipfix.TemplateSetID)
	seen := map[ipfix.Layout]bool{}
	for _, l := range layouts {
		if !seen[l] {
			seen[l] = true
			b = ipfix.AppendTemplateRecord(b, l, pen)
		}
	}
	ipfix.PutSetLength(b, at)
	for i := range flows {
		at := len(b)
		b = ipfix.AppendSetHeader(b, layouts[i].TemplateID())
		before := len(b)
		b = ipfix.AppendFlow(b, layouts[i], &flows[i])
		if got, want := len(b)-before, ipfix.FlowLen(layouts[i], &flows[i]); got != want {
			t.Fatalf("flow %d: AppendFlow wrote %d bytes, FlowLen says %d", i, got, want)
		}
		ipfix.PutSetLength(b, at)
	}
	ipfix.PutHeader(b, 1796313900, seq, 7)
	return b
}

func sampleFlows() ([]ipfix.Flow, []ipfix.Layout) {
	allEnt := ipfix.Layout(0)
	for e := ipfix.Enterprise(0); e < ipfix.NumEnterprise; e++ {
		allEnt |= ipfix.LayoutEnterprise(e)
	}
	var ent [ipfix.NumEnterprise][]byte
	for e := range ent {
		ent[e] = []byte("value-" + ipfix.EnterpriseElements[e].Name)
	}
	ent[ipfix.EntTrafficPath] = []byte{8}
	flows := []ipfix.Flow{
		{Src: netip.MustParseAddr("10.0.1.5"), Dst: netip.MustParseAddr("172.31.16.139"), SrcPort: 443, DstPort: 49152, Protocol: 6,
			Packets: 20, Octets: 4249, StartMillis: 1796313900000, EndMillis: 1796313960000, ForwardingStatus: ipfix.ForwardingAccepted},
		{Src: netip.MustParseAddr("2600:1f18:abcd::10"), Dst: netip.MustParseAddr("2001:db8::1"), SrcPort: 53, DstPort: 5353, Protocol: 17,
			Packets: 1 << 40, Octets: 1<<64 - 1, StartMillis: 1, EndMillis: 2, ForwardingStatus: ipfix.ForwardingDropped,
			TCPFlags: 0x1b, Direction: ipfix.DirectionEgress, InterfaceName: []byte("eni-0123456789abcdef0")},
		{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"), Protocol: 1,
			InterfaceName: []byte(strings.Repeat("x", 300)), Enterprise: ent},
	}
	layouts := []ipfix.Layout{0, ipfix.LayoutIPv6 | ipfix.LayoutTCPFlags | ipfix.LayoutDirection | ipfix.LayoutInterfaceName, ipfix.LayoutInterfaceName | allEnt}
	return flows, layouts
}

// TestGoflow2DecodesFlows is the independent check: goflow2 must read back every value.
func TestGoflow2DecodesFlows(t *testing.T) {
	flows, layouts := sampleFlows()
	msg := message(t, testPEN, 42, flows, layouts)
	d := goflowcheck.NewDecoder()
	if err := d.Decode(msg); err != nil {
		t.Fatal(err)
	}
	if len(d.Flows) != len(flows) {
		t.Fatalf("goflow2 decoded %d flows, want %d", len(d.Flows), len(flows))
	}
	for i, want := range flows {
		t.Run(flows[i].Src.String(), func(t *testing.T) {
			got := d.Flows[i]
			if got.Src != want.Src || got.Dst != want.Dst || got.SrcPort != want.SrcPort || got.DstPort != want.DstPort ||
				got.Protocol != want.Protocol || got.Packets != want.Packets || got.Bytes != want.Octets ||
				got.StartMillis != want.StartMillis || got.EndMillis != want.EndMillis || got.ForwardingStatus != want.ForwardingStatus {
				t.Errorf("goflow2 read %+v\nfrom %+v", got, want)
			}
			l := layouts[i]
			if got.HasTCPFlags != (l&ipfix.LayoutTCPFlags != 0) || got.TCPFlags != want.TCPFlags {
				t.Errorf("tcpControlBits: got %v/%#x", got.HasTCPFlags, got.TCPFlags)
			}
			if got.HasDirection != (l&ipfix.LayoutDirection != 0) || got.Direction != want.Direction {
				t.Errorf("flowDirection: got %v/%d", got.HasDirection, got.Direction)
			}
			if got.InterfaceName != string(want.InterfaceName) {
				t.Errorf("interfaceName: got %q", got.InterfaceName)
			}
			for e := ipfix.Enterprise(0); e < ipfix.NumEnterprise; e++ {
				if l&ipfix.LayoutEnterprise(e) == 0 {
					continue
				}
				id := ipfix.EnterpriseElements[e].ID
				if !bytes.Equal(got.Enterprise[id], want.Enterprise[e]) {
					t.Errorf("enterprise element %d: got %q, want %q", id, got.Enterprise[id], want.Enterprise[e])
				}
			}
			if got.TemplateID != l.TemplateID() || got.Sequence != 42 || got.Domain != 7 {
				t.Errorf("template %d sequence %d domain %d", got.TemplateID, got.Sequence, got.Domain)
			}
		})
	}
}

// TestOwnDecoderAgrees checks the debug collector's decoder on the same message.
func TestOwnDecoderAgrees(t *testing.T) {
	flows, layouts := sampleFlows()
	msg := message(t, testPEN, 42, flows, layouts)
	var got []ipfix.DataRecord
	h, templates, err := ipfix.NewDecoder().Decode(msg, func(r *ipfix.DataRecord) {
		c := *r
		c.Values = append([][]byte(nil), r.Values...)
		got = append(got, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if templates != 3 || len(got) != 3 || h.Sequence != 42 || h.Domain != 7 || int(h.Length) != len(msg) {
		t.Fatalf("templates %d records %d header %+v", templates, len(got), h)
	}
	if v := got[1].Value(ipfix.IEOctetDeltaCount); binary.BigEndian.Uint64(v) != flows[1].Octets {
		t.Errorf("octetDeltaCount %x", v)
	}
	if v := got[2].Value(ipfix.IEInterfaceName); string(v) != string(flows[2].InterfaceName) {
		t.Errorf("interfaceName (300 bytes, 3-byte length) read %d bytes", len(v))
	}
}

func TestTypeInfo(t *testing.T) {
	b := ipfix.AppendHeader(nil)
	at := len(b)
	b = ipfix.AppendSetHeader(b, ipfix.OptionsTemplateSetID)
	b = ipfix.AppendTypeInfoTemplate(b)
	ipfix.PutSetLength(b, at)
	at = len(b)
	b = ipfix.AppendSetHeader(b, ipfix.TypeInfoTemplateID)
	for e := ipfix.Enterprise(0); e < ipfix.NumEnterprise; e++ {
		b = ipfix.AppendTypeInfoRecord(b, testPEN, e)
	}
	ipfix.PutSetLength(b, at)
	ipfix.PutHeader(b, 1, 0, 7)
	d := goflowcheck.NewDecoder()
	if err := d.Decode(b); err != nil {
		t.Fatal(err)
	}
	if d.Messages[0].OptionsRecords != int(ipfix.NumEnterprise) {
		t.Fatalf("goflow2 saw %d options records", d.Messages[0].OptionsRecords)
	}
	for _, el := range ipfix.EnterpriseElements {
		if d.TypeInfo[el.ID] != el.Name {
			t.Errorf("element %d: goflow2 read name %q, want %q", el.ID, d.TypeInfo[el.ID], el.Name)
		}
	}
}

func TestLayoutTemplateIDs(t *testing.T) {
	for _, l := range []ipfix.Layout{0, 1, ipfix.MaxLayout - 1} {
		id := l.TemplateID()
		back, ok := ipfix.LayoutOf(id)
		if !ok || back != l || id < 256 || id == ipfix.TypeInfoTemplateID {
			t.Errorf("layout %#x: id %d back %#x ok %v", l, id, back, ok)
		}
	}
	if _, ok := ipfix.LayoutOf(255); ok {
		t.Error("id 255 accepted")
	}
}

// TestGolden pins the bytes of a message, so an accidental change of the wire format
// shows in review. Run with -update after an intended change.
func TestGolden(t *testing.T) {
	flows, layouts := sampleFlows()
	msg := message(t, testPEN, 42, flows, layouts)
	path := filepath.Join("testdata", "message.hex")
	got := hex.Dump(msg)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if got != string(want) {
		t.Errorf("message bytes changed:\n%s", got)
	}
}

// FuzzRoundTrip encodes fuzzed flows and checks that goflow2 and our decoder read the
// same values back.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(443), uint16(1024), uint8(6), uint64(10), uint64(1000), uint64(5), uint64(6), uint8(64), uint16(2), []byte("eni-1"), uint16(0))
	f.Add(netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice(), uint16(0), uint16(0), uint8(58), uint64(1<<63), uint64(1<<64-1), uint64(0), uint64(0), uint8(129), uint16(0), []byte(strings.Repeat("e", 400)), uint16(0xFFFF))
	f.Fuzz(func(t *testing.T, src, dst []byte, sp, dp uint16, proto uint8, pkts, octets, start, end uint64, fwd uint8, tcp uint16, iface []byte, bits uint16) {
		s, ok1 := netip.AddrFromSlice(src)
		d, ok2 := netip.AddrFromSlice(dst)
		if !ok1 || !ok2 || s.Is4() != d.Is4() {
			return
		}
		if len(iface) > 1000 {
			iface = iface[:1000]
		}
		l := ipfix.Layout(bits) % ipfix.MaxLayout
		l &^= ipfix.LayoutIPv6
		if !s.Is4() {
			l |= ipfix.LayoutIPv6
		}
		fl := ipfix.Flow{Src: s, Dst: d, SrcPort: sp, DstPort: dp, Protocol: proto, Packets: pkts, Octets: octets,
			StartMillis: start, EndMillis: end, ForwardingStatus: fwd, TCPFlags: tcp, Direction: uint8(bits & 1), InterfaceName: iface}
		for e := range fl.Enterprise {
			fl.Enterprise[e] = iface[:len(iface)/(e+1)]
		}
		msg := message(t, testPEN, 1, []ipfix.Flow{fl}, []ipfix.Layout{l})
		if len(msg) > 65535 {
			return
		}
		gd := goflowcheck.NewDecoder()
		if err := gd.Decode(msg); err != nil {
			t.Fatalf("goflow2: %v", err)
		}
		if len(gd.Flows) != 1 {
			t.Fatalf("goflow2 decoded %d flows", len(gd.Flows))
		}
		g := gd.Flows[0]
		if g.Src != s.Unmap() && g.Src != s || g.Dst != d.Unmap() && g.Dst != d || g.SrcPort != sp || g.DstPort != dp || g.Protocol != proto ||
			g.Packets != pkts || g.Bytes != octets || g.StartMillis != start || g.EndMillis != end || g.ForwardingStatus != fwd {
			t.Fatalf("goflow2 read %+v from %+v", g, fl)
		}
		if l&ipfix.LayoutInterfaceName != 0 && g.InterfaceName != string(iface) {
			t.Fatalf("interfaceName %q != %q", g.InterfaceName, iface)
		}
		n := 0
		if _, _, err := ipfix.NewDecoder().Decode(msg, func(*ipfix.DataRecord) { n++ }); err != nil || n != 1 {
			t.Fatalf("own decoder: %d records, %v", n, err)
		}
	})
}

func BenchmarkAppendFlow(b *testing.B) {
	flows, layouts := sampleFlows()
	buf := make([]byte, 0, 1400)
	b.ReportAllocs()
	b.SetBytes(int64(ipfix.FlowLen(layouts[0]|ipfix.LayoutInterfaceName, &flows[1])))
	f := flows[0]
	f.InterfaceName = flows[1].InterfaceName
	for b.Loop() {
		buf = ipfix.AppendFlow(buf[:0], layouts[0]|ipfix.LayoutInterfaceName, &f)
	}
}
