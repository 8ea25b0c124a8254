package flowlog

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// This file holds an independent line parser, written with strings, strconv and
// netip rather than the Reader's hand-rolled byte code, so the two can check each
// other on the fixtures and under the fuzzer.

// refNames is the header spelling of every field, typed out again from the AWS
// documentation rather than taken from fieldNames.
var refNames = map[string]Field{
	"version": FieldVersion, "account-id": FieldAccountID, "interface-id": FieldInterfaceID,
	"srcaddr": FieldSrcAddr, "dstaddr": FieldDstAddr, "srcport": FieldSrcPort, "dstport": FieldDstPort,
	"protocol": FieldProtocol, "packets": FieldPackets, "bytes": FieldBytes, "start": FieldStart,
	"end": FieldEnd, "action": FieldAction, "log-status": FieldLogStatus,
	"vpc-id": FieldVPCID, "subnet-id": FieldSubnetID, "instance-id": FieldInstanceID,
	"tcp-flags": FieldTCPFlags, "type": FieldType, "pkt-srcaddr": FieldPktSrcAddr, "pkt-dstaddr": FieldPktDstAddr,
	"region": FieldRegion, "az-id": FieldAZID, "sublocation-type": FieldSublocationType,
	"sublocation-id": FieldSublocationID, "pkt-src-aws-service": FieldPktSrcAWSService,
	"pkt-dst-aws-service": FieldPktDstAWSService, "flow-direction": FieldFlowDirection,
	"traffic-path":    FieldTrafficPath,
	"ecs-cluster-arn": FieldECSClusterARN, "ecs-cluster-name": FieldECSClusterName,
	"ecs-container-instance-arn": FieldECSContainerInstanceARN, "ecs-container-instance-id": FieldECSContainerInstanceID,
	"ecs-container-id": FieldECSContainerID, "ecs-second-container-id": FieldECSSecondContainerID,
	"ecs-service-name": FieldECSServiceName, "ecs-task-definition-arn": FieldECSTaskDefinitionARN,
	"ecs-task-arn": FieldECSTaskARN, "ecs-task-id": FieldECSTaskID, "reject-reason": FieldRejectReason,
}

// flow is the exported part of a Record, comparable with ==.
type flow struct {
	Line             int64
	Status           LogStatus
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Protocol         uint8
	Packets, Bytes   uint64
	Start, End       int64
	Action           Action
	Direction        Direction
	TCPFlags         uint16
	HasTCPFlags      bool
	TrafficPath      uint8
}

func flowOf(r *Record) flow {
	return flow{
		Line: r.Line, Status: r.Status, Src: r.Src, Dst: r.Dst, SrcPort: r.SrcPort, DstPort: r.DstPort,
		Protocol: r.Protocol, Packets: r.Packets, Bytes: r.Bytes, Start: r.Start, End: r.End,
		Action: r.Action, Direction: r.Direction, TCPFlags: r.TCPFlags, HasTCPFlags: r.HasTCPFlags,
		TrafficPath: r.TrafficPath,
	}
}

// refColumns reads a header with the reference name table.
func refColumns(header string) []Field {
	var cols []Field
	for _, name := range strings.Fields(header) {
		cols = append(cols, refNames[name]) // FieldUnknown (0) when absent
	}
	return cols
}

// refSplit splits a record on the separators the Reader documents: spaces and tabs.
// (strings.Fields would also split on \v, \f, \r and Unicode spaces, which AWS never
// writes; the fixtures hold none, the fuzzer does.)
func refSplit(line string) []string {
	return strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
}

// refParse parses one record line. ok is false when the line is malformed.
// texts holds the value of every known column that is not "-".
func refParse(cols []Field, line string, lineNo int64, preferPkt bool) (f flow, texts map[Field]string, ok bool) {
	vals := refSplit(line)
	if len(vals) != len(cols) {
		return flow{}, nil, false
	}
	texts = map[Field]string{}
	has := map[Field]bool{}
	for i, c := range cols {
		if c == FieldUnknown {
			continue
		}
		has[c] = true
		if vals[i] != "-" {
			texts[c] = vals[i]
		}
	}
	f.Line = lineNo
	switch st, present := texts[FieldLogStatus]; {
	case !present && has[FieldLogStatus]:
		return flow{}, nil, false
	case !present, st == "OK":
	case st == "NODATA":
		f.Status = StatusNoData
		return f, texts, true
	case st == "SKIPDATA":
		f.Status = StatusSkipData
		return f, texts, true
	default:
		return flow{}, nil, false
	}

	pick := func(pkt, iface Field) (string, bool) {
		if v, ok := texts[pkt]; ok && preferPkt {
			return v, true
		}
		if v, ok := texts[iface]; ok {
			return v, true
		}
		v, ok := texts[pkt]
		return v, ok
	}
	addr := func(pkt, iface Field) (netip.Addr, bool) {
		s, ok := pick(pkt, iface)
		if !ok {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	num := func(field Field, bits int, max uint64) (uint64, bool) {
		s, ok := texts[field]
		if !ok {
			return 0, false
		}
		v, err := strconv.ParseUint(s, 10, bits)
		if err != nil || v > max {
			return 0, false
		}
		return v, true
	}
	var good bool
	if f.Src, good = addr(FieldPktSrcAddr, FieldSrcAddr); !good {
		return flow{}, nil, false
	}
	if f.Dst, good = addr(FieldPktDstAddr, FieldDstAddr); !good {
		return flow{}, nil, false
	}
	if f.Src.Is4() != f.Dst.Is4() {
		return flow{}, nil, false
	}
	const maxSeconds = 253402300799 // 9999-12-31T23:59:59Z
	var sp, dp, proto, start, end uint64
	oks := [7]bool{}
	sp, oks[0] = num(FieldSrcPort, 16, 1<<16-1)
	dp, oks[1] = num(FieldDstPort, 16, 1<<16-1)
	proto, oks[2] = num(FieldProtocol, 8, 1<<8-1)
	f.Packets, oks[3] = num(FieldPackets, 64, 1<<64-1)
	f.Bytes, oks[4] = num(FieldBytes, 64, 1<<64-1)
	start, oks[5] = num(FieldStart, 64, maxSeconds)
	end, oks[6] = num(FieldEnd, 64, maxSeconds)
	for _, o := range oks {
		if !o {
			return flow{}, nil, false
		}
	}
	f.SrcPort, f.DstPort, f.Protocol = uint16(sp), uint16(dp), uint8(proto)
	f.Start, f.End = int64(start), int64(end)
	if f.End < f.Start {
		return flow{}, nil, false
	}
	switch a, present := texts[FieldAction]; {
	case !present:
	case a == "ACCEPT":
		f.Action = ActionAccept
	case a == "REJECT":
		f.Action = ActionReject
	default:
		return flow{}, nil, false
	}
	switch d, present := texts[FieldFlowDirection]; {
	case !present:
	case d == "ingress":
		f.Direction = DirectionIngress
	case d == "egress":
		f.Direction = DirectionEgress
	default:
		return flow{}, nil, false
	}
	if _, present := texts[FieldTCPFlags]; present {
		v, good := num(FieldTCPFlags, 16, 1<<16-1)
		if !good {
			return flow{}, nil, false
		}
		f.TCPFlags, f.HasTCPFlags = uint16(v), true
	}
	if _, present := texts[FieldTrafficPath]; present {
		v, good := num(FieldTrafficPath, 8, 1<<8-1)
		if !good || v == 0 {
			return flow{}, nil, false
		}
		f.TrafficPath = uint8(v)
	}
	return f, texts, true
}

// checkAgainstRef compares one Reader result for a line with the reference parser:
// a record must match it field for field (text columns included), a *LineError must
// be a line the reference rejects too.
func checkAgainstRef(t testing.TB, cols []Field, line string, lineNo int64, preferPkt bool, rec *Record, malformed bool) {
	t.Helper()
	want, texts, ok := refParse(cols, line, lineNo, preferPkt)
	switch {
	case malformed && ok:
		t.Errorf("line %d: Reader says malformed, reference parses it as %+v: %q", lineNo, want, line)
		return
	case malformed:
		return
	case !ok:
		t.Errorf("line %d: Reader returns %+v, reference says malformed: %q", lineNo, flowOf(rec), line)
		return
	}
	if got := flowOf(rec); got != want {
		t.Errorf("line %d:\n got  %+v\n want %+v", lineNo, got, want)
	}
	for field := FieldVersion; field < numFields; field++ {
		got, want := rec.Text(field), texts[field]
		if string(got) != want || (got == nil) != (want == "") {
			t.Errorf("line %d: Text(%v) = %q, want %q", lineNo, field, got, want)
		}
	}
}
