package mail

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// MaxUID is the largest UID; a range ending at MaxUID means "to the end".
const MaxUID UID = math.MaxUint32

// UIDRange is an inclusive range of UIDs, Start <= Stop.
type UIDRange struct{ Start, Stop UID }

// UIDSet is a set of UIDs as sorted, non-overlapping, non-adjacent ranges.
// The zero value is the empty set. Build one with NewUIDSet or Add.
type UIDSet []UIDRange

// AllUIDs is the set 1:*.
func AllUIDs() UIDSet { return UIDSet{{1, MaxUID}} }

// NewUIDSet returns the set of the given UIDs.
func NewUIDSet(uids ...UID) UIDSet {
	var s UIDSet
	for _, u := range uids {
		s = s.AddRange(u, u)
	}
	return s
}

// AddRange returns s with [start, stop] added (the bounds may be in either
// order). UID 0 is not a UID and is ignored.
func (s UIDSet) AddRange(start, stop UID) UIDSet {
	if start > stop {
		start, stop = stop, start
	}
	if start == 0 {
		start = 1
	}
	if stop == 0 {
		return s
	}
	// Fast path: appending in increasing order.
	if n := len(s); n == 0 || start > s[n-1].Stop {
		if n > 0 && s[n-1].Stop != MaxUID && start == s[n-1].Stop+1 {
			s[n-1].Stop = stop
			return s
		}
		return append(s, UIDRange{start, stop})
	}
	out := make(UIDSet, 0, len(s)+1)
	r := UIDRange{start, stop}
	i := 0
	for ; i < len(s) && (s[i].Stop != MaxUID && s[i].Stop+1 < r.Start); i++ {
		out = append(out, s[i])
	}
	for ; i < len(s) && (r.Stop == MaxUID || s[i].Start <= r.Stop+1); i++ {
		r.Start = min(r.Start, s[i].Start)
		r.Stop = max(r.Stop, s[i].Stop)
	}
	out = append(out, r)
	return append(out, s[i:]...)
}

// Add returns s with u added.
func (s UIDSet) Add(u UID) UIDSet { return s.AddRange(u, u) }

// Contains reports whether u is in s.
func (s UIDSet) Contains(u UID) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].Stop >= u })
	return i < len(s) && s[i].Start <= u
}

// Empty reports whether s has no UIDs.
func (s UIDSet) Empty() bool { return len(s) == 0 }

// Count returns the number of UIDs in s, capped at math.MaxInt.
func (s UIDSet) Count() int {
	n := 0
	for _, r := range s {
		n += int(r.Stop-r.Start) + 1
	}
	return n
}

// UIDs returns the members of s in order. Do not call it on open-ended sets.
func (s UIDSet) UIDs() []UID {
	var out []UID
	for _, r := range s {
		for u := r.Start; ; u++ {
			out = append(out, u)
			if u == r.Stop {
				break
			}
		}
	}
	return out
}

// String formats s in IMAP sequence-set syntax, with "*" for MaxUID.
func (s UIDSet) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(fmtUID(r.Start))
		if r.Stop != r.Start {
			b.WriteByte(':')
			b.WriteString(fmtUID(r.Stop))
		}
	}
	return b.String()
}

func fmtUID(u UID) string {
	if u == MaxUID {
		return "*"
	}
	return strconv.FormatUint(uint64(u), 10)
}

// ParseUIDSet parses IMAP sequence-set syntax ("1:3,7,9:*"); "*" means
// MaxUID.
func ParseUIDSet(str string) (UIDSet, error) {
	var s UIDSet
	if str == "" {
		return nil, fmt.Errorf("empty UID set")
	}
	for _, part := range strings.Split(str, ",") {
		a, b, isRange := strings.Cut(part, ":")
		start, err := parseUID(a)
		if err != nil {
			return nil, err
		}
		stop := start
		if isRange {
			if stop, err = parseUID(b); err != nil {
				return nil, err
			}
		}
		s = s.AddRange(start, stop)
	}
	return s, nil
}

func parseUID(s string) (UID, error) {
	if s == "*" {
		return MaxUID, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid UID %q", s)
	}
	return UID(n), nil
}
