// Package mime computes, once and while a message streams to the blob store,
// everything the IMAP gateway needs to answer FETCH ENVELOPE, BODYSTRUCTURE,
// RFC822.SIZE and partial BODY[section] without reading the body again: the
// envelope, the MIME tree, and the byte offsets of every part's header and
// body, so that a section fetch becomes a ranged read of the blob.
//
// The Scanner is an io.Writer: ingest tees the body into it as the bytes
// flow. It buffers only the header of the part being read (bounded by
// Limits.MaxHeaderBytes) and counts bodies without keeping them, so memory
// stays bounded whatever the message size. It never fails on bad input: a
// broken message yields a best-effort Structure, and beyond Limits it stops
// descending and treats the rest as an opaque leaf, because ingest must never
// lose a message over its MIME.
//
// The Structure is stored in meta.Entry.Structure in the compact binary form
// of MarshalStructure and read back on every FETCH with UnmarshalStructure.
package mime

import (
	"flag"
	"fmt"
	"time"
)

// Limits bound the work and memory of a scan. Zero fields take the defaults.
type Limits struct {
	// MaxDepth is the deepest nesting of multipart and message/rfc822
	// parts entered; deeper ones become opaque leaves.
	MaxDepth int
	// MaxParts bounds the number of parts in the tree; the rest of a
	// multipart past the limit becomes one opaque leaf.
	MaxParts int
	// MaxHeaderBytes bounds the header bytes buffered per part; header
	// fields past it are ignored (their bytes still count in the offsets).
	MaxHeaderBytes int
}

// Defaults of Limits.
const (
	DefaultMaxDepth       = 50
	DefaultMaxParts       = 10000
	DefaultMaxHeaderBytes = 256 << 10
)

// RegisterFlagsWithPrefix registers the limits as flags named prefix+name,
// e.g. "ingest.mime.max-depth", with their defaults.
func (l *Limits) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.IntVar(&l.MaxDepth, prefix+"max-depth", DefaultMaxDepth, "Deepest MIME nesting parsed; deeper parts are kept as opaque leaves.")
	f.IntVar(&l.MaxParts, prefix+"max-parts", DefaultMaxParts, "Most MIME parts parsed per message; the rest is kept as one opaque leaf.")
	f.IntVar(&l.MaxHeaderBytes, prefix+"max-header-bytes", DefaultMaxHeaderBytes, "Most header bytes parsed per MIME part; fields past it are ignored.")
}

// Validate reports limits that make no sense.
func (l Limits) Validate() error {
	if l.MaxDepth < 0 || l.MaxParts < 0 || l.MaxHeaderBytes < 0 {
		return fmt.Errorf("mime limits must not be negative: %+v", l)
	}
	return nil
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxParts <= 0 {
		l.MaxParts = DefaultMaxParts
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// Structure is the parse of one message.
type Structure struct {
	// Envelope of the message (RFC 3501 ENVELOPE).
	Envelope Envelope
	// Date is Envelope.Date parsed, in UTC, for SORT and SEARCH SENT*;
	// zero when missing or unparseable.
	Date time.Time
	// Root is the top-level part: its header is the message header.
	Root Part
	// HeaderSize is the size of the message header including the blank
	// line that ends it: BODY[HEADER] is [0, HeaderSize) and BODY[TEXT]
	// is [HeaderSize, Size).
	HeaderSize int64
	// Size is the size of the whole message (RFC822.SIZE).
	Size int64
	// Limited is set when a limit stopped the scan somewhere: a part was
	// kept as an opaque leaf or header fields were ignored.
	Limited bool
}

// Envelope holds the RFC 3501 ENVELOPE fields. Strings are the raw header
// values, unfolded but not decoded (RFC 2047 encoded words are kept), empty
// when the field is missing.
type Envelope struct {
	Date      string
	Subject   string
	From      []Address
	Sender    []Address // defaults to From (RFC 3501)
	ReplyTo   []Address // defaults to From (RFC 3501)
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo string
	MessageID string
}

// AddressKind tells a mailbox from the markers of RFC 5322 group syntax.
type AddressKind uint8

const (
	// AddrMailbox is an ordinary address.
	AddrMailbox AddressKind = iota
	// AddrGroupStart opens a group; Mailbox holds the group name. IMAP
	// writes it as (NIL NIL "name" NIL).
	AddrGroupStart
	// AddrGroupEnd closes the group; IMAP writes (NIL NIL NIL NIL).
	AddrGroupEnd
)

// Address is one entry of an address list as IMAP ENVELOPE lists it. Name
// is the raw display name (quotes removed, encoded words kept); when an
// address has no display name but a comment, the comment is the name.
type Address struct {
	Kind    AddressKind
	Name    string
	Route   string // obsolete source route (IMAP "adl"), e.g. "@a.example,@b.example"
	Mailbox string // local part, or the group name of AddrGroupStart
	Host    string
}

// Param is one parameter of a Content-Type or Content-Disposition field.
// Names are lower case; values are decoded from RFC 2231 by the standard
// library when well formed, raw otherwise.
type Param struct {
	Name, Value string
}

// Part is one MIME part. Offsets are in bytes from the start of the whole
// message: the part's header is [HeaderOffset, BodyOffset) (including the
// blank line that ends it, when there is one) and its body is
// [BodyOffset, End); the line break before a multipart delimiter belongs to
// the delimiter (RFC 2046), not to the part.
//
// Children is non-empty exactly when Type is "multipart" (one entry per
// body part) or the part is message/rfc822 or message/global (one entry:
// the encapsulated message, whose envelope is in Envelope). A multipart
// whose boundary is missing or never appears is reported as text/plain,
// and a multipart or message part that limits kept us from entering as
// application/octet-stream, so the tree always satisfies that invariant.
type Part struct {
	Type, Subtype string // lower case, e.g. "text", "plain"
	Params        []Param
	ID            string // Content-ID, raw
	Description   string // Content-Description, raw
	Encoding      string // Content-Transfer-Encoding, lower case; "7bit" when absent
	Disposition   string // lower case; empty when absent
	DispParams    []Param
	Language      []string // Content-Language tags
	Location      string   // Content-Location, raw
	MD5           string   // Content-MD5, raw

	HeaderOffset int64
	BodyOffset   int64
	End          int64
	// Size is the body size in octets: End - BodyOffset.
	Size int64
	// Lines is the number of lines of the body (a last line without a
	// line break counts); IMAP reports it for text/* and message/rfc822.
	Lines int64

	// Envelope of the encapsulated message of a message/rfc822 part.
	Envelope *Envelope
	Children []Part
}

// IsMultipart reports whether p is a multipart with body parts.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" && len(p.Children) > 0 }

// IsMessage reports whether p encapsulates a message (message/rfc822 or
// message/global with its child parsed).
func (p *Part) IsMessage() bool {
	return p.Type == "message" && p.Envelope != nil && len(p.Children) == 1
}
