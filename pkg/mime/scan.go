package mime

import (
	"bytes"
	"errors"
	"io"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("mime scanner closed")

const (
	// maxBoundary bounds the boundary parameter we honour (RFC 2046 says
	// 70; real mailers exceed it a little). A longer one is ignored.
	maxBoundary = 256
	// maxPrefix is how much of a line starting with '-' is kept to match
	// it against the open boundaries.
	maxPrefix = 2 + maxBoundary + 2 + 64
)

type frameKind uint8

const (
	fHeader  frameKind = iota // reading the part's header
	fLeaf                     // counting a leaf body
	fMulti                    // in a multipart body (preamble, between or after children)
	fMessage                  // in a message/rfc822 body; the child frame is above
)

// frame is one open part on the scanner's stack. The Part it points to lives
// in its parent's Children (or in Structure.Root); that slice does not grow
// while the frame is open, because siblings are only appended once every
// frame above the parent has been closed.
type frame struct {
	p       *Part
	kind    frameKind
	depth   int
	bodyEOL int64 // line breaks ending at or before BodyOffset

	hdr     []byte // header bytes buffered so far (fHeader)
	hdrOver bool   // header exceeded MaxHeaderBytes

	// message header (the root or an encapsulated message): fill env.
	message bool
	env     *Envelope
	// digest: children of multipart/digest default to message/rfc822.
	digest       bool
	parentDigest bool

	boundary []byte // fMulti
	closed   bool   // saw the close delimiter: in the epilogue
	noMore   bool   // past MaxParts: only the close delimiter ends the last child
}

// Scanner parses a message streamed through Write; Close returns the
// Structure. It is not safe for concurrent use.
type Scanner struct {
	lim    Limits
	st     *Structure
	stack  []*frame
	nparts int
	off    int64 // bytes written so far
	done   bool

	// current line
	lineStart  int64
	lineLen    int64
	lastByte   byte
	wantPrefix bool
	prefix     []byte
	prefixBad  bool // non-space bytes after maxPrefix: not a delimiter

	// line breaks seen: count and where the last two ended
	nEOL       int64
	lastEOLEnd int64
	prevEOLEnd int64
	lastEOLLen int64
}

// NewScanner returns a Scanner with lim (zero fields take the defaults).
func NewScanner(lim Limits) *Scanner {
	s := &Scanner{lim: lim.withDefaults(), st: &Structure{}, lastEOLEnd: -1, prevEOLEnd: -1}
	s.nparts = 1
	s.stack = append(s.stack, &frame{p: &s.st.Root, kind: fHeader, message: true, env: &s.st.Envelope})
	return s
}

// Scan reads r to the end and returns its Structure. Only an error reading
// r is returned; the message itself never makes Scan fail.
func Scan(r io.Reader, lim Limits) (*Structure, error) {
	s := NewScanner(lim)
	if _, err := io.Copy(s, r); err != nil {
		return nil, err
	}
	return s.Close()
}

// Write feeds the next bytes of the message. It never fails before Close.
func (s *Scanner) Write(p []byte) (int, error) {
	if s.done {
		return 0, ErrClosed
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i+1]
		}
		if top := s.top(); top.kind == fHeader {
			s.bufferHeader(top, seg)
		}
		if i < 0 {
			s.addToLine(seg)
			s.off += int64(len(seg))
			break
		}
		s.addToLine(seg[:i])
		s.off += int64(i + 1)
		eol := int64(1)
		if s.lineLen > 0 && s.lastByte == '\r' {
			eol = 2
		}
		s.endLine(eol)
		p = p[i+1:]
	}
	return n, nil
}

// Close ends the message and returns its Structure.
func (s *Scanner) Close() (*Structure, error) {
	if s.done {
		return nil, ErrClosed
	}
	if s.lineLen > 0 {
		s.endLine(0)
	}
	s.done = true
	for i := len(s.stack) - 1; i >= 0; i-- {
		s.finish(s.stack[i], s.off)
	}
	s.stack = nil
	s.st.Size = s.off
	s.st.HeaderSize = s.st.Root.BodyOffset
	s.st.Date = parseDate(s.st.Envelope.Date)
	return s.st, nil
}

func (s *Scanner) top() *frame { return s.stack[len(s.stack)-1] }

func (s *Scanner) bufferHeader(f *frame, b []byte) {
	if f.hdrOver {
		return
	}
	room := s.lim.MaxHeaderBytes - len(f.hdr)
	if len(b) > room {
		b = b[:room]
		f.hdrOver = true
		s.st.Limited = true
	}
	f.hdr = append(f.hdr, b...)
}

// addToLine adds bytes of the current line (without the final LF).
func (s *Scanner) addToLine(b []byte) {
	if len(b) == 0 {
		return
	}
	if s.lineLen == 0 {
		s.lineStart = s.off
		s.wantPrefix = b[0] == '-' && s.anyBoundary()
		s.prefix = s.prefix[:0]
		s.prefixBad = false
	}
	if s.wantPrefix && !s.prefixBad {
		room := maxPrefix - len(s.prefix)
		if room > len(b) {
			room = len(b)
		}
		s.prefix = append(s.prefix, b[:room]...)
		for _, c := range b[room:] {
			if !isWS(c) {
				s.prefixBad = true
				break
			}
		}
	}
	s.lineLen += int64(len(b))
	s.lastByte = b[len(b)-1]
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func (s *Scanner) anyBoundary() bool {
	for _, f := range s.stack {
		if f.kind == fMulti && !f.closed {
			return true
		}
	}
	return false
}

// endLine handles the line just completed; eol is the length of its line
// break (0 at the end of the data).
func (s *Scanner) endLine(eol int64) {
	start := s.lineStart
	if s.lineLen == 0 {
		start = s.off - eol
	}
	end := s.off
	contentLen := s.lineLen
	if eol == 2 {
		contentLen--
	}
	matched := false
	if s.wantPrefix && s.lineLen > 0 && !s.prefixBad {
		for k := len(s.stack) - 1; k >= 0; k-- {
			f := s.stack[k]
			if f.kind != fMulti || f.closed {
				continue
			}
			if closing, ok := matchDelimiter(s.prefix, f.boundary); ok && (closing || !f.noMore) {
				s.delimiter(k, closing, start, end, eol)
				matched = true
				break
			}
		}
	}
	if !matched && contentLen == 0 && eol > 0 {
		if top := s.top(); top.kind == fHeader {
			s.endHeader(top, end, s.nEOL+1, true)
		}
	}
	if eol > 0 {
		s.nEOL++
		s.prevEOLEnd = s.lastEOLEnd
		s.lastEOLEnd = end
		s.lastEOLLen = eol
	}
	s.lineLen = 0
	s.wantPrefix = false
}

// matchDelimiter reports whether line is "--boundary" or "--boundary--",
// followed only by white space.
func matchDelimiter(line, boundary []byte) (closing, ok bool) {
	if len(line) < 2+len(boundary) || line[0] != '-' || line[1] != '-' || !bytes.Equal(line[2:2+len(boundary)], boundary) {
		return false, false
	}
	rest := line[2+len(boundary):]
	if len(rest) >= 2 && rest[0] == '-' && rest[1] == '-' {
		closing = true
		rest = rest[2:]
	}
	for _, c := range rest {
		if !isWS(c) {
			return false, false
		}
	}
	return closing, true
}

// eolCountAt returns the number of line breaks ending at or before pos, for
// pos no earlier than the end of the line break before the last one.
func (s *Scanner) eolCountAt(pos int64) int64 {
	if s.lastEOLEnd >= 0 && pos < s.lastEOLEnd {
		return s.nEOL - 1
	}
	return s.nEOL
}

// delimiter handles a delimiter line of the multipart at stack[k] that
// spans [start, end).
func (s *Scanner) delimiter(k int, closing bool, start, end, eol int64) {
	e := start
	if s.lastEOLEnd == start && s.nEOL > 0 {
		e = start - s.lastEOLLen
	}
	// The line break before this delimiter may be one that also ended an
	// inner delimiter line or an inner header ("--inner\r\n--outer",
	// "--inner\r\n\r\n--outer"): the deepest part open starts (or its
	// body starts) after it, and every part closed here must end no
	// earlier than that part does.
	if top := s.top(); len(s.stack)-1 > k {
		lo := top.p.HeaderOffset
		if top.kind != fHeader {
			lo = top.p.BodyOffset
		}
		e = max(e, lo)
	}
	for i := len(s.stack) - 1; i > k; i-- {
		s.finish(s.stack[i], e)
		s.stack[i] = nil
	}
	s.stack = s.stack[:k+1]
	f := s.stack[k]
	if closing {
		f.closed = true
		return
	}
	bodyEOL := s.nEOL
	if eol > 0 {
		bodyEOL++
	}
	parent := f.p
	parent.Children = append(parent.Children, Part{HeaderOffset: end})
	child := &parent.Children[len(parent.Children)-1]
	s.nparts++
	if s.nparts >= s.lim.MaxParts {
		// The last part we may record: the rest of this multipart, up to
		// its close delimiter, is one opaque leaf.
		s.st.Limited = true
		f.noMore = true
		child.Type, child.Subtype, child.Encoding = "application", "octet-stream", "7bit"
		child.BodyOffset = end
		s.stack = append(s.stack, &frame{p: child, kind: fLeaf, depth: f.depth + 1, bodyEOL: bodyEOL})
		return
	}
	s.stack = append(s.stack, &frame{p: child, kind: fHeader, depth: f.depth + 1, parentDigest: f.digest})
}

// endHeader ends the header of f at bodyOff; with descend, a multipart or
// message part is entered, otherwise it stays a leaf.
func (s *Scanner) endHeader(f *frame, bodyOff, bodyEOL int64, descend bool) {
	p := f.p
	h := parseHeader(f.hdr, f.hdrOver)
	f.hdr = nil
	p.BodyOffset = bodyOff
	f.bodyEOL = bodyEOL
	fillPart(p, &h, f.parentDigest)
	if f.message {
		*f.env = parseEnvelope(&h)
	}
	f.kind = fLeaf
	switch {
	case p.Type == "multipart":
		b := paramValue(p.Params, "boundary")
		if b == "" || len(b) > maxBoundary {
			// No usable boundary: the body cannot be split; RFC 2046
			// gives no rule, so do what most servers do.
			setTextPlain(p)
			return
		}
		if !descend {
			return // finish turns it into text/plain: no children
		}
		if f.depth+1 >= s.lim.MaxDepth || s.nparts >= s.lim.MaxParts {
			s.st.Limited = true
			setOpaque(p)
			return
		}
		f.kind = fMulti
		f.boundary = []byte(b)
		f.digest = p.Subtype == "digest"
	case p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") && identityEncoding(p.Encoding):
		if !descend {
			return // finish turns it into an opaque leaf: no child
		}
		if f.depth+1 >= s.lim.MaxDepth || s.nparts >= s.lim.MaxParts {
			s.st.Limited = true
			setOpaque(p)
			return
		}
		f.kind = fMessage
		p.Envelope = &Envelope{}
		p.Children = []Part{{HeaderOffset: bodyOff}}
		s.nparts++
		s.stack = append(s.stack, &frame{p: &p.Children[0], kind: fHeader, depth: f.depth + 1, message: true, env: p.Envelope, bodyEOL: bodyEOL})
	}
}

// finish closes f with its body ending at e (moved up to its body start if
// earlier).
func (s *Scanner) finish(f *frame, e int64) {
	p := f.p
	if f.kind == fHeader {
		bo := e
		if bo < p.HeaderOffset {
			bo = p.HeaderOffset
		}
		// Drop buffered bytes of the delimiter line that ended the header.
		if n := bo - p.HeaderOffset; n < int64(len(f.hdr)) {
			f.hdr = f.hdr[:n]
		}
		s.endHeader(f, bo, s.eolCountAt(bo), false)
	}
	if e < p.BodyOffset {
		e = p.BodyOffset
	}
	p.End = e
	p.Size = e - p.BodyOffset
	if p.Size > 0 {
		lines := s.eolCountAt(e) - f.bodyEOL
		last := s.lastEOLEnd
		if last > e {
			last = s.prevEOLEnd
		}
		if last < e {
			lines++ // a last line without a line break
		}
		if lines < 0 {
			lines = 0
		}
		p.Lines = lines
	}
	switch {
	case p.Type == "multipart" && len(p.Children) == 0:
		setTextPlain(p)
	case p.Type == "message" && p.Envelope == nil && (p.Subtype == "rfc822" || p.Subtype == "global"):
		setOpaque(p)
	}
}

func setTextPlain(p *Part) {
	p.Type, p.Subtype = "text", "plain"
	p.Params = []Param{{Name: "charset", Value: "us-ascii"}}
}

func setOpaque(p *Part) {
	p.Type, p.Subtype = "application", "octet-stream"
	p.Params = nil
}

func identityEncoding(enc string) bool {
	switch enc {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}
