package imapgw

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"context"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"sync/atomic"
)

func login(t *testing.T, addr, user string) *raw {
	t.Helper()
	c := dialRaw(t, addr)
	c.ok("LOGIN %s pw", user)
	return c
}

func TestMailboxCommands(t *testing.T) {
	e := newEnv(t)
	e.account("mb@example.com")
	c := login(t, e.gateway(nil), "mb@example.com")

	c.ok("CREATE Projects/2026/Q4")
	lines := c.ok(`LIST "" "*"`)
	for _, want := range []string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasChildren) "/" Projects`,
		`* LIST (\HasChildren) "/" Projects/2026`,
		`* LIST (\HasNoChildren) "/" Projects/2026/Q4`,
		`* LIST (\HasNoChildren \Sent) "/" Sent`,
	} {
		if !has(lines, want) {
			t.Errorf("LIST lacks %q: %q", want, lines)
		}
	}
	lines = c.ok("%s", `LIST "" "%"`)
	if has(lines, "Projects/2026") || !has(lines, `"/" Projects`) {
		t.Errorf(`LIST "%%": %q`, lines)
	}
	lines = c.ok(`LIST "" ""`)
	if !has(lines, `* LIST (\Noselect) "/" ""`) {
		t.Errorf("LIST delimiter: %q", lines)
	}
	if _, tagged := c.cmd("CREATE INBOX"); !strings.Contains(tagged, "NO") {
		t.Errorf("CREATE INBOX: %s", tagged)
	}
	if _, tagged := c.cmd("CREATE Projects"); !strings.Contains(tagged, "NO [ALREADYEXISTS]") {
		t.Errorf("CREATE existing: %s", tagged)
	}
	c.ok(`CREATE "Important Stuff" (USE (\Flagged))`)
	lines = c.ok(`LIST (SPECIAL-USE) "" "*"`)
	if !has(lines, `\Flagged) "/" "Important Stuff"`) || has(lines, "INBOX") {
		t.Errorf("LIST SPECIAL-USE: %q", lines)
	}
	c.ok("SUBSCRIBE Projects/2026/Q4")
	c.ok("SUBSCRIBE Ghost")
	lines = c.ok(`LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)`)
	if !has(lines, `\Subscribed) "/" Projects/2026/Q4`) || !has(lines, `(\NonExistent \HasNoChildren \Subscribed) "/" Ghost`) {
		t.Errorf("LIST SUBSCRIBED: %q", lines)
	}
	lines = c.ok(`LSUB "" "*"`)
	if !has(lines, `* LSUB () "/" Projects/2026/Q4`) || !has(lines, `* LSUB (\Noselect) "/" Ghost`) {
		t.Errorf("LSUB: %q", lines)
	}
	c.ok("RENAME Projects Archive/Projects")
	lines = c.ok(`LIST "" "Archive/*"`)
	if !has(lines, "Archive/Projects/2026/Q4") {
		t.Errorf("after RENAME: %q", lines)
	}
	c.ok("DELETE Archive/Projects")
	lines = c.ok(`LIST "" "Archive/*"`)
	if !has(lines, `(\Noselect \HasChildren) "/" Archive/Projects`) {
		t.Errorf("DELETE of a mailbox with children: %q", lines)
	}
	if _, tagged := c.cmd("DELETE INBOX"); !strings.Contains(tagged, "NO") {
		t.Errorf("DELETE INBOX: %s", tagged)
	}
	if _, tagged := c.cmd("DELETE Nope"); !strings.Contains(tagged, "NO [NONEXISTENT]") {
		t.Errorf("DELETE missing: %s", tagged)
	}
	lines = c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED HIGHESTMODSEQ)")
	if !has(lines, "* STATUS INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ") || !has(lines, "DELETED 0") {
		t.Errorf("STATUS: %q", lines)
	}
	lines = c.ok(`LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN))`)
	if !has(lines, "* STATUS INBOX (MESSAGES 0 UNSEEN 0)") {
		t.Errorf("LIST-STATUS: %q", lines)
	}
	// Modified UTF-7 for rev1 clients, UTF-8 after ENABLE UTF8=ACCEPT.
	c.ok("CREATE Entw&APw-rfe")
	lines = c.ok(`LIST "" "Entw*"`)
	if !has(lines, `"/" Entw&APw-rfe`) {
		t.Errorf("mUTF-7 LIST: %q", lines)
	}
	c.ok("ENABLE UTF8=ACCEPT")
	lines = c.ok(`LIST "" "Entw*"`)
	if !has(lines, `"/" "Entwürfe"`) {
		t.Errorf("UTF-8 LIST: %q", lines)
	}
}

func TestStoreCopyMoveExpungeAppend(t *testing.T) {
	e := newEnv(t)
	a := e.account("msg@example.com")
	for range 3 {
		e.deliver(a, mail.Inbox, msg1)
	}
	c := login(t, e.gateway(nil), "msg@example.com")
	c.ok("ENABLE CONDSTORE")
	c.ok("SELECT INBOX")

	lines := c.ok(`STORE 1:2 +FLAGS (\Seen $Work)`)
	if !has(lines, `* 1 FETCH (FLAGS ($Work \Seen \Recent) MODSEQ (`) || !has(lines, "* 2 FETCH") {
		t.Fatalf("STORE: %q", lines)
	}
	lines = c.ok(`STORE 1 -FLAGS.SILENT (\Seen)`)
	if has(lines, "FETCH") {
		t.Errorf("silent STORE answered FETCH: %q", lines)
	}
	lines = c.ok(`UID STORE 3 FLAGS (\Flagged)`)
	if !has(lines, `* 3 FETCH (FLAGS (\Flagged \Recent) UID 3`) {
		t.Errorf("UID STORE: %q", lines)
	}
	_, tagged := c.cmd(`STORE 2 (UNCHANGEDSINCE 1) +FLAGS (\Answered)`)
	if !strings.Contains(tagged, "OK [MODIFIED 2]") {
		t.Errorf("UNCHANGEDSINCE conflict: %s", tagged)
	}
	if _, tagged := c.cmd(`STORE 9 +FLAGS (\Seen)`); !strings.Contains(tagged, "BAD") {
		t.Errorf("STORE out of range: %s", tagged)
	}
	_, tagged = c.cmd("COPY 1:2 Archive")
	if !strings.Contains(tagged, "OK [COPYUID ") || !strings.Contains(tagged, " 1:2 1:2]") {
		t.Errorf("COPY: %s", tagged)
	}
	if _, tagged := c.cmd("COPY 1 Nowhere"); !strings.Contains(tagged, "NO [TRYCREATE]") {
		t.Errorf("COPY to missing: %s", tagged)
	}
	lines = c.ok("MOVE 2 Trash")
	if !has(lines, "* OK [COPYUID ") || !has(lines, "* 2 EXPUNGE") {
		t.Errorf("MOVE: %q", lines)
	}
	c.ok(`STORE 1 +FLAGS (\Deleted)`)
	lines = c.ok("EXPUNGE")
	if !has(lines, "* 1 EXPUNGE") {
		t.Errorf("EXPUNGE: %q", lines)
	}
	lines = c.ok("NOOP")
	if has(lines, "EXPUNGE") || has(lines, "EXISTS") {
		t.Errorf("own changes repeated: %q", lines)
	}

	// APPEND with a synchronizing literal, flags and a date.
	body := "Subject: appended\r\n\r\nhello\r\n"
	c.send(fmt.Sprintf("a1 APPEND INBOX (\\Seen) \"14-Jul-2025 02:44:25 +0200\" {%d}\r\n", len(body)))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("continuation: %q", l)
	}
	c.send(body + "\r\n")
	lines, tagged = c.until("a1")
	if !strings.Contains(tagged, "OK [APPENDUID ") || !has(lines, "EXISTS") {
		t.Fatalf("APPEND: %q %s", lines, tagged)
	}
	// LITERAL+ into another mailbox, and a refused one.
	c.send(fmt.Sprintf("a2 APPEND Drafts {%d+}\r\n%s\r\n", len(body), body))
	if _, tagged := c.until("a2"); !strings.Contains(tagged, "OK [APPENDUID ") {
		t.Fatalf("APPEND LITERAL+: %s", tagged)
	}
	c.send(fmt.Sprintf("a3 APPEND Nowhere {%d+}\r\n%s\r\n", len(body), body))
	if _, tagged := c.until("a3"); !strings.Contains(tagged, "NO [TRYCREATE]") {
		t.Fatalf("APPEND to missing: %s", tagged)
	}
	c.send("a4 APPEND INBOX {999999999}\r\n")
	if _, tagged := c.until("a4"); !strings.Contains(tagged, "NO [TOOBIG]") {
		t.Fatalf("APPEND too big: %s", tagged)
	}
	c.ok("NOOP")
	lines = c.ok("STATUS Drafts (MESSAGES)")
	if !has(lines, "MESSAGES 1") {
		t.Errorf("Drafts after APPEND: %q", lines)
	}
}

func TestCrossGatewayIdle(t *testing.T) {
	e := newEnv(t)
	a := e.account("idle@example.com")
	e.deliver(a, mail.Inbox, msg1)
	gw1, gw2 := e.gateway(nil), e.gateway(nil)
	watcher := login(t, gw2, "idle@example.com")
	watcher.ok("SELECT INBOX")
	watcher.send("i1 IDLE\r\n")
	if l := watcher.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	writer := login(t, gw1, "idle@example.com")
	writer.ok("SELECT INBOX")
	body := "Subject: new\r\n\r\nx\r\n"
	writer.send(fmt.Sprintf("w1 APPEND INBOX {%d+}\r\n%s\r\n", len(body), body))
	writer.until("w1")
	if l := watcher.line(); l != "* 2 EXISTS" {
		t.Fatalf("IDLE got %q, want * 2 EXISTS", l)
	}
	// Message 2 is \Recent in whichever of the two sessions claimed it
	// first; message 1 is the watcher's.
	if l := watcher.line(); l != "* 1 RECENT" && l != "* 2 RECENT" {
		t.Fatalf("IDLE got %q, want * 1 RECENT or * 2 RECENT", l)
	}
	writer.ok(`STORE 1 +FLAGS (\Deleted)`)
	if l := watcher.line(); !strings.HasPrefix(l, `* 1 FETCH (FLAGS (\Deleted \Recent) UID 1`) {
		t.Fatalf("IDLE got %q, want a FETCH FLAGS", l)
	}
	writer.ok("EXPUNGE")
	if l := watcher.line(); l != "* 1 EXPUNGE" {
		t.Fatalf("IDLE got %q, want * 1 EXPUNGE", l)
	}
	watcher.send("DONE\r\n")
	if _, tagged := watcher.until("i1"); !strings.Contains(tagged, "OK") {
		t.Fatalf("IDLE end: %s", tagged)
	}
	// EXPUNGE is held back during a non-UID command that uses sequence
	// numbers, and sent at the next allowed point.
	writer.ok(`STORE 1 +FLAGS (\Deleted)`)
	writer.ok("EXPUNGE")
	waitFor(t, func() bool {
		m, _ := e.store.Mailbox(t.Context(), a.ID, mail.Inbox)
		return m.Messages == 0
	})
	lines := watcher.ok(`STORE 1 +FLAGS (\Seen)`)
	if has(lines, "EXPUNGE") {
		t.Fatalf("EXPUNGE sent during STORE: %q", lines)
	}
	lines = watcher.ok("NOOP")
	if !has(lines, "* 1 EXPUNGE") {
		t.Fatalf("EXPUNGE not sent at NOOP: %q", lines)
	}
}

func TestQresyncSelect(t *testing.T) {
	e := newEnv(t)
	a := e.account("qr@example.com")
	for range 4 {
		e.deliver(a, mail.Inbox, msg1)
	}
	c := login(t, e.gateway(nil), "qr@example.com")
	uv, hms := qresyncSelectInbox(c)
	c.ok("LOGOUT")

	// Changes while the client is away, through another pod.
	other := login(t, e.gateway(nil), "qr@example.com")
	other.ok("SELECT INBOX")
	other.ok(`STORE 2 +FLAGS (\Flagged)`)
	other.ok(`STORE 3 +FLAGS (\Deleted)`)
	other.ok("EXPUNGE")

	c = login(t, e.gateway(nil), "qr@example.com")
	c.ok("ENABLE QRESYNC")
	lines := c.ok("SELECT INBOX (QRESYNC (%s %s 1:4))", uv, hms)
	if !has(lines, "* VANISHED (EARLIER) 3") {
		t.Errorf("no VANISHED (EARLIER): %q", lines)
	}
	if !has(lines, `* 2 FETCH (FLAGS (\Flagged) UID 2 MODSEQ (`) {
		t.Errorf("no changed flags: %q", lines)
	}
	if has(lines, "UID 1 MODSEQ") {
		t.Errorf("unchanged message reported: %q", lines)
	}
}

// qresyncSelectInbox enables QRESYNC, selects INBOX and returns its
// UIDVALIDITY and HIGHESTMODSEQ, as a client keeps them for a resync.
func qresyncSelectInbox(c *raw) (uidValidity, highestModSeq string) {
	c.ok("ENABLE QRESYNC")
	for _, l := range c.ok("SELECT INBOX") {
		fmt.Sscanf(l, "* OK [UIDVALIDITY %s", &uidValidity)
		fmt.Sscanf(l, "* OK [HIGHESTMODSEQ %s", &highestModSeq)
	}
	return strings.TrimSuffix(uidValidity, "]"), strings.TrimSuffix(highestModSeq, "]")
}

// waitFor polls cond until it holds (a condition wait, bounded at 10s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSelectedMailboxDeleted: a session whose selected mailbox another
// session deletes is told BYE at its next update point.
func TestSelectedMailboxDeleted(t *testing.T) {
	e := newEnv(t)
	e.account("gone@example.com")
	addr := e.gateway(nil)
	a := login(t, addr, "gone@example.com")
	a.ok("CREATE Doomed")
	a.ok("SELECT Doomed")
	b := login(t, addr, "gone@example.com")
	b.ok("DELETE Doomed")
	for range 100 {
		lines, _ := a.cmd("NOOP")
		if has(lines, "* BYE Selected mailbox was deleted") {
			return
		}
	}
	t.Fatal("no BYE after the selected mailbox was deleted")
}

// TestRenameInbox: RENAME INBOX moves its messages to the new mailbox and
// leaves INBOX empty (RFC 3501 6.3.5).
func TestRenameInbox(t *testing.T) {
	e := newEnv(t)
	a := e.account("ri@example.com")
	e.deliver(a, mail.Inbox, msg1)
	e.deliver(a, mail.Inbox, msg1)
	c := login(t, e.gateway(nil), "ri@example.com")
	c.ok("RENAME INBOX Old/Inbox")
	if lines := c.ok("STATUS Old/Inbox (MESSAGES)"); !has(lines, "MESSAGES 2") {
		t.Fatalf("renamed mailbox: %q", lines)
	}
	if lines := c.ok("STATUS INBOX (MESSAGES UIDNEXT)"); !has(lines, "MESSAGES 0 UIDNEXT 3") {
		t.Fatalf("INBOX after rename: %q", lines)
	}
}

// TestAuthFailuresCloseConnection: after the configured number of
// failures the connection is closed.
func TestAuthFailuresCloseConnection(t *testing.T) {
	e := newEnv(t)
	e.account("af@example.com")
	c := dialRaw(t, e.gateway(nil))
	for range 2 {
		if _, tagged := c.cmd("LOGIN af@example.com wrong"); !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("failure: %s", tagged)
		}
	}
	c.send("x LOGIN af@example.com wrong\r\n")
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("third failure: %q", l)
	}
}

func TestConnectionsPerIP(t *testing.T) {
	e := newEnv(t)
	addr := e.gateway(func(c *Config) { c.MaxConnsPerIP = 1 })
	dialRaw(t, addr)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c) // the refusal, then EOF
	if err != nil || string(got) != "* BYE [UNAVAILABLE] Too many connections from your address\r\n" {
		t.Fatalf("second connection got %q, %v", got, err)
	}
}

// TestQresyncWithheldExpunge: while an EXPUNGE is held back during a
// command by sequence number, the session may send FETCH responses whose
// MODSEQ is above the expunge's; a QRESYNC client that then loses its
// connection would resynchronise from that MODSEQ and never learn of the
// expunge, so the server must follow them with a HIGHESTMODSEQ below the
// expunge's (RFC 7162 3.2), and a resync from it reports the expunge.
func TestQresyncWithheldExpunge(t *testing.T) {
	e := newEnv(t)
	a := e.account("withheld@example.com")
	for range 3 {
		e.deliver(a, mail.Inbox, msg1)
	}
	gw := e.gateway(nil)
	c := login(t, gw, "withheld@example.com")
	uv, _ := qresyncSelectInbox(c)
	other := login(t, gw, "withheld@example.com")
	other.ok("SELECT INBOX")
	other.ok(`STORE 1 +FLAGS (\Deleted)`)
	other.ok("EXPUNGE")
	m, err := e.store.Mailbox(t.Context(), a.ID, mail.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	expunged := m.HighestModSeq
	other.ok(`UID STORE 2 +FLAGS (\Flagged)`)

	// A FETCH by sequence number: the expunge of UID 1 is withheld, the
	// flag change of UID 2 (MODSEQ above it) is sent.
	lines := c.ok("FETCH 2 (FLAGS)")
	checkpoint := uint64(0)
	sawHigher := false
	for _, l := range lines {
		if strings.Contains(l, "EXPUNGE") || strings.Contains(l, "VANISHED") {
			t.Fatalf("expunge sent during FETCH by sequence number: %q", lines)
		}
		var ms uint64
		if i := strings.Index(l, "MODSEQ ("); i >= 0 {
			fmt.Sscanf(l[i:], "MODSEQ (%d)", &ms)
			sawHigher = sawHigher || ms > uint64(expunged)
			checkpoint = max(checkpoint, ms)
		}
		if n, _ := fmt.Sscanf(l, "* OK [HIGHESTMODSEQ %d]", &ms); n == 1 {
			checkpoint = ms // the server's correction comes after the FETCHes
		}
	}
	if !sawHigher {
		t.Fatalf("no FETCH with a MODSEQ above the expunge's (%d): %q", expunged, lines)
	}
	if checkpoint >= uint64(expunged) {
		t.Fatalf("a client would resynchronise from MODSEQ %d, not below the withheld expunge's %d: %q", checkpoint, expunged, lines)
	}
	// The connection is lost here; the resync from the checkpoint reports
	// the expunge.
	c.conn.Close()
	c = login(t, gw, "withheld@example.com")
	c.ok("ENABLE QRESYNC")
	lines = c.ok("SELECT INBOX (QRESYNC (%s %d 1:3))", uv, checkpoint)
	if !has(lines, "* VANISHED (EARLIER) 1") {
		t.Errorf("resync from %d does not report the expunge of UID 1: %q", checkpoint, lines)
	}
}

// racingStore runs hook once, after the next ListEntries of the whole
// mailbox: a change committed while a SELECT builds its view.
type racingStore struct {
	meta.Store
	hook atomic.Pointer[func()]
}

func (r *racingStore) ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, since mail.ModSeq) ([]meta.Entry, error) {
	es, err := r.Store.ListEntries(ctx, acct, mbox, uids, f, since)
	if h := r.hook.Swap(nil); h != nil {
		(*h)()
	}
	return es, err
}

// TestSelectRacingChanges: changes committed while SELECT reads the
// mailbox are neither reported against a view that still holds the
// message (a VANISHED (EARLIER) of a message counted in EXISTS) nor lost:
// the first update point announces them.
func TestSelectRacingChanges(t *testing.T) {
	e := newEnv(t)
	rs := &racingStore{Store: e.store}
	e.store = rs
	a := e.account("race@example.com")
	for range 3 {
		e.deliver(a, mail.Inbox, msg1)
	}
	gw := e.gateway(nil)
	c := login(t, gw, "race@example.com")
	uv, hms := qresyncSelectInbox(c)
	c.ok("LOGOUT")

	mb, err := rs.Store.Mailbox(t.Context(), a.ID, mail.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	hook := func() {
		ctx := context.Background()
		if _, err := rs.Store.StoreFlags(ctx, a.ID, mb.ID, meta.FlagChange{UIDs: mail.NewUIDSet(3), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagFlagged}}); err != nil {
			t.Error(err)
		}
		if _, _, err := rs.Store.Expunge(ctx, a.ID, mb.ID, mail.NewUIDSet(2)); err != nil {
			t.Error(err)
		}
	}
	c = login(t, gw, "race@example.com")
	c.ok("ENABLE QRESYNC")
	rs.hook.Store(&hook)
	lines := c.ok("SELECT INBOX (QRESYNC (%s %s 1:3))", uv, hms)
	if !has(lines, "* 3 EXISTS") {
		t.Fatalf("SELECT did not count the 3 messages it read: %q", lines)
	}
	if has(lines, "VANISHED") {
		t.Errorf("SELECT reported as vanished a message its EXISTS counts: %q", lines)
	}
	lines = c.ok("NOOP")
	if !has(lines, "* VANISHED 2") || !has(lines, `FLAGS (\Flagged) UID 3 MODSEQ`) {
		t.Errorf("the changes made during SELECT were not announced at the next NOOP: %q", lines)
	}
}
