package main

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/internal/testenv"
)

// imapConn is a line-level IMAP client for exact protocol checks.
type imapConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialIMAP(t *testing.T, addr, user, pass string) *imapConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &imapConn{t: t, conn: c, r: bufio.NewReader(c)}
	ic.line()
	ic.ok("LOGIN %s %s", user, pass)
	return ic
}

func (c *imapConn) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *imapConn) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *imapConn) cmd(format string, args ...any) ([]string, string) {
	c.t.Helper()
	c.n++
	tag := fmt.Sprintf("c%d", c.n)
	c.send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	var lines []string
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return lines, l
		}
		lines = append(lines, l)
	}
}

func (c *imapConn) ok(format string, args ...any) []string {
	c.t.Helper()
	lines, tagged := c.cmd(format, args...)
	if !strings.Contains(tagged, " OK") {
		c.t.Fatalf("%s: %s %q", fmt.Sprintf(format, args...), tagged, lines)
	}
	return lines
}

func anyHas(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// noopUntil sends NOOP until a line contains want (bounded).
func (c *imapConn) noopUntil(want string) []string {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if lines := c.ok("NOOP"); anyHas(lines, want) {
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no %q within 30s", want)
	return nil
}

func (c *imapConn) appendMsg(mbox, body string) {
	c.t.Helper()
	c.ok("APPEND %s {%d+}\r\n%s", mbox, len(body), body)
}

// TestIMAPConsistencyAcrossPods: the cross-gateway cases of the issue
// against real processes on Redis and S3.
func TestIMAPConsistencyAcrossPods(t *testing.T) {
	st := startRedisStack(t, 1, testenv.Redis(t), testenv.Prefix(t), testenv.S3(t, testenv.MinIO))
	mailctl(t, st.metaAddrs[0], "pw\n", false, "account", "add", "pods@example.com", "--password-stdin")
	gw1, gw2 := startIMAP(t, "imap-1", st), startIMAP(t, "imap-2", st)
	a := dialIMAP(t, gw1, "pods@example.com", "pw")
	b := dialIMAP(t, gw2, "pods@example.com", "pw")
	for i := range 5 {
		a.appendMsg("INBOX", fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i))
	}
	a.ok("ENABLE CONDSTORE")
	a.ok("SELECT INBOX")
	b.ok("ENABLE QRESYNC")
	lines := b.ok("SELECT INBOX")
	uv := regexp.MustCompile(`UIDVALIDITY (\d+)`).FindStringSubmatch(strings.Join(lines, "\n"))[1]
	hms := regexp.MustCompile(`HIGHESTMODSEQ (\d+)`).FindStringSubmatch(strings.Join(lines, "\n"))[1]

	t.Run("expunge reaches the other pod at an allowed point", func(t *testing.T) {
		a.t, b.t = t, t
		a.ok(`STORE 2 +FLAGS (\Deleted)`)
		a.ok("EXPUNGE")
		// Not during a sequence-number FETCH...
		time.Sleep(200 * time.Millisecond) // let the event arrive; a FETCH must still not carry it
		lines := b.ok("FETCH 1:* (UID)")
		if anyHas(lines, "VANISHED") || anyHas(lines, "EXPUNGE") {
			t.Fatalf("expunge announced during FETCH: %q", lines)
		}
		// ...but at NOOP, with the right sequence number.
		lines = b.noopUntil("VANISHED")
		if !anyHas(lines, "* VANISHED 2") {
			t.Fatalf("want VANISHED 2: %q", lines)
		}
	})
	t.Run("concurrent STORE on one message", func(t *testing.T) {
		a.t, b.t = t, t
		done := make(chan struct{})
		go func() { defer close(done); a.ok(`UID STORE 1 +FLAGS ($A)`) }()
		bl := b.ok(`UID STORE 1 +FLAGS ($B)`)
		<-done
		// b learns of $A in its own STORE answer (if a's came first) or
		// later as an unsolicited FETCH.
		if !anyHas(bl, "$A") {
			b.noopUntil("$A")
		}
		final := a.ok("UID FETCH 1 (FLAGS)")
		if !anyHas(final, "$A") || !anyHas(final, "$B") {
			t.Fatalf("a lost flag: %q", final)
		}
	})
	t.Run("UNCHANGEDSINCE conflict", func(t *testing.T) {
		a.t, b.t = t, t
		fl := a.ok("UID FETCH 3 (MODSEQ)")
		ms := regexp.MustCompile(`MODSEQ \((\d+)\)`).FindStringSubmatch(strings.Join(fl, "\n"))[1]
		b.ok(`UID STORE 3 +FLAGS (\Answered)`)
		_, tagged := a.cmd(`UID STORE 3 (UNCHANGEDSINCE %s) +FLAGS (\Flagged)`, ms)
		if !strings.Contains(tagged, "[MODIFIED 3]") {
			t.Fatalf("conflict not reported: %s", tagged)
		}
		if lines := a.ok("UID FETCH 3 (FLAGS)"); anyHas(lines, `\Flagged`) {
			t.Fatalf("conditional STORE applied despite the conflict: %q", lines)
		}
	})
	t.Run("MOVE while the source is selected elsewhere", func(t *testing.T) {
		a.t, b.t = t, t
		a.ok("UID MOVE 4 Archive")
		lines := b.noopUntil("VANISHED")
		if !anyHas(lines, "* VANISHED 4") {
			t.Fatalf("move not seen: %q", lines)
		}
		if st := b.ok("STATUS Archive (MESSAGES)"); !anyHas(st, "MESSAGES 1") {
			t.Fatalf("Archive after MOVE: %q", st)
		}
	})
	t.Run("QRESYNC reconnect to another pod", func(t *testing.T) {
		a.t, b.t = t, t
		c := dialIMAP(t, gw1, "pods@example.com", "pw")
		c.ok("ENABLE QRESYNC")
		lines := c.ok("SELECT INBOX (QRESYNC (%s %s))", uv, hms)
		if !anyHas(lines, "* VANISHED (EARLIER) 2,4") {
			t.Fatalf("no VANISHED (EARLIER) 2,4: %q", lines)
		}
		if !anyHas(lines, "UID 1 MODSEQ") || !anyHas(lines, "UID 3 MODSEQ") || anyHas(lines, "UID 5 MODSEQ") {
			t.Fatalf("changed flags: %q", lines)
		}
	})
}

// TestIMAPWatchSurvivesMetadataRestart: the metadata process behind a
// gateway dies and comes back; a session that stayed in IDLE still sees
// what changed meanwhile, because it catches up from the change log.
func TestIMAPWatchSurvivesMetadataRestart(t *testing.T) {
	st := startRedisStack(t, 1, testenv.Redis(t), testenv.Prefix(t), testenv.S3(t, testenv.VersityGW))
	mailctl(t, st.metaAddrs[0], "pw\n", false, "account", "add", "watch@example.com", "--password-stdin")
	gw1 := startIMAP(t, "imap-1", st)
	w := dialIMAP(t, gw1, "watch@example.com", "pw")
	w.ok("SELECT INBOX")
	w.send("i IDLE\r\n")
	if l := w.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	st.metas[0].kill()
	st.metas[0].start()
	gw2 := startIMAP(t, "imap-2", st)
	other := dialIMAP(t, gw2, "watch@example.com", "pw")
	other.appendMsg("INBOX", "Subject: while away\r\n\r\nx\r\n")
	if l := w.line(); l != "* 1 EXISTS" {
		t.Fatalf("IDLE after the metadata restart got %q, want * 1 EXISTS", l)
	}
	w.send("DONE\r\n")
}
