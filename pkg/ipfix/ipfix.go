// Package ipfix encodes flows as IPFIX (RFC 7011) messages, and decodes them again for
// the debug collector. It holds no session state: sequence numbers, template timing and
// message sizing belong to the exporter.
//
// # Template layout
//
// A template is named by a Layout, a bit set of the optional elements a record carries
// (IPv6 or IPv4 addresses, tcpControlBits, flowDirection, interfaceName, and each
// enterprise-specific AWS element). The template id is 256 + Layout, so the same record
// shape gets the same id in every Lambda instance and every export session, and a
// collector never sees one id stand for two shapes within a domain.
//
// Every template has sourceTransportPort(7), destinationTransportPort(11),
// protocolIdentifier(4), packetDeltaCount(2), octetDeltaCount(1),
// flowStartMilliseconds(152), flowEndMilliseconds(153) and forwardingStatus(89), plus
// sourceIPv4Address(8)/destinationIPv4Address(12) or sourceIPv6Address(27)/
// destinationIPv6Address(28).
package ipfix

import (
	"encoding/binary"
	"net/netip"
)

// Version is the IPFIX protocol version in every message header.
const Version = 10

// Sizes of the fixed parts of a message.
const (
	HeaderLen    = 16
	SetHeaderLen = 4
)

// Set ids (RFC 7011 section 3.3.2).
const (
	TemplateSetID        = 2
	OptionsTemplateSetID = 3
)

// VariableLength marks a variable-length field in a template.
const VariableLength = 0xFFFF

// IANA information element ids used here.
const (
	IEOctetDeltaCount          = 1
	IEPacketDeltaCount         = 2
	IEProtocolIdentifier       = 4
	IETCPControlBits           = 6
	IESourceTransportPort      = 7
	IESourceIPv4Address        = 8
	IEDestinationTransportPort = 11
	IEDestinationIPv4Address   = 12
	IESourceIPv6Address        = 27
	IEDestinationIPv6Address   = 28
	IEFlowDirection            = 61
	IEInterfaceName            = 82
	IEForwardingStatus         = 89
	IEFlowStartMilliseconds    = 152
	IEFlowEndMilliseconds      = 153
	// RFC 5610 type information.
	IEInformationElementID          = 303
	IEInformationElementDataType    = 339
	IEInformationElementDescription = 340
	IEInformationElementName        = 341
	IEInformationElementSemantics   = 344
	IEPrivateEnterpriseNumber       = 346
)

// forwardingStatus values (RFC 7270 / IANA): the two high bits are the status, the
// low six the reason code.
const (
	ForwardingUnknown  = 0x00 // unknown
	ForwardingAccepted = 0x40 // 64: forwarded, unknown reason
	ForwardingDropped  = 0x81 // 129: dropped, ACL deny
)

// flowDirection values (IANA IE 61).
const (
	DirectionIngress = 0
	DirectionEgress  = 1
)

// Enterprise is an AWS field sent as an enterprise-specific element when the operator
// configures a private enterprise number. Its element id is the value + 1.
type Enterprise uint8

// The enterprise-specific elements, in element-id order (ids 1 to 11).
const (
	EntAccountID Enterprise = iota
	EntVPCID
	EntSubnetID
	EntInstanceID
	EntRegion
	EntAZID
	EntAction
	EntLogStatus
	EntTrafficPath
	EntPktSrcAWSService
	EntPktDstAWSService
	NumEnterprise
)

// EnterpriseElement describes one enterprise-specific element.
type EnterpriseElement struct {
	ID          uint16
	Name        string
	DataType    uint8 // RFC 5610 informationElementDataType
	Semantics   uint8 // RFC 5610 informationElementSemantics
	Length      uint16
	Description string
}

// RFC 5610 data types and semantics used here.
const (
	dataTypeUnsigned8 = 1
	dataTypeString    = 13
	semanticsDefault  = 0
	semanticsIdent    = 4
)

// EnterpriseElements lists the enterprise-specific elements by Enterprise value.
var EnterpriseElements = [NumEnterprise]EnterpriseElement{
	EntAccountID:        {1, "awsAccountId", dataTypeString, semanticsIdent, VariableLength, "VPC flow log account-id: owner of the interface"},
	EntVPCID:            {2, "awsVpcId", dataTypeString, semanticsIdent, VariableLength, "VPC flow log vpc-id"},
	EntSubnetID:         {3, "awsSubnetId", dataTypeString, semanticsIdent, VariableLength, "VPC flow log subnet-id"},
	EntInstanceID:       {4, "awsInstanceId", dataTypeString, semanticsIdent, VariableLength, "VPC flow log instance-id"},
	EntRegion:           {5, "awsRegion", dataTypeString, semanticsDefault, VariableLength, "VPC flow log region"},
	EntAZID:             {6, "awsAzId", dataTypeString, semanticsIdent, VariableLength, "VPC flow log az-id"},
	EntAction:           {7, "awsAction", dataTypeString, semanticsDefault, VariableLength, "VPC flow log action: ACCEPT or REJECT"},
	EntLogStatus:        {8, "awsLogStatus", dataTypeString, semanticsDefault, VariableLength, "VPC flow log log-status"},
	EntTrafficPath:      {9, "awsTrafficPath", dataTypeUnsigned8, semanticsIdent, 1, "VPC flow log traffic-path (1 to 8)"},
	EntPktSrcAWSService: {10, "awsPktSrcAwsService", dataTypeString, semanticsDefault, VariableLength, "VPC flow log pkt-src-aws-service"},
	EntPktDstAWSService: {11, "awsPktDstAwsService", dataTypeString, semanticsDefault, VariableLength, "VPC flow log pkt-dst-aws-service"},
}

// Layout is the set of optional elements a record carries; it names the template.
type Layout uint16

// Layout bits.
const (
	LayoutIPv6 Layout = 1 << iota
	LayoutTCPFlags
	LayoutDirection
	LayoutInterfaceName
	layoutEnterpriseShift = iota
)

// LayoutEnterprise is the bit of enterprise element e.
func LayoutEnterprise(e Enterprise) Layout { return 1 << (layoutEnterpriseShift + uint(e)) }

// MaxLayout is one more than the largest valid Layout.
const MaxLayout = 1 << (layoutEnterpriseShift + int(NumEnterprise))

// TemplateID returns the template id of layout: 256 + layout.
func (l Layout) TemplateID() uint16 { return 256 + uint16(l) }

// LayoutOf returns the layout a template id names, and whether it is one of ours.
func LayoutOf(templateID uint16) (Layout, bool) {
	if templateID < 256 || templateID-256 >= MaxLayout {
		return 0, false
	}
	return Layout(templateID - 256), true
}

// TypeInfoTemplateID is the RFC 5610 options template that describes the enterprise elements.
const TypeInfoTemplateID = 65535

// Flow is one flow in IPFIX terms.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Protocol         uint8
	Packets, Octets  uint64
	StartMillis      uint64
	EndMillis        uint64
	ForwardingStatus uint8
	TCPFlags         uint16
	Direction        uint8
	InterfaceName    []byte
	Enterprise       [NumEnterprise][]byte // text values; EntTrafficPath carries one byte
}

// field is one template entry.
type field struct {
	id         uint16
	length     uint16
	enterprise bool
}

// fieldsOf lists the template fields of layout in record order.
func fieldsOf(l Layout, appendField func(field)) {
	if l&LayoutIPv6 != 0 {
		appendField(field{id: IESourceIPv6Address, length: 16})
		appendField(field{id: IEDestinationIPv6Address, length: 16})
	} else {
		appendField(field{id: IESourceIPv4Address, length: 4})
		appendField(field{id: IEDestinationIPv4Address, length: 4})
	}
	appendField(field{id: IESourceTransportPort, length: 2})
	appendField(field{id: IEDestinationTransportPort, length: 2})
	appendField(field{id: IEProtocolIdentifier, length: 1})
	appendField(field{id: IEPacketDeltaCount, length: 8})
	appendField(field{id: IEOctetDeltaCount, length: 8})
	appendField(field{id: IEFlowStartMilliseconds, length: 8})
	appendField(field{id: IEFlowEndMilliseconds, length: 8})
	appendField(field{id: IEForwardingStatus, length: 1})
	if l&LayoutTCPFlags != 0 {
		appendField(field{id: IETCPControlBits, length: 2})
	}
	if l&LayoutDirection != 0 {
		appendField(field{id: IEFlowDirection, length: 1})
	}
	if l&LayoutInterfaceName != 0 {
		appendField(field{id: IEInterfaceName, length: VariableLength})
	}
	for e := Enterprise(0); e < NumEnterprise; e++ {
		if l&LayoutEnterprise(e) != 0 {
			el := EnterpriseElements[e]
			appendField(field{id: el.ID, length: el.Length, enterprise: true})
		}
	}
}

// AppendTemplateRecord appends the template record of layout (id, field count, field
// specifiers) to b. pen is the private enterprise number of the enterprise elements.
func AppendTemplateRecord(b []byte, l Layout, pen uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, l.TemplateID())
	countAt := len(b)
	b = append(b, 0, 0)
	count := uint16(0)
	fieldsOf(l, func(f field) {
		count++
		if f.enterprise {
			b = binary.BigEndian.AppendUint16(b, f.id|0x8000)
			b = binary.BigEndian.AppendUint16(b, f.length)
			b = binary.BigEndian.AppendUint32(b, pen)
			return
		}
		b = binary.BigEndian.AppendUint16(b, f.id)
		b = binary.BigEndian.AppendUint16(b, f.length)
	})
	binary.BigEndian.PutUint16(b[countAt:], count)
	return b
}

// TemplateRecordLen returns the size of layout's template record.
func TemplateRecordLen(l Layout) int {
	n := 4
	fieldsOf(l, func(f field) {
		n += 4
		if f.enterprise {
			n += 4
		}
	})
	return n
}

// FlowLen returns the encoded size of f under layout l.
func FlowLen(l Layout, f *Flow) int {
	n := 4 + 4 + 2 + 2 + 1 + 8 + 8 + 8 + 8 + 1
	if l&LayoutIPv6 != 0 {
		n += 24
	}
	if l&LayoutTCPFlags != 0 {
		n += 2
	}
	if l&LayoutDirection != 0 {
		n++
	}
	if l&LayoutInterfaceName != 0 {
		n += varLen(len(f.InterfaceName))
	}
	for e := Enterprise(0); e < NumEnterprise; e++ {
		if l&LayoutEnterprise(e) != 0 {
			if EnterpriseElements[e].Length == VariableLength {
				n += varLen(len(f.Enterprise[e]))
			} else {
				n += int(EnterpriseElements[e].Length)
			}
		}
	}
	return n
}

// MaxVariableLength bounds the text of a variable-length element.
const MaxVariableLength = 0xFFFF - 3

func varLen(n int) int {
	if n > MaxVariableLength {
		n = MaxVariableLength
	}
	if n < 255 {
		return 1 + n
	}
	return 3 + n
}

// AppendFlow appends the data record of f under layout l. Addresses must be of the
// family the layout says.
func AppendFlow(b []byte, l Layout, f *Flow) []byte {
	if l&LayoutIPv6 != 0 {
		s, d := f.Src.As16(), f.Dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		s, d := f.Src.As4(), f.Dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, f.SrcPort)
	b = binary.BigEndian.AppendUint16(b, f.DstPort)
	b = append(b, f.Protocol)
	b = binary.BigEndian.AppendUint64(b, f.Packets)
	b = binary.BigEndian.AppendUint64(b, f.Octets)
	b = binary.BigEndian.AppendUint64(b, f.StartMillis)
	b = binary.BigEndian.AppendUint64(b, f.EndMillis)
	b = append(b, f.ForwardingStatus)
	if l&LayoutTCPFlags != 0 {
		b = binary.BigEndian.AppendUint16(b, f.TCPFlags)
	}
	if l&LayoutDirection != 0 {
		b = append(b, f.Direction)
	}
	if l&LayoutInterfaceName != 0 {
		b = appendVariable(b, f.InterfaceName)
	}
	for e := Enterprise(0); e < NumEnterprise; e++ {
		if l&LayoutEnterprise(e) == 0 {
			continue
		}
		v := f.Enterprise[e]
		if EnterpriseElements[e].Length == VariableLength {
			b = appendVariable(b, v)
			continue
		}
		// Fixed single-octet element (traffic-path).
		if len(v) > 0 {
			b = append(b, v[0])
		} else {
			b = append(b, 0)
		}
	}
	return b
}

func appendVariable(b, v []byte) []byte {
	if len(v) > MaxVariableLength {
		v = v[:MaxVariableLength]
	}
	if len(v) < 255 {
		b = append(b, byte(len(v)))
	} else {
		b = append(b, 255)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	}
	return append(b, v...)
}

// AppendHeader appends a message header whose length, export time, sequence number
// and domain are filled in later by PutHeader.
func AppendHeader(b []byte) []byte {
	return append(b, 0, Version, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

// PutHeader fills the header at the start of msg; the length is len(msg).
func PutHeader(msg []byte, exportTime, sequence, domain uint32) {
	binary.BigEndian.PutUint16(msg[0:], Version)
	binary.BigEndian.PutUint16(msg[2:], uint16(len(msg)))
	binary.BigEndian.PutUint32(msg[4:], exportTime)
	binary.BigEndian.PutUint32(msg[8:], sequence)
	binary.BigEndian.PutUint32(msg[12:], domain)
}

// AppendSetHeader opens a set; close it with PutSetLength(b, at) where at = len(b) before the call.
func AppendSetHeader(b []byte, id uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	return append(b, 0, 0)
}

// PutSetLength closes the set that starts at offset at.
func PutSetLength(b []byte, at int) {
	binary.BigEndian.PutUint16(b[at+2:], uint16(len(b)-at))
}

// AppendTypeInfoTemplate appends the RFC 5610 options template record that describes
// enterprise elements: scope privateEnterpriseNumber and informationElementId.
func AppendTypeInfoTemplate(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, TypeInfoTemplateID)
	b = binary.BigEndian.AppendUint16(b, 6) // field count
	b = binary.BigEndian.AppendUint16(b, 2) // scope field count
	for _, f := range [...][2]uint16{
		{IEPrivateEnterpriseNumber, 4},
		{IEInformationElementID, 2},
		{IEInformationElementDataType, 1},
		{IEInformationElementSemantics, 1},
		{IEInformationElementName, VariableLength},
		{IEInformationElementDescription, VariableLength},
	} {
		b = binary.BigEndian.AppendUint16(b, f[0])
		b = binary.BigEndian.AppendUint16(b, f[1])
	}
	return b
}

// AppendTypeInfoRecord appends the options data record describing element e.
func AppendTypeInfoRecord(b []byte, pen uint32, e Enterprise) []byte {
	el := EnterpriseElements[e]
	b = binary.BigEndian.AppendUint32(b, pen)
	b = binary.BigEndian.AppendUint16(b, el.ID)
	b = append(b, el.DataType, el.Semantics)
	b = appendVariable(b, []byte(el.Name))
	return appendVariable(b, []byte(el.Description))
}
