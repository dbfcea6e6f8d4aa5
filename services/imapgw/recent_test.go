package imapgw

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
)

// TestRecentAcrossGateways: for IMAP4rev1 sessions a message is \Recent in
// exactly one session, whatever gateway it is on (RFC 3501 2.3.2); EXAMINE
// claims nothing and IMAP4rev2 sessions never see \Recent.
func TestRecentAcrossGateways(t *testing.T) {
	e := newEnv(t)
	acct := e.account("recent@example.com")
	gw1, gw2 := e.gateway(nil), e.gateway(nil)
	e.deliver(acct, mail.Inbox, msg1)

	// EXAMINE first: it must not take message 1 from the SELECT after it.
	x := login(t, gw2, "recent@example.com")
	if lines := x.ok("EXAMINE INBOX"); !has(lines, "* 0 RECENT") {
		t.Errorf("EXAMINE: %q, want * 0 RECENT", lines)
	}
	a := login(t, gw1, "recent@example.com")
	if lines := a.ok("SELECT INBOX"); !has(lines, "* 1 RECENT") {
		t.Errorf("first SELECT: %q, want * 1 RECENT", lines)
	}
	b := login(t, gw2, "recent@example.com")
	if lines := b.ok("SELECT INBOX"); !has(lines, "* 0 RECENT") {
		t.Errorf("second SELECT: %q, want * 0 RECENT", lines)
	}
	r2 := login(t, gw1, "recent@example.com")
	r2.ok("ENABLE IMAP4rev2")
	if lines := r2.ok("SELECT INBOX"); has(lines, "RECENT") {
		t.Errorf("IMAP4rev2 SELECT: %q, want no RECENT", lines)
	}

	// New messages go to whichever rev1 session catches up first.
	for range 3 {
		e.deliver(acct, mail.Inbox, msg1)
	}
	countA := catchUpTo(t, a, "* 4 EXISTS", true)
	countB := catchUpTo(t, b, "* 4 EXISTS", true)
	catchUpTo(t, x, "* 4 EXISTS", true)
	catchUpTo(t, r2, "* 4 EXISTS", false)

	recentA, recentB := recentUIDs(t, a), recentUIDs(t, b)
	if countA != len(recentA) || countB != len(recentB) {
		t.Errorf("RECENT counts %d and %d, \\Recent messages %v and %v", countA, countB, recentA, recentB)
	}
	if !slices.Contains(recentA, 1) || slices.Contains(recentB, 1) {
		t.Errorf("message 1 recent in a: %v, in b: %v; want only in a", recentA, recentB)
	}
	for uid := 2; uid <= 4; uid++ {
		if slices.Contains(recentA, uid) == slices.Contains(recentB, uid) {
			t.Errorf("message %d recent in a: %v, in b: %v; want exactly one", uid, recentA, recentB)
		}
	}
	for name, c := range map[string]*raw{"EXAMINE": x, "IMAP4rev2": r2} {
		if lines := c.ok("FETCH 1:* FLAGS"); has(lines, `\Recent`) {
			t.Errorf("%s session sees \\Recent: %q", name, lines)
		}
	}
	if lines := x.ok("SEARCH RECENT"); !slices.Contains(lines, "* SEARCH") {
		t.Errorf("EXAMINE session SEARCH RECENT: %q, want none", lines)
	}

	// A later SELECT finds nothing left to claim; EXAMINE took nothing.
	d := login(t, gw2, "recent@example.com")
	if lines := d.ok("SELECT INBOX"); !has(lines, "* 0 RECENT") {
		t.Errorf("late SELECT: %q, want * 0 RECENT", lines)
	}
}

// catchUpTo sends NOOP until the session reports want (an EXISTS line).
// An IMAP4rev1 session must follow every EXISTS with RECENT, an IMAP4rev2
// session never sends RECENT. It returns the last RECENT count, -1 if none.
func catchUpTo(t *testing.T, c *raw, want string, rev1 bool) int {
	t.Helper()
	var got []string
	waitFor(t, func() bool {
		got = append(got, c.ok("NOOP")...)
		return has(got, want)
	})
	last := -1
	for i, l := range got {
		if strings.HasSuffix(l, " RECENT") {
			if !rev1 {
				t.Errorf("IMAP4rev2 session got %q", l)
			}
			fmt.Sscanf(l, "* %d RECENT", &last)
		}
		if rev1 && strings.HasSuffix(l, " EXISTS") && (i+1 >= len(got) || !strings.HasSuffix(got[i+1], " RECENT")) {
			t.Errorf("EXISTS without RECENT: %q", got)
		}
	}
	return last
}

// recentUIDs returns the UIDs the session reports as \Recent, checking
// that FETCH FLAGS, SEARCH RECENT and the last RECENT count agree.
func recentUIDs(t *testing.T, c *raw) []int {
	t.Helper()
	var fromFlags []int
	for _, l := range c.ok("UID FETCH 1:* FLAGS") {
		var seq, uid int
		if _, err := fmt.Sscanf(l, "* %d FETCH (UID %d", &seq, &uid); err != nil {
			t.Fatalf("FETCH line %q: %v", l, err)
		}
		if strings.Contains(l, `\Recent`) {
			fromFlags = append(fromFlags, uid)
		}
	}
	var fromSearch []int
	for _, l := range c.ok("UID SEARCH RECENT") {
		if rest, ok := strings.CutPrefix(l, "* SEARCH"); ok {
			for _, f := range strings.Fields(rest) {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("SEARCH line %q: %v", l, err)
				}
				fromSearch = append(fromSearch, n)
			}
		}
	}
	slices.Sort(fromSearch)
	if !slices.Equal(fromFlags, fromSearch) {
		t.Errorf("\\Recent in FLAGS %v, SEARCH RECENT %v", fromFlags, fromSearch)
	}
	return fromFlags
}
