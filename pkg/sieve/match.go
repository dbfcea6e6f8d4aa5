package sieve

import (
	"context"
	"strings"
	"unicode/utf8"
)

type matchType int

const (
	matchIs matchType = iota
	matchContains
	matchMatches
)

// comparators of RFC 4790 that RFC 5228 requires.
const (
	cmpOctet        = "i;octet"
	cmpASCIICasemap = "i;ascii-casemap"
)

type globKind byte

const (
	globLit  globKind = iota // lit, one or more characters
	globAny                  // ?: exactly one character
	globStar                 // *: zero or more characters
)

type globTok struct {
	kind globKind
	lit  string
}

// matcher compares values against the key list of one test.
type matcher struct {
	fold  bool // i;ascii-casemap: fold A-Z to a-z on both sides
	mt    matchType
	keys  []string    // folded when fold
	globs [][]globTok // for :matches, one per key
}

func newMatcher(comparator string, mt matchType, keys []string) *matcher {
	m := &matcher{fold: comparator == cmpASCIICasemap, mt: mt}
	for _, k := range keys {
		if m.fold {
			k = asciiFold(k)
		}
		m.keys = append(m.keys, k)
		if mt == matchMatches {
			m.globs = append(m.globs, compileGlob(k))
		}
	}
	return m
}

// asciiFold lowercases ASCII letters only, as i;ascii-casemap does.
func asciiFold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// compileGlob turns a :matches key into tokens: "*" and "?" are wildcards,
// and a backslash makes the next character literal (RFC 5228 2.7.1).
func compileGlob(k string) []globTok {
	var toks []globTok
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, globTok{kind: globLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(k); i++ {
		switch c := k[i]; c {
		case '*':
			flush()
			if len(toks) == 0 || toks[len(toks)-1].kind != globStar {
				toks = append(toks, globTok{kind: globStar})
			}
		case '?':
			flush()
			toks = append(toks, globTok{kind: globAny})
		case '\\':
			if i+1 < len(k) {
				i++
				lit.WriteByte(k[i])
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return toks
}

// globMatch is the usual backtrack-to-the-last-star wildcard match: at
// most len(s) * len(p) steps, never exponential. It checks ctx now and
// then, since s may be a large body.
func globMatch(ctx context.Context, p []globTok, s string) (bool, error) {
	pi, si := 0, 0
	starP, starS := -1, 0
	for steps := 1; ; steps++ {
		if steps&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		if pi < len(p) {
			switch t := p[pi]; t.kind {
			case globStar:
				starP, starS = pi, si
				pi++
				continue
			case globAny:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					pi++
					continue
				}
			case globLit:
				if strings.HasPrefix(s[si:], t.lit) {
					si += len(t.lit)
					pi++
					continue
				}
			}
		} else if si == len(s) {
			return true, nil
		}
		// Mismatch (or pattern used up with text left): let the last star
		// swallow one more character and retry.
		if starP < 0 || starS >= len(s) {
			return false, nil
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		pi, si = starP+1, starS
	}
}

// match reports whether value matches any key.
func (m *matcher) match(ctx context.Context, value string) (bool, error) {
	if m.fold {
		value = asciiFold(value)
	}
	for i, k := range m.keys {
		switch m.mt {
		case matchIs:
			if value == k {
				return true, nil
			}
		case matchContains:
			if strings.Contains(value, k) {
				return true, nil
			}
		case matchMatches:
			ok, err := globMatch(ctx, m.globs[i], value)
			if ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// matchAny reports whether any value matches any key.
func (m *matcher) matchAny(ctx context.Context, values []string) (bool, error) {
	for _, v := range values {
		ok, err := m.match(ctx, v)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}
