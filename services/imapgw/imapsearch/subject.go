package imapsearch

import "strings"

// BaseSubject extracts the base subject of RFC 5256 section 2.1 from a raw
// Subject value (encoded words are decoded first), and reports whether
// the extraction removed a reply or forward marker ("Re:", "Fwd:",
// "(fwd)", "[fwd: ...]"), which THREAD=REFERENCES uses when it groups
// threads by subject. Case is kept; SORT and THREAD compare base subjects
// with i;ascii-casemap.
func BaseSubject(raw string) (base string, replyOrFwd bool) {
	// (1) decode, turn tabs and line breaks into spaces, collapse runs of
	// spaces.
	s := decodeHeader(raw)
	var sb strings.Builder
	space := false
	for _, r := range s {
		if r == '\t' || r == '\r' || r == '\n' || r == ' ' {
			if !space {
				sb.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		sb.WriteRune(r)
	}
	s = sb.String()
	for {
		// (2) remove trailers: "(fwd)" and WSP.
		for {
			if t := strings.TrimRight(s, " "); t != s {
				s = t
				continue
			}
			if n := len(s) - len("(fwd)"); n >= 0 && strings.EqualFold(s[n:], "(fwd)") {
				s = s[:n]
				replyOrFwd = true
				continue
			}
			break
		}
		// (3), (4), (5): remove leaders and blobs until none remain.
		for {
			changed := false
			for {
				if t := strings.TrimLeft(s, " "); t != s {
					s = t
					changed = true
					continue
				}
				if n := leaderLen(s); n > 0 {
					s = s[n:]
					replyOrFwd, changed = true, true
					continue
				}
				break
			}
			if n := blobLen(s); n > 0 && strings.TrimLeft(s[n:], " ") != "" {
				s = s[n:]
				changed = true
			}
			if !changed {
				break
			}
		}
		// (6) unwrap "[fwd: ... ]" and start again.
		if len(s) >= len("[fwd:")+1 && strings.EqualFold(s[:len("[fwd:")], "[fwd:") && s[len(s)-1] == ']' {
			s = s[len("[fwd:") : len(s)-1]
			replyOrFwd = true
			continue
		}
		return s, replyOrFwd
	}
}

// blobLen returns the length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at
// the start of s, or 0.
func blobLen(s string) int {
	if s == "" || s[0] != '[' {
		return 0
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return 0
	}
	n := end + 2
	for n < len(s) && s[n] == ' ' {
		n++
	}
	return n
}

// leaderLen returns the length of a subj-leader without WSP, i.e.
// *subj-blob subj-refwd, at the start of s, or 0.
func leaderLen(s string) int {
	n := 0
	for {
		b := blobLen(s[n:])
		if b == 0 {
			break
		}
		n += b
	}
	for _, word := range []string{"fwd", "fw", "re"} {
		if m := refwdLen(s[n:], word); m > 0 {
			return n + m
		}
	}
	return 0
}

// refwdLen matches subj-refwd = word *WSP [subj-blob] ":".
func refwdLen(s, word string) int {
	if len(s) < len(word) || !strings.EqualFold(s[:len(word)], word) {
		return 0
	}
	n := len(word)
	for n < len(s) && s[n] == ' ' {
		n++
	}
	n += blobLen(s[n:])
	if n < len(s) && s[n] == ':' {
		return n + 1
	}
	return 0
}

// asciiUpper is the i;ascii-casemap of s.
func asciiUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
