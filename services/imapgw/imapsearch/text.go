package imapsearch

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	stdmime "mime"
	"mime/quotedprintable"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/mailstore/mailstore/pkg/mime"
)

// fold maps s for case-insensitive matching: each rune to lower case
// (a simple per-rune case map, applied alike to patterns and text);
// invalid UTF-8 bytes are kept.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
			return string(appendFold(make([]byte, 0, len(s)), []byte(s)))
		}
	}
	return s
}

func appendFold(dst, p []byte) []byte {
	for len(p) > 0 {
		if c := p[0]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			p = p[1:]
			continue
		}
		r, size := utf8.DecodeRune(p)
		if r == utf8.RuneError && size <= 1 {
			dst = append(dst, p[0])
			p = p[1:]
			continue
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		p = p[size:]
	}
	return dst
}

var wordDecoder = &stdmime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(cs string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(cs) {
	case "", "utf-8", "utf8", "us-ascii":
		return r, nil
	}
	return charset.Reader(cs, r)
}

// decodeHeader decodes the RFC 2047 encoded words of a header value to
// UTF-8, leaving it as is when they are malformed.
func decodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

type headerField struct{ name, value string }

// parseHeaderFields splits a header into unfolded fields, leniently:
// lines without a colon are skipped.
func parseHeaderFields(h []byte) []headerField {
	var out []headerField
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i], h[i+1:]
		} else {
			h = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // end of header
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].value += string(line)
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		out = append(out, headerField{
			name:  string(bytes.TrimRight(name, " \t")),
			value: string(bytes.TrimLeft(value, " \t")),
		})
	}
	return out
}

// chunkSize is the read size of text matching; a variable for tests.
var chunkSize = 32 << 10

// maxHeaderField bounds the bytes of one header field buffered for
// decoding during TEXT; longer fields are matched in pieces.
const maxHeaderField = 64 << 10

// matcher finds a folded needle in a stream of UTF-8 text with a rolling
// window: it keeps only the last len(needle)-1 bytes of folded text and
// the bytes of a rune cut by a chunk boundary.
type matcher struct {
	needle []byte
	window []byte
	pend   []byte
	buf    []byte
	found  bool
}

func newMatcher(needle string) *matcher { return &matcher{needle: []byte(needle)} }

func (m *matcher) Write(p []byte) (int, error) {
	if m.found || len(p) == 0 {
		return len(p), nil
	}
	data := p
	if len(m.pend) > 0 {
		data = append(append([]byte(nil), m.pend...), p...)
		m.pend = m.pend[:0]
	}
	cut := len(data)
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	m.pend = append(m.pend, data[cut:]...)
	m.search(data[:cut])
	return len(p), nil
}

func (m *matcher) search(text []byte) {
	m.buf = appendFold(append(m.buf[:0], m.window...), text)
	if bytes.Contains(m.buf, m.needle) {
		m.found = true
		return
	}
	keep := min(len(m.needle)-1, len(m.buf))
	m.window = append(m.window[:0], m.buf[len(m.buf)-keep:]...)
}

// end finishes a run of text (a part): a match never spans two parts.
func (m *matcher) end() {
	if len(m.pend) > 0 && !m.found {
		m.search(m.pend)
	}
	m.pend, m.window = m.pend[:0], m.window[:0]
}

// segment is a byte range of the message to match: a header block
// (unfolded, encoded words decoded) or a text body (transfer-decoded,
// converted to UTF-8).
type segment struct {
	start, end int64
	header     bool
	encoding   string
	charset    string
}

// textSegments lists, in stream order, what BODY (or TEXT, with the top
// header) matches: text parts, and the headers of encapsulated messages,
// which are body text of the outer one. Other leaves (images, archives)
// are skipped.
func textSegments(st *mime.Structure, withHeader bool) []segment {
	var segs []segment
	if withHeader {
		segs = append(segs, segment{start: 0, end: st.HeaderSize, header: true})
	}
	var walk func(p *mime.Part, depth int)
	walk = func(p *mime.Part, depth int) {
		if depth > mime.DefaultMaxDepth*2 {
			return
		}
		switch {
		case p.IsMultipart():
			for i := range p.Children {
				walk(&p.Children[i], depth+1)
			}
		case p.IsMessage():
			c := &p.Children[0]
			segs = append(segs, segment{start: c.HeaderOffset, end: c.BodyOffset, header: true})
			walk(c, depth+1)
		case p.Type == "text" || p.Type == "":
			cs := ""
			for _, prm := range p.Params {
				if prm.Name == "charset" {
					cs = prm.Value
				}
			}
			segs = append(segs, segment{start: p.BodyOffset, end: p.End, encoding: p.Encoding, charset: cs})
		}
	}
	walk(&st.Root, 0)
	return segs
}

// errTextLimit: the bytes read for one message reached MaxTextBytes.
var errTextLimit = errors.New("text search byte limit reached")

// countingReader counts the bytes read from the message stream, stops at
// the limit, and remembers a read error so that it is told apart from a
// decoding error (which only ends one part).
type countingReader struct {
	r    io.Reader
	n    int64
	max  int64
	err  error
	stop bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.stop {
		return 0, errTextLimit
	}
	if c.max > 0 && int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
		if len(p) == 0 {
			c.stop = true
			return 0, errTextLimit
		}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// matchText reports whether the folded needle occurs in the body text
// (or the whole text, with the header) of the message, streaming it.
func (e *msgEval) matchText(needle string, withHeader bool) (bool, error) {
	if needle == "" {
		return true, nil
	}
	rc, err := e.acc.Body(e.ctx, e.m)
	if err != nil {
		return false, fmt.Errorf("read body: %w", err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc, max: e.p.maxTextBytes}
	var segs []segment
	if st := e.m.Structure; st != nil {
		segs = textSegments(st, withHeader)
	} else {
		segs = []segment{{start: 0, end: 1<<63 - 1}}
	}
	m := newMatcher(needle)
	buf := make([]byte, chunkSize)
	var pos int64
	for _, seg := range segs {
		if seg.start < pos || seg.end <= seg.start {
			continue
		}
		if _, err := io.CopyBuffer(io.Discard, io.LimitReader(cr, seg.start-pos), buf); err != nil && cr.err == nil && !cr.stop {
			return false, fmt.Errorf("read body: %w", err)
		}
		lr := &io.LimitedReader{R: cr, N: seg.end - seg.start}
		if err := e.feed(seg, lr, m, buf); err != nil {
			return false, err
		}
		if m.found {
			return true, nil
		}
		if cr.err != nil {
			return false, fmt.Errorf("read body: %w", cr.err)
		}
		if cr.stop {
			return false, nil
		}
		if _, err := io.CopyBuffer(io.Discard, lr, buf); err != nil && cr.err == nil && !cr.stop {
			return false, fmt.Errorf("read body: %w", err)
		}
		if cr.err != nil {
			return false, fmt.Errorf("read body: %w", cr.err)
		}
		pos = seg.end
	}
	return false, nil
}

// feed decodes one segment into the matcher. Decoding errors end the
// segment quietly: a broken part simply does not match further.
func (e *msgEval) feed(seg segment, r io.Reader, m *matcher, buf []byte) error {
	defer m.end()
	if seg.header {
		return e.feedHeader(r, m)
	}
	var src io.Reader = r
	switch seg.encoding {
	case "base64":
		src = base64.NewDecoder(base64.StdEncoding, &base64Filter{r: r})
	case "quoted-printable":
		src = quotedprintable.NewReader(r)
	}
	if cr, err := charsetReader(seg.charset, src); err == nil && cr != nil {
		src = cr
	}
	for {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(buf)
		_, _ = m.Write(buf[:n])
		if m.found || err != nil {
			return nil
		}
	}
}

// feedHeader matches a header block field by field, unfolded and with
// encoded words decoded; fields longer than maxHeaderField go in pieces.
func (e *msgEval) feedHeader(r io.Reader, m *matcher) error {
	br := bufio.NewReaderSize(r, 4096)
	var field []byte
	flush := func() {
		if len(field) > 0 {
			_, _ = m.Write([]byte(decodeHeader(string(field))))
			_, _ = m.Write([]byte{'\n'})
		}
		field = field[:0]
	}
	midLine := false
	for !m.found {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		line, err := br.ReadSlice('\n')
		full := len(line) > 0 && line[len(line)-1] == '\n'
		content := bytes.TrimRight(line, "\r\n")
		switch {
		case midLine:
			field = append(field, content...)
		case len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
			field = append(field, content...)
		default:
			flush()
			field = append(field, content...)
		}
		if len(field) > maxHeaderField {
			flush()
		}
		midLine = !full && err == bufio.ErrBufferFull
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	flush()
	return nil
}

// base64Filter drops what is not in the BASE64 alphabet (line breaks,
// stray spaces), as RFC 2045 section 6.8 asks decoders to.
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '+' || c == '/' || c == '=' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
