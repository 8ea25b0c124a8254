package ipfix

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShort and ErrNoTemplate are wrapped by decode errors.
var (
	ErrShort      = errors.New("ipfix: message truncated")
	ErrNoTemplate = errors.New("ipfix: data set for an unknown template")
)

// FieldSpec is one field specifier of a received template.
type FieldSpec struct {
	ID         uint16
	Length     uint16
	Enterprise uint32 // 0 for IANA elements
}

// Header is a decoded message header.
type Header struct {
	Length     uint16
	ExportTime uint32
	Sequence   uint32
	Domain     uint32
}

// DataRecord is one decoded data record; Values alias the message.
type DataRecord struct {
	Header     Header
	TemplateID uint16
	Options    bool // from an options template
	Fields     []FieldSpec
	Values     [][]byte
}

// Value returns the value of IANA element id, or nil.
func (r *DataRecord) Value(id uint16) []byte {
	for i, f := range r.Fields {
		if f.ID == id && f.Enterprise == 0 {
			return r.Values[i]
		}
	}
	return nil
}

type templateKey struct {
	domain uint32
	id     uint16
}

type template struct {
	fields  []FieldSpec
	options bool
}

// Decoder decodes messages from one exporter, remembering templates per observation
// domain. It is the debug collector's decoder; tests check our encoder against an
// independent one as well.
type Decoder struct {
	templates map[templateKey]template
}

// NewDecoder returns an empty Decoder.
func NewDecoder() *Decoder { return &Decoder{templates: map[templateKey]template{}} }

// Decode parses one message, calling fn for each data record. It returns the header
// and the number of template records seen.
func (d *Decoder) Decode(msg []byte, fn func(*DataRecord)) (Header, int, error) {
	var h Header
	if len(msg) < HeaderLen {
		return h, 0, fmt.Errorf("%w: %d bytes", ErrShort, len(msg))
	}
	if v := binary.BigEndian.Uint16(msg); v != Version {
		return h, 0, fmt.Errorf("ipfix: version %d, want %d", v, Version)
	}
	h = Header{
		Length:     binary.BigEndian.Uint16(msg[2:]),
		ExportTime: binary.BigEndian.Uint32(msg[4:]),
		Sequence:   binary.BigEndian.Uint32(msg[8:]),
		Domain:     binary.BigEndian.Uint32(msg[12:]),
	}
	if int(h.Length) != len(msg) {
		return h, 0, fmt.Errorf("ipfix: header length %d, datagram %d", h.Length, len(msg))
	}
	templates := 0
	rest := msg[HeaderLen:]
	for len(rest) > 0 {
		if len(rest) < SetHeaderLen {
			return h, templates, fmt.Errorf("%w: set header", ErrShort)
		}
		id := binary.BigEndian.Uint16(rest)
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if n < SetHeaderLen || n > len(rest) {
			return h, templates, fmt.Errorf("ipfix: set %d length %d of %d bytes left", id, n, len(rest))
		}
		body := rest[SetHeaderLen:n]
		rest = rest[n:]
		switch {
		case id == TemplateSetID || id == OptionsTemplateSetID:
			c, err := d.templateSet(h.Domain, body, id == OptionsTemplateSetID)
			templates += c
			if err != nil {
				return h, templates, err
			}
		case id >= 256:
			t, ok := d.templates[templateKey{h.Domain, id}]
			if !ok {
				return h, templates, fmt.Errorf("%w: %d in domain %d", ErrNoTemplate, id, h.Domain)
			}
			if err := decodeData(h, id, t, body, fn); err != nil {
				return h, templates, err
			}
		default:
			return h, templates, fmt.Errorf("ipfix: reserved set id %d", id)
		}
	}
	return h, templates, nil
}

func (d *Decoder) templateSet(domain uint32, body []byte, options bool) (int, error) {
	count := 0
	for len(body) >= 4 {
		id := binary.BigEndian.Uint16(body)
		n := int(binary.BigEndian.Uint16(body[2:]))
		body = body[4:]
		if options {
			if len(body) < 2 {
				return count, fmt.Errorf("%w: options template %d", ErrShort, id)
			}
			body = body[2:] // scope count: not needed to decode values
		}
		if n == 0 {
			return count, fmt.Errorf("ipfix: template %d withdrawn; this exporter never withdraws", id)
		}
		fields := make([]FieldSpec, 0, n)
		for i := 0; i < n; i++ {
			if len(body) < 4 {
				return count, fmt.Errorf("%w: template %d field %d", ErrShort, id, i)
			}
			f := FieldSpec{ID: binary.BigEndian.Uint16(body), Length: binary.BigEndian.Uint16(body[2:])}
			body = body[4:]
			if f.ID&0x8000 != 0 {
				if len(body) < 4 {
					return count, fmt.Errorf("%w: template %d field %d enterprise", ErrShort, id, i)
				}
				f.ID &^= 0x8000
				f.Enterprise = binary.BigEndian.Uint32(body)
				body = body[4:]
			}
			fields = append(fields, f)
		}
		if id < 256 {
			return count, fmt.Errorf("ipfix: template id %d below 256", id)
		}
		d.templates[templateKey{domain, id}] = template{fields: fields, options: options}
		count++
	}
	return count, nil
}

func decodeData(h Header, id uint16, t template, body []byte, fn func(*DataRecord)) error {
	rec := DataRecord{Header: h, TemplateID: id, Options: t.options, Fields: t.fields, Values: make([][]byte, len(t.fields))}
	for len(body) > 0 {
		start := body
		for i, f := range t.fields {
			n := int(f.Length)
			if f.Length == VariableLength {
				if len(body) < 1 {
					return fmt.Errorf("%w: template %d field %d length", ErrShort, id, i)
				}
				n = int(body[0])
				body = body[1:]
				if n == 255 {
					if len(body) < 2 {
						return fmt.Errorf("%w: template %d field %d length", ErrShort, id, i)
					}
					n = int(binary.BigEndian.Uint16(body))
					body = body[2:]
				}
			}
			if len(body) < n {
				if i == 0 && len(start) < 4 {
					return nil // set padding
				}
				return fmt.Errorf("%w: template %d field %d", ErrShort, id, i)
			}
			rec.Values[i] = body[:n:n]
			body = body[n:]
		}
		fn(&rec)
	}
	return nil
}
