package imapbody

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// Content is the value of one section fetch attribute, ready to send: its
// length is known and everything that could fail before the first byte
// went out (finding the section, opening the blob range, decoding) has
// happened. Close it when done.
type Content struct {
	sizeOnly bool // BINARY.SIZE: n is the number to send
	n        int64
	literal8 bool
	r        io.Reader
	rc       io.Closer
	sp       *spool
}

// Size returns the number of bytes the literal will hold (for BINARY.SIZE,
// the decoded size it reports).
func (c *Content) Size() int64 { return c.n }

// Literal8 reports whether the content goes out as a literal8 (~{n}): a
// BINARY fetch whose content may hold NUL.
func (c *Content) Literal8() bool { return c.literal8 }

// Encode writes the value: the number of BINARY.SIZE, "" for an empty or
// missing section, else the literal. An error means the literal was cut
// short (the blob read failed mid-way) or the connection failed; either
// way the encoder's error is set and the connection must be closed, since
// the client counts the literal's bytes.
func (c *Content) Encode(e *wire.Encoder) error {
	switch {
	case c.sizeOnly:
		e.Number(uint64(c.n))
	case c.n == 0:
		e.Raw(`""`)
	default:
		e.Literal(c.n, c.r, c.literal8)
	}
	if err := e.Err(); err != nil {
		return fmt.Errorf("send section literal of %d bytes: %w", c.n, err)
	}
	return nil
}

// Close releases the blob reader and the spool.
func (c *Content) Close() error {
	var err error
	if c.rc != nil {
		err = c.rc.Close()
		c.rc = nil
	}
	if c.sp != nil {
		err = errors.Join(err, c.sp.close())
		c.sp = nil
	}
	return err
}

// WriteSection writes the value of att for the message st (Open, Encode,
// Close). It writes nothing when it fails before the value starts: the
// error is then from Open (ErrUnknownCTE, a blob error) and the session
// may answer NO; an error once the literal started leaves e broken (see
// Content.Encode). The caller writes att.Name and a space before.
func WriteSection(ctx context.Context, e *wire.Encoder, r BlobReader, st *mime.Structure, att FetchAtt) error {
	c, err := Open(ctx, r, st, att)
	if err != nil {
		return err
	}
	err = c.Encode(e)
	if cerr := c.Close(); err == nil && cerr != nil {
		return fmt.Errorf("close section %s: %w", att.Name, cerr)
	}
	return err
}

// Open prepares the value of att for the message st, reading from r only
// the bytes it needs: the section's range clipped to the partial for raw
// sections, the header range for HEADER.FIELDS, the part's range for
// BINARY (and for a partial BINARY only as far as the decoded window
// needs). BINARY.SIZE of a 7bit, 8bit or binary part reads nothing.
func Open(ctx context.Context, r BlobReader, st *mime.Structure, att FetchAtt) (*Content, error) {
	span, err := Resolve(st, att.Section)
	if err != nil {
		return nil, err
	}
	switch att.Kind {
	case KindBody:
		if t := att.Section.Text; t == TextHeaderFields || t == TextHeaderFieldsNot {
			return openFiltered(ctx, r, span, att)
		}
		return openRaw(ctx, r, span, att.Partial, false)
	case KindBinary, KindBinarySize:
		return openBinary(ctx, r, span, att)
	}
	return nil, badSection("unknown fetch kind %d", att.Kind)
}

// window clips the partial to a section of n bytes: the offset and length
// to send.
func window(n int64, p Partial) (off, length int64) {
	if !p.Set {
		return 0, n
	}
	if p.Offset >= n {
		return n, 0
	}
	return p.Offset, min(p.Length, n-p.Offset)
}

func openRaw(ctx context.Context, r BlobReader, span Span, p Partial, literal8 bool) (*Content, error) {
	off, n := window(span.Len(), p)
	if n == 0 {
		return &Content{}, nil
	}
	rc, err := r.ReadRange(ctx, span.Start+off, n)
	if err != nil {
		return nil, fmt.Errorf("read message bytes [%d,%d): %w", span.Start+off, span.Start+off+n, err)
	}
	return &Content{n: n, r: rc, rc: rc, literal8: literal8}, nil
}

func openFiltered(ctx context.Context, r BlobReader, span Span, att FetchAtt) (*Content, error) {
	if span.Part == nil {
		return &Content{}, nil
	}
	var in io.Reader = eofReader{}
	if span.Len() > 0 {
		rc, err := r.ReadRange(ctx, span.Start, span.Len())
		if err != nil {
			return nil, fmt.Errorf("read header bytes [%d,%d): %w", span.Start, span.End, err)
		}
		defer rc.Close()
		in = io.LimitReader(rc, span.Len())
	}
	sp := newSpool(span.Len() + 4)
	if err := filterHeader(in, sp, att.Section.Fields, att.Section.Text == TextHeaderFieldsNot); err != nil {
		sp.close()
		return nil, fmt.Errorf("filter header of section %s: %w", att.Section, err)
	}
	return spoolContent(sp, att.Partial, false), nil
}

func spoolContent(sp *spool, p Partial, literal8 bool) *Content {
	off, n := window(sp.n, p)
	if n == 0 {
		sp.close()
		return &Content{}
	}
	return &Content{n: n, r: sp.reader(off, n), sp: sp, literal8: literal8}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// decoding is how BINARY treats a part's body.
type decoding uint8

const (
	decIdentity decoding = iota
	decBase64
	decQP
)

// decodingOf returns how to decode the span's part for BINARY. The whole
// message, multiparts and encapsulated messages are sent as they are (RFC
// 2045 allows them only identity encodings).
func decodingOf(span Span, sec Section) (decoding, error) {
	p := span.Part
	if len(sec.Part) == 0 || p.IsMultipart() || p.IsMessage() {
		return decIdentity, nil
	}
	switch p.Encoding {
	case "", "7bit", "8bit", "binary":
		return decIdentity, nil
	case "base64":
		return decBase64, nil
	case "quoted-printable":
		return decQP, nil
	}
	return 0, fmt.Errorf("binary fetch of part %s encoded %.40q: %w", sec, p.Encoding, ErrUnknownCTE)
}

// hasBinaryCTE reports whether p or a part inside it is declared binary
// and so may hold NUL; such content goes out as literal8.
func hasBinaryCTE(p *mime.Part) bool {
	if p.Encoding == "binary" {
		return true
	}
	for i := range p.Children {
		if hasBinaryCTE(&p.Children[i]) {
			return true
		}
	}
	return false
}

func openBinary(ctx context.Context, r BlobReader, span Span, att FetchAtt) (*Content, error) {
	if span.Part == nil {
		if att.Kind == KindBinarySize {
			return &Content{sizeOnly: true}, nil
		}
		return &Content{}, nil
	}
	dec, err := decodingOf(span, att.Section)
	if err != nil {
		return nil, err
	}
	if dec == decIdentity {
		if att.Kind == KindBinarySize {
			return &Content{sizeOnly: true, n: span.Len()}, nil
		}
		return openRaw(ctx, r, span, att.Partial, hasBinaryCTE(span.Part))
	}
	if span.Len() == 0 {
		return &Content{sizeOnly: att.Kind == KindBinarySize}, nil
	}
	// A partial reads the part in growing chunks, stopping once the
	// decoded window is complete; a whole part is one ranged read.
	chunk := span.Len()
	if att.Partial.Set {
		chunk = firstChunk
	}
	src := &rangeReader{ctx: ctx, r: r, off: span.Start, end: span.End, chunk: chunk}
	defer src.Close()
	var d io.Reader
	if dec == decBase64 {
		d = newBase64Reader(src)
	} else {
		d = newQPReader(src)
	}
	if att.Kind == KindBinarySize {
		n, err := io.Copy(io.Discard, d)
		if err != nil {
			return nil, fmt.Errorf("decode part %s: %w", att.Section, err)
		}
		return &Content{sizeOnly: true, n: n}, nil
	}
	// Decoded content is never longer than the encoded part.
	sp := newSpool(span.Len())
	if att.Partial.Set {
		skipped, err := io.CopyN(io.Discard, d, att.Partial.Offset)
		if err == nil {
			_, err = io.CopyN(sp, d, att.Partial.Length)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			sp.close()
			return nil, fmt.Errorf("decode part %s: %w", att.Section, err)
		}
		if skipped < att.Partial.Offset {
			sp.close()
			return &Content{}, nil
		}
		return spoolContent(sp, Partial{}, sp.nul), nil
	}
	if _, err := io.Copy(sp, d); err != nil {
		sp.close()
		return nil, fmt.Errorf("decode part %s: %w", att.Section, err)
	}
	return spoolContent(sp, Partial{}, sp.nul), nil
}

// Chunk sizes of the ranged reads of a partial BINARY fetch: the first
// read covers a typical partial; each next one doubles, so a window deep
// in a part costs a logarithmic number of reads.
const (
	firstChunk = 64 << 10
	maxChunk   = 8 << 20
)

// rangeReader reads [off, end) of the blob in ranged reads of growing
// size, opening each only when the previous one is used up.
type rangeReader struct {
	ctx      context.Context
	r        BlobReader
	off, end int64
	chunk    int64
	cur      io.ReadCloser
	left     int64 // bytes still expected from cur
}

func (rr *rangeReader) Read(p []byte) (int, error) {
	for {
		if rr.cur == nil {
			if rr.off >= rr.end {
				return 0, io.EOF
			}
			n := min(rr.chunk, rr.end-rr.off)
			rc, err := rr.r.ReadRange(rr.ctx, rr.off, n)
			if err != nil {
				return 0, fmt.Errorf("read message bytes [%d,%d): %w", rr.off, rr.off+n, err)
			}
			rr.cur, rr.left = rc, n
			rr.off += n
			rr.chunk = min(rr.chunk*2, maxChunk)
		}
		if len(p) > int(min(rr.left, 1<<30)) {
			p = p[:rr.left]
		}
		n, err := rr.cur.Read(p)
		rr.left -= int64(n)
		if rr.left == 0 || err != nil {
			cerr := rr.cur.Close()
			rr.cur = nil
			if rr.left > 0 {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return n, fmt.Errorf("read message bytes: %w", err)
			}
			if cerr != nil {
				return n, fmt.Errorf("read message bytes: %w", cerr)
			}
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Close closes the open ranged read, if any.
func (rr *rangeReader) Close() error {
	if rr.cur == nil {
		return nil
	}
	err := rr.cur.Close()
	rr.cur = nil
	return err
}
