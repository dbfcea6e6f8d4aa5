package imapbody

import (
	"bufio"
	"bytes"
	"io"

	"github.com/mailstore/mailstore/pkg/mime"
)

// Span is where a section lies in the message: bytes [Start, End). For
// HEADER.FIELDS and HEADER.FIELDS.NOT it is the whole header, which the
// caller then filters with FilterHeader.
type Span struct {
	Start, End int64
	// Part is the part the section is about: the numbered part for a part
	// body or MIME, the (encapsulated) message for HEADER, TEXT and
	// HEADER.FIELDS, the root for the whole message. Nil when the section
	// does not exist, and then Start == End.
	Part *mime.Part
}

// Len returns the length of the span.
func (s Span) Len() int64 { return s.End - s.Start }

// Resolve finds sec in st. A section that does not exist in this message
// (a part number past the parts, HEADER or TEXT after a part that is not
// message/rfc822) is an empty Span with a nil Part: the RFC answer is an
// empty string, not an error. Only a section ParseSection would refuse
// (MIME without a part number, a zero part number) is an error.
func Resolve(st *mime.Structure, sec Section) (Span, error) {
	if len(sec.Part) == 0 {
		root := &st.Root
		switch sec.Text {
		case TextNone:
			return Span{Start: 0, End: st.Size, Part: root}, nil
		case TextHeader, TextHeaderFields, TextHeaderFieldsNot:
			return Span{Start: 0, End: st.HeaderSize, Part: root}, nil
		case TextText:
			return Span{Start: st.HeaderSize, End: st.Size, Part: root}, nil
		default:
			return Span{}, badSection("MIME needs a part number")
		}
	}
	for _, n := range sec.Part {
		if n == 0 {
			return Span{}, badSection("part number 0")
		}
	}
	p := findPart(&st.Root, sec.Part)
	if p == nil {
		return Span{}, nil
	}
	switch sec.Text {
	case TextNone:
		return Span{Start: p.BodyOffset, End: p.End, Part: p}, nil
	case TextMIME:
		return Span{Start: p.HeaderOffset, End: p.BodyOffset, Part: p}, nil
	}
	if !p.IsMessage() {
		return Span{}, nil
	}
	m := &p.Children[0]
	if sec.Text == TextText {
		return Span{Start: m.BodyOffset, End: m.End, Part: m}, nil
	}
	return Span{Start: m.HeaderOffset, End: m.BodyOffset, Part: m}, nil
}

// findPart follows a part number (RFC 9051 section 6.4.5): numbers index
// the body parts of a multipart; a message (the top level, or the one
// encapsulated in a message/rfc822 part) that is not multipart has only
// part 1, its body; after a message/rfc822 part the numbers continue in
// the encapsulated message. A leaf body part has no parts below it.
func findPart(root *mime.Part, nums []uint32) *mime.Part {
	p := root
	atMessage := true // p is a message, not a body part
	for i, n := range nums {
		switch {
		case p.IsMultipart():
			if uint64(n) > uint64(len(p.Children)) {
				return nil
			}
			p = &p.Children[n-1]
		case atMessage && n == 1:
			// The body of a non-multipart message: p itself.
		default:
			return nil
		}
		atMessage = false
		if i < len(nums)-1 && p.IsMessage() {
			p = &p.Children[0]
			atMessage = true
		}
	}
	return p
}

// FilterHeader returns the header fields of header whose names are (not,
// for HEADER.FIELDS.NOT) among fields, compared case-insensitively, each
// whole with its folded continuation lines and bytes as stored, followed by
// the blank line that ends a header (RFC 9051: the blank line is always
// included). header is a message or part header, as BODY[HEADER] returns
// it; anything after its blank line is ignored.
func FilterHeader(header []byte, fields []string, not bool) []byte {
	var out bytes.Buffer
	out.Grow(len(header) + 2)
	_ = filterHeader(bytes.NewReader(header), &out, fields, not)
	return out.Bytes()
}

// filterHeader streams the filtering of FilterHeader from r to w, holding
// at most one buffer of a line.
func filterHeader(r io.Reader, w io.Writer, fields []string, not bool) error {
	br := bufio.NewReaderSize(r, 4096)
	keep := false   // whether the current field is kept
	atStart := true // at the start of a line
	lastEOL := true // the last byte written ends a line
	blank := "\r\n" // the blank line to end with
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if atStart {
				if isBlankLine(chunk) && (err == nil) {
					blank = string(chunk)
					break
				}
				if chunk[0] != ' ' && chunk[0] != '\t' {
					keep = matchField(fieldName(chunk), fields) != not
				}
			}
			if keep {
				if _, werr := w.Write(chunk); werr != nil {
					return werr
				}
				lastEOL = chunk[len(chunk)-1] == '\n'
			}
			atStart = chunk[len(chunk)-1] == '\n'
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if !lastEOL {
		if _, err := io.WriteString(w, "\r\n"); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, blank)
	return err
}

// isBlankLine reports whether a whole line is empty: "\n" or "\r\n".
func isBlankLine(line []byte) bool {
	return (len(line) == 1 && line[0] == '\n') || (len(line) == 2 && line[0] == '\r' && line[1] == '\n')
}

// fieldName returns the field name at the start of line, white space
// before the colon trimmed (obsolete syntax); nil when the line has no
// colon (in its first buffer) and so is not a header field.
func fieldName(line []byte) []byte {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return nil
	}
	return bytes.TrimRight(line[:i], " \t")
}

func matchField(name []byte, fields []string) bool {
	if len(name) == 0 {
		return false
	}
	for _, f := range fields {
		if len(f) == len(name) && bytes.EqualFold(name, []byte(f)) {
			return true
		}
	}
	return false
}
