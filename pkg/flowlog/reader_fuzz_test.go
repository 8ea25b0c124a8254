package flowlog

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// FuzzReader reads arbitrary bytes to the end and checks the Reader's promises: no
// panic, an end, strictly increasing line numbers, sane OK records. It also replays
// the object line by line through the reference parser, which must agree on every line.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false, uint16(0))
		f.Add(b, true, uint16(120))
	}
	f.Add([]byte(""), false, uint16(0))
	f.Add([]byte("\n\n"+v2Line+"\r\n"+v2Line), true, uint16(0))
	f.Add([]byte(lines(hdrV5, v2Line)), true, uint16(17))
	f.Fuzz(func(t *testing.T, data []byte, prefer bool, maxLine uint16) {
		opts := Options{PreferPacketAddresses: prefer, MaxLineBytes: int(maxLine)}
		r := NewReader(bytes.NewReader(data), opts)
		maxBytes := r.opts.MaxLineBytes
		model := newLineModel(data, maxBytes)
		var rec Record
		var last int64
		for calls := 0; ; calls++ {
			if calls > bytes.Count(data, []byte("\n"))+2 {
				t.Fatalf("Next does not end: %d calls", calls)
			}
			err := r.Next(&rec)
			if err == io.EOF {
				if r.Format() != nil {
					model.consumeHeader(t, r, r.LinesRead()+1)
				}
				if n, ok := model.nextNonBlank(); ok {
					t.Fatalf("io.EOF with line %d still to read", n)
				}
				return
			}
			var le *LineError
			switch {
			case errors.As(err, &le):
				if le.Line <= last {
					t.Fatalf("line %d after line %d", le.Line, last)
				}
				last = le.Line
				model.check(t, r, le.Line, prefer, nil)
			case err != nil:
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("unexpected error %v on bytes.Reader", err)
				}
				if r.Format() != nil || last != 0 {
					t.Fatalf("format error %v after the header", err)
				}
				model.checkHeaderError(t, r.LinesRead())
				if r.Next(&rec) != err {
					t.Fatal("format error is not sticky")
				}
				return
			default:
				if rec.Line <= last {
					t.Fatalf("line %d after line %d", rec.Line, last)
				}
				last = rec.Line
				if rec.Status == StatusOK {
					if !rec.Src.IsValid() || !rec.Dst.IsValid() || rec.Src.Is4() != rec.Dst.Is4() || rec.Src.Zone() != "" || rec.Dst.Zone() != "" {
						t.Fatalf("line %d: bad addresses %v %v", rec.Line, rec.Src, rec.Dst)
					}
					if rec.End < rec.Start {
						t.Fatalf("line %d: end %d before start %d", rec.Line, rec.End, rec.Start)
					}
				}
				model.check(t, r, rec.Line, prefer, &rec)
			}
		}
	})
}

// lineModel splits an object into lines independently of the Reader and walks them
// as the Reader returns results, so that skipped lines can be checked too.
type lineModel struct {
	raw     []string // each line with its newline, if it has one
	max     int
	next    int // index of the next line not yet accounted for
	header  bool
	noHdr   bool // the first non-blank line was data
	columns []Field
}

func newLineModel(data []byte, max int) *lineModel {
	s := string(data)
	var raw []string
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			raw = append(raw, s)
			break
		}
		raw = append(raw, s[:i+1])
		s = s[i+1:]
	}
	return &lineModel{raw: raw, max: max}
}

func (m *lineModel) content(i int) string { return strings.TrimRight(m.raw[i], "\r\n") }
func (m *lineModel) tooLong(i int) bool   { return len(m.raw[i]) > m.max }
func (m *lineModel) blank(i int) bool     { return strings.Trim(m.content(i), " \t") == "" }

// nextNonBlank returns the number of the next line that should produce a result.
func (m *lineModel) nextNonBlank() (int64, bool) {
	for i := m.next; i < len(m.raw); i++ {
		if m.tooLong(i) || !m.blank(i) {
			return int64(i + 1), true
		}
	}
	return 0, false
}

// consumeHeader accounts for the blank lines and the header (if any) before line,
// the first line the Reader returned a result for.
func (m *lineModel) consumeHeader(t *testing.T, r *Reader, line int64) {
	t.Helper()
	if m.header {
		return
	}
	m.header = true
	m.columns = refColumns(r.Format().String())
	for i := m.next; i < int(line) && i < len(m.raw); i++ {
		if m.tooLong(i) {
			t.Fatalf("line %d is too long but was taken for the header", i+1)
		}
		if m.blank(i) {
			continue
		}
		c := strings.TrimLeftFunc(m.content(i), unicode.IsSpace)
		m.noHdr = c != "" && c[0] >= '0' && c[0] <= '9'
		if m.noHdr {
			if r.Format() != DefaultFormat() {
				t.Fatalf("line %d %q is data, format is %q", i+1, m.content(i), r.Format())
			}
			m.next = i
			return
		}
		if strings.Join(strings.Fields(m.content(i)), " ") != r.Format().String() {
			t.Fatalf("header %q read as %q", m.content(i), r.Format())
		}
		m.next = i + 1
		return
	}
	t.Fatalf("no header line before line %d", line)
}

// check accounts for the lines up to line, which the Reader returned (rec nil: as malformed).
func (m *lineModel) check(t *testing.T, r *Reader, line int64, prefer bool, rec *Record) {
	t.Helper()
	m.consumeHeader(t, r, line)
	want, ok := m.nextNonBlank()
	if !ok || want != line {
		t.Fatalf("result for line %d, want line %d (%v)", line, want, ok)
	}
	i := int(line - 1)
	m.next = i + 1
	if m.tooLong(i) {
		if rec != nil {
			t.Fatalf("line %d of %d bytes (limit %d) was parsed", line, len(m.raw[i]), m.max)
		}
		return
	}
	checkAgainstRef(t, m.columns, m.content(i), line, prefer, rec, rec == nil)
}

// checkHeaderError checks that the first line the Reader looked at is one it cannot use.
func (m *lineModel) checkHeaderError(t *testing.T, lineNo int64) {
	t.Helper()
	i := int(lineNo - 1)
	if i < 0 || i >= len(m.raw) {
		t.Fatalf("format error on line %d of %d", lineNo, len(m.raw))
	}
	for j := 0; j < i; j++ {
		if !m.blank(j) || m.tooLong(j) {
			t.Fatalf("format error on line %d, but line %d came first", lineNo, j+1)
		}
	}
	if m.tooLong(i) {
		return
	}
	if _, err := ParseFormat(m.content(i)); err == nil {
		t.Fatalf("format error on line %d, but its header %q parses", lineNo, m.content(i))
	}
}

// FuzzParseAddr: parseAddr must agree with netip.ParseAddr wherever netip succeeds
// without a zone, and accept nothing netip rejects.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"10.0.1.5", "0.0.0.0", "255.255.255.255", "256.0.0.1", "010.0.0.1", "1.2.3", "1.2.3.4.5",
		"1..2.3", "2600:1f18:abcd:1::10", "::", "::1", "::ffff:10.0.0.1", "fe80::1%eth0", "1.2.3.4%x", "2600:1f18::1::2",
		"", "-", ".", "1.2.3.", "FFFF::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "::1.2.3.04"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := string(b)
		got, ok := parseAddr(b)
		want, err := netip.ParseAddr(in)
		switch {
		case err != nil && ok:
			t.Fatalf("parseAddr(%q) = %v, netip rejects it: %v", in, got, err)
		case err == nil && want.Zone() == "" && (!ok || got != want):
			t.Fatalf("parseAddr(%q) = %v, %v; netip: %v", in, got, ok, want)
		case err == nil && want.Zone() != "" && ok:
			t.Fatalf("parseAddr(%q) accepts a zone: %v", in, got)
		}
		if string(b) != in {
			t.Fatal("parseAddr changed its input")
		}
	})
}
