package imapbody

import (
	"bufio"
	"io"
)

// The decoders below are streaming and lenient, because BINARY must answer
// for whatever was stored: they never fail on the content, only on a read
// error. The standard library's base64 decoder stops at the first byte
// outside the alphabet and its quoted-printable reader at control bytes and
// long lines, both common in real mail.

// base64Reader decodes base64, skipping bytes outside the alphabet. A '='
// ends the current quantum (so concatenated encodings decode too); a last
// incomplete quantum yields its whole bytes.
type base64Reader struct {
	r    io.Reader
	in   [4096]byte
	out  [3080]byte // decoded bytes of one input buffer (at most 6/8 of 4096+3 sextets)
	o, m int        // out[o:m] is pending
	acc  uint32     // bits of the current quantum
	k    int        // sextets in acc
	err  error
}

var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

func newBase64Reader(r io.Reader) *base64Reader { return &base64Reader{r: r} }

func (b *base64Reader) Read(p []byte) (int, error) {
	for b.o == b.m {
		if b.err != nil {
			return 0, b.err
		}
		n, err := b.r.Read(b.in[:])
		b.o, b.m = 0, 0
		for _, c := range b.in[:n] {
			v := b64Value[c]
			if v == 0xff {
				if c == '=' {
					b.flush()
				}
				continue
			}
			b.acc = b.acc<<6 | uint32(v)
			b.k++
			if b.k == 4 {
				b.out[b.m] = byte(b.acc >> 16)
				b.out[b.m+1] = byte(b.acc >> 8)
				b.out[b.m+2] = byte(b.acc)
				b.m += 3
				b.acc, b.k = 0, 0
			}
		}
		if err != nil {
			b.flush()
			b.err = err
		}
	}
	n := copy(p, b.out[b.o:b.m])
	b.o += n
	return n, nil
}

// flush emits the whole bytes of an incomplete quantum.
func (b *base64Reader) flush() {
	switch b.k {
	case 2:
		b.out[b.m] = byte(b.acc >> 4)
		b.m++
	case 3:
		b.out[b.m] = byte(b.acc >> 10)
		b.out[b.m+1] = byte(b.acc >> 2)
		b.m += 2
	}
	b.acc, b.k = 0, 0
}

// qpReader decodes quoted-printable (RFC 2045 section 6.7): "=XX" (either
// case) is a byte, "=" followed by optional white space and a line break is
// a soft line break, white space before a hard line break is dropped, and
// everything else, an "=" that starts neither, bare CR and LF, 8-bit and
// control bytes included, passes through. Line breaks are kept as they are.
type qpReader struct {
	br  *bufio.Reader
	out []byte // decoded, not yet returned
	o   int
	ws  []byte // white space that may precede a line break
	err error
}

// maxPendingWS bounds the white space held back; past it, it cannot be
// trailing white space of any sane line and goes out.
const maxPendingWS = 1024

func newQPReader(r io.Reader) *qpReader {
	return &qpReader{br: bufio.NewReaderSize(r, 4096), out: make([]byte, 0, 4096)}
}

func (q *qpReader) Read(p []byte) (int, error) {
	for q.o == len(q.out) {
		if q.err != nil {
			return 0, q.err
		}
		q.out, q.o = q.out[:0], 0
		for len(q.out) < 4000 && q.err == nil {
			// Fast path: copy a run of bytes that decode to themselves.
			if buf, _ := q.br.Peek(q.br.Buffered()); len(buf) > 0 {
				i := 0
				for i < len(buf) && qpPlain(buf[i]) {
					i++
				}
				if i > 0 {
					q.flushWS()
					q.out = append(q.out, buf[:i]...)
					q.br.Discard(i)
					continue
				}
			}
			q.step()
		}
	}
	n := copy(p, q.out[q.o:])
	q.o += n
	return n, nil
}

func (q *qpReader) flushWS() {
	q.out = append(q.out, q.ws...)
	q.ws = q.ws[:0]
}

// step decodes the next input byte (with what it needs to look ahead).
func (q *qpReader) step() {
	c, err := q.br.ReadByte()
	if err != nil {
		q.ws = q.ws[:0] // trailing white space at the end
		q.err = err
		return
	}
	switch c {
	case ' ', '\t':
		q.ws = append(q.ws, c)
		if len(q.ws) > maxPendingWS {
			q.flushWS()
		}
	case '\n':
		q.ws = q.ws[:0]
		q.out = append(q.out, '\n')
	case '\r':
		if next, _ := q.br.Peek(1); len(next) == 1 && next[0] == '\n' {
			q.ws = q.ws[:0]
			q.br.ReadByte()
			q.out = append(q.out, '\r', '\n')
			return
		}
		q.flushWS()
		q.out = append(q.out, '\r')
	case '=':
		q.flushWS()
		if next, _ := q.br.Peek(2); len(next) == 2 && isHex(next[0]) && isHex(next[1]) {
			q.out = append(q.out, unhex(next[0])<<4|unhex(next[1]))
			q.br.Discard(2)
			return
		}
		if n := q.softBreak(); n >= 0 {
			q.br.Discard(n)
			return
		}
		q.out = append(q.out, '=')
	default:
		q.flushWS()
		q.out = append(q.out, c)
	}
}

// softBreak returns how many bytes after an '=' make a soft line break
// (white space, then CRLF, LF or the end of the data), or -1.
func (q *qpReader) softBreak() int {
	for i := 0; i < maxPendingWS; i++ {
		next, err := q.br.Peek(i + 1)
		if len(next) <= i {
			if err == io.EOF {
				return i
			}
			return -1
		}
		switch next[i] {
		case ' ', '\t':
			continue
		case '\n':
			return i + 1
		case '\r':
			if more, _ := q.br.Peek(i + 2); len(more) == i+2 && more[i+1] == '\n' {
				return i + 2
			}
		}
		return -1
	}
	return -1
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// qpPlain reports whether c decodes to itself whatever follows it.
func qpPlain(c byte) bool {
	return c != '=' && c != ' ' && c != '\t' && c != '\r' && c != '\n'
}
