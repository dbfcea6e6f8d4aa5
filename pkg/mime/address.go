package mime

import "strings"

// Addresses are parsed here rather than with net/mail because IMAP ENVELOPE
// wants what net/mail cannot give: display names as written (net/mail
// decodes RFC 2047 words and fails on unknown charsets) and group syntax
// kept as start and end markers (net/mail flattens groups). The parser never
// fails: whatever it cannot make sense of is skipped.

type addrTok struct {
	kind byte // 'w' atom or domain literal, 'q' quoted string, 'c' comment, or one of <>@,:;
	s    string
}

func tokenizeAddresses(v string) []addrTok {
	var toks []addrTok
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			depth, j := 0, i
			var b strings.Builder
			for ; j < len(v); j++ {
				d := v[j]
				if d == '\\' && j+1 < len(v) {
					j++
					b.WriteByte(v[j])
					continue
				}
				if d == '(' {
					depth++
					if depth == 1 {
						continue
					}
				} else if d == ')' {
					depth--
					if depth == 0 {
						j++
						break
					}
				}
				b.WriteByte(d)
			}
			toks = append(toks, addrTok{'c', strings.TrimSpace(b.String())})
			i = j
		case c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(v); j++ {
				d := v[j]
				if d == '\\' && j+1 < len(v) {
					j++
					b.WriteByte(v[j])
					continue
				}
				if d == '"' {
					j++
					break
				}
				b.WriteByte(d)
			}
			toks = append(toks, addrTok{'q', b.String()})
			i = j
		case strings.IndexByte("<>@,:;", c) >= 0:
			toks = append(toks, addrTok{c, string(c)})
			i++
		case c == '[':
			j := strings.IndexByte(v[i:], ']')
			if j < 0 {
				j = len(v) - i - 1
			}
			toks = append(toks, addrTok{'w', v[i : i+j+1]})
			i += j + 1
		default:
			j := i
			for j < len(v) && strings.IndexByte(" \t\r\n()<>@,:;\"", v[j]) < 0 {
				j++
			}
			if j == i {
				i++ // a stray ')' or '"': skip it
				continue
			}
			toks = append(toks, addrTok{'w', v[i:j]})
			i = j
		}
	}
	return toks
}

// phrase joins the words and quoted strings of toks with single spaces.
func phrase(toks []addrTok) string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind != 'w' && t.kind != 'q' {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.s)
	}
	return b.String()
}

func lastComment(toks []addrTok) string {
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].kind == 'c' && toks[i].s != "" {
			return toks[i].s
		}
	}
	return ""
}

// addrSpec makes local@domain out of toks (comments skipped).
func addrSpec(toks []addrTok) Address {
	var local, host strings.Builder
	cur := &local
	for _, t := range toks {
		switch t.kind {
		case 'c':
		case '@':
			if cur == &local {
				cur = &host
			} else {
				cur.WriteByte('@')
			}
		case 'q':
			cur.WriteByte('"')
			cur.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t.s))
			cur.WriteByte('"')
		default:
			cur.WriteString(t.s)
		}
	}
	return Address{Mailbox: local.String(), Host: host.String()}
}

func parseAddressList(v string) []Address {
	if v == "" {
		return nil
	}
	toks := tokenizeAddresses(v)
	var out []Address
	var cur []addrTok
	inGroup := false
	flush := func() {
		if len(cur) == 0 {
			return
		}
		a := addrSpec(cur)
		a.Name = lastComment(cur)
		if a.Mailbox != "" || a.Host != "" {
			out = append(out, a)
		}
		cur = cur[:0]
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case '<':
			name := phrase(cur)
			if name == "" {
				name = lastComment(cur)
			}
			cur = cur[:0]
			j := i + 1
			for j < len(toks) && toks[j].kind != '>' {
				j++
			}
			in := toks[i+1 : j]
			var route string
			for k := len(in) - 1; k >= 0; k-- {
				if in[k].kind == ':' {
					var b strings.Builder
					for _, r := range in[:k] {
						if r.kind != 'c' {
							b.WriteString(r.s)
						}
					}
					route = b.String()
					in = in[k+1:]
					break
				}
			}
			a := addrSpec(in)
			a.Name, a.Route = name, route
			i = j
			// Skip to the next separator; a comment there may be the name.
			for i+1 < len(toks) && toks[i+1].kind != ',' && toks[i+1].kind != ';' {
				i++
				if toks[i].kind == 'c' && a.Name == "" {
					a.Name = toks[i].s
				}
			}
			if a.Name != "" || a.Mailbox != "" || a.Host != "" {
				out = append(out, a)
			}
		case ':':
			if name := phrase(cur); !inGroup && name != "" && !hasKind(cur, '@') {
				out = append(out, Address{Kind: AddrGroupStart, Mailbox: name})
				inGroup = true
				cur = cur[:0]
			} else {
				cur = append(cur, t)
			}
		case ',':
			flush()
		case ';':
			flush()
			if inGroup {
				out = append(out, Address{Kind: AddrGroupEnd})
				inGroup = false
			}
		case '>':
		default:
			cur = append(cur, t)
		}
	}
	flush()
	if inGroup {
		out = append(out, Address{Kind: AddrGroupEnd})
	}
	return out
}

func hasKind(toks []addrTok, k byte) bool {
	for _, t := range toks {
		if t.kind == k {
			return true
		}
	}
	return false
}
