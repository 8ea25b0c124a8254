package flowlog

import (
	"fmt"
	"strings"
)

// Field names one column of a flow log record, as spelled in the header line.
type Field uint8

// The fields of flow log versions 2 to 8, in the order of the AWS documentation.
const (
	FieldUnknown Field = iota
	FieldVersion
	FieldAccountID
	FieldInterfaceID
	FieldSrcAddr
	FieldDstAddr
	FieldSrcPort
	FieldDstPort
	FieldProtocol
	FieldPackets
	FieldBytes
	FieldStart
	FieldEnd
	FieldAction
	FieldLogStatus
	FieldVPCID
	FieldSubnetID
	FieldInstanceID
	FieldTCPFlags
	FieldType
	FieldPktSrcAddr
	FieldPktDstAddr
	FieldRegion
	FieldAZID
	FieldSublocationType
	FieldSublocationID
	FieldPktSrcAWSService
	FieldPktDstAWSService
	FieldFlowDirection
	FieldTrafficPath
	FieldECSClusterARN
	FieldECSClusterName
	FieldECSContainerInstanceARN
	FieldECSContainerInstanceID
	FieldECSContainerID
	FieldECSSecondContainerID
	FieldECSServiceName
	FieldECSTaskDefinitionARN
	FieldECSTaskARN
	FieldECSTaskID
	FieldRejectReason
	numFields
)

var fieldNames = [numFields]string{
	FieldUnknown:                 "",
	FieldVersion:                 "version",
	FieldAccountID:               "account-id",
	FieldInterfaceID:             "interface-id",
	FieldSrcAddr:                 "srcaddr",
	FieldDstAddr:                 "dstaddr",
	FieldSrcPort:                 "srcport",
	FieldDstPort:                 "dstport",
	FieldProtocol:                "protocol",
	FieldPackets:                 "packets",
	FieldBytes:                   "bytes",
	FieldStart:                   "start",
	FieldEnd:                     "end",
	FieldAction:                  "action",
	FieldLogStatus:               "log-status",
	FieldVPCID:                   "vpc-id",
	FieldSubnetID:                "subnet-id",
	FieldInstanceID:              "instance-id",
	FieldTCPFlags:                "tcp-flags",
	FieldType:                    "type",
	FieldPktSrcAddr:              "pkt-srcaddr",
	FieldPktDstAddr:              "pkt-dstaddr",
	FieldRegion:                  "region",
	FieldAZID:                    "az-id",
	FieldSublocationType:         "sublocation-type",
	FieldSublocationID:           "sublocation-id",
	FieldPktSrcAWSService:        "pkt-src-aws-service",
	FieldPktDstAWSService:        "pkt-dst-aws-service",
	FieldFlowDirection:           "flow-direction",
	FieldTrafficPath:             "traffic-path",
	FieldECSClusterARN:           "ecs-cluster-arn",
	FieldECSClusterName:          "ecs-cluster-name",
	FieldECSContainerInstanceARN: "ecs-container-instance-arn",
	FieldECSContainerInstanceID:  "ecs-container-instance-id",
	FieldECSContainerID:          "ecs-container-id",
	FieldECSSecondContainerID:    "ecs-second-container-id",
	FieldECSServiceName:          "ecs-service-name",
	FieldECSTaskDefinitionARN:    "ecs-task-definition-arn",
	FieldECSTaskARN:              "ecs-task-arn",
	FieldECSTaskID:               "ecs-task-id",
	FieldRejectReason:            "reject-reason",
}

// String returns the header spelling of f.
func (f Field) String() string {
	if f < numFields && f != FieldUnknown {
		return fieldNames[f]
	}
	return fmt.Sprintf("field(%d)", uint8(f))
}

// LookupField returns the field spelled name in a header, or FieldUnknown.
func LookupField(name string) Field {
	for f := FieldVersion; f < numFields; f++ {
		if fieldNames[f] == name {
			return f
		}
	}
	return FieldUnknown
}

// DefaultHeader is the version 2 default format, the one a file without a header line is read as.
const DefaultHeader = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// maxColumns bounds a format; the documented fields number fewer than 45.
const maxColumns = 64

// requiredFields are what a flow needs. pkt-srcaddr/pkt-dstaddr may stand in for
// srcaddr/dstaddr, so addresses are checked separately.
var requiredFields = []Field{FieldSrcPort, FieldDstPort, FieldProtocol, FieldPackets, FieldBytes, FieldStart, FieldEnd}

// Format is the column layout of one flow log object, read from its header line.
type Format struct {
	columns []Field  // field of each column; FieldUnknown for names this version does not know
	names   []string // header spelling of each column
	column  [numFields]int8
}

// ParseFormat reads a header line (the field names separated by spaces).
// Unknown names are kept as ignored columns, since AWS adds fields over time;
// a format without the fields a flow needs is an error that names them.
func ParseFormat(header string) (*Format, error) {
	names := strings.Fields(header)
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: empty header", ErrFormat)
	}
	if len(names) > maxColumns {
		return nil, fmt.Errorf("%w: header has %d columns, at most %d are supported", ErrFormat, len(names), maxColumns)
	}
	f := &Format{columns: make([]Field, len(names)), names: names}
	for i := range f.column {
		f.column[i] = -1
	}
	for i, name := range names {
		field := LookupField(name)
		f.columns[i] = field
		if field == FieldUnknown {
			continue
		}
		if f.column[field] >= 0 {
			return nil, fmt.Errorf("%w: header names %q twice", ErrFormat, name)
		}
		f.column[field] = int8(i)
	}
	var missing []string
	if !f.Has(FieldSrcAddr) && !f.Has(FieldPktSrcAddr) {
		missing = append(missing, "srcaddr (or pkt-srcaddr)")
	}
	if !f.Has(FieldDstAddr) && !f.Has(FieldPktDstAddr) {
		missing = append(missing, "dstaddr (or pkt-dstaddr)")
	}
	for _, r := range requiredFields {
		if !f.Has(r) {
			missing = append(missing, r.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrFormat, strings.Join(missing, ", "))
	}
	return f, nil
}

var defaultFormat = func() *Format {
	f, err := ParseFormat(DefaultHeader)
	if err != nil {
		panic(err) // a constant; covered by tests
	}
	return f
}()

// DefaultFormat returns the version 2 default format.
func DefaultFormat() *Format { return defaultFormat }

// Has reports whether the format has a column for field.
func (f *Format) Has(field Field) bool { return field < numFields && f.column[field] >= 0 }

// Columns returns the number of columns a record of this format has.
func (f *Format) Columns() int { return len(f.columns) }

// Unknown returns the header names this version does not know (their columns are ignored).
func (f *Format) Unknown() []string {
	var out []string
	for i, c := range f.columns {
		if c == FieldUnknown {
			out = append(out, f.names[i])
		}
	}
	return out
}

// String returns the header line.
func (f *Format) String() string { return strings.Join(f.names, " ") }
