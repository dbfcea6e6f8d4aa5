package main

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// chaosEffectsTail is how long after a target serves again its clients
// are still counted as affected (reconnects, gRPC back-off).
const chaosEffectsTail = 2 * time.Second

// chaosFaultClass names what a fault did: the kind and, for a mailstore
// process, its role ("kill imap", "sigstop metadata", "redis-kill").
func chaosFaultClass(f chaosFault) string {
	role, _, _ := strings.Cut(f.Target, "-")
	switch {
	case strings.HasPrefix(f.Kind, "net-"):
		return f.Kind + " " + chaosLinkIndex.ReplaceAllString(f.Target, "")
	case strings.HasPrefix(f.Kind, "redis"), strings.HasPrefix(f.Kind, "s3"):
		return f.Kind
	case role == "":
		return f.Kind
	}
	return f.Kind + " " + role
}

var (
	chaosDigits    = regexp.MustCompile(`[0-9]+`)
	chaosLinkIndex = regexp.MustCompile(`-[0-9]+$`)
)

// chaosEffects tells, per fault class, what the clients saw while a fault
// of that class lasted (and chaosEffectsTail after): the operations that
// overlapped it by outcome, and the most frequent answers that were not
// OK. Faults are injected one at a time, so the windows do not overlap.
// docs/reliability.md is written from this.
func chaosEffects(ops []chaosOp, faults []chaosFault) string {
	type effect struct {
		n        int
		down     time.Duration
		maxDown  time.Duration
		outcomes map[string]int
		replies  map[string]int
	}
	byClass := map[string]*effect{}
	for _, f := range faults {
		c := chaosFaultClass(f)
		e := byClass[c]
		if e == nil {
			e = &effect{outcomes: map[string]int{}, replies: map[string]int{}}
			byClass[c] = e
		}
		d := f.End.Sub(f.Start)
		e.n++
		e.down += d
		e.maxDown = max(e.maxDown, d)
		end := f.End.Add(chaosEffectsTail)
		for _, op := range ops {
			if op.End.Before(f.Start) || op.Start.After(end) {
				continue
			}
			o := op.Outcome
			if op.Temp {
				o = "failed-temp"
			}
			e.outcomes[o]++
			if o == outcomeOK {
				continue
			}
			r := op.Reply
			if r == "" {
				r = "(no answer)"
			}
			r = chaosDigits.ReplaceAllString(r, "N")
			if len(r) > 72 {
				r = r[:72] + "..."
			}
			e.replies[op.Kind+": "+r]++
		}
	}
	if len(byClass) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "effects on clients, per fault class (operations overlapping a fault or ending within %s after it):\n", chaosEffectsTail)
	for _, c := range slices.Sorted(maps.Keys(byClass)) {
		e := byClass[c]
		fmt.Fprintf(&b, "  %s: %d faults, back after %s on average (at most %s); operations:",
			c, e.n, (e.down / time.Duration(e.n)).Round(time.Millisecond), e.maxDown.Round(time.Millisecond))
		for _, o := range []string{outcomeOK, "failed-temp", outcomeFailed, outcomeUnknown} {
			fmt.Fprintf(&b, " %s %d", o, e.outcomes[o])
		}
		b.WriteString("\n")
		replies := slices.SortedFunc(maps.Keys(e.replies), func(x, y string) int {
			if e.replies[x] != e.replies[y] {
				return e.replies[y] - e.replies[x]
			}
			return strings.Compare(x, y)
		})
		for _, r := range replies[:min(4, len(replies))] {
			fmt.Fprintf(&b, "    %4d  %s\n", e.replies[r], r)
		}
	}
	return b.String()
}

func TestChaosEffects(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	faults := []chaosFault{
		{Kind: "kill", Target: "imap-1", Start: at(10), End: at(11)},
		{Kind: "kill", Target: "imap-0", Start: at(20), End: at(23)},
		{Kind: "redis-sigstop", Target: "redis", Start: at(30), End: at(32)},
		{Kind: "net-cut", Target: "gw-meta-1", Start: at(40), End: at(41)},
		{Kind: "net-slow", Target: "blob-s3", Start: at(50), End: at(51)},
	}
	ops := []chaosOp{
		{Kind: "append", Start: at(9), End: at(10.5), Outcome: outcomeUnknown, Reply: "read tcp 127.0.0.1:4242: EOF"},
		{Kind: "store", Start: at(12), End: at(12.5), Outcome: outcomeOK},                                               // in the tail
		{Kind: "store", Start: at(14), End: at(14.5), Outcome: outcomeOK},                                               // after the tail
		{Kind: "select", Start: at(21), End: at(21.1), Outcome: outcomeFailed, Temp: true, Reply: "NO [UNAVAILABLE] x"}, // second kill
		{Kind: "lmtp", Start: at(30.5), End: at(31), Outcome: outcomeFailed, Temp: true, Reply: "451 4.3.0 try again"},
		{Kind: "lmtp", Start: at(31), End: at(32), Outcome: outcomeFailed, Temp: true, Reply: "451 4.3.0 try again"},
	}
	got := chaosEffects(ops, faults)
	for _, want := range []string{
		"kill imap: 2 faults, back after 2s on average (at most 3s); operations: ok 1 failed-temp 1 failed 0 unknown 1\n",
		"       1  append: read tcp N.N.N.N:N: EOF\n",
		"       1  select: NO [UNAVAILABLE] x\n",
		"redis-sigstop: 1 faults, back after 2s on average (at most 2s); operations: ok 0 failed-temp 2 failed 0 unknown 0\n",
		"       2  lmtp: N N.N.N try again\n",
		"net-cut gw-meta: 1 faults",
		"net-slow blob-s3: 1 faults",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("effects lack %q:\n%s", want, got)
		}
	}
	if chaosEffects(ops, nil) != "" {
		t.Error("effects without faults are not empty")
	}
}
