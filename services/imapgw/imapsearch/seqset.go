package imapsearch

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrBadSeqSet is returned by ParseSeqSet for malformed sequence sets.
var ErrBadSeqSet = errors.New("bad sequence set")

// SeqRange is an inclusive range of message numbers (sequence numbers or
// UIDs) as written, so Start may exceed Stop; 0 stands for "*", the
// largest number in use.
type SeqRange struct{ Start, Stop uint32 }

// SeqSet is a parsed sequence-set (RFC 9051), or the saved search result
// "$" (RFC 5182), which is a set of its own and is resolved by the
// session's saved UIDs.
type SeqSet struct {
	Ranges []SeqRange
	Saved  bool
}

// ParseSeqSet parses "1:3,5,7:*", "*:4" or "$".
func ParseSeqSet(s string) (SeqSet, error) {
	if s == "$" {
		return SeqSet{Saved: true}, nil
	}
	if s == "" {
		return SeqSet{}, fmt.Errorf("%w: empty", ErrBadSeqSet)
	}
	var set SeqSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := parseSeqNum(lo)
		if err != nil {
			return SeqSet{}, fmt.Errorf("%w %q: %v", ErrBadSeqSet, s, err)
		}
		b := a
		if isRange {
			if b, err = parseSeqNum(hi); err != nil {
				return SeqSet{}, fmt.Errorf("%w %q: %v", ErrBadSeqSet, s, err)
			}
		}
		set.Ranges = append(set.Ranges, SeqRange{a, b})
	}
	return set, nil
}

func parseSeqNum(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, fmt.Errorf("bad number %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return uint32(n), nil
}

// String writes the set back in IMAP syntax.
func (s SeqSet) String() string {
	if s.Saved {
		return "$"
	}
	var sb strings.Builder
	for i, r := range s.Ranges {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(fmtSeqNum(r.Start))
		if r.Start != r.Stop {
			sb.WriteByte(':')
			sb.WriteString(fmtSeqNum(r.Stop))
		}
	}
	return sb.String()
}

func fmtSeqNum(n uint32) string {
	if n == 0 {
		return "*"
	}
	return strconv.FormatUint(uint64(n), 10)
}

// Resolve replaces "*" by max (the largest number in use; with max 0,
// the mailbox is empty and "*" matches nothing) and returns the ranges
// ordered, merged and with Start <= Stop, ready for Contains. It must
// not be called on "$".
func (s SeqSet) Resolve(max uint32) Resolved {
	out := make(Resolved, 0, len(s.Ranges))
	for _, r := range s.Ranges {
		a, b := r.Start, r.Stop
		if a == 0 {
			a = max
		}
		if b == 0 {
			b = max
		}
		if a > b {
			a, b = b, a
		}
		if a == 0 { // "*" in an empty mailbox
			if b == 0 {
				continue
			}
			a = 1
		}
		out = append(out, SeqRange{a, b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && uint64(r.Start) <= uint64(merged[n-1].Stop)+1 {
			if r.Stop > merged[n-1].Stop {
				merged[n-1].Stop = r.Stop
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// Resolved is a sequence set with "*" replaced, ordered and merged.
type Resolved []SeqRange

// Contains reports whether n is in the set.
func (r Resolved) Contains(n uint32) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i].Stop >= n })
	return i < len(r) && r[i].Start <= n
}
