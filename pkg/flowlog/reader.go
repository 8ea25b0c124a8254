// Package flowlog reads Amazon VPC Flow Log records (the text that VPC Flow Logs
// deliver to S3) into Records, one line at a time, without holding the object in memory.
//
// The first line of an S3-delivered object names the fields; a file without that
// line is read as the version 2 default format. Any fields of versions 2 to 8, in any
// order, are understood; unknown names are ignored. A malformed line is reported as a
// *LineError and the reader goes on with the next line; a read error or an unusable
// header ends the object.
//
// The hot path (Reader.Next) does not allocate.
package flowlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"unsafe"
)

// ErrMalformed is wrapped by every *LineError.
var ErrMalformed = errors.New("malformed flow log line")

// ErrFormat is wrapped by errors about an unusable header.
var ErrFormat = errors.New("unusable flow log format")

// LineError is a malformed line: counted, logged and skipped by the caller.
type LineError struct {
	Line   int64
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *LineError) Unwrap() error { return ErrMalformed }

// DefaultMaxLineBytes is the longest line accepted; longer lines are malformed.
// The longest legitimate record (every field of every version, long ECS ARNs) is a few KiB.
const DefaultMaxLineBytes = 64 << 10

// Options tune a Reader.
type Options struct {
	// PreferPacketAddresses takes pkt-srcaddr/pkt-dstaddr, when present, as the flow's
	// addresses. They are the packet's real endpoints (behind a NAT gateway, say), where
	// srcaddr/dstaddr name the interface. Falls back to srcaddr/dstaddr on "-".
	PreferPacketAddresses bool
	// MaxLineBytes bounds a line, newline included. Default DefaultMaxLineBytes.
	MaxLineBytes int
}

// Reader reads records from a flow log object's text.
type Reader struct {
	opts    Options
	br      *bufio.Reader
	format  *Format
	line    int64
	started bool
	err     error // sticky: a read error or an unusable header
	cols    [maxColumns][]byte
	pending []byte // first line when it turned out to be data, not a header
}

// NewReader returns a Reader over r (already decompressed text).
func NewReader(r io.Reader, opts Options) *Reader {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.MaxLineBytes < minLineBytes {
		opts.MaxLineBytes = minLineBytes // bufio's smallest buffer; keeps the limit and its message true
	}
	// One byte over the limit, so a line of exactly the limit fits whether or not it
	// ends in a newline, and readLine checks the limit itself. Not
	// bufio.NewReaderSize(r, ...): given a *bufio.Reader with a larger buffer it returns
	// that reader itself, which would lift the line limit and let Reset reset the
	// caller's reader.
	br := bufio.NewReaderSize(nil, opts.MaxLineBytes+1)
	br.Reset(r)
	return &Reader{opts: opts, br: br}
}

// minLineBytes is the smallest buffer bufio.NewReaderSize honours.
const minLineBytes = 16

// Reset makes the Reader read from r, keeping its buffer, so one Reader serves many objects.
func (r *Reader) Reset(src io.Reader) {
	r.br.Reset(src)
	r.format = nil
	r.line = 0
	r.started = false
	r.err = nil
	r.pending = nil
}

// Format returns the object's format; nil before the first call to Next.
func (r *Reader) Format() *Format { return r.format }

// LinesRead returns how many lines (header included) have been read.
func (r *Reader) LinesRead() int64 { return r.line }

// Next fills rec with the next record. It returns io.EOF at the end, a *LineError for a
// malformed line (call Next again to go on), or another error that ends the object.
// NODATA and SKIPDATA records are returned with their Status and no flow fields.
func (r *Reader) Next(rec *Record) error {
	if r.err != nil {
		return r.err
	}
	if !r.started {
		r.started = true
		if err := r.readHeader(); err != nil {
			r.err = err
			return err
		}
		if r.pending != nil {
			line := r.pending
			r.pending = nil
			return r.parse(line, rec)
		}
	}
	for {
		line, err := r.readLine()
		if err != nil {
			if err != errLineTooLong {
				r.err = err
				return err
			}
			return &LineError{Line: r.line, Reason: fmt.Sprintf("line longer than %d bytes", r.opts.MaxLineBytes)}
		}
		if isBlank(line) {
			continue // blank lines carry nothing; not worth a count
		}
		return r.parse(line, rec)
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its line ending. The slice is valid until
// the next read.
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	r.line++
	switch {
	case len(line) > r.opts.MaxLineBytes && (err == nil || err == io.EOF):
		return nil, errLineTooLong // fits the buffer (limit + 1) but not the limit
	case err == nil:
	case errors.Is(err, bufio.ErrBufferFull):
		// Skip the rest of the over-long line.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("flowlog: reading line %d: %w", r.line, err)
		}
		return nil, errLineTooLong
	case err == io.EOF:
		if len(line) == 0 {
			r.line--
			return nil, io.EOF
		}
	default:
		return nil, fmt.Errorf("flowlog: reading line %d: %w", r.line, err)
	}
	line = bytes.TrimRight(line, "\r\n")
	return line, nil
}

// isBlank reports whether line holds nothing but spaces and tabs.
func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// readHeader reads the first line that is not blank: the header, or the first
// record of an object without one.
func (r *Reader) readHeader() error {
	var line []byte
	for {
		var err error
		line, err = r.readLine()
		if err == errLineTooLong {
			return fmt.Errorf("%w: first line longer than %d bytes", ErrFormat, r.opts.MaxLineBytes)
		}
		if err != nil {
			return err // io.EOF: an empty object is simply empty
		}
		if !isBlank(line) {
			break
		}
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) > 0 && trimmed[0] >= '0' && trimmed[0] <= '9' {
		// Data, not a header: the version 2 default format.
		r.format = defaultFormat
		r.pending = line
		return nil
	}
	f, err := ParseFormat(string(trimmed))
	if err != nil {
		return fmt.Errorf("flowlog: header line: %w", err)
	}
	r.format = f
	return nil
}

func (r *Reader) parse(line []byte, rec *Record) error {
	rec.reset(r.line)
	n := splitFields(line, &r.cols)
	if n != len(r.format.columns) {
		return r.malformed("has %d fields, the format has %d", n, len(r.format.columns))
	}
	for i, field := range r.format.columns {
		if field == FieldUnknown {
			continue
		}
		v := r.cols[i]
		if len(v) == 1 && v[0] == '-' {
			continue
		}
		rec.text[field] = v
	}

	switch status := rec.text[FieldLogStatus]; {
	case status == nil:
		if r.format.Has(FieldLogStatus) {
			return r.malformed("log-status is absent")
		}
	case string(status) == "OK":
	case string(status) == "NODATA":
		rec.Status = StatusNoData
		return nil
	case string(status) == "SKIPDATA":
		rec.Status = StatusSkipData
		return nil
	default:
		return r.malformed("unknown log-status %q", status)
	}

	var ok bool
	if rec.Src, ok = r.addr(rec, FieldPktSrcAddr, FieldSrcAddr); !ok {
		return r.malformed("bad source address %q", r.addrText(rec, FieldPktSrcAddr, FieldSrcAddr))
	}
	if rec.Dst, ok = r.addr(rec, FieldPktDstAddr, FieldDstAddr); !ok {
		return r.malformed("bad destination address %q", r.addrText(rec, FieldPktDstAddr, FieldDstAddr))
	}
	if rec.Src.Is4() != rec.Dst.Is4() {
		return r.malformed("source %s and destination %s are of different IP versions", rec.Src, rec.Dst)
	}
	var v uint64
	if v, ok = parseUint(rec.text[FieldSrcPort], 65535); !ok {
		return r.malformed("bad srcport %q", rec.text[FieldSrcPort])
	}
	rec.SrcPort = uint16(v)
	if v, ok = parseUint(rec.text[FieldDstPort], 65535); !ok {
		return r.malformed("bad dstport %q", rec.text[FieldDstPort])
	}
	rec.DstPort = uint16(v)
	if v, ok = parseUint(rec.text[FieldProtocol], 255); !ok {
		return r.malformed("bad protocol %q", rec.text[FieldProtocol])
	}
	rec.Protocol = uint8(v)
	if rec.Packets, ok = parseUint(rec.text[FieldPackets], maxUint64); !ok {
		return r.malformed("bad packets %q", rec.text[FieldPackets])
	}
	if rec.Bytes, ok = parseUint(rec.text[FieldBytes], maxUint64); !ok {
		return r.malformed("bad bytes %q", rec.text[FieldBytes])
	}
	// Seconds up to year 9999 keep milliseconds well inside 64 bits.
	const maxSeconds = 253402300799
	if v, ok = parseUint(rec.text[FieldStart], maxSeconds); !ok {
		return r.malformed("bad start %q", rec.text[FieldStart])
	}
	rec.Start = int64(v)
	if v, ok = parseUint(rec.text[FieldEnd], maxSeconds); !ok {
		return r.malformed("bad end %q", rec.text[FieldEnd])
	}
	rec.End = int64(v)
	if rec.End < rec.Start {
		return r.malformed("end %d is before start %d", rec.End, rec.Start)
	}

	switch a := rec.text[FieldAction]; {
	case a == nil:
	case string(a) == "ACCEPT":
		rec.Action = ActionAccept
	case string(a) == "REJECT":
		rec.Action = ActionReject
	default:
		return r.malformed("unknown action %q", a)
	}
	switch d := rec.text[FieldFlowDirection]; {
	case d == nil:
	case string(d) == "ingress":
		rec.Direction = DirectionIngress
	case string(d) == "egress":
		rec.Direction = DirectionEgress
	default:
		return r.malformed("unknown flow-direction %q", d)
	}
	if t := rec.text[FieldTCPFlags]; t != nil {
		if v, ok = parseUint(t, 65535); !ok {
			return r.malformed("bad tcp-flags %q", t)
		}
		rec.TCPFlags, rec.HasTCPFlags = uint16(v), true
	}
	if t := rec.text[FieldTrafficPath]; t != nil {
		if v, ok = parseUint(t, 255); !ok || v == 0 {
			return r.malformed("bad traffic-path %q", t)
		}
		rec.TrafficPath = uint8(v)
	}
	return nil
}

func (r *Reader) malformed(format string, args ...any) error {
	return &LineError{Line: r.line, Reason: fmt.Sprintf(format, args...)}
}

// addr parses the preferred address column, falling back to the interface's.
func (r *Reader) addr(rec *Record, pkt, iface Field) (netip.Addr, bool) {
	text := r.addrText(rec, pkt, iface)
	if text == nil {
		return netip.Addr{}, false
	}
	return parseAddr(text)
}

func (r *Reader) addrText(rec *Record, pkt, iface Field) []byte {
	if r.opts.PreferPacketAddresses && rec.text[pkt] != nil {
		return rec.text[pkt]
	}
	if rec.text[iface] != nil {
		return rec.text[iface]
	}
	// The format may carry only the packet addresses.
	return rec.text[pkt]
}

// splitFields splits line on runs of spaces or tabs into cols and returns the count;
// a count above len(cols) means too many fields.
//
// Lines without tabs (all that VPC Flow Logs write) take a fast path: each field ends
// at the next space, found with bytes.IndexByte (vectorised). A byte-by-byte scan was a
// third of the parse, most of it mispredicted branches at field boundaries.
func splitFields(line []byte, cols *[maxColumns][]byte) int {
	if bytes.IndexByte(line, '\t') >= 0 {
		return splitFieldsSlow(line, cols)
	}
	n := 0
	for {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if len(line) == 0 {
			return n
		}
		end := bytes.IndexByte(line, ' ')
		if end < 0 {
			end = len(line)
		}
		if n < maxColumns {
			cols[n] = line[:end:end]
		}
		n++
		line = line[end:]
	}
}

// splitFieldsSlow is splitFields for lines with tabs.
func splitFieldsSlow(line []byte, cols *[maxColumns][]byte) int {
	n := 0
	start := -1
	for i, c := range line {
		if c > ' ' || c != ' ' && c != '\t' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if n < maxColumns {
				cols[n] = line[start:i]
			}
			n++
			start = -1
		}
	}
	if start >= 0 {
		if n < maxColumns {
			cols[n] = line[start:]
		}
		n++
	}
	return n
}

const maxUint64 = ^uint64(0)

// parseUint parses a decimal without allocating; it rejects signs, empty text and values over max.
// Leading zeros are allowed, as strconv.ParseUint allows them, however many there are.
func parseUint(b []byte, max uint64) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if len(b) > maxSafeDigits {
		return parseUintLong(b, max)
	}
	// Up to 19 digits cannot overflow 64 bits: no overflow test per digit.
	var v uint64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + uint64(d)
	}
	return v, v <= max
}

// maxSafeDigits is the most decimal digits that always fit in a uint64.
const maxSafeDigits = 19

// parseUintLong is parseUint with an overflow test per digit, for long text.
func parseUintLong(b []byte, max uint64) (uint64, bool) {
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (maxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, v <= max
}

// parseAddr parses an IPv4 dotted quad by hand (the common case) and leaves IPv6 to
// netip, viewing the bytes as a string without a copy: netip keeps the text only in
// its error, which is dropped here.
func parseAddr(b []byte) (netip.Addr, bool) {
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	if bytes.IndexByte(b, ':') < 0 || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a, true
}

func parseIPv4(b []byte) (netip.Addr, bool) {
	var out [4]byte
	part, digits := 0, 0
	var v uint
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			out[part] = byte(v)
			part++
			v, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' {
			return netip.Addr{}, false
		}
		if digits > 0 && v == 0 {
			return netip.Addr{}, false // leading zero, as netip rejects it
		}
		v = v*10 + uint(c-'0')
		digits++
		if v > 255 {
			return netip.Addr{}, false
		}
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}
