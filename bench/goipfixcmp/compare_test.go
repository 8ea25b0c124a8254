package goipfixcmp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/vmware/go-ipfix/pkg/entities"
	goexporter "github.com/vmware/go-ipfix/pkg/exporter"
	"github.com/vmware/go-ipfix/pkg/registry"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/udpsender"
)

// The workload: numFlows IPv4 flows under one template, the one our encoder names
// ipfix.LayoutInterfaceName (id 264): sourceIPv4Address(8) destinationIPv4Address(12)
// sourceTransportPort(7) destinationTransportPort(11) protocolIdentifier(4)
// packetDeltaCount(2) octetDeltaCount(1) flowStartMilliseconds(152)
// flowEndMilliseconds(153) forwardingStatus(89) interfaceName(82, variable length).
// A record is 68 bytes, so a 1400-byte message holds 20 and one op sends 50 messages.
const (
	numFlows   = 1000
	layout     = ipfix.LayoutInterfaceName
	templateID = 256 + uint16(layout)
	maxMsgSize = exporter.DefaultMaxMessageSize
	domainID   = 1
	ifName     = "eni-0123456789abcdef0"
)

// goFlow is the same flow in the types go-ipfix's elements take (net.IP, string),
// converted once, so that neither side is charged for converting its input.
type goFlow struct {
	src, dst         net.IP
	srcPort, dstPort uint16
	protocol         uint8
	packets, octets  uint64
	start, end       uint64
	forwarding       uint8
	ifName           string
}

// testFlows returns the deterministic workload in both forms.
func testFlows() ([]ipfix.Flow, []goFlow) {
	r := rand.New(rand.NewPCG(7011, 2055))
	ours := make([]ipfix.Flow, numFlows)
	theirs := make([]goFlow, numFlows)
	const start = 1796313900000
	for i := range ours {
		src := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
		dst := netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
		proto := uint8(6)
		if r.IntN(10) == 0 {
			proto = 17
		}
		packets := uint64(1 + r.IntN(2000))
		fs := uint8(ipfix.ForwardingAccepted)
		if r.IntN(10) == 0 {
			fs = ipfix.ForwardingDropped
		}
		t := uint64(start + i*500)
		ours[i] = ipfix.Flow{
			Src: src, Dst: dst,
			SrcPort: uint16(1024 + r.IntN(64511)), DstPort: []uint16{443, 80, 22, 5432, 53}[r.IntN(5)],
			Protocol: proto, Packets: packets, Octets: packets * uint64(40+r.IntN(1461)),
			StartMillis: t, EndMillis: t + uint64(1000+r.IntN(59000)),
			ForwardingStatus: fs,
			InterfaceName:    []byte(ifName),
		}
		f := &ours[i]
		theirs[i] = goFlow{
			src: net.IP(src.AsSlice()), dst: net.IP(dst.AsSlice()),
			srcPort: f.SrcPort, dstPort: f.DstPort, protocol: f.Protocol,
			packets: f.Packets, octets: f.Octets, start: f.StartMillis, end: f.EndMillis,
			forwarding: f.ForwardingStatus, ifName: ifName,
		}
	}
	return ours, theirs
}

// TestMain quiets go-ipfix's logger (klog writes an info line per closed exporter).
func TestMain(m *testing.M) {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// --- our side ---------------------------------------------------------------------

type discardSender struct{}

func (discardSender) Send(context.Context, []byte) error { return nil }

// captureSender keeps copies of the datagrams.
type captureSender struct{ got [][]byte }

func (c *captureSender) Send(_ context.Context, b []byte) error {
	c.got = append(c.got, bytes.Clone(b))
	return nil
}

// sendOurs adds every flow and flushes the last message: one op.
func sendOurs(tb testing.TB, exp *exporter.Exporter, flows []ipfix.Flow) {
	ctx := context.Background()
	for i := range flows {
		if err := exp.Add(ctx, layout, &flows[i]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := exp.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
}

// --- go-ipfix's side --------------------------------------------------------------

// elements are the registry entries of the template, looked up once.
type elements struct {
	src, dst, srcPort, dstPort, proto, packets, octets, start, end, fwd, ifName *entities.InfoElement
}

var loadRegistry = sync.OnceFunc(registry.LoadRegistry)

func lookupElements(tb testing.TB) *elements {
	loadRegistry()
	var e elements
	for _, x := range []struct {
		name string
		ie   **entities.InfoElement
	}{
		{"sourceIPv4Address", &e.src}, {"destinationIPv4Address", &e.dst},
		{"sourceTransportPort", &e.srcPort}, {"destinationTransportPort", &e.dstPort},
		{"protocolIdentifier", &e.proto}, {"packetDeltaCount", &e.packets},
		{"octetDeltaCount", &e.octets}, {"flowStartMilliseconds", &e.start},
		{"flowEndMilliseconds", &e.end}, {"forwardingStatus", &e.fwd},
		{"interfaceName", &e.ifName},
	} {
		ie, err := registry.GetInfoElement(x.name, registry.IANAEnterpriseID)
		if err != nil {
			tb.Fatal(err)
		}
		*x.ie = ie
	}
	return &e
}

// newRecord builds one data record the way go-ipfix's own tests and docs do: a new
// element with its value for every field, then a record from them.
func (e *elements) newRecord(f *goFlow) entities.Record {
	return entities.NewDataRecordFromElements(templateID, []entities.InfoElementWithValue{
		entities.NewIPAddressInfoElement(e.src, f.src),
		entities.NewIPAddressInfoElement(e.dst, f.dst),
		entities.NewUnsigned16InfoElement(e.srcPort, f.srcPort),
		entities.NewUnsigned16InfoElement(e.dstPort, f.dstPort),
		entities.NewUnsigned8InfoElement(e.proto, f.protocol),
		entities.NewUnsigned64InfoElement(e.packets, f.packets),
		entities.NewUnsigned64InfoElement(e.octets, f.octets),
		entities.NewDateTimeMillisecondsInfoElement(e.start, f.start),
		entities.NewDateTimeMillisecondsInfoElement(e.end, f.end),
		entities.NewUnsigned8InfoElement(e.fwd, f.forwarding),
		entities.NewStringInfoElement(e.ifName, f.ifName),
	}, false)
}

// reuser is go-ipfix's cheaper path: the element values live in one set of elements,
// set again for every flow. A data record encodes its elements lazily, in GetBuffer,
// and caches the bytes, so each record must be encoded before the elements change
// (and must be a new record: a record whose cached bytes have the right length is
// never encoded again). That leaves two allocations a record: the record and its bytes.
type reuser struct {
	src, dst         *entities.IPAddressInfoElement
	srcPort, dstPort *entities.Unsigned16InfoElement
	proto, fwd       *entities.Unsigned8InfoElement
	packets, octets  *entities.Unsigned64InfoElement
	start, end       *entities.DateTimeMillisecondsInfoElement
	ifName           *entities.StringInfoElement
	list             []entities.InfoElementWithValue
}

func newReuser(e *elements) *reuser {
	r := &reuser{
		src: entities.NewIPAddressInfoElement(e.src, nil), dst: entities.NewIPAddressInfoElement(e.dst, nil),
		srcPort: entities.NewUnsigned16InfoElement(e.srcPort, 0), dstPort: entities.NewUnsigned16InfoElement(e.dstPort, 0),
		proto: entities.NewUnsigned8InfoElement(e.proto, 0), packets: entities.NewUnsigned64InfoElement(e.packets, 0),
		octets: entities.NewUnsigned64InfoElement(e.octets, 0), start: entities.NewDateTimeMillisecondsInfoElement(e.start, 0),
		end: entities.NewDateTimeMillisecondsInfoElement(e.end, 0), fwd: entities.NewUnsigned8InfoElement(e.fwd, 0),
		ifName: entities.NewStringInfoElement(e.ifName, ""),
	}
	r.list = []entities.InfoElementWithValue{r.src, r.dst, r.srcPort, r.dstPort, r.proto, r.packets, r.octets, r.start, r.end, r.fwd, r.ifName}
	return r
}

func (r *reuser) newRecord(f *goFlow) entities.Record {
	r.src.SetIPAddressValue(f.src)
	r.dst.SetIPAddressValue(f.dst)
	r.srcPort.SetUnsigned16Value(f.srcPort)
	r.dstPort.SetUnsigned16Value(f.dstPort)
	r.proto.SetUnsigned8Value(f.protocol)
	r.packets.SetUnsigned64Value(f.packets)
	r.octets.SetUnsigned64Value(f.octets)
	r.start.SetUnsigned64Value(f.start)
	r.end.SetUnsigned64Value(f.end)
	r.fwd.SetUnsigned8Value(f.forwarding)
	r.ifName.SetStringValue(f.ifName)
	rec := entities.NewDataRecordFromElements(templateID, r.list, false)
	rec.GetBuffer() // encode now, while the elements hold this flow
	return rec
}

// templateElements lists the template's elements for a go-ipfix template set.
func (e *elements) templateElements() []entities.InfoElementWithValue {
	var list []entities.InfoElementWithValue
	for _, ie := range []*entities.InfoElement{e.src, e.dst, e.srcPort, e.dstPort, e.proto, e.packets, e.octets, e.start, e.end, e.fwd, e.ifName} {
		v, _ := entities.DecodeAndCreateInfoElementWithValue(ie, nil)
		list = append(list, v)
	}
	return list
}

// goIPFIXExporter starts go-ipfix's exporting process towards addr (UDP) and sends the
// template, as its tests do.
func goIPFIXExporter(tb testing.TB, e *elements, addr string) *goexporter.ExportingProcess {
	ep, err := goexporter.InitExportingProcess(goexporter.ExporterInput{
		CollectorAddress:    addr,
		CollectorProtocol:   "udp",
		ObservationDomainID: domainID,
		MaxMsgSize:          maxMsgSize,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ep.CloseConnToCollector)
	set := entities.NewSet(false)
	if err := set.PrepareSet(entities.Template, templateID); err != nil {
		tb.Fatal(err)
	}
	if err := set.AddRecord(e.templateElements(), templateID); err != nil {
		tb.Fatal(err)
	}
	if _, err := ep.SendSet(set); err != nil {
		tb.Fatal(err)
	}
	return ep
}

// packInMemory is go-ipfix's SendDataRecords without its final conn.Write: the same
// public calls in the same order (PrepareSet, AddRecordV3 while the message has room,
// UpdateLenInHeader, WriteIPFIXMsgToBuffer, ResetSet), the message handed to emit. It
// gives go-ipfix's encoding cost without a socket, to set against our exporter with a
// discarding sender. Like SendDataRecords it numbers a message with the records sent
// up to and including it.
func packInMemory(set entities.Set, records []entities.Record, seq *uint32, buf *bytes.Buffer, emit func([]byte)) error {
	buf.Reset()
	for sent := 0; sent < len(records); {
		length := entities.MsgHeaderLength + entities.SetHeaderLen
		if err := set.PrepareSet(entities.Data, templateID); err != nil {
			return err
		}
		n := 0
		for _, r := range records[sent:] {
			l := r.GetRecordLength()
			if length+l > maxMsgSize {
				break
			}
			if err := set.AddRecordV3(r); err != nil {
				return err
			}
			n++
			length += l
		}
		if n == 0 {
			return fmt.Errorf("record exceeds max size")
		}
		set.UpdateLenInHeader()
		*seq += set.GetNumberOfRecords()
		if _, err := goexporter.WriteIPFIXMsgToBuffer(set, domainID, *seq, time.Now(), buf); err != nil {
			return err
		}
		emit(buf.Bytes())
		sent += n
		set.ResetSet()
		buf.Reset()
	}
	return nil
}

// --- a UDP sink on loopback -------------------------------------------------------

// sink is a UDP listener on 127.0.0.1:0 that reads every datagram and, if keep, keeps
// a copy; otherwise it drops them. Both exporters send to one of these in the UDP
// benchmarks, so both pay the same system calls.
type sink struct {
	conn *net.UDPConn
	keep bool
	mu   sync.Mutex
	got  [][]byte
	n    int
	done chan struct{}
}

func listen(tb testing.TB, keep bool) *sink {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	_ = conn.SetReadBuffer(8 << 20)
	s := &sink{conn: conn, keep: keep, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.n++
			if keep {
				s.got = append(s.got, bytes.Clone(buf[:n]))
			}
			s.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *sink) addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// wait returns the kept datagrams once n have arrived, or fails after a second.
func (s *sink) wait(tb testing.TB, n int) [][]byte {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		got := s.n
		s.mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n < n {
		tb.Fatalf("listener received %d datagrams, want %d", s.n, n)
	}
	return s.got
}

func newUDPSender(tb testing.TB, addr *net.UDPAddr) *udpsender.Sender {
	s, err := udpsender.New(udpsender.Options{Host: addr.IP.String(), Port: addr.Port, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// --- correctness ------------------------------------------------------------------

// datagramsOfBoth runs the workload once through each exporter, ours in memory and
// go-ipfix's through its real exporting process to a loopback listener.
func datagramsOfBoth(t *testing.T) (ours, theirs [][]byte) {
	flows, goFlows := testFlows()
	capture := &captureSender{}
	exp, err := exporter.New(capture, nil, exporter.Options{DomainID: domainID})
	if err != nil {
		t.Fatal(err)
	}
	sendOurs(t, exp, flows)

	e := lookupElements(t)
	s := listen(t, true)
	ep := goIPFIXExporter(t, e, s.addr().String())
	records := make([]entities.Record, len(goFlows))
	for i := range goFlows {
		records[i] = e.newRecord(&goFlows[i])
	}
	sent, _, err := ep.SendDataRecords(templateID, records, nil)
	if err != nil || sent != numFlows {
		t.Fatalf("go-ipfix sent %d of %d records: %v", sent, numFlows, err)
	}
	return capture.got, s.wait(t, 1+numFlows/20)
}

// TestSameBytes: after the 16-byte message header, every message of go-ipfix is the
// same bytes as ours: the template set, then each data set. We send the template
// twice (UDP may lose one); go-ipfix once.
func TestSameBytes(t *testing.T) {
	ours, theirs := datagramsOfBoth(t)
	if len(ours) != 2+numFlows/20 || len(theirs) != 1+numFlows/20 {
		t.Fatalf("ours %d datagrams, go-ipfix %d; want %d and %d", len(ours), len(theirs), 2+numFlows/20, 1+numFlows/20)
	}
	if !bytes.Equal(ours[0][ipfix.HeaderLen:], ours[1][ipfix.HeaderLen:]) {
		t.Fatal("our two template messages differ")
	}
	ours = ours[1:]
	for i := range ours {
		if !bytes.Equal(ours[i][:4], theirs[i][:4]) { // version and length
			t.Errorf("message %d: header starts % x, go-ipfix % x", i, ours[i][:4], theirs[i][:4])
		}
		if !bytes.Equal(ours[i][ipfix.HeaderLen:], theirs[i][ipfix.HeaderLen:]) {
			t.Errorf("message %d: sets differ\nours     % x\ngo-ipfix % x", i, ours[i][ipfix.HeaderLen:], theirs[i][ipfix.HeaderLen:])
		}
	}
}

// decoded is a data record as goflow2's decoder read it.
type decoded struct {
	seq    uint32
	fields map[uint16][]byte
}

func decodeAll(t *testing.T, datagrams [][]byte) []decoded {
	templates := netflow.CreateTemplateSystem()
	var out []decoded
	for i, d := range datagrams {
		var pkt netflow.IPFIXPacket
		if err := netflow.DecodeMessageVersion(bytes.NewBuffer(d), templates, nil, &pkt); err != nil {
			t.Fatalf("datagram %d: goflow2: %v", i, err)
		}
		for _, set := range pkt.FlowSets {
			switch s := set.(type) {
			case netflow.TemplateFlowSet:
			case netflow.DataFlowSet:
				if s.Id != templateID {
					t.Fatalf("datagram %d: data set %d", i, s.Id)
				}
				for _, r := range s.Records {
					rec := decoded{seq: pkt.SequenceNumber, fields: map[uint16][]byte{}}
					for _, v := range r.Values {
						b, ok := v.Value.([]byte)
						if !ok || v.PenProvided {
							t.Fatalf("datagram %d: field %d: %T", i, v.Type, v.Value)
						}
						rec.fields[v.Type] = b
					}
					out = append(out, rec)
				}
			default:
				t.Fatalf("datagram %d: goflow2 gave %T", i, set)
			}
		}
	}
	return out
}

func num(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// TestBothDecode decodes every message of each exporter with goflow2 (an independent
// decoder) and checks that both carry every flow, in order, with its values.
func TestBothDecode(t *testing.T) {
	ours, theirs := datagramsOfBoth(t)
	flows, _ := testFlows()
	a, b := decodeAll(t, ours), decodeAll(t, theirs)
	if len(a) != numFlows || len(b) != numFlows {
		t.Fatalf("decoded %d of ours, %d of go-ipfix's; want %d", len(a), len(b), numFlows)
	}
	for i := range flows {
		f := &flows[i]
		want := map[uint16]uint64{
			ipfix.IESourceTransportPort: uint64(f.SrcPort), ipfix.IEDestinationTransportPort: uint64(f.DstPort),
			ipfix.IEProtocolIdentifier: uint64(f.Protocol), ipfix.IEPacketDeltaCount: f.Packets,
			ipfix.IEOctetDeltaCount: f.Octets, ipfix.IEFlowStartMilliseconds: f.StartMillis,
			ipfix.IEFlowEndMilliseconds: f.EndMillis, ipfix.IEForwardingStatus: uint64(f.ForwardingStatus),
		}
		for who, r := range map[string]decoded{"ours": a[i], "go-ipfix": b[i]} {
			if len(r.fields) != 11 {
				t.Fatalf("%s flow %d: %d fields", who, i, len(r.fields))
			}
			if src, _ := netip.AddrFromSlice(r.fields[ipfix.IESourceIPv4Address]); src != f.Src {
				t.Errorf("%s flow %d: source %v, want %v", who, i, src, f.Src)
			}
			if dst, _ := netip.AddrFromSlice(r.fields[ipfix.IEDestinationIPv4Address]); dst != f.Dst {
				t.Errorf("%s flow %d: destination %v, want %v", who, i, dst, f.Dst)
			}
			for id, v := range want {
				if got := num(r.fields[id]); got != v {
					t.Errorf("%s flow %d: element %d is %d, want %d", who, i, id, got, v)
				}
			}
			if got := string(r.fields[ipfix.IEInterfaceName]); got != ifName {
				t.Errorf("%s flow %d: interfaceName %q", who, i, got)
			}
		}
		// Sequence numbers: RFC 7011 section 3.1 numbers a message with the data
		// records sent before it. go-ipfix v0.12.0 adds the message's own records first.
		msg := uint32(i / 20)
		if a[i].seq != msg*20 || b[i].seq != (msg+1)*20 {
			t.Errorf("flow %d: sequence ours %d, go-ipfix %d; want %d and %d", i, a[i].seq, b[i].seq, msg*20, (msg+1)*20)
		}
	}
}

// --- benchmarks -------------------------------------------------------------------

// measure runs op (numFlows records) in b.Loop and reports ns/record and allocs/record.
func measure(b *testing.B, op func()) {
	b.ReportAllocs()
	b.SetBytes(numFlows * 68)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		op()
	}
	runtime.ReadMemStats(&after)
	n := float64(b.N) * numFlows
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/record")
}

// BenchmarkOurs: our exporter, records packed into 1400-byte messages handed to a
// sender that drops them. One op is 1,000 flows and the flush of the last message.
func BenchmarkOurs(b *testing.B) {
	flows, _ := testFlows()
	exp, _ := exporter.New(discardSender{}, nil, exporter.Options{DomainID: domainID})
	sendOurs(b, exp, flows) // templates
	measure(b, func() { sendOurs(b, exp, flows) })
}

// BenchmarkOursUDP: the same through pkg/udpsender to a loopback listener.
func BenchmarkOursUDP(b *testing.B) {
	flows, _ := testFlows()
	s := listen(b, false)
	exp, _ := exporter.New(newUDPSender(b, s.addr()), nil, exporter.Options{DomainID: domainID})
	sendOurs(b, exp, flows)
	measure(b, func() { sendOurs(b, exp, flows) })
}

// BenchmarkGoIPFIX: go-ipfix's buffered path as its tests use it: a record of new
// elements per flow, then SendDataRecords packs them into 1400-byte messages with a
// reused buffer and writes each to its UDP connection to a loopback listener.
func BenchmarkGoIPFIX(b *testing.B) {
	_, goFlows := testFlows()
	e := lookupElements(b)
	s := listen(b, false)
	ep := goIPFIXExporter(b, e, s.addr().String())
	records := make([]entities.Record, 0, numFlows)
	buf := bytes.NewBuffer(make([]byte, 0, maxMsgSize))
	measure(b, func() {
		records = records[:0]
		for i := range goFlows {
			records = append(records, e.newRecord(&goFlows[i]))
		}
		if sent, _, err := ep.SendDataRecords(templateID, records, buf); err != nil || sent != numFlows {
			b.Fatalf("sent %d: %v", sent, err)
		}
	})
}

// BenchmarkGoIPFIXReuse: go-ipfix's cheaper path, elements set again per flow (see
// reuser), through SendDataRecords to a loopback listener.
func BenchmarkGoIPFIXReuse(b *testing.B) {
	_, goFlows := testFlows()
	e := lookupElements(b)
	s := listen(b, false)
	ep := goIPFIXExporter(b, e, s.addr().String())
	r := newReuser(e)
	records := make([]entities.Record, 0, numFlows)
	buf := bytes.NewBuffer(make([]byte, 0, maxMsgSize))
	measure(b, func() {
		records = records[:0]
		for i := range goFlows {
			records = append(records, r.newRecord(&goFlows[i]))
		}
		if sent, _, err := ep.SendDataRecords(templateID, records, buf); err != nil || sent != numFlows {
			b.Fatalf("sent %d: %v", sent, err)
		}
	})
}

// BenchmarkGoIPFIXMem: go-ipfix's encoding without the socket (packInMemory), to set
// against BenchmarkOurs.
func BenchmarkGoIPFIXMem(b *testing.B) {
	_, goFlows := testFlows()
	e := lookupElements(b)
	set := entities.NewSet(false)
	records := make([]entities.Record, 0, numFlows)
	buf := bytes.NewBuffer(make([]byte, 0, maxMsgSize))
	var seq uint32
	drop := func([]byte) {}
	measure(b, func() {
		records = records[:0]
		for i := range goFlows {
			records = append(records, e.newRecord(&goFlows[i]))
		}
		if err := packInMemory(set, records, &seq, buf, drop); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkGoIPFIXReuseMem: the cheaper path without the socket.
func BenchmarkGoIPFIXReuseMem(b *testing.B) {
	_, goFlows := testFlows()
	e := lookupElements(b)
	r := newReuser(e)
	set := entities.NewSet(false)
	records := make([]entities.Record, 0, numFlows)
	buf := bytes.NewBuffer(make([]byte, 0, maxMsgSize))
	var seq uint32
	drop := func([]byte) {}
	measure(b, func() {
		records = records[:0]
		for i := range goFlows {
			records = append(records, r.newRecord(&goFlows[i]))
		}
		if err := packInMemory(set, records, &seq, buf, drop); err != nil {
			b.Fatal(err)
		}
	})
}

// TestPackInMemory: packInMemory writes what SendDataRecords sends, header included
// except the export time.
func TestPackInMemory(t *testing.T) {
	_, theirs := datagramsOfBoth(t)
	_, goFlows := testFlows()
	e := lookupElements(t)
	records := make([]entities.Record, len(goFlows))
	for i := range goFlows {
		records[i] = e.newRecord(&goFlows[i])
	}
	var got [][]byte
	var seq uint32
	if err := packInMemory(entities.NewSet(false), records, &seq, &bytes.Buffer{}, func(m []byte) { got = append(got, bytes.Clone(m)) }); err != nil {
		t.Fatal(err)
	}
	theirs = theirs[1:] // the template
	if len(got) != len(theirs) {
		t.Fatalf("%d messages, SendDataRecords %d", len(got), len(theirs))
	}
	for i := range got {
		if !bytes.Equal(got[i][:4], theirs[i][:4]) || !bytes.Equal(got[i][8:], theirs[i][8:]) {
			t.Errorf("message %d differs", i)
		}
	}
}

// TestReuseSameRecords: the reuse path encodes every flow as a record of new elements
// does (each record is encoded before the shared elements change).
func TestReuseSameRecords(t *testing.T) {
	_, goFlows := testFlows()
	e := lookupElements(t)
	r := newReuser(e)
	reused := make([]entities.Record, len(goFlows))
	for i := range goFlows {
		reused[i] = r.newRecord(&goFlows[i])
	}
	for i := range goFlows {
		if want := e.newRecord(&goFlows[i]).GetBuffer(); !bytes.Equal(reused[i].GetBuffer(), want) {
			t.Fatalf("flow %d: reused % x, want % x", i, reused[i].GetBuffer(), want)
		}
	}
}
