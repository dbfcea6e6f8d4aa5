package pop3gw

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
)

func TestCommands(t *testing.T) {
	e := newEnv(t)
	a := e.account("cmd@example.com")
	r1 := e.deliver(a, "Subject: one\r\n\r\nfirst\r\n.dot\r\n")
	e.deliver(a, "Subject: two\n\nbare lf\n")
	addr := e.gateway(nil)
	c := dialRaw(t, addr)

	for _, tc := range []struct{ name, cmd, want string }{
		{"stat before login", "STAT", "-ERR Command not valid in this state"},
		{"unknown", "FROB", "-ERR Unknown command"},
		{"empty", "", "-ERR Empty command"},
		{"pass before user", "PASS pw", "-ERR Send USER first"},
		{"apop", "APOP x y", "-ERR APOP not supported"},
		{"too long", "NOOP " + strings.Repeat("x", 2000), "-ERR Command line too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.cmd("%s", tc.cmd); got != tc.want {
				t.Fatalf("%q: got %q, want %q", tc.cmd, got, tc.want)
			}
		})
	}
	caps := c.multi("CAPA")
	for _, want := range []string{"TOP", "USER", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN LOGIN", "EXPIRE NEVER USER", "IMPLEMENTATION mailstore"} {
		if !slices.Contains(caps, want) {
			t.Fatalf("CAPA lacks %q: %q", want, caps)
		}
	}
	if slices.Contains(caps, "STLS") {
		t.Fatalf("STLS without a certificate: %q", caps)
	}
	c.ok("USER cmd@example.com")
	if got := c.cmd("PASS wrong"); got != "-ERR [AUTH] Authentication failed" {
		t.Fatalf("bad password: %q", got)
	}
	c.login("cmd@example.com")

	uv := fmt.Sprint(r1.Appended.UIDValidity)
	for _, tc := range []struct{ name, cmd, want string }{
		{"stat", "STAT", "+OK 2 55"},
		{"list 1", "LIST 1", "+OK 1 30"},
		{"list 2", "LIST 2", "+OK 2 25"},
		{"list 3", "LIST 3", "-ERR No such message"},
		{"list 0", "LIST 0", "-ERR Invalid message number"},
		{"list x", "LIST x", "-ERR Invalid message number"},
		{"uidl 2", "UIDL 2", "+OK 2 " + uv + ".2"},
		{"user again", "USER x", "-ERR Command not valid in this state"},
		{"top bad", "TOP 1", "-ERR TOP needs a message number and a line count"},
		{"top neg", "TOP 1 -1", "-ERR Invalid line count"},
		{"noop", "NOOP", "+OK"},
		{"noop arg", "NOOP x", "-ERR NOOP takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.cmd("%s", tc.cmd); got != tc.want {
				t.Fatalf("%q: got %q, want %q", tc.cmd, got, tc.want)
			}
		})
	}
	if got := c.multi("LIST"); !slices.Equal(got, []string{"1 30", "2 25"}) {
		t.Fatalf("LIST: %q", got)
	}
	if got := c.multi("UIDL"); !slices.Equal(got, []string{"1 " + uv + ".1", "2 " + uv + ".2"}) {
		t.Fatalf("UIDL: %q", got)
	}
	if got := c.multi("RETR 1"); !slices.Equal(got, []string{"Subject: one", "", "first", "..dot"}) {
		t.Fatalf("RETR 1: %q", got)
	}
	if got := c.multi("RETR 2"); !slices.Equal(got, []string{"Subject: two", "", "bare lf"}) {
		t.Fatalf("RETR 2: %q", got)
	}
	if got := c.multi("TOP 1 0"); !slices.Equal(got, []string{"Subject: one", ""}) {
		t.Fatalf("TOP 1 0: %q", got)
	}
	c.ok("DELE 1")
	for _, tc := range []struct{ cmd, want string }{
		{"DELE 1", "-ERR Message 1 already deleted"},
		{"RETR 1", "-ERR Message 1 already deleted"},
		{"STAT", "+OK 1 25"},
	} {
		if got := c.cmd("%s", tc.cmd); got != tc.want {
			t.Fatalf("%q: got %q, want %q", tc.cmd, got, tc.want)
		}
	}
	if got := c.multi("LIST"); !slices.Equal(got, []string{"2 25"}) {
		t.Fatalf("LIST after DELE: %q", got)
	}
	c.ok("RSET")
	if got := c.cmd("STAT"); got != "+OK 2 55" {
		t.Fatalf("STAT after RSET: %q", got)
	}
	c.ok("DELE 2")
	if got := c.cmd("QUIT"); got != "+OK mailstore POP3 signing off (1 messages deleted)" {
		t.Fatalf("QUIT: %q", got)
	}
	c.eof()
	if got := e.inbox(a); !slices.Equal(got, []mail.UID{1}) {
		t.Fatalf("INBOX after QUIT: %v", got)
	}
}

// TestPipelining: commands sent at once are answered in order.
func TestPipelining(t *testing.T) {
	e := newEnv(t)
	a := e.account("pipe@example.com")
	e.deliver(a, "Subject: x\r\n\r\ny\r\n")
	c := dialRaw(t, e.gateway(nil))
	c.send("USER pipe@example.com\r\nPASS pw\r\nSTAT\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n")
	for i, want := range []string{"+OK Send PASS", "+OK Logged in; maildrop has 1 messages", "+OK 1 17", "+OK 1 ", "+OK", "+OK mailstore POP3 signing off"} {
		if got := c.line(); !strings.HasPrefix(got, want) {
			t.Fatalf("answer %d: %q, want %q", i, got, want)
		}
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	e.account("sasl@example.com")
	addr := e.gateway(nil)
	plain := b64("\x00sasl@example.com\x00pw")
	for _, tc := range []struct {
		name  string
		lines []string // sent in turn; each answer must start with the next want
		wants []string
	}{
		{"plain ir", []string{"AUTH PLAIN " + plain}, []string{"+OK Logged in"}},
		{"plain", []string{"AUTH PLAIN", plain}, []string{"+ ", "+OK Logged in"}},
		{"plain bad", []string{"AUTH PLAIN " + b64("\x00sasl@example.com\x00no")}, []string{"-ERR [AUTH] Authentication failed"}},
		{"login", []string{"AUTH LOGIN", b64("sasl@example.com"), b64("pw")}, []string{"+ " + b64("Username:"), "+ " + b64("Password:"), "+OK Logged in"}},
		{"login ir", []string{"AUTH LOGIN " + b64("sasl@example.com"), b64("pw")}, []string{"+ " + b64("Password:"), "+OK Logged in"}},
		{"cancel", []string{"AUTH PLAIN", "*"}, []string{"+ ", "-ERR Authentication cancelled"}},
		{"bad base64", []string{"AUTH PLAIN !!"}, []string{"-ERR Invalid base64"}},
		{"unknown mech", []string{"AUTH CRAM-MD5"}, []string{"-ERR Unsupported mechanism"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			for i, l := range tc.lines {
				if got := c.cmd("%s", l); !strings.HasPrefix(got, tc.wants[i]) {
					t.Fatalf("%q: got %q, want %q", l, got, tc.wants[i])
				}
			}
			c.ok("QUIT")
			c.eof()
		})
	}
	t.Run("too many failures", func(t *testing.T) {
		c := dialRaw(t, addr)
		for i := range 3 {
			c.ok("USER sasl@example.com")
			got := c.cmd("PASS bad")
			if i < 2 && got != "-ERR [AUTH] Authentication failed" || i == 2 && got != "-ERR [AUTH] Too many authentication failures" {
				t.Fatalf("failure %d: %q", i+1, got)
			}
		}
		c.eof()
	})
}

// TestLock: one POP3 session per account across pods, released on QUIT
// and on a dropped connection.
func TestLock(t *testing.T) {
	e := newEnv(t)
	e.account("lock@example.com")
	pod1, pod2 := e.gateway(nil), e.gateway(nil)

	a := dialRaw(t, pod1)
	a.login("lock@example.com")
	b := dialRaw(t, pod2)
	b.ok("USER lock@example.com")
	if got := b.cmd("PASS pw"); got != "-ERR [IN-USE] Maildrop is locked by another POP3 session" {
		t.Fatalf("second login: %q", got)
	}
	// Still in AUTHORIZATION: a retry after QUIT of the first works.
	a.ok("QUIT")
	a.eof()
	b.login("lock@example.com")

	// A dropped connection (no QUIT) releases the lock: the server closes
	// its side only after releasing it.
	b.conn.(*net.TCPConn).CloseWrite()
	b.eof()
	c := dialRaw(t, pod1)
	c.login("lock@example.com")
}

// TestDropDeletesNothing: DELE marks die with a connection without QUIT.
func TestDropDeletesNothing(t *testing.T) {
	e := newEnv(t)
	acct := e.account("drop@example.com")
	e.deliver(acct, "Subject: 1\r\n\r\nx\r\n")
	e.deliver(acct, "Subject: 2\r\n\r\nx\r\n")
	addr := e.gateway(nil)
	c := dialRaw(t, addr)
	c.login("drop@example.com")
	c.ok("DELE 1")
	c.ok("DELE 2")
	c.conn.(*net.TCPConn).CloseWrite()
	c.eof()
	if got := e.inbox(acct); !slices.Equal(got, []mail.UID{1, 2}) {
		t.Fatalf("INBOX after drop: %v", got)
	}
	// And a server shutdown mid-session deletes nothing either.
	c = dialRaw(t, addr)
	c.login("drop@example.com")
	c.ok("DELE 1")
	e.gws[0].shutdown()
	if got := c.line(); !strings.HasPrefix(got, "-ERR [SYS/TEMP] Server shutting down") {
		t.Fatalf("shutdown: %q", got)
	}
	c.eof()
	if got := e.inbox(acct); !slices.Equal(got, []mail.UID{1, 2}) {
		t.Fatalf("INBOX after shutdown: %v", got)
	}
}

// TestSnapshot: message numbers stay fixed while another session appends
// and expunges; a message expunged meanwhile answers -ERR; DELE of it at
// QUIT is harmless.
func TestSnapshot(t *testing.T) {
	e := newEnv(t)
	acct := e.account("snap@example.com")
	for i := range 3 {
		e.deliver(acct, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i+1, i+1))
	}
	c := dialRaw(t, e.gateway(nil))
	c.login("snap@example.com")
	before := c.multi("UIDL")

	ctx := context.Background()
	inbox, err := e.store.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	e.deliver(acct, "Subject: 4\r\n\r\nnew\r\n")
	if _, _, err := e.store.Expunge(ctx, acct.ID, inbox.ID, mail.NewUIDSet(2)); err != nil {
		t.Fatal(err)
	}
	if got := c.multi("UIDL"); !slices.Equal(got, before) {
		t.Fatalf("UIDL changed: %q, was %q", got, before)
	}
	for _, cmd := range []string{"RETR 2", "TOP 2 1"} {
		if got := c.cmd("%s", cmd); got != "-ERR Message was deleted by another session" {
			t.Fatalf("%s of an expunged message: %q", cmd, got)
		}
	}
	if got := c.multi("RETR 3"); !slices.Equal(got, []string{"Subject: 3", "", "body 3"}) {
		t.Fatalf("RETR 3: %q", got)
	}
	if got := c.cmd("RETR 4"); got != "-ERR No such message" {
		t.Fatalf("RETR 4: %q", got)
	}
	c.ok("DELE 2")
	c.ok("DELE 3")
	if got := c.cmd("QUIT"); got != "+OK mailstore POP3 signing off (1 messages deleted)" {
		t.Fatalf("QUIT: %q", got)
	}
	if got := e.inbox(acct); !slices.Equal(got, []mail.UID{1, 4}) {
		t.Fatalf("INBOX: %v", got)
	}
}

// TestLeaseLost: a session whose lease was taken over stops, deleting
// nothing.
func TestLeaseLost(t *testing.T) {
	e := newEnv(t)
	acct := e.account("lost@example.com")
	e.deliver(acct, "Subject: 1\r\n\r\nx\r\n")
	addr := e.gateway(func(c *Config) { c.LeaseTTL = 300 * time.Millisecond })
	c := dialRaw(t, addr)
	c.login("lost@example.com")
	c.ok("DELE 1")
	// Another holder takes the lock over, as after a lapse.
	var token uint64
	for _, s := range e.gws[0].conns.Sessions() {
		token = s.(*session).lease.Token
	}
	ctx := context.Background()
	if err := e.store.ReleaseLease(ctx, acct.ID, leaseName, token); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AcquireLease(ctx, acct.ID, leaseName, "thief", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := c.line(); got != "-ERR [IN-USE] Maildrop lock lost; no messages deleted" {
		t.Fatalf("after the lease was lost: %q", got)
	}
	c.eof()
	if got := e.inbox(acct); !slices.Equal(got, []mail.UID{1}) {
		t.Fatalf("INBOX: %v", got)
	}
}

// TestIdleTimeout: a silent session is logged out and its lock released.
func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	e.account("idle@example.com")
	addr := e.gateway(func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := dialRaw(t, addr)
	c.login("idle@example.com")
	if got := c.line(); got != "-ERR Autologout; idle for too long" {
		t.Fatalf("idle: %q", got)
	}
	c.eof()
	dialRaw(t, addr).login("idle@example.com")
}

func TestTLS(t *testing.T) {
	e := newEnv(t)
	e.account("tls@example.com")
	certFile, keyFile, pool := testCert(t)
	addr := e.gateway(func(c *Config) {
		c.CertFile, c.KeyFile = certFile, keyFile
		c.AllowPlaintextLoopback = false
	})

	c := dialRaw(t, addr)
	caps := c.multi("CAPA")
	if !slices.Contains(caps, "STLS") || slices.Contains(caps, "USER") || slices.Contains(caps, "SASL PLAIN LOGIN") {
		t.Fatalf("CAPA before TLS: %q", caps)
	}
	for _, cmd := range []string{"USER tls@example.com", "AUTH PLAIN " + b64("\x00tls@example.com\x00pw")} {
		if got := c.cmd("%s", cmd); !strings.HasPrefix(got, "-ERR [AUTH] Plaintext authentication disallowed") {
			t.Fatalf("%s before TLS: %q", cmd, got)
		}
	}
	c.ok("STLS")
	tc := tlsClient(c.conn, pool)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &raw{t: t, conn: tc, r: newReader(tc)}
	caps = s.multi("CAPA")
	if slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") {
		t.Fatalf("CAPA after STLS: %q", caps)
	}
	if got := s.cmd("STLS"); got != "-ERR Command not valid in this state" && got != "-ERR TLS not available" {
		t.Fatalf("second STLS: %q", got)
	}
	s.login("tls@example.com")
	s.ok("QUIT")

	// Implicit TLS.
	conn, err := net.Dial("tcp", e.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	it := newRaw(t, tlsClient(conn, pool))
	it.login("tls@example.com")
	it.ok("QUIT")

	// Data pipelined after STLS is refused.
	c = dialRaw(t, addr)
	c.send("STLS\r\nNOOP\r\n")
	if got := c.line(); got != "-ERR Data after STLS" {
		t.Fatalf("STLS with data after it: %q", got)
	}
	c.eof()
}

// TestTLSCertificateSwap: a certificate replaced on disk is served to the
// next implicit-TLS connection, without a restart.
func TestTLSCertificateSwap(t *testing.T) {
	e := newEnv(t)
	certFile, keyFile, pool := testCert(t)
	e.gateway(func(c *Config) { c.CertFile, c.KeyFile = certFile, keyFile })
	connect := func(pool *x509.CertPool) error {
		c, err := net.Dial("tcp", e.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return tlsClient(c, pool).Handshake()
	}
	if err := connect(pool); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	newCert, newKey, newPool := testCert(t)
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The files are looked at once a second at most.
	deadline := time.Now().Add(10 * time.Second)
	for connect(newPool) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the swapped certificate is not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := connect(pool); err == nil {
		t.Fatal("the old certificate is still served")
	}
}
