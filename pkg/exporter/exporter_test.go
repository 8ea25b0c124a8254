package exporter_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/goflowcheck"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
)

// fakeSender keeps copies of the datagrams; fail makes the next sends fail.
type fakeSender struct {
	got  [][]byte
	fail int
}

func (s *fakeSender) Send(_ context.Context, b []byte) error {
	if s.fail > 0 {
		s.fail--
		return errors.New("connection refused")
	}
	s.got = append(s.got, append([]byte(nil), b...))
	return nil
}

type fakePacer struct{ waits []int }

func (p *fakePacer) Wait(_ context.Context, n int) (time.Duration, error) {
	p.waits = append(p.waits, n)
	return time.Millisecond, nil
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func flow(i int) ipfix.Flow {
	return ipfix.Flow{
		Src: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Dst: netip.MustParseAddr("10.1.0.1"),
		SrcPort: uint16(i), DstPort: 443, Protocol: 6, Packets: uint64(i), Octets: uint64(i) * 100,
		StartMillis: 1796313900000, EndMillis: 1796313960000, ForwardingStatus: ipfix.ForwardingAccepted,
		InterfaceName: []byte("eni-0123456789abcdef0"),
	}
}

func decodeAll(t *testing.T, datagrams [][]byte) *goflowcheck.Decoder {
	t.Helper()
	d := goflowcheck.NewDecoder()
	for i, b := range datagrams {
		if err := d.Decode(b); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	return d
}

func TestSequenceTemplatesAndSize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		records int
		pen     uint32
	}{
		{"default size", 1400, 1000, 0},
		{"small messages", 300, 97, 0},
		{"jumbo", 8900, 5000, 0},
		{"enterprise elements", 1400, 500, 32473},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := &fakeSender{}, &fakePacer{}
			clock := &fakeClock{time.Unix(1796313900, 0)}
			e, err := exporter.New(s, p, exporter.Options{DomainID: 9, MaxMessageSize: tc.max, EnterpriseNumber: tc.pen, Now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := 0; i < tc.records; i++ {
				f := flow(i)
				l := ipfix.LayoutInterfaceName
				if i%3 == 0 {
					l |= ipfix.LayoutTCPFlags // a second template, interleaved
				}
				if tc.pen != 0 {
					l |= ipfix.LayoutEnterprise(ipfix.EntVPCID)
					f.Enterprise[ipfix.EntVPCID] = []byte("vpc-0123456789abcdef0")
				}
				if err := e.Add(ctx, l, &f); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			d := decodeAll(t, s.got)
			if len(d.Flows) != tc.records {
				t.Fatalf("goflow2 decoded %d flows, want %d", len(d.Flows), tc.records)
			}
			for i, f := range d.Flows {
				if f.SrcPort != uint16(i) || f.Bytes != uint64(i)*100 {
					t.Fatalf("flow %d out of order or wrong: %+v", i, f)
				}
			}
			// The first messages are template-only, sent twice before any data.
			if m := d.Messages[0]; m.Templates == 0 || m.DataRecords != 0 {
				t.Fatalf("first message is not template-only: %+v", m)
			}
			var seq uint32
			dataSeen := false
			for i, m := range d.Messages {
				if m.Length > tc.max {
					t.Errorf("message %d is %d bytes, max %d", i, m.Length, tc.max)
				}
				if m.Sequence != seq {
					t.Errorf("message %d sequence %d, want %d", i, m.Sequence, seq)
				}
				if m.Domain != 9 {
					t.Errorf("message %d domain %d", i, m.Domain)
				}
				if m.Templates > 0 && m.DataRecords > 0 {
					t.Errorf("message %d mixes templates and data", i)
				}
				if m.DataRecords > 0 {
					dataSeen = true
				}
				if !dataSeen && m.Templates > 0 && i > 4 {
					t.Errorf("too many template messages before data")
				}
				seq += uint32(m.DataRecords + m.OptionsRecords)
			}
			if got := e.Sequence(); got != seq {
				t.Errorf("exporter sequence %d, datagrams say %d", got, seq)
			}
			if tc.pen != 0 && d.TypeInfo[2] != "awsVpcId" {
				t.Errorf("RFC 5610 type information not received: %v", d.TypeInfo)
			}
			paced := 0
			for _, n := range p.waits {
				paced += n
			}
			if paced != tc.records {
				t.Errorf("pacer was asked for %d records, want %d", paced, tc.records)
			}
			st := e.Stats()
			if st.Records != uint64(tc.records) || st.Datagrams != uint64(len(s.got)) || st.PacingWait != time.Duration(len(p.waits))*time.Millisecond {
				t.Errorf("stats %+v, datagrams %d", st, len(s.got))
			}
		})
	}
}

// sendOne sends one flow in a message of its own.
func sendOne(ctx context.Context, e *exporter.Exporter) error {
	f := flow(1)
	if err := e.Add(ctx, 0, &f); err != nil {
		return err
	}
	return e.Flush(ctx)
}

func TestTemplateRefresh(t *testing.T) {
	s := &fakeSender{}
	clock := &fakeClock{time.Unix(1796313900, 0)}
	e, err := exporter.New(s, nil, exporter.Options{TemplateRefresh: 60 * time.Second, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	send := func() {
		if err := sendOne(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	templateMessages := func() int {
		n := 0
		for _, m := range decodeAll(t, s.got).Messages {
			if m.Templates > 0 {
				n++
			}
		}
		return n
	}
	send()
	if n := templateMessages(); n != 2 {
		t.Fatalf("session start: %d template messages, want 2", n)
	}
	clock.t = clock.t.Add(59 * time.Second)
	send()
	if n := templateMessages(); n != 2 {
		t.Fatalf("after 59 s: %d template messages, want still 2", n)
	}
	// A frozen Lambda wakes up after an hour: the refresh happens inline, before data.
	clock.t = clock.t.Add(time.Hour)
	send()
	if n := templateMessages(); n != 3 {
		t.Fatalf("after the refresh interval: %d template messages, want 3", n)
	}
	if last := decodeAll(t, s.got).Messages; last[len(last)-2].Templates == 0 || last[len(last)-1].DataRecords != 1 {
		t.Fatalf("refresh did not come right before the data: %+v", last[len(last)-2:])
	}
}

func TestFailedSendDoesNotAdvanceSequence(t *testing.T) {
	s := &fakeSender{}
	e, err := exporter.New(s, nil, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		f := flow(i)
		if err := e.Add(ctx, 0, &f); err != nil {
			t.Fatal(err)
		}
	}
	s.fail = 1
	if err := e.Flush(ctx); err == nil {
		t.Fatal("Flush hid a send failure")
	}
	if e.Sequence() != 0 || e.Stats().Records != 0 || e.Pending() != 0 {
		t.Fatalf("after a failed send: sequence %d, records %d, pending %d", e.Sequence(), e.Stats().Records, e.Pending())
	}
	f := flow(99)
	if err := e.Add(ctx, 0, &f); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, s.got)
	last := d.Messages[len(d.Messages)-1]
	if last.Sequence != 0 || last.DataRecords != 1 || e.Sequence() != 1 {
		t.Fatalf("next message %+v, exporter sequence %d", last, e.Sequence())
	}
}

func TestOptionsAndTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts exporter.Options
	}{
		{"below minimum", exporter.Options{MaxMessageSize: 100}},
		{"above 65535", exporter.Options{MaxMessageSize: 70000}},
		{"negative refresh", exporter.Options{TemplateRefresh: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := exporter.New(&fakeSender{}, nil, tc.opts); err == nil {
				t.Error("accepted")
			}
		})
	}
	e, _ := exporter.New(&fakeSender{}, nil, exporter.Options{MaxMessageSize: 300})
	f := flow(1)
	f.InterfaceName = make([]byte, 400)
	if err := e.Add(context.Background(), ipfix.LayoutInterfaceName, &f); !errors.Is(err, exporter.ErrRecordTooLarge) {
		t.Errorf("oversized record: %v", err)
	}
	if err := e.Add(context.Background(), ipfix.LayoutEnterprise(0), &f); err == nil {
		t.Error("enterprise layout without an enterprise number accepted")
	}
}

func BenchmarkAdd(b *testing.B) {
	s := &discard{}
	e, _ := exporter.New(s, nil, exporter.Options{})
	ctx := context.Background()
	flows := make([]ipfix.Flow, 1024)
	for i := range flows {
		flows[i] = flow(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := e.Add(ctx, ipfix.LayoutInterfaceName, &flows[i&1023]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")

}

type discard struct{}

func (discard) Send(context.Context, []byte) error { return nil }

// sessionSender reports a new transport session when told to.
type sessionSender struct {
	fakeSender
	session uint64
}

func (s *sessionSender) Session() uint64 { return s.session }

func TestNewTransportSessionGetsTemplates(t *testing.T) {
	s := &sessionSender{session: 1}
	e, err := exporter.New(s, nil, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	send := func() {
		if err := sendOne(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	send()
	send()
	if n := len(s.got); n != 4 {
		t.Fatalf("%d datagrams, want 2 template messages and 2 data messages", n)
	}
	s.session = 2 // the sender re-dialled from another port
	send()        // this message left on the new session; the next gets templates first
	send()
	d := decodeAll(t, s.got)
	var kinds []string
	for _, m := range d.Messages {
		if m.Templates > 0 {
			kinds = append(kinds, "T")
		} else {
			kinds = append(kinds, "D")
		}
	}
	if got := fmt.Sprint(kinds); got != "[T T D D D T T D]" {
		t.Fatalf("message kinds %s", got)
	}
}

func TestDiscard(t *testing.T) {
	s := &fakeSender{}
	e, _ := exporter.New(s, nil, exporter.Options{})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		f := flow(i)
		if err := e.Add(ctx, 0, &f); err != nil {
			t.Fatal(err)
		}
	}
	e.Discard()
	f := flow(42)
	if err := e.Add(ctx, 0, &f); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, s.got)
	if len(d.Flows) != 1 || d.Flows[0].SrcPort != 42 || e.Sequence() != 1 || e.Stats().Records != 1 {
		t.Fatalf("after Discard: flows %+v, sequence %d", d.Flows, e.Sequence())
	}
}

// TestTemplatesAgainAfterSendFailure: a collector that was down may have lost the
// templates the kernel accepted; the next data must follow fresh templates.
func TestTemplatesAgainAfterSendFailure(t *testing.T) {
	s := &fakeSender{}
	e, _ := exporter.New(s, nil, exporter.Options{})
	ctx := context.Background()
	add := func() error { return sendOne(ctx, e) }
	if err := add(); err != nil {
		t.Fatal(err)
	}
	s.fail = 1
	if err := add(); err == nil {
		t.Fatal("send failure hidden")
	}
	s.got = nil // what the restarted collector sees from here on
	if err := add(); err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, s.got) // fails on data without a template
	if len(d.Flows) != 1 || d.Messages[0].Templates == 0 {
		t.Fatalf("after the failure: %+v", d.Messages)
	}
}
