// Package exporter is the IPFIX exporting process: it packs flows into messages no
// larger than the path allows, owns the sequence number and the template clock of one
// observation domain, paces data messages and hands them to a sender.
//
// One Exporter is one export session. It is built once per Lambda instance (cold
// start) and used by one goroutine; nothing in it runs in the background, because a
// Lambda is frozen between invocations: the template refresh is checked inline,
// before every data message.
//
// Sequence numbers follow RFC 7011 section 3.1: the header of a message carries the
// number of data records sent in this domain before it, modulo 2^32. Template-only
// messages do not advance it. A message that could not be sent does not advance it
// either, so the collector sees no gap for records it never received from us.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/ipfix"
)

// Sender puts one datagram on the wire.
type Sender interface {
	Send(ctx context.Context, datagram []byte) error
}

// Pacer holds data messages back to the configured rate.
type Pacer interface {
	Wait(ctx context.Context, records int) (time.Duration, error)
}

// ErrRecordTooLarge is returned for a flow that cannot fit in one message.
var ErrRecordTooLarge = errors.New("exporter: record larger than the maximum message size")

// Defaults.
const (
	DefaultMaxMessageSize  = 1400
	DefaultTemplateRefresh = 60 * time.Second
	// MinMessageSize leaves room for the largest template record with every element.
	MinMessageSize = 256
)

// Options configure an Exporter; zero values take the defaults.
type Options struct {
	DomainID uint32
	// MaxMessageSize bounds every datagram's IPFIX payload. The default 1400 plus 28
	// bytes of IPv4 and UDP headers fits the 1446-byte MTU of an AWS Site-to-Site VPN
	// tunnel and any 1500-byte Direct Connect path, so datagrams are never fragmented.
	MaxMessageSize int
	// TemplateRefresh is how often templates are sent again (RFC 7011 section 8.4).
	TemplateRefresh time.Duration
	// EnterpriseNumber is the operator's IANA private enterprise number; 0 disables the
	// enterprise-specific AWS elements (never send another organisation's PEN).
	EnterpriseNumber uint32
	// Now is the clock for export times and the template refresh; default time.Now.
	Now func() time.Time
}

// Stats are cumulative counters of an Exporter.
type Stats struct {
	Records          uint64 // flow records handed to the sender
	Datagrams        uint64 // messages sent, template messages included
	Bytes            uint64 // IPFIX bytes sent
	TemplateMessages uint64
	PacingWait       time.Duration
}

// Exporter packs flows into messages; see the package doc.
type Exporter struct {
	sender Sender
	pacer  Pacer
	opts   Options

	buf       []byte
	records   int
	setAt     int
	setLayout ipfix.Layout

	tbuf          []byte
	seq           uint32
	announced     [ipfix.MaxLayout / 64]uint64
	active        []ipfix.Layout
	lastTemplates time.Time

	session    uint64 // the sender's transport session, when it tells
	newSession bool   // the session changed: announce templates again

	stats Stats
}

// sessioner is implemented by senders that can tell when a re-dial opened a new
// transport session (another local or remote address or port).
type sessioner interface{ Session() uint64 }

// send hands b to the sender and notices a change of transport session.
func (e *Exporter) send(ctx context.Context, b []byte) error {
	if err := e.sender.Send(ctx, b); err != nil {
		// A failed send means the collector may have been down: the template messages
		// sent just before (which the kernel took, and which were then refused) may never
		// have arrived, and on UDP nothing tells us. Announce the templates again before
		// the next data, or a restarted collector drops every record until the refresh.
		e.newSession = true
		return err
	}
	if s, ok := e.sender.(sessioner); ok {
		if cur := s.Session(); cur != e.session {
			e.newSession = e.session != 0
			e.session = cur
		}
	}
	return nil
}

// New returns an Exporter that sends through sender, paced by pacer (nil: unpaced).
func New(sender Sender, pacer Pacer, opts Options) (*Exporter, error) {
	if sender == nil {
		return nil, errors.New("exporter: nil sender")
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	if opts.MaxMessageSize < MinMessageSize || opts.MaxMessageSize > 65535 {
		return nil, fmt.Errorf("exporter: maximum message size %d is outside %d to 65535", opts.MaxMessageSize, MinMessageSize)
	}
	if opts.TemplateRefresh == 0 {
		opts.TemplateRefresh = DefaultTemplateRefresh
	}
	if opts.TemplateRefresh < 0 {
		return nil, fmt.Errorf("exporter: negative template refresh %v", opts.TemplateRefresh)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Exporter{
		sender: sender,
		pacer:  pacer,
		opts:   opts,
		buf:    make([]byte, 0, opts.MaxMessageSize),
		tbuf:   make([]byte, 0, opts.MaxMessageSize),
		setAt:  -1,
	}
	return e, nil
}

// Stats returns the cumulative counters.
func (e *Exporter) Stats() Stats { return e.stats }

// Sequence returns the sequence number the next data message will carry.
func (e *Exporter) Sequence() uint32 { return e.seq }

// Pending returns how many records wait in the unsent message.
func (e *Exporter) Pending() int { return e.records }

// Discard drops the records waiting in the unsent message: they were never sent, are
// not counted, and do not advance the sequence number. The forwarder calls it when it
// stops an object early, so that a checkpoint counts exactly the records on the wire.
func (e *Exporter) Discard() { e.reset() }

// Add appends f, of layout l, to the current message, sending the message first when
// f would not fit, and announcing l's template first when it is new to this session.
// An error means records were not sent: the ones in the message being flushed are
// dropped and not counted, and the caller must treat the object as failed.
func (e *Exporter) Add(ctx context.Context, l ipfix.Layout, f *ipfix.Flow) error {
	if l >= ipfix.MaxLayout {
		return fmt.Errorf("exporter: layout %#x out of range", l)
	}
	if e.opts.EnterpriseNumber == 0 && l >= ipfix.LayoutEnterprise(0) {
		return errors.New("exporter: enterprise elements need an enterprise number")
	}
	if !e.isAnnounced(l) {
		if err := e.Flush(ctx); err != nil {
			return err
		}
		e.announced[l/64] |= 1 << (l % 64)
		e.active = append(e.active, l)
		// Twice, since UDP may lose one and data without its template is lost too.
		for range 2 {
			if err := e.sendTemplates(ctx); err != nil {
				return err
			}
		}
	}
	n := ipfix.FlowLen(l, f)
	if ipfix.HeaderLen+ipfix.SetHeaderLen+n > e.opts.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, n)
	}
	need := n
	if e.setAt < 0 || e.setLayout != l {
		need += ipfix.SetHeaderLen
	}
	if e.records > 0 && len(e.buf)+need > e.opts.MaxMessageSize {
		if err := e.Flush(ctx); err != nil {
			return err
		}
	}
	if len(e.buf) == 0 {
		e.buf = ipfix.AppendHeader(e.buf)
	}
	if e.setAt < 0 || e.setLayout != l {
		e.closeSet()
		e.setAt = len(e.buf)
		e.setLayout = l
		e.buf = ipfix.AppendSetHeader(e.buf, l.TemplateID())
	}
	e.buf = ipfix.AppendFlow(e.buf, l, f)
	e.records++
	return nil
}

func (e *Exporter) isAnnounced(l ipfix.Layout) bool { return e.announced[l/64]&(1<<(l%64)) != 0 }

func (e *Exporter) closeSet() {
	if e.setAt >= 0 {
		ipfix.PutSetLength(e.buf, e.setAt)
		e.setAt = -1
	}
}

// Flush sends the current message, if it holds records: templates first when the
// refresh interval has passed, then the pacer's wait, then the message.
func (e *Exporter) Flush(ctx context.Context) error {
	if e.records == 0 {
		return nil
	}
	e.closeSet()
	records := e.records
	defer e.reset()
	switch {
	case e.newSession:
		// A collector keyed on the transport session has none of our templates.
		e.newSession = false
		for range 2 {
			if err := e.sendTemplates(ctx); err != nil {
				return err
			}
		}
	case e.opts.Now().Sub(e.lastTemplates) >= e.opts.TemplateRefresh:
		if err := e.sendTemplates(ctx); err != nil {
			return err
		}
	}
	if e.pacer != nil {
		waited, err := e.pacer.Wait(ctx, records)
		e.stats.PacingWait += waited
		if err != nil {
			return fmt.Errorf("exporter: pacing %d records: %w", records, err)
		}
	}
	ipfix.PutHeader(e.buf, e.exportTime(), e.seq, e.opts.DomainID)
	if err := e.send(ctx, e.buf); err != nil {
		return fmt.Errorf("exporter: sending %d records: %w", records, err)
	}
	e.seq += uint32(records)
	e.stats.Records += uint64(records)
	e.stats.Datagrams++
	e.stats.Bytes += uint64(len(e.buf))
	return nil
}

func (e *Exporter) reset() {
	e.buf = e.buf[:0]
	e.records = 0
	e.setAt = -1
}

func (e *Exporter) exportTime() uint32 { return uint32(e.opts.Now().Unix()) }

// sendTemplates sends every active template in template-only messages, then, with an
// enterprise number, the RFC 5610 type information for the enterprise elements.
func (e *Exporter) sendTemplates(ctx context.Context) error {
	pen := e.opts.EnterpriseNumber
	b := e.tbuf[:0]
	setAt := -1
	send := func() error {
		if setAt >= 0 {
			ipfix.PutSetLength(b, setAt)
			setAt = -1
		}
		ipfix.PutHeader(b, e.exportTime(), e.seq, e.opts.DomainID)
		if err := e.send(ctx, b); err != nil {
			return fmt.Errorf("exporter: sending templates: %w", err)
		}
		e.stats.Datagrams++
		e.stats.TemplateMessages++
		e.stats.Bytes += uint64(len(b))
		b = b[:0]
		return nil
	}
	for _, l := range e.active {
		n := ipfix.TemplateRecordLen(l)
		if len(b) > 0 && len(b)+n > e.opts.MaxMessageSize {
			if err := send(); err != nil {
				return err
			}
		}
		if len(b) == 0 {
			b = ipfix.AppendHeader(b)
			setAt = len(b)
			b = ipfix.AppendSetHeader(b, ipfix.TemplateSetID)
		}
		b = ipfix.AppendTemplateRecord(b, l, pen)
	}
	if pen != 0 {
		if len(b) > 0 {
			ipfix.PutSetLength(b, setAt)
			setAt = -1
		}
		if len(b) > 0 && len(b)+ipfix.SetHeaderLen+64 > e.opts.MaxMessageSize {
			if err := send(); err != nil {
				return err
			}
		}
		if len(b) == 0 {
			b = ipfix.AppendHeader(b)
		}
		setAt = len(b)
		b = ipfix.AppendSetHeader(b, ipfix.OptionsTemplateSetID)
		b = ipfix.AppendTypeInfoTemplate(b)
	}
	if len(b) > 0 {
		if err := send(); err != nil {
			return err
		}
	}
	if pen != 0 {
		if err := e.sendTypeInfo(ctx); err != nil {
			return err
		}
	}
	e.tbuf = b[:0]
	e.lastTemplates = e.opts.Now()
	return nil
}

// sendTypeInfo describes the enterprise elements (RFC 5610). These are options data
// records, so they advance the sequence number like any data record.
func (e *Exporter) sendTypeInfo(ctx context.Context) error {
	b := ipfix.AppendHeader(e.tbuf[:0])
	setAt := len(b)
	b = ipfix.AppendSetHeader(b, ipfix.TypeInfoTemplateID)
	count := 0
	for el := ipfix.Enterprise(0); el < ipfix.NumEnterprise; el++ {
		b = ipfix.AppendTypeInfoRecord(b, e.opts.EnterpriseNumber, el)
		count++
	}
	ipfix.PutSetLength(b, setAt)
	if len(b) > e.opts.MaxMessageSize {
		return fmt.Errorf("exporter: type information needs %d bytes, more than the maximum message size %d", len(b), e.opts.MaxMessageSize)
	}
	ipfix.PutHeader(b, e.exportTime(), e.seq, e.opts.DomainID)
	if err := e.send(ctx, b); err != nil {
		return fmt.Errorf("exporter: sending type information: %w", err)
	}
	e.seq += uint32(count)
	e.stats.Datagrams++
	e.stats.TemplateMessages++
	e.stats.Bytes += uint64(len(b))
	e.tbuf = b[:0]
	return nil
}
