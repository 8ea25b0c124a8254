// Package goflowcheck decodes our IPFIX with goflow2's decoder, which nobody here
// wrote, so tests check the encoder against an independent reading of RFC 7011. It
// also captures datagrams on a loopback UDP listener. Only tests import it: the
// bootstrap binary does not link goflow2.
package goflowcheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// Flow is one data record as goflow2 decoded it.
type Flow struct {
	Domain, Sequence uint32
	TemplateID       uint16
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Protocol         uint8
	Packets, Bytes   uint64
	StartMillis      uint64
	EndMillis        uint64
	ForwardingStatus uint8
	TCPFlags         uint16
	HasTCPFlags      bool
	Direction        uint8
	HasDirection     bool
	InterfaceName    string
	HasInterface     bool
	// Enterprise holds enterprise-specific values by element id (all PENs).
	Enterprise map[uint16][]byte
}

// Message summarises one decoded message.
type Message struct {
	Length         int
	ExportTime     uint32
	Sequence       uint32
	Domain         uint32
	DataRecords    int // flow records
	OptionsRecords int // options data records (RFC 5610 type information)
	Templates      int // template and options template records
}

// Decoder keeps goflow2's template system across messages of one exporter.
type Decoder struct {
	templates netflow.NetFlowTemplateSystem
	Flows     []Flow
	Messages  []Message
	// TypeInfo maps enterprise element id to its RFC 5610 name, from options data.
	TypeInfo map[uint16]string
}

// NewDecoder returns a Decoder with an empty template system.
func NewDecoder() *Decoder {
	return &Decoder{templates: netflow.CreateTemplateSystem(), TypeInfo: map[uint16]string{}}
}

// Decode decodes one datagram, appending its flows and a Message.
func (d *Decoder) Decode(datagram []byte) error {
	var pkt netflow.IPFIXPacket
	if err := netflow.DecodeMessageVersion(bytes.NewBuffer(datagram), d.templates, nil, &pkt); err != nil {
		return fmt.Errorf("goflow2: %w", err)
	}
	m := Message{Length: int(pkt.Length), ExportTime: pkt.ExportTime, Sequence: pkt.SequenceNumber, Domain: pkt.ObservationDomainId}
	for _, set := range pkt.FlowSets {
		switch s := set.(type) {
		case netflow.TemplateFlowSet:
			m.Templates += len(s.Records)
		case netflow.IPFIXOptionsTemplateFlowSet:
			m.Templates += len(s.Records)
		case netflow.DataFlowSet:
			for _, r := range s.Records {
				f, err := toFlow(r.Values)
				if err != nil {
					return err
				}
				f.Domain, f.Sequence, f.TemplateID = pkt.ObservationDomainId, pkt.SequenceNumber, s.Id
				d.Flows = append(d.Flows, f)
				m.DataRecords++
			}
		case netflow.OptionsDataFlowSet:
			for _, r := range s.Records {
				m.OptionsRecords++
				var id uint16
				for _, v := range r.ScopesValues {
					if v.Type == 303 {
						id = binary.BigEndian.Uint16(v.Value.([]byte))
					}
				}
				for _, v := range r.OptionsValues {
					if v.Type == 341 {
						d.TypeInfo[id] = string(v.Value.([]byte))
					}
				}
			}
		case netflow.RawFlowSet:
			return fmt.Errorf("goflow2: set %d could not be decoded (no template)", s.Id)
		default:
			return fmt.Errorf("goflow2: unexpected set %T", set)
		}
	}
	d.Messages = append(d.Messages, m)
	return nil
}

func toFlow(values []netflow.DataField) (Flow, error) {
	var f Flow
	for _, v := range values {
		b, ok := v.Value.([]byte)
		if !ok {
			return f, fmt.Errorf("goflow2: field %d value %T", v.Type, v.Value)
		}
		if v.PenProvided {
			if f.Enterprise == nil {
				f.Enterprise = map[uint16][]byte{}
			}
			f.Enterprise[v.Type] = append([]byte(nil), b...)
			continue
		}
		switch v.Type {
		case 8, 27:
			f.Src, _ = netip.AddrFromSlice(b)
		case 12, 28:
			f.Dst, _ = netip.AddrFromSlice(b)
		case 7:
			f.SrcPort = uint16(num(b))
		case 11:
			f.DstPort = uint16(num(b))
		case 4:
			f.Protocol = uint8(num(b))
		case 2:
			f.Packets = num(b)
		case 1:
			f.Bytes = num(b)
		case 152:
			f.StartMillis = num(b)
		case 153:
			f.EndMillis = num(b)
		case 89:
			f.ForwardingStatus = uint8(num(b))
		case 6:
			f.TCPFlags, f.HasTCPFlags = uint16(num(b)), true
		case 61:
			f.Direction, f.HasDirection = uint8(num(b)), true
		case 82:
			f.InterfaceName, f.HasInterface = string(b), true
		default:
			return f, fmt.Errorf("goflow2: unexpected element %d", v.Type)
		}
	}
	return f, nil
}

func num(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// Capture is a UDP listener on 127.0.0.1 that keeps every datagram.
type Capture struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  [][]byte
	done chan struct{}
}

// Listen starts a Capture that stops when the test ends.
func Listen(tb testing.TB) *Capture {
	tb.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	// Large enough that an unpaced burst is not dropped by the kernel.
	_ = conn.SetReadBuffer(8 << 20)
	c := &Capture{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.got = append(c.got, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { conn.Close(); <-c.done })
	return c
}

// Addr is the listener's address.
func (c *Capture) Addr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Datagrams waits until n datagrams arrived or timeout passed, and returns what arrived.
func (c *Capture) Datagrams(n int, timeout time.Duration) [][]byte {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		got := len(c.got)
		c.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.got...)
}
