package mime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Encoding of a Structure, read on every FETCH ENVELOPE or BODYSTRUCTURE:
//
//	version byte (encodingV1)
//	flags uvarint (bit 0: Date set, bit 1: Limited)
//	[Date: varint Unix seconds]
//	Size, HeaderSize uvarint
//	envelope
//	root part
//
// A string is a uvarint length and its bytes. An envelope is Date,
// Subject, InReplyTo, MessageID and then the address lists From, Sender,
// ReplyTo, To, Cc, Bcc, each a uvarint count of (kind byte, Name, Route,
// Mailbox, Host); Sender and ReplyTo are stored empty when they equal From.
// A part is Type, Subtype, params, ID, Description, Encoding, Disposition,
// disposition params, languages, Location, MD5, then uvarints HeaderOffset,
// BodyOffset-HeaderOffset, End-BodyOffset, Lines, then a byte 1 and an
// envelope for an encapsulated message (0 otherwise), then a uvarint count
// of children and the children. Params are a uvarint count of (Name, Value).
//
// Unmarshal makes one string of the whole input and slices every field out
// of it, so decoding allocates little.
const encodingV1 = 1

// maxDecodeDepth bounds recursion when decoding untrusted bytes.
const maxDecodeDepth = 1000

// ErrBadEncoding is returned by UnmarshalStructure for bytes it cannot decode.
var ErrBadEncoding = errors.New("bad structure encoding")

const (
	flagDate    = 1 << 0
	flagLimited = 1 << 1
)

// MarshalStructure encodes st compactly (see the format above).
func MarshalStructure(st *Structure) ([]byte, error) {
	if st == nil {
		return nil, fmt.Errorf("marshal structure: %w", ErrBadEncoding)
	}
	b := make([]byte, 0, 256)
	b = append(b, encodingV1)
	var flags uint64
	if !st.Date.IsZero() {
		flags |= flagDate
	}
	if st.Limited {
		flags |= flagLimited
	}
	b = binary.AppendUvarint(b, flags)
	if !st.Date.IsZero() {
		b = binary.AppendVarint(b, st.Date.Unix())
	}
	b = binary.AppendUvarint(b, uint64(st.Size))
	b = binary.AppendUvarint(b, uint64(st.HeaderSize))
	b = appendEnvelope(b, &st.Envelope)
	b = appendPart(b, &st.Root)
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAddresses(b []byte, as []Address) []byte {
	b = binary.AppendUvarint(b, uint64(len(as)))
	for i := range as {
		a := &as[i]
		b = append(b, byte(a.Kind))
		b = appendString(b, a.Name)
		b = appendString(b, a.Route)
		b = appendString(b, a.Mailbox)
		b = appendString(b, a.Host)
	}
	return b
}

func sameAddresses(a, b []Address) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func appendEnvelope(b []byte, e *Envelope) []byte {
	b = appendString(b, e.Date)
	b = appendString(b, e.Subject)
	b = appendString(b, e.InReplyTo)
	b = appendString(b, e.MessageID)
	b = appendAddresses(b, e.From)
	// Sender and Reply-To default to From: store them only when they differ.
	if sameAddresses(e.Sender, e.From) {
		b = appendAddresses(b, nil)
	} else {
		b = appendAddresses(b, e.Sender)
	}
	if sameAddresses(e.ReplyTo, e.From) {
		b = appendAddresses(b, nil)
	} else {
		b = appendAddresses(b, e.ReplyTo)
	}
	b = appendAddresses(b, e.To)
	b = appendAddresses(b, e.Cc)
	b = appendAddresses(b, e.Bcc)
	return b
}

func appendParams(b []byte, ps []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.Name)
		b = appendString(b, p.Value)
	}
	return b
}

func appendPart(b []byte, p *Part) []byte {
	b = appendString(b, p.Type)
	b = appendString(b, p.Subtype)
	b = appendParams(b, p.Params)
	b = appendString(b, p.ID)
	b = appendString(b, p.Description)
	b = appendString(b, p.Encoding)
	b = appendString(b, p.Disposition)
	b = appendParams(b, p.DispParams)
	b = binary.AppendUvarint(b, uint64(len(p.Language)))
	for _, l := range p.Language {
		b = appendString(b, l)
	}
	b = appendString(b, p.Location)
	b = appendString(b, p.MD5)
	b = binary.AppendUvarint(b, uint64(p.HeaderOffset))
	b = binary.AppendUvarint(b, uint64(p.BodyOffset-p.HeaderOffset))
	b = binary.AppendUvarint(b, uint64(p.End-p.BodyOffset))
	b = binary.AppendUvarint(b, uint64(p.Lines))
	if p.Envelope != nil {
		b = append(b, 1)
		b = appendEnvelope(b, p.Envelope)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Children)))
	for i := range p.Children {
		b = appendPart(b, &p.Children[i])
	}
	return b
}

// UnmarshalStructure decodes what MarshalStructure encoded. It never panics
// on bad input; it returns an error wrapping ErrBadEncoding.
func UnmarshalStructure(data []byte) (*Structure, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("unmarshal structure: empty: %w", ErrBadEncoding)
	}
	if data[0] != encodingV1 {
		return nil, fmt.Errorf("unmarshal structure: version %d: %w", data[0], ErrBadEncoding)
	}
	d := decoder{s: string(data), i: 1}
	st := &Structure{}
	flags := d.uvarint()
	if flags&flagDate != 0 {
		st.Date = time.Unix(d.varint(), 0).UTC()
	}
	st.Limited = flags&flagLimited != 0
	st.Size = d.int64()
	st.HeaderSize = d.int64()
	d.envelope(&st.Envelope)
	d.part(&st.Root, 0)
	if d.err == nil && d.i != len(d.s) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("unmarshal structure: %w", d.err)
	}
	return st, nil
}

type decoder struct {
	s   string
	i   int
	err error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at byte %d: %w", why, d.i, ErrBadEncoding)
	}
	d.i = len(d.s)
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for n := 0; ; n++ {
		if d.i >= len(d.s) || n == binary.MaxVarintLen64 {
			d.fail("bad varint")
			return 0
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			if n == binary.MaxVarintLen64-1 && c > 1 {
				d.fail("varint overflow")
				return 0
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) int64() int64 {
	u := d.uvarint()
	if u > 1<<62 {
		d.fail("offset out of range")
		return 0
	}
	return int64(u)
}

// count reads a count of elements each at least min bytes long.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.i)/uint64(min) {
		d.fail("count too large")
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.i) {
		d.fail("string too long")
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

func (d *decoder) byte() byte {
	if d.i >= len(d.s) {
		d.fail("short")
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

func (d *decoder) addresses() []Address {
	n := d.count(5)
	if n == 0 {
		return nil
	}
	as := make([]Address, n)
	for i := range as {
		as[i].Kind = AddressKind(d.byte())
		as[i].Name = d.string()
		as[i].Route = d.string()
		as[i].Mailbox = d.string()
		as[i].Host = d.string()
	}
	return as
}

func (d *decoder) envelope(e *Envelope) {
	e.Date = d.string()
	e.Subject = d.string()
	e.InReplyTo = d.string()
	e.MessageID = d.string()
	e.From = d.addresses()
	e.Sender = d.addresses()
	e.ReplyTo = d.addresses()
	e.To = d.addresses()
	e.Cc = d.addresses()
	e.Bcc = d.addresses()
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
}

func (d *decoder) params() []Param {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	ps := make([]Param, n)
	for i := range ps {
		ps[i].Name = d.string()
		ps[i].Value = d.string()
	}
	return ps
}

func (d *decoder) part(p *Part, depth int) {
	if depth > maxDecodeDepth {
		d.fail("too deep")
		return
	}
	p.Type = d.string()
	p.Subtype = d.string()
	p.Params = d.params()
	p.ID = d.string()
	p.Description = d.string()
	p.Encoding = d.string()
	p.Disposition = d.string()
	p.DispParams = d.params()
	if n := d.count(1); n > 0 {
		p.Language = make([]string, n)
		for i := range p.Language {
			p.Language[i] = d.string()
		}
	}
	p.Location = d.string()
	p.MD5 = d.string()
	p.HeaderOffset = d.int64()
	p.BodyOffset = p.HeaderOffset + d.int64()
	p.Size = d.int64()
	p.End = p.BodyOffset + p.Size
	p.Lines = d.int64()
	if p.End < 0 {
		d.fail("offset out of range")
		return
	}
	if d.byte() == 1 {
		p.Envelope = &Envelope{}
		d.envelope(p.Envelope)
	}
	if n := d.count(17); n > 0 {
		p.Children = make([]Part, n)
		for i := range p.Children {
			d.part(&p.Children[i], depth+1)
			if d.err != nil {
				return
			}
		}
	}
}
