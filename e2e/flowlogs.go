package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The flow log objects are generated here, deterministically, the way VPC Flow Logs
// writes them: a header line, then space-separated records, gzip-compressed. The
// generator knows what each valid line must become at the collector; it does not use
// the product's parser.

// DefaultFields is the version 2 default format.
const DefaultFields = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// CustomFields is a custom format with fields of versions 3 to 5 (the ones the product
// maps to IPFIX elements), in a different order from the default.
const CustomFields = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status region az-id flow-direction traffic-path pkt-src-aws-service pkt-dst-aws-service"

// Want is what the collector must show for one valid flow log line.
type Want struct {
	Src, Dst         string
	SrcPort, DstPort uint64
	Proto            uint64
	Packets, Bytes   uint64
	StartNs, EndNs   uint64
	Fwd              uint64 // forwardingStatus: 64 ACCEPT, 129 REJECT
	TCPFlags         uint64 // 0 when absent
	Dir              uint64 // flowDirection: 0 ingress (or absent), 1 egress
	If               string // interfaceName; "" when the format has no interface-id
	AWS              map[string]string
}

// Key renders every field, so two Wants are equal exactly when all fields are.
func (w Want) Key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s>%s %d>%d p%d pk%d b%d s%d e%d f%d t%d d%d if=%q", w.Src, w.Dst, w.SrcPort, w.DstPort, w.Proto,
		w.Packets, w.Bytes, w.StartNs, w.EndNs, w.Fwd, w.TCPFlags, w.Dir, w.If)
	for _, k := range awsFields {
		v := w.AWS[k]
		if v == "" && k == "aws_traffic_path" {
			v = "0"
		}
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// awsFields are the enterprise elements 1..11 under the test PEN, as the collector names them.
var awsFields = []string{"aws_account_id", "aws_vpc_id", "aws_subnet_id", "aws_instance_id", "aws_region", "aws_az_id",
	"aws_action", "aws_log_status", "aws_traffic_path", "aws_pkt_src_aws_service", "aws_pkt_dst_aws_service"}

// Object is one generated flow log object.
type Object struct {
	Key       string
	Text      []byte // uncompressed
	Gz        []byte
	Want      []Want // valid records, in order
	Records   int    // data lines: valid + NODATA + SKIPDATA + malformed
	NoData    int
	SkipData  int
	Malformed int
}

// GenSpec says what to put in an object.
type GenSpec struct {
	ID        int  // makes every record unique: bytes = ID*1e7 + n
	Custom    bool // CustomFields instead of DefaultFields
	NoHeader  bool // a file without header line (read as the default format)
	Valid     int
	IPv6Every int // every Nth valid record is IPv6 (0: none)
	NoData    int
	SkipData  int
	Malformed int // cycles through the malformed kinds below
	PEN       bool
	BaseTime  int64 // unix seconds of the first flow
}

var malformedKinds = []func(good []string) []string{
	func(f []string) []string { return f[:len(f)-1] },       // a field short
	func(f []string) []string { return append(f, "extra") }, // a field too many
	func(f []string) []string { return set(f, "10.0.0", "srcaddr", "pkt-srcaddr") },
	func(f []string) []string { return set(f, "70000", "dstport") },
	func(f []string) []string { return set(f, "MAYBE", "action") },
	func(f []string) []string { return set(f, "2001:db8::9", "dstaddr", "pkt-dstaddr") }, // v4 src, v6 dst
	func(f []string) []string { return set(f, "WHAT", "log-status") },
}

// fieldIndex is set per format while generating (the malformed kinds look up columns).
var fieldIndex map[string]int

// set returns a copy of f with the named columns (those the format has) set to v.
func set(f []string, v string, names ...string) []string {
	g := clone(f)
	for _, n := range names {
		if i, ok := fieldIndex[n]; ok {
			g[i] = v
		}
	}
	return g
}

func clone(f []string) []string { return append([]string(nil), f...) }

// Generate builds an object. The same spec always gives the same bytes.
func Generate(spec GenSpec) Object {
	r := rand.New(rand.NewPCG(uint64(spec.ID), 0x5eed))
	header := DefaultFields
	if spec.Custom {
		header = CustomFields
	}
	cols := strings.Fields(header)
	fieldIndex = map[string]int{}
	for i, c := range cols {
		fieldIndex[c] = i
	}
	base := spec.BaseTime
	if base == 0 {
		base = 1796313600 // 2026-12-03T16:00:00Z
	}
	var o Object
	var lines []string
	if !spec.NoHeader {
		lines = append(lines, header)
	}
	account := "123456789012"
	eni := fmt.Sprintf("eni-0a1b2c3d4e5f%05d", spec.ID)
	var valid [][]string
	for n := range spec.Valid {
		v6 := spec.IPv6Every > 0 && n%spec.IPv6Every == spec.IPv6Every-1
		var src, dst string
		if v6 {
			src = fmt.Sprintf("2001:db8:%x::%x", spec.ID, n+1)
			dst = fmt.Sprintf("2600:1f18:%x::%x", r.IntN(0xffff)+1, r.IntN(0xffff)+1)
		} else {
			src = fmt.Sprintf("10.%d.%d.%d", spec.ID%250, (n/250)%250, n%250+1)
			dst = fmt.Sprintf("172.%d.%d.%d", 16+r.IntN(16), r.IntN(256), r.IntN(254)+1)
		}
		protos := []int{6, 6, 6, 17, 17, 1}
		proto := protos[r.IntN(len(protos))]
		sport, dport := r.IntN(65535)+1, []int{443, 80, 53, 22, 3306, 8080}[r.IntN(6)]
		if proto == 1 {
			sport, dport = 0, 0
		}
		packets := r.IntN(5000) + 1
		bytesN := uint64(spec.ID)*10_000_000 + uint64(n) + 1
		start := base + int64(n%600)
		end := start + int64(r.IntN(60))
		action := "ACCEPT"
		if r.IntN(5) == 0 {
			action = "REJECT"
		}
		w := Want{Src: src, Dst: dst, SrcPort: uint64(sport), DstPort: uint64(dport), Proto: uint64(proto),
			Packets: uint64(packets), Bytes: bytesN, StartNs: uint64(start) * 1e9, EndNs: uint64(end) * 1e9,
			Fwd: map[string]uint64{"ACCEPT": 64, "REJECT": 129}[action], If: eni}
		vals := map[string]string{
			"version": "2", "account-id": account, "interface-id": eni, "srcaddr": src, "dstaddr": dst,
			"srcport": strconv.Itoa(sport), "dstport": strconv.Itoa(dport), "protocol": strconv.Itoa(proto),
			"packets": strconv.Itoa(packets), "bytes": strconv.FormatUint(bytesN, 10),
			"start": strconv.FormatInt(start, 10), "end": strconv.FormatInt(end, 10), "action": action, "log-status": "OK",
		}
		if spec.PEN {
			w.AWS = map[string]string{"aws_account_id": account, "aws_action": action, "aws_log_status": "OK"}
		}
		if spec.Custom {
			vals["version"] = "5"
			vals["vpc-id"] = fmt.Sprintf("vpc-0123456789abc%04d", spec.ID)
			vals["subnet-id"] = fmt.Sprintf("subnet-0123456789ab%05d", spec.ID)
			vals["instance-id"] = "-"
			if r.IntN(3) > 0 {
				vals["instance-id"] = fmt.Sprintf("i-0123456789a%06d", r.IntN(1_000_000))
			}
			vals["type"] = map[bool]string{true: "IPv6", false: "IPv4"}[v6]
			// The packet addresses differ from the interface's for some flows (NAT);
			// the product prefers them, so the collector must show them.
			vals["pkt-srcaddr"], vals["pkt-dstaddr"] = src, dst
			if !v6 && r.IntN(4) == 0 {
				vals["srcaddr"] = fmt.Sprintf("10.255.%d.%d", r.IntN(256), r.IntN(254)+1)
			}
			tcp := "-"
			if proto == 6 {
				flags := []int{2, 18, 19, 3, 1, 4, 0}[r.IntN(7)]
				tcp = strconv.Itoa(flags)
				w.TCPFlags = uint64(flags)
			}
			vals["tcp-flags"] = tcp
			vals["region"] = "us-east-1"
			vals["az-id"] = fmt.Sprintf("use1-az%d", r.IntN(6)+1)
			dir := []string{"ingress", "egress"}[r.IntN(2)]
			vals["flow-direction"] = dir
			if dir == "egress" {
				w.Dir = 1
			}
			tp := "-"
			var tpN uint64
			if dir == "egress" && r.IntN(2) == 0 {
				tpN = uint64(r.IntN(8) + 1)
				tp = strconv.FormatUint(tpN, 10)
			}
			vals["traffic-path"] = tp
			vals["pkt-src-aws-service"], vals["pkt-dst-aws-service"] = "-", "-"
			if r.IntN(4) == 0 {
				vals["pkt-dst-aws-service"] = []string{"S3", "DYNAMODB", "EC2", "AMAZON"}[r.IntN(4)]
			}
			if spec.PEN {
				aws := w.AWS
				aws["aws_vpc_id"] = vals["vpc-id"]
				aws["aws_subnet_id"] = vals["subnet-id"]
				aws["aws_instance_id"] = dash(vals["instance-id"])
				aws["aws_region"] = vals["region"]
				aws["aws_az_id"] = vals["az-id"]
				aws["aws_traffic_path"] = strconv.FormatUint(tpN, 10)
				aws["aws_pkt_src_aws_service"] = dash(vals["pkt-src-aws-service"])
				aws["aws_pkt_dst_aws_service"] = dash(vals["pkt-dst-aws-service"])
			}
		}
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = vals[c]
		}
		valid = append(valid, line)
		o.Want = append(o.Want, w)
	}
	// Interleave: specials go between valid lines at deterministic places.
	var specials [][]string
	for range spec.NoData {
		specials = append(specials, statusLine(cols, account, eni, base, "NODATA"))
	}
	for range spec.SkipData {
		specials = append(specials, statusLine(cols, account, eni, base, "SKIPDATA"))
	}
	for i := range spec.Malformed {
		good := valid[i%max(1, len(valid))]
		if len(valid) == 0 {
			good = statusLine(cols, account, eni, base, "OK")
		}
		specials = append(specials, malformedKinds[i%len(malformedKinds)](good))
	}
	every := 1
	if len(specials) > 0 {
		every = max(1, len(valid)/(len(specials)+1))
	}
	si := 0
	for i, v := range valid {
		lines = append(lines, strings.Join(v, " "))
		if (i+1)%every == 0 && si < len(specials) {
			lines = append(lines, strings.Join(specials[si], " "))
			si++
		}
	}
	for ; si < len(specials); si++ {
		lines = append(lines, strings.Join(specials[si], " "))
	}
	o.NoData, o.SkipData, o.Malformed = spec.NoData, spec.SkipData, spec.Malformed
	o.Records = spec.Valid + spec.NoData + spec.SkipData + spec.Malformed
	o.Text = []byte(strings.Join(lines, "\n") + "\n")
	o.Gz = gz(o.Text)
	return o
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// statusLine is a NODATA or SKIPDATA record: addresses, ports and counts are "-".
func statusLine(cols []string, account, eni string, base int64, status string) []string {
	line := make([]string, len(cols))
	for i, c := range cols {
		switch c {
		case "version":
			line[i] = "2"
		case "account-id":
			line[i] = account
		case "interface-id":
			line[i] = eni
		case "start":
			line[i] = strconv.FormatInt(base, 10)
		case "end":
			line[i] = strconv.FormatInt(base+60, 10)
		case "log-status":
			line[i] = status
		default:
			line[i] = "-"
		}
	}
	return line
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// flowLogKey is the key VPC Flow Logs writes an object under.
func flowLogKey(id int, hive bool) string {
	name := fmt.Sprintf("123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20261203T16%02dZ_%08x.log.gz", id%60, id*2654435761%(1<<32))
	if hive {
		return "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=12/day=03/hour=16/" + name
	}
	return "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/03/" + name
}
