package meta

import (
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
)

// MatchPattern reports whether the mailbox name matches an IMAP LIST
// pattern (RFC 3501 section 6.3.8) over whole names: "*" matches any run of
// characters, "%" any run without the '/' delimiter, every other byte
// itself. The INBOX part of a name ("INBOX" or the "INBOX/" prefix)
// matches case-insensitively, as INBOX is; the rest of a name is
// case-sensitive. Joining LIST's reference and pattern is the caller's job.
//
// It runs in O(len(pattern) * len(name)) whatever the wildcards, so a
// hostile pattern such as "*a*a*a*a*b" cannot make it backtrack.
func MatchPattern(pattern, name string) bool {
	fold := 0 // name[:fold] compares case-insensitively
	if name == mail.Inbox || strings.HasPrefix(name, mail.Inbox+string(mail.Delimiter)) {
		fold = len(mail.Inbox)
	}
	// prev[j] reports whether the pattern read so far matches name[:j].
	n := len(name)
	prev := make([]bool, n+1)
	cur := make([]bool, n+1)
	prev[0] = true
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			acc := false
			for j := 0; j <= n; j++ {
				acc = acc || prev[j]
				cur[j] = acc
			}
		case '%':
			acc := false
			for j := 0; j <= n; j++ {
				if j > 0 && name[j-1] == mail.Delimiter {
					acc = false // a match of % cannot span a delimiter
				}
				acc = acc || prev[j]
				cur[j] = acc
			}
		default:
			cur[0] = false
			for j := 1; j <= n; j++ {
				b := name[j-1]
				cur[j] = prev[j-1] && (b == c || j-1 < fold && lowerASCII(b) == lowerASCII(c))
			}
		}
		prev, cur = cur, prev
	}
	return prev[n]
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
