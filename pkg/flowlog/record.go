package flowlog

import "net/netip"

// Action is the security group / network ACL verdict of a flow.
type Action uint8

// Actions; ActionUnknown when the format has no action column or the value is "-".
const (
	ActionUnknown Action = iota
	ActionAccept
	ActionReject
)

// LogStatus is the log-status column.
type LogStatus uint8

// Log statuses. Records without a log-status column are StatusOK.
const (
	StatusOK LogStatus = iota
	StatusNoData
	StatusSkipData
)

// Direction is the flow-direction column.
type Direction uint8

// Directions; DirectionUnknown when the format has no flow-direction column or the value is "-".
const (
	DirectionUnknown Direction = iota
	DirectionIngress
	DirectionEgress
)

// Record is one parsed flow log line. Its text fields point into the reader's
// buffer and are valid only until the next call to Next: copy what you keep.
type Record struct {
	Line int64 // 1-based line number in the object

	Status LogStatus
	// Src and Dst are the flow's addresses: pkt-srcaddr/pkt-dstaddr when
	// Options.PreferPacketAddresses is set and the column has a value, else srcaddr/dstaddr.
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Protocol         uint8
	Packets, Bytes   uint64
	Start, End       int64 // Unix seconds

	Action    Action
	Direction Direction

	TCPFlags    uint16
	HasTCPFlags bool
	TrafficPath uint8 // 0 when absent

	text [numFields][]byte
}

// Text returns the raw text of field, or nil when the format has no such column
// or the record has "-" in it.
func (r *Record) Text(field Field) []byte {
	if field >= numFields {
		return nil
	}
	return r.text[field]
}

func (r *Record) reset(line int64) {
	*r = Record{Line: line}
}
