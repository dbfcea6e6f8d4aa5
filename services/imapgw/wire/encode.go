package wire

import (
	"bufio"
	"io"
	"strconv"
)

// Encoder writes responses. Errors are sticky: check Err or Flush once at
// the end of a response.
type Encoder struct {
	w   *bufio.Writer
	err error
	// UTF8 allows 8-bit UTF-8 in quoted strings (IMAP4rev2, UTF8=ACCEPT);
	// otherwise 8-bit text goes out as a literal.
	UTF8 bool
}

// NewEncoder returns an encoder writing to w.
func NewEncoder(w *bufio.Writer) *Encoder { return &Encoder{w: w} }

// Err returns the first write error.
func (e *Encoder) Err() error { return e.err }

// Raw writes s as is.
func (e *Encoder) Raw(s string) *Encoder {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
	return e
}

// Byte writes one byte.
func (e *Encoder) Byte(b byte) *Encoder {
	if e.err == nil {
		e.err = e.w.WriteByte(b)
	}
	return e
}

// SP writes a space.
func (e *Encoder) SP() *Encoder { return e.Byte(' ') }

// Atom writes s, which the caller knows to be an atom (or a flag, or a
// keyword like NIL).
func (e *Encoder) Atom(s string) *Encoder { return e.Raw(s) }

// Number writes a decimal number.
func (e *Encoder) Number(n uint64) *Encoder {
	if e.err == nil {
		var buf [20]byte
		_, e.err = e.w.Write(strconv.AppendUint(buf[:0], n, 10))
	}
	return e
}

// NIL writes NIL.
func (e *Encoder) NIL() *Encoder { return e.Raw("NIL") }

// Open writes "(".
func (e *Encoder) Open() *Encoder { return e.Byte('(') }

// Close writes ")".
func (e *Encoder) Close() *Encoder { return e.Byte(')') }

// CRLF ends a line.
func (e *Encoder) CRLF() *Encoder { return e.Raw("\r\n") }

// quotable reports whether s can go out as a quoted string.
func (e *Encoder) quotable(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 || c == '\r' || c == '\n' || (c >= 0x80 && !e.UTF8) {
			return false
		}
	}
	return true
}

// String writes s as a quoted string, or as a literal when it cannot be
// quoted.
func (e *Encoder) String(s string) *Encoder {
	if !e.quotable(s) {
		return e.LiteralString(s)
	}
	e.Byte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			e.Byte('\\')
		}
		e.Byte(c)
	}
	return e.Byte('"')
}

// AString writes s as an atom when it is one, else as a string.
func (e *Encoder) AString(s string) *Encoder {
	if s != "" && len(s) < 256 && !equalFoldNIL(s) {
		atom := true
		for i := 0; i < len(s); i++ {
			if !isAtomChar(s[i]) && s[i] != ']' {
				atom = false
				break
			}
		}
		if atom {
			return e.Raw(s)
		}
	}
	return e.String(s)
}

func equalFoldNIL(s string) bool {
	return len(s) == 3 && (s[0]|0x20) == 'n' && (s[1]|0x20) == 'i' && (s[2]|0x20) == 'l'
}

// NString writes s, or NIL when s is empty.
func (e *Encoder) NString(s string) *Encoder {
	if s == "" {
		return e.NIL()
	}
	return e.String(s)
}

// LiteralString writes s as a literal.
func (e *Encoder) LiteralString(s string) *Encoder {
	e.Byte('{').Number(uint64(len(s))).Raw("}\r\n")
	return e.Raw(s)
}

// Literal writes a literal of n bytes from r; binary makes it a literal8
// (~{n}). It copies exactly n bytes; a short reader is an error, and the
// connection must then be closed, since the client counts bytes.
func (e *Encoder) Literal(n int64, r io.Reader, binary bool) *Encoder {
	if binary {
		e.Byte('~')
	}
	e.Byte('{').Number(uint64(n)).Raw("}\r\n")
	if e.err == nil {
		_, e.err = io.CopyN(e.w, r, n)
	}
	return e
}

// Flush sends what is buffered.
func (e *Encoder) Flush() error {
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}
