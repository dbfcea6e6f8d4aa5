package imapbody

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a section fetch attribute returns.
type Kind uint8

const (
	// KindBody is BODY[...], BODY.PEEK[...], RFC822, RFC822.HEADER and
	// RFC822.TEXT: the bytes as stored.
	KindBody Kind = iota
	// KindBinary is BINARY[...] and BINARY.PEEK[...] (RFC 3516): a leaf
	// part's body with its Content-Transfer-Encoding decoded.
	KindBinary
	// KindBinarySize is BINARY.SIZE[...]: the decoded size only.
	KindBinarySize
)

// Text is the section-text (or section-msgtext) after the part number.
type Text uint8

const (
	// TextNone: the whole message (no part number) or a part's body.
	TextNone Text = iota
	// TextHeader: HEADER, the header of the message or of an
	// encapsulated message.
	TextHeader
	// TextHeaderFields: HEADER.FIELDS (list).
	TextHeaderFields
	// TextHeaderFieldsNot: HEADER.FIELDS.NOT (list).
	TextHeaderFieldsNot
	// TextText: TEXT, the body of the message or of an encapsulated
	// message.
	TextText
	// TextMIME: MIME, the MIME header of a numbered part.
	TextMIME
)

// Section is a parsed section-spec, what comes between the brackets of
// BODY[...].
type Section struct {
	// Part is the part number, e.g. [1 2 3] for "1.2.3"; nil for the
	// top level. Each number is at least 1.
	Part []uint32
	Text Text
	// Fields are the header field names of TextHeaderFields and
	// TextHeaderFieldsNot, upper-cased (ASCII), in the order given.
	Fields []string
}

// Partial is the <offset.length> suffix of a fetch attribute.
type Partial struct {
	Offset, Length int64
	// Set is true when the attribute had a partial suffix.
	Set bool
}

// FetchAtt is a parsed section fetch attribute.
type FetchAtt struct {
	Kind Kind
	// Peek is true when the fetch must not set \Seen: BODY.PEEK,
	// BINARY.PEEK, BINARY.SIZE and RFC822.HEADER.
	Peek    bool
	Section Section
	Partial Partial
	// Name is the canonical item name to echo in the FETCH response,
	// e.g. "BODY[HEADER.FIELDS (FROM TO)]<0>" for
	// "body.peek[header.fields (From To)]<0.100>": upper-case keywords
	// and field names, no .PEEK, the partial as its origin octet only
	// (RFC 9051 section 7.5.2); RFC822, RFC822.HEADER and RFC822.TEXT
	// echo as themselves.
	Name string
}

// maxPartNumber bounds each component of a part number (nz-number is a
// 32-bit unsigned number in RFC 9051).
const maxPartNumber = 1<<32 - 1

func badSection(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSection, fmt.Sprintf(format, args...))
}

// ParseFetchAtt parses one fetch attribute word as wire.Decoder.Word
// returns it: BODY[section]<partial>, BODY.PEEK[...], BINARY[part]<partial>,
// BINARY.PEEK[...], BINARY.SIZE[part], RFC822, RFC822.HEADER, RFC822.TEXT.
// Keywords are case-insensitive. Other attributes (FLAGS, BODY without a
// section, BODYSTRUCTURE, ...) are the session's and yield ErrBadSection,
// as does any malformed one.
func ParseFetchAtt(word string) (FetchAtt, error) {
	switch {
	case strings.EqualFold(word, "RFC822"):
		return FetchAtt{Kind: KindBody, Name: "RFC822"}, nil
	case strings.EqualFold(word, "RFC822.HEADER"):
		return FetchAtt{Kind: KindBody, Peek: true, Section: Section{Text: TextHeader}, Name: "RFC822.HEADER"}, nil
	case strings.EqualFold(word, "RFC822.TEXT"):
		return FetchAtt{Kind: KindBody, Section: Section{Text: TextText}, Name: "RFC822.TEXT"}, nil
	}
	open := strings.IndexByte(word, '[')
	if open < 0 {
		return FetchAtt{}, badSection("not a section fetch attribute: %.40q", word)
	}
	var a FetchAtt
	switch head := word[:open]; {
	case strings.EqualFold(head, "BODY"):
		a.Kind = KindBody
	case strings.EqualFold(head, "BODY.PEEK"):
		a.Kind, a.Peek = KindBody, true
	case strings.EqualFold(head, "BINARY"):
		a.Kind = KindBinary
	case strings.EqualFold(head, "BINARY.PEEK"):
		a.Kind, a.Peek = KindBinary, true
	case strings.EqualFold(head, "BINARY.SIZE"):
		a.Kind, a.Peek = KindBinarySize, true
	default:
		return FetchAtt{}, badSection("unknown fetch attribute %.40q", head)
	}
	// The section ends at the last ']': a partial suffix holds none, a
	// quoted header field name may.
	closing := strings.LastIndexByte(word, ']')
	if closing < open {
		return FetchAtt{}, badSection("missing ] in %.40q", word)
	}
	sec, err := ParseSection(word[open+1 : closing])
	if err != nil {
		return FetchAtt{}, err
	}
	if a.Kind != KindBody && sec.Text != TextNone {
		return FetchAtt{}, badSection("BINARY takes only a part number")
	}
	a.Section = sec
	if rest := word[closing+1:]; rest != "" {
		if a.Kind == KindBinarySize {
			return FetchAtt{}, badSection("BINARY.SIZE takes no partial")
		}
		if a.Partial, err = parsePartial(rest); err != nil {
			return FetchAtt{}, err
		}
	}
	a.Name = a.canonicalName()
	return a, nil
}

func (a FetchAtt) canonicalName() string {
	var b strings.Builder
	switch a.Kind {
	case KindBody:
		b.WriteString("BODY[")
	case KindBinary:
		b.WriteString("BINARY[")
	case KindBinarySize:
		b.WriteString("BINARY.SIZE[")
	}
	b.WriteString(a.Section.String())
	b.WriteByte(']')
	if a.Partial.Set {
		b.WriteByte('<')
		b.WriteString(strconv.FormatInt(a.Partial.Offset, 10))
		b.WriteByte('>')
	}
	return b.String()
}

// parsePartial parses "<offset.length>"; length must not be zero.
func parsePartial(s string) (Partial, error) {
	if len(s) < 5 || s[0] != '<' || s[len(s)-1] != '>' {
		return Partial{}, badSection("bad partial %.40q", s)
	}
	off, n, ok := strings.Cut(s[1:len(s)-1], ".")
	if !ok {
		return Partial{}, badSection("bad partial %.40q", s)
	}
	o, err1 := parseNumber(off, false)
	l, err2 := parseNumber(n, true)
	if err1 != nil || err2 != nil {
		return Partial{}, badSection("bad partial %.40q", s)
	}
	return Partial{Offset: int64(o), Length: int64(l), Set: true}, nil
}

// parseNumber parses an RFC 9051 number (nz: nz-number): decimal digits,
// 32-bit, no sign.
func parseNumber(s string, nz bool) (uint64, error) {
	if s == "" || len(s) > 10 {
		return 0, badSection("bad number %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, badSection("bad number %q", s)
		}
	}
	if nz && s[0] == '0' {
		return 0, badSection("bad number %q", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > maxPartNumber {
		return 0, badSection("bad number %q", s)
	}
	return v, nil
}

// ParseSection parses a section-spec (RFC 9051): "" (the whole message),
// HEADER, HEADER.FIELDS (list), HEADER.FIELDS.NOT (list), TEXT, or a part
// number "1.2.3" optionally followed by .HEADER, .HEADER.FIELDS (list),
// .HEADER.FIELDS.NOT (list), .TEXT or .MIME. Keywords are
// case-insensitive; header field names are atoms or quoted strings (a
// literal cannot appear inside a fetch attribute word). Whether a part
// number names a message/rfc822 part, as HEADER and TEXT after it require,
// depends on the message: Resolve answers an empty section when it does
// not.
func ParseSection(s string) (Section, error) {
	var sec Section
	rest := s
	for rest != "" && isDigit(rest[0]) {
		i := 0
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
		n, err := parseNumber(rest[:i], true)
		if err != nil {
			return Section{}, err
		}
		sec.Part = append(sec.Part, uint32(n))
		rest = rest[i:]
		if rest == "" {
			return sec, nil
		}
		if rest[0] != '.' || len(rest) == 1 {
			return Section{}, badSection("bad part number in %.40q", s)
		}
		rest = rest[1:]
	}
	if rest == "" {
		return sec, nil
	}
	word, list, hasList := strings.Cut(rest, " ")
	switch {
	case strings.EqualFold(word, "HEADER"):
		sec.Text = TextHeader
	case strings.EqualFold(word, "TEXT"):
		sec.Text = TextText
	case strings.EqualFold(word, "MIME"):
		if len(sec.Part) == 0 {
			return Section{}, badSection("MIME needs a part number")
		}
		sec.Text = TextMIME
	case strings.EqualFold(word, "HEADER.FIELDS"):
		sec.Text = TextHeaderFields
	case strings.EqualFold(word, "HEADER.FIELDS.NOT"):
		sec.Text = TextHeaderFieldsNot
	default:
		return Section{}, badSection("unknown section %.40q", word)
	}
	if sec.Text == TextHeaderFields || sec.Text == TextHeaderFieldsNot {
		if !hasList {
			return Section{}, badSection("%s needs a list of field names", strings.ToUpper(word))
		}
		fields, err := parseHeaderList(list)
		if err != nil {
			return Section{}, err
		}
		sec.Fields = fields
	} else if hasList {
		return Section{}, badSection("unexpected text after %s", strings.ToUpper(word))
	}
	return sec, nil
}

// parseHeaderList parses "(" header-fld-name *(SP header-fld-name) ")".
func parseHeaderList(s string) ([]string, error) {
	if len(s) < 3 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, badSection("bad header field list %.40q", s)
	}
	s = s[1 : len(s)-1]
	var fields []string
	for {
		var name string
		if s != "" && s[0] == '"' {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				c := s[i]
				if c == '\\' {
					i++
					if i == len(s) || (s[i] != '"' && s[i] != '\\') {
						return nil, badSection("bad quoted field name")
					}
					c = s[i]
				}
				b.WriteByte(c)
			}
			if i == len(s) {
				return nil, badSection("unterminated quoted field name")
			}
			name, s = b.String(), s[i+1:]
		} else {
			i := 0
			for i < len(s) && isAStringChar(s[i]) {
				i++
			}
			name, s = s[:i], s[i:]
		}
		if name == "" {
			return nil, badSection("empty header field name")
		}
		for i := 0; i < len(name); i++ {
			if name[i] < ' ' || name[i] >= 0x7f {
				return nil, badSection("bad header field name")
			}
		}
		fields = append(fields, upperASCII(name))
		if s == "" {
			return fields, nil
		}
		if s[0] != ' ' || len(s) == 1 {
			return nil, badSection("bad header field list")
		}
		s = s[1:]
	}
}

// String returns the canonical section-spec: part number, then the text
// keyword, field names upper-cased, e.g. "1.2.HEADER.FIELDS (FROM TO)".
func (s Section) String() string {
	var b strings.Builder
	for i, n := range s.Part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(uint64(n), 10))
	}
	kw := ""
	switch s.Text {
	case TextHeader:
		kw = "HEADER"
	case TextHeaderFields:
		kw = "HEADER.FIELDS"
	case TextHeaderFieldsNot:
		kw = "HEADER.FIELDS.NOT"
	case TextText:
		kw = "TEXT"
	case TextMIME:
		kw = "MIME"
	}
	if kw == "" {
		return b.String()
	}
	if len(s.Part) > 0 {
		b.WriteByte('.')
	}
	b.WriteString(kw)
	if s.Text == TextHeaderFields || s.Text == TextHeaderFieldsNot {
		b.WriteString(" (")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			writeAString(&b, f)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// writeAString writes s as an atom when it is one, else quoted.
func writeAString(b *strings.Builder, s string) {
	atom := s != ""
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) {
			atom = false
			break
		}
	}
	if atom {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isAStringChar is ATOM-CHAR of RFC 9051 (resp-specials ']' excluded
// here: inside a section it would end the section).
func isAStringChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// upperASCII upper-cases ASCII letters only, leaving other bytes alone
// (strings.ToUpper would rewrite invalid UTF-8).
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
