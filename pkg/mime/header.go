package mime

import (
	"bufio"
	"bytes"
	stdmime "mime"
	"net/mail"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// parseHeader parses buffered header bytes. Lines that are not header
// fields (no colon, a bad field name, a continuation with nothing to
// continue) are dropped first, so that one bad line does not hide the
// fields after it; go-message's reader stops at the first one.
func parseHeader(buf []byte, truncated bool) textproto.Header {
	if truncated {
		// The last line was cut by MaxHeaderBytes: drop it.
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf = buf[:i+1]
		} else {
			buf = nil
		}
	}
	clean := make([]byte, 0, len(buf)+2)
	keep := false
	for len(buf) > 0 {
		line := buf
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line = buf[:i+1]
		}
		buf = buf[len(line):]
		content := bytes.TrimRight(line, "\r\n")
		if len(content) == 0 {
			break // the blank line ending the header
		}
		if content[0] == ' ' || content[0] == '\t' {
			if keep {
				clean = append(clean, content...)
				clean = append(clean, '\r', '\n')
			}
			continue
		}
		keep = validFieldLine(content)
		if keep {
			clean = append(clean, content...)
			clean = append(clean, '\r', '\n')
		}
	}
	clean = append(clean, '\r', '\n')
	h, _ := textproto.ReadHeader(bufio.NewReaderSize(bytes.NewReader(clean), 512))
	return h
}

func validFieldLine(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	key := bytes.TrimRight(line[:i], " \t")
	if len(key) == 0 {
		return false
	}
	for _, c := range key {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// rawValue returns the first k field's value unfolded (line breaks
// removed, RFC 5322 2.2.3) and trimmed, but not decoded.
func rawValue(h *textproto.Header, k string) string {
	raw, err := h.Raw(k)
	if err != nil || raw == nil {
		return ""
	}
	if i := bytes.IndexByte(raw, ':'); i >= 0 {
		raw = raw[i+1:]
	}
	var b strings.Builder
	b.Grow(len(raw))
	for _, c := range raw {
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return strings.Trim(b.String(), " \t")
}

func fillPart(p *Part, h *textproto.Header, digest bool) {
	ct := rawValue(h, "Content-Type")
	typ, params := parseParams(ct)
	t, sub, ok := strings.Cut(typ, "/")
	if ct == "" || !ok || !isToken(t) || !isToken(sub) {
		if digest {
			t, sub, params = "message", "rfc822", nil
		} else {
			t, sub, params = "text", "plain", []Param{{Name: "charset", Value: "us-ascii"}}
		}
	}
	p.Type, p.Subtype, p.Params = t, sub, params
	p.ID = rawValue(h, "Content-Id")
	p.Description = rawValue(h, "Content-Description")
	p.Encoding = strings.ToLower(rawValue(h, "Content-Transfer-Encoding"))
	if p.Encoding == "" {
		p.Encoding = "7bit"
	}
	if d := rawValue(h, "Content-Disposition"); d != "" {
		p.Disposition, p.DispParams = parseParams(d)
		if !isToken(p.Disposition) {
			p.Disposition, p.DispParams = "", nil
		}
	}
	if l := rawValue(h, "Content-Language"); l != "" {
		for _, tag := range strings.Split(l, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				p.Language = append(p.Language, tag)
			}
		}
	}
	p.Location = rawValue(h, "Content-Location")
	p.MD5 = rawValue(h, "Content-Md5")
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// parseParams parses "value; name=value; ..." with the standard library,
// falling back to a lenient split when it refuses the field. The value is
// lower case; parameters are sorted by name.
func parseParams(v string) (string, []Param) {
	if v == "" {
		return "", nil
	}
	typ, m, err := stdmime.ParseMediaType(v)
	var params []Param
	if err == nil {
		params = make([]Param, 0, len(m))
		for k, val := range m {
			params = append(params, Param{Name: k, Value: val})
		}
	} else {
		typ, params = lenientParams(v)
	}
	sort.Slice(params, func(i, j int) bool { return params[i].Name < params[j].Name })
	return typ, params
}

// lenientParams splits a field on semicolons outside quotes; the first
// occurrence of a name wins.
func lenientParams(v string) (string, []Param) {
	pieces := splitQuoted(v, ';')
	typ := strings.ToLower(strings.TrimSpace(pieces[0]))
	var params []Param
	seen := map[string]bool{}
	for _, piece := range pieces[1:] {
		name, val, ok := strings.Cut(piece, "=")
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		params = append(params, Param{Name: name, Value: unquote(strings.TrimSpace(val))})
	}
	return typ, params
}

func splitQuoted(s string, sep byte) []string {
	var out []string
	inQuote, esc := false, false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case c == '\\' && inQuote:
			esc = true
		case c == '"':
			inQuote = !inQuote
		case c == sep && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) < 1 || s[0] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			b.WriteByte(s[i])
			continue
		}
		if c == '"' {
			break
		}
		b.WriteByte(c)
	}
	return b.String()
}

func paramValue(ps []Param, name string) string {
	for _, p := range ps {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func parseEnvelope(h *textproto.Header) Envelope {
	e := Envelope{
		Date:      rawValue(h, "Date"),
		Subject:   rawValue(h, "Subject"),
		From:      parseAddressList(rawValue(h, "From")),
		Sender:    parseAddressList(rawValue(h, "Sender")),
		ReplyTo:   parseAddressList(rawValue(h, "Reply-To")),
		To:        parseAddressList(rawValue(h, "To")),
		Cc:        parseAddressList(rawValue(h, "Cc")),
		Bcc:       parseAddressList(rawValue(h, "Bcc")),
		InReplyTo: rawValue(h, "In-Reply-To"),
		MessageID: rawValue(h, "Message-Id"),
	}
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return e
}

// dateLayouts are tried when net/mail refuses a Date field.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	time.RFC3339,
}

// parseDate parses a Date field leniently; zero when it cannot.
func parseDate(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t.UTC()
	}
	// Drop comments, a trailing zone name, and collapse white space.
	if i := strings.IndexByte(v, '('); i >= 0 {
		v = v[:i]
	}
	v = strings.Join(strings.Fields(v), " ")
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
