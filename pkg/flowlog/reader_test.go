package flowlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	// hdrV3 is a custom format with version 3 and 4 fields, not in the default order.
	hdrV3 = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status"
	// hdrV5 adds the version 5 fields.
	hdrV5 = hdrV3 + " region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"

	// v2Line is a default-format record; v2Flow is what it parses to (on line 2).
	v2Line = "2 123456789012 eni-0123456789abcdef0 10.0.1.5 10.0.2.7 49152 443 6 10 840 1796313900 1796313960 ACCEPT OK"
)

var v2Flow = flow{
	Line: 2, Src: netip.MustParseAddr("10.0.1.5"), Dst: netip.MustParseAddr("10.0.2.7"),
	SrcPort: 49152, DstPort: 443, Protocol: 6, Packets: 10, Bytes: 840,
	Start: 1796313900, End: 1796313960, Action: ActionAccept,
}

// v2With returns v2Line with the named columns set to new values.
func v2With(kv ...string) string {
	return lineWith(DefaultHeader, v2Line, kv...)
}

// lineWith returns line (of the format header) with the named columns set to new values.
func lineWith(header, line string, kv ...string) string {
	names, vals := strings.Fields(header), strings.Fields(line)
	for i := 0; i < len(kv); i += 2 {
		n := -1
		for j, name := range names {
			if name == kv[i] {
				n = j
			}
		}
		if n < 0 {
			panic("no column " + kv[i])
		}
		vals[n] = kv[i+1]
	}
	return strings.Join(vals, " ")
}

// with returns a copy of f changed by each fn.
func (f flow) with(fns ...func(*flow)) flow {
	for _, fn := range fns {
		fn(&f)
	}
	return f
}

// at returns v2Flow on line n, changed by each fn.
func at(n int64, fns ...func(*flow)) flow {
	f := v2Flow
	f.Line = n
	return f.with(fns...)
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// lines joins ls into an object, each line ending in a newline.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// step is one result of Next: a record, or a *LineError on line bad.
type step struct {
	rec   flow
	bad   int64
	texts map[Field]string // when set, these columns' text (absent: want nil)
}

func (s step) String() string {
	if s.bad != 0 {
		return fmt.Sprintf("malformed line %d", s.bad)
	}
	return fmt.Sprintf("%+v", s.rec)
}

func rec(f flow) step     { return step{rec: f} }
func bad(line int64) step { return step{bad: line} }

// recText is a record whose text columns are checked too: kv is name, value pairs.
func recText(f flow, kv ...string) step {
	s := step{rec: f, texts: map[Field]string{}}
	for i := 0; i < len(kv); i += 2 {
		s.texts[LookupField(kv[i])] = kv[i+1]
	}
	return s
}

func status(line int64, st LogStatus) flow { return flow{Line: line, Status: st} }

func addrs(src, dst string) func(*flow) {
	return func(f *flow) { f.Src, f.Dst = addr(src), addr(dst) }
}

// readSteps reads r to the end, checking that line numbers strictly increase.
// A terminal error other than io.EOF is returned.
func readSteps(t *testing.T, r *Reader) ([]step, error) {
	t.Helper()
	var out []step
	var rec Record
	var last int64
	for {
		if len(out) > 1e6 {
			t.Fatal("Next does not end")
		}
		err := r.Next(&rec)
		if err == io.EOF {
			return out, nil
		}
		var s step
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				return out, err
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v does not wrap ErrMalformed", err)
			}
			s.bad = le.Line
		} else {
			s.rec = flowOf(&rec)
			s.texts = map[Field]string{}
			for f := FieldVersion; f < numFields; f++ {
				if v := rec.Text(f); v != nil {
					s.texts[f] = string(v)
				}
			}
		}
		line := max(s.bad, s.rec.Line)
		if line <= last {
			t.Errorf("line %d after line %d", line, last)
		}
		last = line
		out = append(out, s)
	}
}

func compareSteps(t *testing.T, got, want []step) {
	t.Helper()
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			t.Errorf("result %d: missing, want %v", i, want[i])
		case i >= len(want):
			t.Errorf("result %d: unexpected %v", i, got[i])
		case got[i].bad != want[i].bad || got[i].rec != want[i].rec:
			t.Errorf("result %d:\n got  %v\n want %v", i, got[i], want[i])
		default:
			for f, w := range want[i].texts {
				if g := got[i].texts[f]; g != w {
					t.Errorf("result %d: Text(%v) = %q, want %q", i, f, g, w)
				}
			}
		}
	}
}

func TestReaderLines(t *testing.T) {
	const (
		ip6a = "2600:1f18:abcd:1::10"
		ip6b = "2600:1f18:abcd:2::20"
	)
	// A version 3 record: srcaddr/dstaddr name the interface, pkt-* the packet behind a NAT.
	v3Line := "3 vpc-0123456789abcdef0 subnet-0123456789abcdef0 i-0123456789abcdef0 eni-0123456789abcdef0 123456789012 IPv4 10.0.1.5 10.0.2.7 49152 443 203.0.113.5 10.0.2.7 6 840 10 1796313900 1796313960 ACCEPT 19 OK"
	v3 := func(kv ...string) string { return lineWith(hdrV3, v3Line, kv...) }
	v3Flow := at(2, func(f *flow) { f.TCPFlags, f.HasTCPFlags = 19, true })
	fromPkt := func(f *flow) { f.Src = addr("203.0.113.5") }
	v5Line := v3Line + " us-east-1 use1-az4 outpost outpost-0123456789abcdef0 - S3 egress 8"
	v5 := func(kv ...string) string { return lineWith(hdrV5, v5Line, kv...) }
	v5Flow := v3Flow.with(func(f *flow) { f.Direction, f.TrafficPath = DirectionEgress, 8 })
	shuffled := "traffic-path log-status end start bytes packets protocol dstport srcport dstaddr srcaddr action flow-direction interface-id"

	tests := []struct {
		name string
		in   string
		opts Options
		want []step
	}{
		{"default header", lines(DefaultHeader, v2Line), Options{}, []step{recText(v2Flow,
			"version", "2", "account-id", "123456789012", "interface-id", "eni-0123456789abcdef0",
			"srcaddr", "10.0.1.5", "bytes", "840", "action", "ACCEPT", "log-status", "OK", "vpc-id", "")}},
		{"no header reads default v2", lines(v2Line, v2With("srcport", "49153")), Options{},
			[]step{rec(at(1)), rec(at(2, func(f *flow) { f.SrcPort = 49153 }))}},
		{"no header, first record NODATA", lines(
			"2 123456789012 eni-0123456789abcdef0 - - - - - - - 1796313900 1796313960 - NODATA", v2Line), Options{},
			[]step{rec(status(1, StatusNoData)), rec(at(2))}},
		{"custom v3 shuffled", lines(hdrV3, v3Line), Options{}, []step{recText(v3Flow,
			"vpc-id", "vpc-0123456789abcdef0", "subnet-id", "subnet-0123456789abcdef0", "instance-id", "i-0123456789abcdef0",
			"type", "IPv4", "pkt-srcaddr", "203.0.113.5", "tcp-flags", "19", "region", "")}},
		{"custom v5", lines(hdrV5, v5Line), Options{}, []step{recText(v5Flow,
			"region", "us-east-1", "az-id", "use1-az4", "sublocation-type", "outpost",
			"sublocation-id", "outpost-0123456789abcdef0", "pkt-src-aws-service", "", "pkt-dst-aws-service", "S3",
			"flow-direction", "egress", "traffic-path", "8")}},
		{"columns in reverse order", lines(shuffled,
			"3 OK 1796313960 1796313900 840 10 6 443 49152 10.0.2.7 10.0.1.5 REJECT ingress eni-0123456789abcdef0"), Options{},
			[]step{rec(at(2, func(f *flow) { f.Action, f.Direction, f.TrafficPath = ActionReject, DirectionIngress, 3 }))}},
		{"unknown columns ignored", lines(
			"version account-id future-field interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status another",
			"2 123456789012 whatever eni-0123456789abcdef0 10.0.1.5 10.0.2.7 49152 443 6 10 840 1796313900 1796313960 ACCEPT OK -"),
			Options{}, []step{recText(v2Flow, "interface-id", "eni-0123456789abcdef0")}},

		{"NODATA all dashes", lines(DefaultHeader,
			"2 123456789012 eni-0123456789abcdef0 - - - - - - - - - - NODATA"), Options{},
			[]step{recText(status(2, StatusNoData), "interface-id", "eni-0123456789abcdef0", "srcaddr", "")}},
		{"NODATA with times", lines(DefaultHeader,
			"2 123456789012 eni-0123456789abcdef0 - - - - - - - 1796313900 1796313960 - NODATA"), Options{},
			[]step{recText(status(2, StatusNoData), "start", "1796313900")}},
		{"SKIPDATA", lines(DefaultHeader,
			"2 123456789012 eni-0123456789abcdef0 - - - - - - - 1796313900 1796313960 - SKIPDATA", v2With()), Options{},
			[]step{rec(status(2, StatusSkipData)), rec(at(3))}},
		{"log-status dash", lines(DefaultHeader, v2With("log-status", "-")), Options{}, []step{bad(2)}},
		{"log-status unknown", lines(DefaultHeader, v2With("log-status", "ok")), Options{}, []step{bad(2)}},
		{"no log-status column", lines("srcaddr dstaddr srcport dstport protocol packets bytes start end",
			"10.0.1.5 10.0.2.7 49152 443 6 10 840 1796313900 1796313960"), Options{},
			[]step{rec(at(2, func(f *flow) { f.Action = ActionUnknown }))}},

		{"IPv6", lines(DefaultHeader, v2With("srcaddr", ip6a, "dstaddr", ip6b)), Options{},
			[]step{rec(at(2, addrs(ip6a, ip6b)))}},
		{"IPv6 full form", lines(DefaultHeader, v2With("srcaddr", "2600:1f18:abcd:1:0:0:0:10", "dstaddr", "::1")), Options{},
			[]step{rec(at(2, addrs(ip6a, "::1")))}},
		{"IPv6 zone", lines(DefaultHeader, v2With("srcaddr", "fe80::1%eth0", "dstaddr", "fe80::2")), Options{}, []step{bad(2)}},
		{"mixed family", lines(DefaultHeader, v2With("srcaddr", ip6a), v2With("dstaddr", ip6b), v2Line), Options{},
			[]step{bad(2), bad(3), rec(at(4))}},
		{"bad addresses", lines(DefaultHeader,
			v2With("srcaddr", "10.0.1"), v2With("srcaddr", "10.0.1.256"), v2With("dstaddr", "10.0.1.5.6"),
			v2With("dstaddr", "example.com"), v2With("srcaddr", "10.0.1.5/32"), v2With("srcaddr", "2600:1f18::1::2")),
			Options{}, []step{bad(2), bad(3), bad(4), bad(5), bad(6), bad(7)}},
		{"leading zero IPv4 octet", lines(DefaultHeader, v2With("srcaddr", "010.0.1.5"), v2With("dstaddr", "10.0.2.07"),
			v2With("srcaddr", "0.0.0.0")), Options{}, []step{bad(2), bad(3), rec(at(4, addrs("0.0.0.0", "10.0.2.7")))}},

		{"pkt addresses preferred", lines(hdrV3, v3Line), Options{PreferPacketAddresses: true},
			[]step{rec(v3Flow.with(fromPkt))}},
		{"pkt addresses not preferred", lines(hdrV3, v3Line), Options{},
			[]step{rec(v3Flow)}},
		{"pkt address dash falls back", lines(hdrV3, v3("pkt-srcaddr", "-", "pkt-dstaddr", "-")),
			Options{PreferPacketAddresses: true}, []step{rec(v3Flow)}},
		{"only pkt address columns", lines("pkt-srcaddr pkt-dstaddr srcport dstport protocol packets bytes start end",
			"10.0.1.5 10.0.2.7 49152 443 6 10 840 1796313900 1796313960"), Options{},
			[]step{rec(at(2, func(f *flow) { f.Action = ActionUnknown }))}},
		{"bad pkt address when preferred", lines(hdrV3, v3("pkt-srcaddr", "203.0.113")),
			Options{PreferPacketAddresses: true}, []step{bad(2)}},
		{"bad pkt address ignored when not preferred", lines(hdrV3, v3("pkt-srcaddr", "203.0.113")),
			Options{}, []step{rec(v3Flow)}},

		{"64-bit counters", lines(DefaultHeader,
			v2With("bytes", "18446744073709551615", "packets", "18446744073709551615"),
			v2With("bytes", "18446744073709551616"), v2With("packets", "18446744073709551616"),
			v2With("bytes", "99999999999999999999999"), v2With("bytes", "5000000000")), Options{},
			[]step{rec(at(2, func(f *flow) { f.Bytes, f.Packets = 1<<64-1, 1<<64-1 })), bad(3), bad(4), bad(5),
				rec(at(6, func(f *flow) { f.Bytes = 5000000000 }))}},
		{"leading zeros in numbers", lines(DefaultHeader, v2With("srcport", "049152", "bytes", "000000000000000000000840")), Options{},
			[]step{rec(at(2))}},
		{"ports", lines(DefaultHeader, v2With("srcport", "65535", "dstport", "0"), v2With("srcport", "65536"),
			v2With("dstport", "65536"), v2With("dstport", "100000")), Options{},
			[]step{rec(at(2, func(f *flow) { f.SrcPort, f.DstPort = 65535, 0 })), bad(3), bad(4), bad(5)}},
		{"protocol", lines(DefaultHeader, v2With("protocol", "255"), v2With("protocol", "256"), v2With("protocol", "17"),
			v2With("protocol", "1"), v2With("protocol", "58")), Options{},
			[]step{rec(at(2, func(f *flow) { f.Protocol = 255 })), bad(3), rec(at(4, func(f *flow) { f.Protocol = 17 })),
				rec(at(5, func(f *flow) { f.Protocol = 1 })), rec(at(6, func(f *flow) { f.Protocol = 58 }))}},
		{"non-numeric counters", lines(DefaultHeader, v2With("packets", "ten"), v2With("bytes", "1e3"),
			v2With("bytes", "-5"), v2With("bytes", "+5"), v2With("packets", "0x10"), v2With("start", "1796313900.5"),
			v2With("end", "17963139ss"), v2With("srcport", "443a"), v2With("bytes", "1_000")), Options{},
			[]step{bad(2), bad(3), bad(4), bad(5), bad(6), bad(7), bad(8), bad(9), bad(10)}},
		{"dash in a required field", lines(DefaultHeader, v2With("srcaddr", "-"), v2With("dstaddr", "-"),
			v2With("srcport", "-"), v2With("dstport", "-"), v2With("protocol", "-"), v2With("packets", "-"),
			v2With("bytes", "-"), v2With("start", "-"), v2With("end", "-")), Options{},
			[]step{bad(2), bad(3), bad(4), bad(5), bad(6), bad(7), bad(8), bad(9), bad(10)}},
		{"wrong field count", lines(DefaultHeader, strings.TrimSuffix(v2Line, " OK"), v2Line+" extra", v2Line), Options{},
			[]step{bad(2), bad(3), rec(at(4))}},
		{"far too many fields", lines(DefaultHeader, strings.Repeat("x ", 100)), Options{}, []step{bad(2)}},
		{"end before start", lines(DefaultHeader, v2With("start", "1796313960", "end", "1796313900"),
			v2With("end", "1796313900")), Options{},
			[]step{bad(2), rec(at(3, func(f *flow) { f.End = f.Start }))}},
		{"times past year 9999", lines(DefaultHeader, v2With("end", "253402300800"), v2With("end", "253402300799")), Options{},
			[]step{bad(2), rec(at(3, func(f *flow) { f.End = 253402300799 }))}},
		{"actions", lines(DefaultHeader, v2Line, v2With("action", "REJECT"), v2With("action", "-"), v2With("action", "DROP"),
			v2With("action", "accept")), Options{},
			[]step{rec(at(2)), rec(at(3, func(f *flow) { f.Action = ActionReject })),
				rec(at(4, func(f *flow) { f.Action = ActionUnknown })), bad(5), bad(6)}},
		{"tcp-flags", lines(hdrV3, v3("tcp-flags", "2"), v3("tcp-flags", "-"), v3("tcp-flags", "0"), v3("tcp-flags", "SYN"),
			v3("tcp-flags", "65536")), Options{},
			[]step{rec(v3Flow.with(func(f *flow) { f.TCPFlags = 2 })), rec(v3Flow.with(func(f *flow) { f.Line, f.TCPFlags, f.HasTCPFlags = 3, 0, false })),
				rec(v3Flow.with(func(f *flow) { f.Line, f.TCPFlags = 4, 0 })), bad(5), bad(6)}},
		{"flow-direction", lines(hdrV5, v5("flow-direction", "ingress"), v5(), v5("flow-direction", "-"),
			v5("flow-direction", "inbound")), Options{},
			[]step{rec(v5Flow.with(func(f *flow) { f.Direction = DirectionIngress })),
				rec(v5Flow.with(func(f *flow) { f.Line = 3 })),
				rec(v5Flow.with(func(f *flow) { f.Line, f.Direction = 4, DirectionUnknown })), bad(5)}},
		{"traffic-path", lines(hdrV5, v5("traffic-path", "1"), v5("traffic-path", "-"), v5("traffic-path", "0"),
			v5("traffic-path", "256"), v5("traffic-path", "x")), Options{},
			[]step{rec(v5Flow.with(func(f *flow) { f.TrafficPath = 1 })),
				rec(v5Flow.with(func(f *flow) { f.Line, f.TrafficPath = 3, 0 })), bad(4), bad(5), bad(6)}},

		{"CRLF", "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\r\n" +
			v2Line + "\r\n" + v2Line + "\r\n", Options{}, []step{rec(at(2)), rec(at(3))}},
		{"CRLF without header", v2Line + "\r\n" + v2Line + "\r\n", Options{}, []step{rec(at(1)), rec(at(2))}},
		{"last line without newline", DefaultHeader + "\n" + v2Line + "\n" + v2Line, Options{},
			[]step{rec(at(2)), rec(at(3))}},
		{"last line without newline, CRLF", DefaultHeader + "\r\n" + v2Line + "\r", Options{}, []step{rec(at(2))}},
		{"blank lines skipped", lines(DefaultHeader, "", v2Line, "", "", "  \t ", "\r", v2Line, ""), Options{},
			[]step{rec(at(3)), rec(at(8))}},
		{"blank lines before the header", lines("", "  ", DefaultHeader, v2Line), Options{}, []step{rec(at(4))}},
		{"tabs and repeated spaces", lines(DefaultHeader, strings.ReplaceAll(strings.Replace(v2Line, " ", "\t", 3), " ", "  ")+" "),
			Options{}, []step{rec(at(2))}},
		{"continues after malformed lines", lines(DefaultHeader, "garbage", v2Line, v2With("srcport", "x"),
			v2With("srcport", "1")), Options{}, []step{bad(2), rec(at(3)), bad(4), rec(at(5, func(f *flow) { f.SrcPort = 1 }))}},
		{"empty object", "", Options{}, nil},
		{"only blank lines", "\n\n \n", Options{}, nil},
		{"header only", DefaultHeader + "\n", Options{}, nil},
		{"header only without newline", hdrV5, Options{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readSteps(t, NewReader(strings.NewReader(tt.in), tt.opts))
			if err != nil {
				t.Fatalf("terminal error %v", err)
			}
			compareSteps(t, got, tt.want)
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		missing []string // each must appear in the error; nil: no error expected
		errText string   // when set, must appear in the error
	}{
		{"default", DefaultHeader, nil, ""},
		{"v3", hdrV3, nil, ""},
		{"v5", hdrV5, nil, ""},
		{"pkt addresses stand in", "pkt-srcaddr pkt-dstaddr srcport dstport protocol packets bytes start end", nil, ""},
		{"missing srcport", strings.Replace(DefaultHeader, " srcport", "", 1), []string{"srcport"}, ""},
		{"missing counters and times", "version srcaddr dstaddr srcport dstport protocol action",
			[]string{"packets", "bytes", "start", "end"}, ""},
		{"missing everything", "version account-id interface-id action log-status",
			[]string{"srcaddr (or pkt-srcaddr)", "dstaddr (or pkt-dstaddr)", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end"}, ""},
		{"missing dstaddr", "srcaddr pkt-srcaddr srcport dstport protocol packets bytes start end",
			[]string{"dstaddr (or pkt-dstaddr)"}, ""},
		{"duplicate column", DefaultHeader + " bytes", nil, `"bytes" twice`},
		{"empty", "  ", nil, "empty header"},
		{"too many columns", DefaultHeader + strings.Repeat(" x", 51), nil, "65 columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFormat(tt.header)
			if tt.missing == nil && tt.errText == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got, want := f.String(), strings.Join(strings.Fields(tt.header), " "); got != want {
					t.Errorf("String() = %q, want %q", got, want)
				}
				if f.Columns() != len(strings.Fields(tt.header)) {
					t.Errorf("Columns() = %d", f.Columns())
				}
				return
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			for _, m := range tt.missing {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not name %q", err, m)
				}
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not say %q", err, tt.errText)
			}
		})
	}
}

func TestFormatUnknownAndHas(t *testing.T) {
	f, err := ParseFormat("version future-a srcaddr dstaddr srcport dstport protocol packets bytes start end future-b")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Unknown(); strings.Join(got, ",") != "future-a,future-b" {
		t.Errorf("Unknown() = %q", got)
	}
	if !f.Has(FieldSrcAddr) || f.Has(FieldLogStatus) || f.Has(FieldUnknown) || f.Has(numFields) || f.Has(255) {
		t.Error("Has is wrong")
	}
	if u := DefaultFormat().Unknown(); u != nil {
		t.Errorf("default format has unknown columns %q", u)
	}
}

func TestFieldNames(t *testing.T) {
	if len(refNames) != int(numFields)-1 {
		t.Errorf("reference table has %d names, the package %d", len(refNames), numFields-1)
	}
	for name, f := range refNames {
		if got := LookupField(name); got != f {
			t.Errorf("LookupField(%q) = %v, want %v", name, got, f)
		}
		if f.String() != name {
			t.Errorf("%d.String() = %q, want %q", f, f.String(), name)
		}
	}
	for _, name := range []string{"", "SRCADDR", "srcaddr ", "${srcaddr}", "field(1)"} {
		if got := LookupField(name); got != FieldUnknown {
			t.Errorf("LookupField(%q) = %v", name, got)
		}
	}
	if s := Field(200).String(); s != "field(200)" {
		t.Errorf("Field(200).String() = %q", s)
	}
	if got := DefaultFormat().String(); got != DefaultHeader {
		t.Errorf("DefaultFormat() = %q", got)
	}
}

func TestReaderHeaderErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"missing fields", lines("version srcaddr dstaddr action", v2Line), "missing srcport, dstport, protocol"},
		{"duplicate", lines(DefaultHeader+" srcaddr", v2Line+" 10.0.0.1"), "twice"},
		{"first line too long", strings.Repeat("a", DefaultMaxLineBytes+1) + "\n" + v2Line + "\n", "first line longer"},
		{"first line of whitespace that is not blank", "\v\n" + v2Line + "\n", "empty header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), Options{})
			var rec Record
			err := r.Next(&rec)
			if !errors.Is(err, ErrFormat) || errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Next = %v, want an ErrFormat saying %q", err, tt.want)
			}
			if err2 := r.Next(&rec); err2 != err {
				t.Errorf("second Next = %v, want the same error", err2)
			}
			if r.Format() != nil {
				t.Errorf("Format() = %v after a bad header", r.Format())
			}
		})
	}
}

// TestReaderLongLines checks the line limit at its edge, and that the reader goes
// on after an over-long line with the right line numbers.
func TestReaderLongLines(t *testing.T) {
	const max = DefaultMaxLineBytes
	pad := func(line string, n int) string { // line padded with spaces to n bytes
		return line + strings.Repeat(" ", n-len(line))
	}
	tests := []struct {
		name string
		in   string
		want []step
	}{
		{"limit with newline", DefaultHeader + "\n" + pad(v2Line, max-1) + "\n" + v2Line + "\n",
			[]step{rec(at(2)), rec(at(3))}},
		{"one over with newline", DefaultHeader + "\n" + pad(v2Line, max) + "\n" + v2Line + "\n",
			[]step{bad(2), rec(at(3))}},
		{"64 KiB + 1 of text", DefaultHeader + "\n" + pad(v2Line, max+1) + "\n" + v2Line + "\n",
			[]step{bad(2), rec(at(3))}},
		{"limit with CRLF", DefaultHeader + "\n" + pad(v2Line, max-2) + "\r\n" + v2Line + "\n",
			[]step{rec(at(2)), rec(at(3))}},
		{"limit without newline at the end", DefaultHeader + "\n" + v2Line + "\n" + pad(v2Line, max),
			[]step{rec(at(2)), rec(at(3))}},
		{"one over without newline at the end", DefaultHeader + "\n" + v2Line + "\n" + pad(v2Line, max+1),
			[]step{rec(at(2)), bad(3)}},
		{"several long lines", DefaultHeader + "\n" + strings.Repeat(strings.Repeat("x", 3*max)+"\n", 3) + "\n" + v2Line + "\n" +
			strings.Repeat("y", 200000), []step{bad(2), bad(3), bad(4), rec(at(6)), bad(7)}},
		{"long line without header", pad(v2Line, max+1) + "\n" + v2Line + "\n", nil}, // terminal: see below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time, too, so the limit does not depend on read sizes.
			for _, src := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in)),
				iotest.DataErrReader(strings.NewReader(tt.in))} {
				got, err := readSteps(t, NewReader(src, Options{}))
				if tt.want == nil {
					if !errors.Is(err, ErrFormat) {
						t.Fatalf("err = %v, want ErrFormat", err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				compareSteps(t, got, tt.want)
			}
		})
	}
}

func TestReaderSmallMaxLineBytes(t *testing.T) {
	in := lines("srcaddr dstaddr srcport dstport protocol packets bytes start end",
		"10.0.1.5 10.0.2.7 1 2 6 1 1 5 5",  // 32 bytes with the newline
		"10.0.1.5 10.0.2.7 1 2 6 1 1 5 55", // 33
		"10.0.1.5 10.0.2.7 1 2 6 1 1 5 5")
	r := NewReader(strings.NewReader(in), Options{MaxLineBytes: 32})
	var one Record
	var got []string
	for {
		err := r.Next(&one)
		if err == io.EOF {
			break
		}
		if err != nil {
			got = append(got, err.Error())
			if errors.Is(err, ErrMalformed) {
				continue
			}
			break
		}
		got = append(got, fmt.Sprint(one.Line))
	}
	// The header is longer than 32 bytes, so the format is unusable.
	if len(got) != 1 || !strings.Contains(got[0], "first line longer than 32 bytes") {
		t.Errorf("got %q", got)
	}

	// Without a header the limit applies to the first record like any other.
	r = NewReader(strings.NewReader(lines(v2Line, v2Line+" ", v2Line)), Options{MaxLineBytes: len(v2Line) + 1})
	steps, err := readSteps(t, r)
	if err != nil {
		t.Fatal(err)
	}
	compareSteps(t, steps, []step{rec(at(1)), bad(2), rec(at(3))})

	in = lines("10.0.1.5 10.0.2.7 1 2 6 1 1 5 5", "10.0.1.5 10.0.2.7 1 2 6 1 1 5 55")
	r = NewReader(strings.NewReader(DefaultHeader+"\n"+in), Options{MaxLineBytes: 1})
	if err := r.Next(&one); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "longer than 16 bytes") {
		t.Errorf("MaxLineBytes 1: %v, want the 16-byte floor named", err)
	}
}

// TestReaderLimitWithBufioReader: a caller's *bufio.Reader with a larger buffer must
// not lift the line limit, and Reset must not reset the caller's reader.
func TestReaderLimitWithBufioReader(t *testing.T) {
	in := DefaultHeader + "\n" + v2Line + strings.Repeat(" ", DefaultMaxLineBytes) + "\n" + v2Line + "\n"
	br := bufio.NewReaderSize(strings.NewReader(in), 4*DefaultMaxLineBytes)
	got, err := readSteps(t, NewReader(br, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	compareSteps(t, got, []step{bad(2), rec(at(3))})
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	src := io.MultiReader(strings.NewReader(lines(DefaultHeader, v2Line)+v2Line[:20]), iotest.ErrReader(boom))
	r := NewReader(src, Options{})
	var rec Record
	if err := r.Next(&rec); err != nil {
		t.Fatal(err)
	}
	err := r.Next(&rec) // the partial line before the error must not be parsed
	var le *LineError
	if !errors.Is(err, boom) || errors.As(err, &le) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("Next = %v, want boom on line 3", err)
	}
	if err2 := r.Next(&rec); err2 != err {
		t.Errorf("error is not sticky: %v", err2)
	}

	// A read error inside an over-long line.
	src = io.MultiReader(strings.NewReader(DefaultHeader+"\n"+strings.Repeat("x", 2*DefaultMaxLineBytes)), iotest.ErrReader(boom))
	r = NewReader(src, Options{})
	if err := r.Next(&rec); !errors.Is(err, boom) {
		t.Fatalf("Next = %v, want boom", err)
	}
}

func TestLineError(t *testing.T) {
	r := NewReader(strings.NewReader(lines(DefaultHeader, v2With("srcport", "70000"))), Options{})
	var rec Record
	err := r.Next(&rec)
	var le *LineError
	if !errors.As(err, &le) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("Next = %v, want a *LineError", err)
	}
	if le.Line != 2 || err.Error() != `line 2: bad srcport "70000"` {
		t.Errorf("LineError = %+v, %q", le, err)
	}
}

func TestReaderReset(t *testing.T) {
	r := NewReader(strings.NewReader(lines(hdrV3, v3LineForReset)), Options{PreferPacketAddresses: true})
	var first Record
	if err := r.Next(&first); err != nil {
		t.Fatal(err)
	}
	if first.Src != addr("203.0.113.5") || r.Format().String() != hdrV3 {
		t.Fatalf("first object: %v, %v", first.Src, r.Format())
	}
	// Stop half way through an object, then read others: each starts afresh.
	objects := []struct {
		in     string
		format string
		want   []step
	}{
		{lines(v2Line, "bad"), DefaultHeader, []step{rec(at(1)), bad(2)}},
		{"", "", nil},
		{lines("oops"), "", nil}, // unusable header: a terminal error, checked below
		{lines(DefaultHeader, "", v2Line), DefaultHeader, []step{rec(at(3))}},
	}
	for i, o := range objects {
		r.Reset(strings.NewReader(o.in))
		if r.Format() != nil || r.LinesRead() != 0 {
			t.Errorf("object %d: Reset left format %v, line %d", i, r.Format(), r.LinesRead())
		}
		got, err := readSteps(t, r)
		if o.in == lines("oops") {
			if !errors.Is(err, ErrFormat) {
				t.Errorf("object %d: err = %v, want ErrFormat", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		compareSteps(t, got, o.want)
		if o.format != "" && r.Format().String() != o.format {
			t.Errorf("object %d: format %v", i, r.Format())
		}
		if want := int64(strings.Count(o.in, "\n")); r.LinesRead() != want {
			t.Errorf("object %d: LinesRead() = %d, want %d", i, r.LinesRead(), want)
		}
	}
}

const v3LineForReset = "3 vpc-0123456789abcdef0 subnet-0123456789abcdef0 i-0123456789abcdef0 eni-0123456789abcdef0 123456789012 IPv4 10.0.1.5 10.0.2.7 49152 443 203.0.113.5 10.0.2.7 6 840 10 1796313900 1796313960 ACCEPT 19 OK"

func TestRecordText(t *testing.T) {
	var r Record
	if r.Text(FieldSrcAddr) != nil || r.Text(FieldUnknown) != nil || r.Text(numFields) != nil || r.Text(255) != nil {
		t.Error("Text of an empty record is not nil")
	}
}
