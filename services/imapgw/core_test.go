package imapgw

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
)

const msg1 = "From: a@example.org\r\nTo: b@example.com\r\nSubject: one\r\n\r\nfirst\r\n"

func TestGreetingCapabilityLogin(t *testing.T) {
	e := newEnv(t)
	e.account("user@example.com")
	addr := e.gateway(nil)
	c := dialRaw(t, addr)
	caps := c.ok("CAPABILITY")
	if !has(caps, "IMAP4rev2") || !has(caps, "AUTH=PLAIN") || has(caps, "LOGINDISABLED") {
		t.Fatalf("capabilities before login: %q", caps)
	}
	if _, tagged := c.cmd("SELECT INBOX"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("SELECT before login: %s", tagged)
	}
	if _, tagged := c.cmd("LOGIN user@example.com wrong"); !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %s", tagged)
	}
	_, tagged := c.cmd(`LOGIN "USER@example.com" "pw"`)
	if !strings.Contains(tagged, "OK [CAPABILITY ") {
		t.Fatalf("login: %s", tagged)
	}
	if _, tagged := c.cmd("LOGIN user@example.com pw"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("second LOGIN: %s", tagged)
	}
	lines := c.ok("NAMESPACE")
	if !has(lines, `* NAMESPACE (("" "/")) NIL NIL`) {
		t.Fatalf("namespace: %q", lines)
	}
	lines = c.ok(`ID ("name" "test")`)
	if !has(lines, `* ID ("name" "mailstore"`) {
		t.Fatalf("id: %q", lines)
	}
	lines = c.ok("ENABLE CONDSTORE UTF8=ACCEPT")
	if !has(lines, "* ENABLED") {
		t.Fatalf("enable: %q", lines)
	}
	lines, tagged = c.cmd("LOGOUT")
	if !has(lines, "* BYE") || !strings.Contains(tagged, "OK") {
		t.Fatalf("logout: %q %s", lines, tagged)
	}
}

func TestAuthenticatePlain(t *testing.T) {
	e := newEnv(t)
	e.account("sasl@example.com")
	addr := e.gateway(nil)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00sasl@example.com\x00pw"))

	c := dialRaw(t, addr)
	if _, tagged := c.cmd("AUTHENTICATE PLAIN %s", ir); !strings.Contains(tagged, "OK") {
		t.Fatalf("SASL-IR: %s", tagged)
	}
	c = dialRaw(t, addr)
	c.send("a AUTHENTICATE PLAIN\r\n")
	if l := c.line(); l != "+ " {
		t.Fatalf("continuation %q", l)
	}
	c.send(ir + "\r\n")
	if _, tagged := c.until("a"); !strings.Contains(tagged, "OK") {
		t.Fatalf("PLAIN: %s", tagged)
	}
	c = dialRaw(t, addr)
	c.send("b AUTHENTICATE PLAIN\r\n")
	c.line()
	c.send("*\r\n")
	if _, tagged := c.until("b"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("cancelled: %s", tagged)
	}
	bad := base64.StdEncoding.EncodeToString([]byte("\x00sasl@example.com\x00nope"))
	if _, tagged := c.cmd("AUTHENTICATE PLAIN %s", bad); !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("bad password: %s", tagged)
	}
}

func TestMalformedCommands(t *testing.T) {
	e := newEnv(t)
	e.account("bad@example.com")
	addr := e.gateway(func(c *Config) { c.MaxLineLength = 2048 })
	c := dialRaw(t, addr)
	for _, line := range []string{
		"FROB",
		"LOGIN",
		`LOGIN "unterminated`,
		"CAPABILITY extra",
		"UID CAPABILITY",
	} {
		if _, tagged := c.cmd("%s", line); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%q: %s", line, tagged)
		}
	}
	// Still usable.
	c.ok("LOGIN bad@example.com pw")
	// A huge synchronizing literal is refused without a continuation.
	c.send("x SELECT {999999999}\r\n")
	if _, tagged := c.until("x"); !strings.Contains(tagged, "NO [TOOBIG]") {
		t.Fatalf("huge literal: %s", tagged)
	}
	c.ok("NOOP")
	// An over-long line ends the connection with BYE.
	c.send("y " + strings.Repeat("A", 4096) + "\r\n")
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("long line: %q", l)
	}
}

func TestSelectAndUpdates(t *testing.T) {
	e := newEnv(t)
	a := e.account("sel@example.com")
	e.deliver(a, mail.Inbox, msg1, mail.FlagSeen)
	e.deliver(a, mail.Inbox, msg1)
	addr := e.gateway(nil)
	c := dialRaw(t, addr)
	c.ok("LOGIN sel@example.com pw")
	c.ok("ENABLE CONDSTORE")
	lines, tagged := c.cmd("SELECT INBOX")
	for _, want := range []string{"* 2 EXISTS", "* OK [UIDVALIDITY ", "* OK [UIDNEXT 3]", "* FLAGS (", "PERMANENTFLAGS", "HIGHESTMODSEQ"} {
		if !has(lines, want) {
			t.Errorf("SELECT lacks %q: %q", want, lines)
		}
	}
	if !strings.Contains(tagged, "OK [READ-WRITE]") {
		t.Fatalf("select: %s", tagged)
	}
	if _, tagged := c.cmd("SELECT Nope"); !strings.Contains(tagged, "NO [NONEXISTENT]") {
		t.Fatalf("select missing: %s", tagged)
	}
	// A failed SELECT leaves no mailbox selected.
	if _, tagged := c.cmd("CLOSE"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("CLOSE after failed SELECT: %s", tagged)
	}
	c.ok("EXAMINE INBOX")

	// Another session's changes arrive on NOOP.
	r3 := e.deliver(a, mail.Inbox, msg1)
	lines = pollUntil(t, c, "* 3 EXISTS")
	inbox, _ := e.store.Mailbox(context.Background(), a.ID, mail.Inbox)
	if _, _, err := e.store.Expunge(context.Background(), a.ID, inbox.ID, mail.NewUIDSet(1)); err != nil {
		t.Fatal(err)
	}
	lines = pollUntil(t, c, "* 1 EXPUNGE")
	_ = lines
	_ = r3
}

// pollUntil sends NOOP until a response line contains want.
func pollUntil(t *testing.T, c *raw, want string) []string {
	t.Helper()
	for i := 0; i < 200; i++ {
		lines := c.ok("NOOP")
		if has(lines, want) {
			return lines
		}
	}
	t.Fatalf("no %q after 200 NOOPs", want)
	return nil
}

// TestClientStopsReading: a client that sends commands and never reads
// the answers is dropped after the write timeout; others are served.
func TestClientStopsReading(t *testing.T) {
	e := newEnv(t)
	a := e.account("slow@example.com")
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 1<<20) + "\r\n"
	e.deliver(a, mail.Inbox, big)
	addr := e.gateway(func(c *Config) { c.WriteTimeout = 200 * time.Millisecond })
	c := dialRaw(t, addr)
	c.ok("LOGIN slow@example.com pw")
	c.ok("SELECT INBOX")
	if tc, ok := c.conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	for range 50 {
		c.send("f FETCH 1 BODY.PEEK[]\r\n")
	}
	// The gateway gives up on this client while it does not read: the
	// session ends, and a new session works meanwhile.
	other := dialRaw(t, addr)
	other.ok("LOGIN slow@example.com pw")
	waitFor(t, func() bool { return e.gws[0].sessionCount() == 1 })
	other.ok("NOOP")
	// What the kernel still holds for the client (up to a few MB of send
	// buffer) drains slowly through a 4 KB window; open it again first.
	if tc, ok := c.conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 20)
	}
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	// The close shows as EOF, or as a reset since the client left data
	// unread; a timeout would mean the session still hangs.
	if _, err := io.Copy(io.Discard, c.conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the stalled session was not closed: %v", err)
	}
}
