package sieve

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token of RFC 5228 section 8.1.
type tokKind int

const (
	tokEOF        tokKind = iota
	tokIdentifier         // fileinto
	tokTag                // :is (text holds the name without the colon)
	tokNumber             // 10K (num holds the value with the quantifier applied)
	tokString             // "quoted" or text: multi-line
	tokLBracket           // [
	tokRBracket           // ]
	tokLBrace             // {
	tokRBrace             // }
	tokLParen             // (
	tokRParen             // )
	tokComma              // ,
	tokSemicolon          // ;
)

func (k tokKind) String() string {
	switch k {
	case tokEOF:
		return "end of script"
	case tokIdentifier:
		return "identifier"
	case tokTag:
		return "tag"
	case tokNumber:
		return "number"
	case tokString:
		return "string"
	case tokLBracket:
		return `"["`
	case tokRBracket:
		return `"]"`
	case tokLBrace:
		return `"{"`
	case tokRBrace:
		return `"}"`
	case tokLParen:
		return `"("`
	case tokRParen:
		return `")"`
	case tokComma:
		return `","`
	case tokSemicolon:
		return `";"`
	}
	return "token"
}

var punctuation = map[byte]tokKind{
	'[': tokLBracket, ']': tokRBracket, '{': tokLBrace, '}': tokRBrace,
	'(': tokLParen, ')': tokRParen, ',': tokComma, ';': tokSemicolon,
}

// pos is a 1-based line and column; columns count characters, not bytes.
type pos struct{ line, col int }

type token struct {
	kind tokKind
	pos  pos
	text string
	num  int64
}

// maxNumber bounds numbers (after K/M/G) so that size comparisons cannot
// overflow; RFC 5228 only asks for 2^31-1.
const maxNumber = math.MaxInt64 / 2

// lexer turns a script into tokens. It never panics on any input; every
// failure is a *SyntaxError with the position of the offending character.
type lexer struct {
	src       []byte
	off       int
	line, col int
}

func newLexer(src []byte) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) errAt(p pos, format string, args ...any) error {
	return &SyntaxError{Line: p.line, Column: p.col, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) here() pos { return pos{l.line, l.col} }

// advance moves past one byte, keeping line and column (in characters).
func (l *lexer) advance() {
	c := l.src[l.off]
	l.off++
	switch {
	case c == '\n':
		l.line++
		l.col = 1
	case c&0xC0 == 0x80: // UTF-8 continuation byte: same character
	default:
		l.col++
	}
}

func (l *lexer) peekByte(i int) (byte, bool) {
	if l.off+i < len(l.src) {
		return l.src[l.off+i], true
	}
	return 0, false
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipSpace skips white space and both comment forms.
func (l *lexer) skipSpace() error {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.advance()
		case c == '#':
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.advance()
			}
		case c == '/':
			if n, _ := l.peekByte(1); n != '*' {
				return l.errAt(l.here(), `unexpected character "/"`)
			}
			start := l.here()
			l.advance()
			l.advance()
			for {
				if l.off >= len(l.src) {
					return l.errAt(start, "unterminated comment")
				}
				if l.src[l.off] == '*' {
					if n, _ := l.peekByte(1); n == '/' {
						l.advance()
						l.advance()
						break
					}
				}
				l.advance()
			}
		default:
			return nil
		}
	}
	return nil
}

// next returns the next token.
func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	p := l.here()
	if l.off >= len(l.src) {
		return token{kind: tokEOF, pos: p}, nil
	}
	c := l.src[l.off]
	if k, ok := punctuation[c]; ok {
		l.advance()
		return token{kind: k, pos: p}, nil
	}
	switch {
	case c == '"':
		return l.quoted(p)
	case c == ':':
		l.advance()
		if l.off >= len(l.src) || !(isAlpha(l.src[l.off]) || l.src[l.off] == '_') {
			return token{}, l.errAt(p, `expected a tag name after ":"`)
		}
		return token{kind: tokTag, pos: p, text: l.identifier()}, nil
	case isDigit(c):
		return l.number(p)
	case isAlpha(c) || c == '_':
		id := l.identifier()
		if strings.EqualFold(id, "text") && l.off < len(l.src) && l.src[l.off] == ':' {
			l.advance()
			return l.multiline(p)
		}
		return token{kind: tokIdentifier, pos: p, text: id}, nil
	}
	r, _ := utf8.DecodeRune(l.src[l.off:])
	return token{}, l.errAt(p, "unexpected character %q", r)
}

func (l *lexer) identifier() string {
	start := l.off
	for l.off < len(l.src) {
		c := l.src[l.off]
		if !(isAlpha(c) || isDigit(c) || c == '_') {
			break
		}
		l.advance()
	}
	return string(l.src[start:l.off])
}

func (l *lexer) number(p pos) (token, error) {
	var n int64
	for l.off < len(l.src) && isDigit(l.src[l.off]) {
		n = n*10 + int64(l.src[l.off]-'0')
		if n > maxNumber {
			return token{}, l.errAt(p, "number too large")
		}
		l.advance()
	}
	if l.off < len(l.src) {
		mult := int64(1)
		switch l.src[l.off] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M', 'm':
			mult = 1 << 20
		case 'G', 'g':
			mult = 1 << 30
		}
		if mult > 1 {
			if n > maxNumber/mult {
				return token{}, l.errAt(p, "number too large")
			}
			n *= mult
			l.advance()
		}
		if l.off < len(l.src) && (isAlpha(l.src[l.off]) || isDigit(l.src[l.off]) || l.src[l.off] == '_') {
			return token{}, l.errAt(l.here(), "unexpected character %q after number", rune(l.src[l.off]))
		}
	}
	return token{kind: tokNumber, pos: p, num: n}, nil
}

// quoted reads a quoted string: "\" followed by any character stands for
// that character (RFC 5228 section 2.4.2).
func (l *lexer) quoted(p pos) (token, error) {
	l.advance() // opening quote
	var b strings.Builder
	for {
		if l.off >= len(l.src) {
			return token{}, l.errAt(p, "unterminated string")
		}
		c := l.src[l.off]
		switch c {
		case '"':
			l.advance()
			return token{kind: tokString, pos: p, text: b.String()}, nil
		case '\\':
			l.advance()
			if l.off >= len(l.src) {
				return token{}, l.errAt(p, "unterminated string")
			}
			c = l.src[l.off]
		}
		b.WriteByte(c)
		l.advance()
	}
}

// multiline reads the rest of a "text:" string: optional white space and
// an optional hash comment up to the line end, then lines up to a line
// holding a lone ".", with a leading ".." standing for "." (dot-stuffing).
func (l *lexer) multiline(p pos) (token, error) {
	for l.off < len(l.src) && (l.src[l.off] == ' ' || l.src[l.off] == '\t') {
		l.advance()
	}
	if l.off < len(l.src) && l.src[l.off] == '#' {
		for l.off < len(l.src) && l.src[l.off] != '\n' {
			l.advance()
		}
	}
	if l.off < len(l.src) && l.src[l.off] == '\r' {
		l.advance()
	}
	if l.off >= len(l.src) || l.src[l.off] != '\n' {
		return token{}, l.errAt(l.here(), `expected a line break after "text:"`)
	}
	l.advance()
	var b strings.Builder
	for {
		if l.off >= len(l.src) {
			return token{}, l.errAt(p, `unterminated multi-line string (missing "." line)`)
		}
		start := l.off
		end := start
		for end < len(l.src) && l.src[end] != '\n' {
			end++
		}
		line := l.src[start:end]
		hasNL := end < len(l.src)
		content := line
		if len(content) > 0 && content[len(content)-1] == '\r' {
			content = content[:len(content)-1]
		}
		for l.off < end {
			l.advance()
		}
		if hasNL {
			l.advance()
		}
		if string(content) == "." {
			if !hasNL {
				return token{}, l.errAt(l.here(), `expected a line break after the closing "."`)
			}
			return token{kind: tokString, pos: p, text: b.String()}, nil
		}
		if !hasNL {
			return token{}, l.errAt(p, `unterminated multi-line string (missing "." line)`)
		}
		if len(content) > 0 && content[0] == '.' {
			content = content[1:]
		}
		b.Write(content)
		b.WriteString("\r\n")
	}
}

// checkUTF8 rejects a script that is not UTF-8 (RFC 5228 section 2.1),
// pointing at the first bad byte.
func checkUTF8(src []byte) error {
	l := newLexer(src)
	for l.off < len(src) {
		r, n := utf8.DecodeRune(src[l.off:])
		if r == utf8.RuneError && n <= 1 {
			return l.errAt(l.here(), "script is not valid UTF-8")
		}
		if r == 0 {
			return l.errAt(l.here(), "NUL character in script")
		}
		for i := 0; i < n; i++ {
			l.advance()
		}
	}
	return nil
}
