// Package wire reads and writes the IMAP wire syntax (RFC 9051 and RFC
// 3501 section 9): a pull decoder for commands that streams literals, with
// synchronizing, non-synchronizing (LITERAL+/LITERAL-) and binary (~{n})
// literals and limits on line and literal length; and an encoder for
// responses that picks atoms, quoted strings or literals as needed.
//
// The decoder never reads past the current command's line except into a
// literal the caller asked for, so a command handler decides, argument by
// argument, what to accept.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SyntaxError is a malformed command; the session answers BAD with it.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

func syntaxf(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// ErrLineTooLong: a command line exceeded the limit. The rest of the line
// is unknown, so the connection should be closed after answering.
var ErrLineTooLong = errors.New("command line too long")

// LiteralTooLargeError: a literal announced more bytes than allowed. For a
// synchronizing literal nothing was sent yet and the session may go on;
// for a non-synchronizing one the bytes follow and NonSync says so.
type LiteralTooLargeError struct {
	Size, Max int64
	NonSync   bool
}

func (e *LiteralTooLargeError) Error() string {
	return fmt.Sprintf("literal of %d bytes exceeds the limit of %d", e.Size, e.Max)
}

// Literal describes a literal header read by LiteralHeader.
type Literal struct {
	Size    int64
	Binary  bool // ~{n}: may hold NUL (RFC 3516)
	NonSync bool // {n+}: the data follows without a continuation
}

// Decoder reads commands.
type Decoder struct {
	r *bufio.Reader
	// Continue is called before the data of a synchronizing literal is
	// read; it sends the "+" continuation request.
	Continue func() error
	// MaxLine bounds the bytes of a command outside literals.
	MaxLine int
	// MaxLiteral bounds a literal read whole into memory (String, AString).
	MaxLiteral int64
	line       int  // bytes of the current line so far
	eol        bool // the last thing read was the end of a line
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r *bufio.Reader) *Decoder {
	return &Decoder{r: r, MaxLine: 64 << 10, MaxLiteral: 64 << 10}
}

// Reset starts a new command line.
func (d *Decoder) Reset() { d.line, d.eol = 0, false }

func (d *Decoder) readByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		return 0, err
	}
	d.line++
	d.eol = false
	if d.MaxLine > 0 && d.line > d.MaxLine {
		return 0, ErrLineTooLong
	}
	return b, nil
}

func (d *Decoder) unreadByte() {
	_ = d.r.UnreadByte()
	d.line--
}

// Peek returns the next byte without consuming it.
func (d *Decoder) Peek() (byte, error) {
	b, err := d.r.Peek(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// PeekIs reports whether the next byte is c.
func (d *Decoder) PeekIs(c byte) bool {
	b, err := d.Peek()
	return err == nil && b == c
}

// Expect consumes the byte c or fails.
func (d *Decoder) Expect(c byte) error {
	b, err := d.readByte()
	if err != nil {
		return err
	}
	if b != c {
		d.unreadByte()
		return syntaxf("expected %q, got %q", c, b)
	}
	return nil
}

// SP consumes one space.
func (d *Decoder) SP() error { return d.Expect(' ') }

// AtEOL reports whether the line ends here (CRLF, or a bare LF, which is
// accepted from lenient clients).
func (d *Decoder) AtEOL() bool {
	b, err := d.Peek()
	return err == nil && (b == '\r' || b == '\n')
}

// CRLF consumes the end of the line.
func (d *Decoder) CRLF() error {
	b, err := d.readByte()
	if err != nil {
		return err
	}
	if b == '\r' {
		if b, err = d.readByte(); err != nil {
			return err
		}
	}
	if b != '\n' {
		d.unreadByte()
		return syntaxf("expected end of line, got %q", b)
	}
	d.eol = true
	return nil
}

// SkipLine discards the rest of the line (after an error), without
// honouring literals: a client that sent a bad command gets BAD and its
// pending non-synchronizing literal bytes are read as lines, which is what
// other servers do too. It fails on over-long lines, and does nothing when
// the line was already read to its end.
func (d *Decoder) SkipLine() error {
	if d.eol {
		return nil // the line was read to its end already
	}
	for {
		b, err := d.readByte()
		if err != nil {
			return err
		}
		if b == '\n' {
			d.eol = true
			return nil
		}
	}
}

// isAtomChar: ATOM-CHAR of RFC 9051, i.e. not "(){ %*\"\\]" nor CTL nor
// SP; resp-specials ']' is excluded from atoms but allowed in ASTRING.
func isAtomChar(b byte) bool {
	if b <= ' ' || b >= 0x7f {
		return false
	}
	switch b {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// readWhile reads bytes while ok holds.
func (d *Decoder) readWhile(ok func(byte) bool) (string, error) {
	var sb strings.Builder
	for {
		b, err := d.readByte()
		if err != nil {
			if errors.Is(err, io.EOF) && sb.Len() > 0 {
				return sb.String(), nil
			}
			return "", err
		}
		if !ok(b) {
			d.unreadByte()
			return sb.String(), nil
		}
		sb.WriteByte(b)
	}
}

// Atom reads an atom.
func (d *Decoder) Atom() (string, error) {
	s, err := d.readWhile(isAtomChar)
	if err != nil {
		return "", err
	}
	if s == "" {
		b, _ := d.Peek()
		return "", syntaxf("expected an atom, got %q", b)
	}
	return s, nil
}

// Tag reads a command tag (astring chars except '+').
func (d *Decoder) Tag() (string, error) {
	s, err := d.readWhile(func(b byte) bool { return (isAtomChar(b) || b == ']') && b != '+' })
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", syntaxf("missing tag")
	}
	return s, nil
}

// Word reads bytes up to a space, a parenthesis or the end of line; used
// for sequence sets, fetch attributes with sections and other tokens whose
// characters go beyond atoms. Brackets nest: "BODY[HEADER.FIELDS (A B)]"
// is one word.
func (d *Decoder) Word() (string, error) {
	var sb strings.Builder
	depth := 0
	for {
		b, err := d.readByte()
		if err != nil {
			if errors.Is(err, io.EOF) && sb.Len() > 0 {
				return sb.String(), nil
			}
			return "", err
		}
		switch {
		case b == '[':
			depth++
		case b == ']' && depth > 0:
			depth--
		case b == '\r' || b == '\n' || (depth == 0 && (b == ' ' || b == ')' || b == '(')):
			d.unreadByte()
			if sb.Len() == 0 {
				return "", syntaxf("expected a token, got %q", b)
			}
			return sb.String(), nil
		case b < ' ' || b == 0x7f:
			d.unreadByte()
			return "", syntaxf("control character in token")
		}
		sb.WriteByte(b)
	}
}

// Number reads an unsigned 32-bit number.
func (d *Decoder) Number() (uint32, error) {
	n, err := d.Number64()
	if err != nil {
		return 0, err
	}
	if n > 0xffffffff {
		return 0, syntaxf("number %d out of range", n)
	}
	return uint32(n), nil
}

// Number64 reads an unsigned 63-bit number (mod-sequence values).
func (d *Decoder) Number64() (uint64, error) {
	s, err := d.readWhile(func(b byte) bool { return b >= '0' && b <= '9' })
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, syntaxf("expected a number")
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, syntaxf("number %s out of range", s)
	}
	return n, nil
}

// Quoted reads a quoted string (the opening quote not yet consumed).
func (d *Decoder) Quoted() (string, error) {
	if err := d.Expect('"'); err != nil {
		return "", err
	}
	var sb strings.Builder
	for {
		b, err := d.readByte()
		if err != nil {
			return "", err
		}
		switch b {
		case '"':
			return sb.String(), nil
		case '\\':
			if b, err = d.readByte(); err != nil {
				return "", err
			}
			if b != '"' && b != '\\' {
				return "", syntaxf("bad escape in quoted string")
			}
		case '\r', '\n':
			d.unreadByte()
			return "", syntaxf("unterminated quoted string")
		}
		sb.WriteByte(b)
	}
}

// LiteralHeader reads "{n}", "{n+}" or "~{n}" and the CRLF after it. It
// does not call Continue: the caller checks the size first.
func (d *Decoder) LiteralHeader() (Literal, error) {
	var lit Literal
	if d.PeekIs('~') {
		_ = d.Expect('~')
		lit.Binary = true
	}
	if err := d.Expect('{'); err != nil {
		return lit, err
	}
	n, err := d.Number64()
	if err != nil {
		return lit, err
	}
	lit.Size = int64(n)
	if d.PeekIs('+') {
		_ = d.Expect('+')
		lit.NonSync = true
	}
	if err := d.Expect('}'); err != nil {
		return lit, err
	}
	if err := d.CRLF(); err != nil {
		return lit, err
	}
	return lit, nil
}

// StartLiteral is called after LiteralHeader when the caller accepts the
// literal: it sends the continuation for a synchronizing literal.
func (d *Decoder) StartLiteral(lit Literal) error {
	if !lit.NonSync && d.Continue != nil {
		return d.Continue()
	}
	return nil
}

// LiteralReader returns a reader of the next n bytes (the literal data);
// the caller must read it to the end before decoding further. The line
// length count starts again after it.
func (d *Decoder) LiteralReader(n int64) io.Reader {
	d.line, d.eol = 0, false
	return io.LimitReader(d.r, n)
}

// DiscardLiteral skips n bytes of a literal that was refused but is coming
// anyway (non-synchronizing).
func (d *Decoder) DiscardLiteral(n int64) error {
	_, err := io.CopyN(io.Discard, d.r, n)
	d.line, d.eol = 0, false
	return err
}

// literal reads a whole literal into memory, within MaxLiteral.
func (d *Decoder) literal() (string, error) {
	lit, err := d.LiteralHeader()
	if err != nil {
		return "", err
	}
	if d.MaxLiteral > 0 && lit.Size > d.MaxLiteral {
		return "", &LiteralTooLargeError{Size: lit.Size, Max: d.MaxLiteral, NonSync: lit.NonSync}
	}
	if err := d.StartLiteral(lit); err != nil {
		return "", err
	}
	buf := make([]byte, lit.Size)
	if _, err := io.ReadFull(d.r, buf); err != nil {
		return "", err
	}
	d.line, d.eol = 0, false
	if !lit.Binary {
		for _, b := range buf {
			if b == 0 {
				return "", syntaxf("NUL in a literal")
			}
		}
	}
	return string(buf), nil
}

// String reads a quoted string or a literal.
func (d *Decoder) String() (string, error) {
	b, err := d.Peek()
	if err != nil {
		return "", err
	}
	switch b {
	case '"':
		return d.Quoted()
	case '{', '~':
		return d.literal()
	}
	return "", syntaxf("expected a string, got %q", b)
}

// AString reads an atom (with ']' allowed) or a string.
func (d *Decoder) AString() (string, error) {
	b, err := d.Peek()
	if err != nil {
		return "", err
	}
	if b == '"' || b == '{' || b == '~' {
		return d.String()
	}
	s, err := d.readWhile(func(b byte) bool { return isAtomChar(b) || b == ']' })
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", syntaxf("expected an atom or string, got %q", b)
	}
	return s, nil
}

// ListMailbox reads a LIST pattern: list-char atoms (with % and *) or a
// string.
func (d *Decoder) ListMailbox() (string, error) {
	b, err := d.Peek()
	if err != nil {
		return "", err
	}
	if b == '"' || b == '{' || b == '~' {
		return d.String()
	}
	s, err := d.readWhile(func(b byte) bool { return isAtomChar(b) || b == ']' || b == '%' || b == '*' })
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", syntaxf("expected a mailbox pattern, got %q", b)
	}
	return s, nil
}

// NString reads a string or NIL; ok is false for NIL.
func (d *Decoder) NString() (s string, ok bool, err error) {
	b, err := d.Peek()
	if err != nil {
		return "", false, err
	}
	if b == 'N' || b == 'n' {
		a, err := d.Atom()
		if err != nil {
			return "", false, err
		}
		if !strings.EqualFold(a, "NIL") {
			return "", false, syntaxf("expected NIL or a string, got %q", a)
		}
		return "", false, nil
	}
	s, err = d.String()
	return s, err == nil, err
}

// List reads "(" item *(SP item) ")" calling item for each; "()" calls it
// never.
func (d *Decoder) List(item func() error) error {
	if err := d.Expect('('); err != nil {
		return err
	}
	if d.PeekIs(')') {
		return d.Expect(')')
	}
	for {
		if err := item(); err != nil {
			return err
		}
		b, err := d.readByte()
		if err != nil {
			return err
		}
		switch b {
		case ')':
			return nil
		case ' ':
		default:
			d.unreadByte()
			return syntaxf("expected space or ')' in a list, got %q", b)
		}
	}
}

// ListOrOne reads a parenthesized list or a single item (as FETCH and
// STATUS-like grammars allow).
func (d *Decoder) ListOrOne(item func() error) error {
	if d.PeekIs('(') {
		return d.List(item)
	}
	return item()
}

// Flag reads a flag: a keyword atom or "\" atom (including "\*" where a
// PERMANENTFLAGS-like grammar allows it; callers validate).
func (d *Decoder) Flag() (string, error) {
	if d.PeekIs('\\') {
		_ = d.Expect('\\')
		if d.PeekIs('*') {
			_ = d.Expect('*')
			return `\*`, nil
		}
		a, err := d.Atom()
		if err != nil {
			return "", err
		}
		return `\` + a, nil
	}
	return d.Atom()
}
