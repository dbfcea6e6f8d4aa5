package sieve

import "strings"

type addrPart int

const (
	partAll addrPart = iota
	partLocal
	partDomain
	partUser   // RFC 5233
	partDetail // RFC 5233
)

// subaddressSep separates user and detail in a local part (RFC 5233).
const subaddressSep = "+"

// extractAddresses returns the addr-specs of an address-list header value.
// It never fails: group names, display names, comments and route prefixes
// are dropped, and an element without angle brackets is taken as written.
// A hand-written scanner rather than net/mail, which rejects much of what
// real mail carries (and the value may already be RFC 2047-decoded).
func extractAddresses(v string) []string {
	var out []string
	var cur, angle strings.Builder
	inAngle, hadAngle := false, false
	emit := func() {
		a := cur.String()
		if hadAngle {
			a = angle.String()
			// Drop an obsolete source route: <@a,@b:user@host>.
			if strings.HasPrefix(a, "@") {
				if i := strings.IndexByte(a, ':'); i >= 0 {
					a = a[i+1:]
				}
			}
		}
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
		cur.Reset()
		angle.Reset()
		inAngle, hadAngle = false, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			// Quoted string: copy it with its quotes.
			b := &cur
			if inAngle {
				b = &angle
			}
			b.WriteByte(c)
			for i++; i < len(v); i++ {
				b.WriteByte(v[i])
				if v[i] == '\\' && i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				} else if v[i] == '"' {
					break
				}
			}
		case c == '(':
			depth := 1
			for i++; i < len(v) && depth > 0; i++ {
				switch v[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			i--
		case c == '<' && !inAngle:
			inAngle, hadAngle = true, true
			angle.Reset()
		case c == '>' && inAngle:
			inAngle = false
		case inAngle:
			if c != ' ' && c != '\t' {
				angle.WriteByte(c)
			}
		case c == ',' || c == ';':
			emit()
		case c == ':':
			// A group name ends here; what came before is not an address.
			cur.Reset()
			hadAngle = false
		default:
			if c == '\r' || c == '\n' || c == '\t' {
				c = ' '
			}
			cur.WriteByte(c)
		}
	}
	emit()
	return out
}

// addressPart returns the wanted part of an addr-spec, and false when the
// address has no such part (no "@" for :localpart and :domain, no
// separator for :detail): RFC 5228 2.7.4 and RFC 5233 say such an address
// does not match.
func addressPart(addr string, part addrPart) (string, bool) {
	if part == partAll {
		return addr, true
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", false
	}
	local, domain := addr[:at], addr[at+1:]
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		local = unquote(local[1 : len(local)-1])
	}
	switch part {
	case partLocal:
		return local, true
	case partDomain:
		return domain, true
	case partUser:
		user, _, _ := strings.Cut(local, subaddressSep)
		return user, true
	case partDetail:
		_, detail, ok := strings.Cut(local, subaddressSep)
		return detail, ok
	}
	return "", false
}

func unquote(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// envelopeAddress strips the angle brackets an MTA may leave around an
// envelope address.
func envelopeAddress(a string) string {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		a = a[1 : len(a)-1]
	}
	return a
}
