package pop3gw

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// entries returns INBOX of acct with flags and info, by UID.
func (e *env) entries(acct meta.Account) map[mail.UID]meta.Entry {
	e.t.Helper()
	ctx := context.Background()
	m, err := e.store.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	es, err := e.store.ListEntries(ctx, acct.ID, m.ID, mail.AllUIDs(), meta.FieldFlags|meta.FieldInfo, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[mail.UID]meta.Entry{}
	for _, en := range es {
		out[en.UID] = en
	}
	return out
}

func (e *env) setPolicy(acct meta.Account, p meta.POP3Policy) {
	e.t.Helper()
	if _, err := e.store.UpdateAccount(context.Background(), acct.ID, meta.AccountUpdate{POP3: &p}); err != nil {
		e.t.Fatal(err)
	}
}

// TestPolicies runs one session (RETR 1, DELE 2, QUIT) under each
// leave-on-server policy, set on the account or as the server default,
// and checks what the store and the next session see.
func TestPolicies(t *testing.T) {
	for _, tc := range []struct {
		name       string
		serverKeep string
		account    meta.POP3Policy
		// kept: message 2 stays in INBOX, hidden from POP3; stamped: the
		// first retrieval of messages 1 and 2 is recorded.
		kept, stamped bool
		expire        string
	}{
		{name: "default delete", expire: "NEVER"},
		{name: "account delete over server forever", serverKeep: "forever", account: meta.POP3Policy{Mode: meta.POP3Delete}, expire: "NEVER"},
		{name: "account forever", account: meta.POP3Policy{Mode: meta.POP3KeepForever}, kept: true, expire: "NEVER"},
		{name: "server forever", serverKeep: "forever", kept: true, expire: "NEVER"},
		{name: "account days", account: meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 3}, kept: true, stamped: true, expire: "3"},
		{name: "server days", serverKeep: "7d", kept: true, stamped: true, expire: "7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			addr := e.gateway(func(c *Config) { c.Keep = tc.serverKeep })
			acct := e.account("user@example.com")
			e.setPolicy(acct, tc.account)
			for i := range 3 {
				e.deliver(acct, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i+1, i+1))
			}
			before := time.Now().Add(-time.Second)

			c := dialRaw(t, addr)
			c.login("user@example.com")
			if caps := c.multi("CAPA"); !slices.Contains(caps, "EXPIRE "+tc.expire) {
				t.Fatalf("CAPA after login lacks EXPIRE %s: %q", tc.expire, caps)
			}
			uidls := c.multi("UIDL")
			c.multi("RETR 1")
			c.multi("TOP 3 0") // TOP is not a retrieval
			c.ok("DELE 2")
			if got := c.ok("QUIT"); !strings.Contains(got, "1 messages deleted") {
				t.Fatalf("QUIT: %q", got)
			}
			c.eof()

			inbox := e.entries(acct)
			if _, ok := inbox[2]; ok != tc.kept {
				t.Fatalf("message 2 in INBOX: %v, want %v", ok, tc.kept)
			}
			if !slices.Contains(inbox[1].Flags, mail.FlagSeen) {
				t.Errorf("retrieved message 1 not \\Seen: %v", inbox[1].Flags)
			}
			if len(inbox[3].Flags) != 0 {
				t.Errorf("untouched message 3 has flags %v", inbox[3].Flags)
			}
			if tc.kept && !slices.Contains(inbox[2].Flags, DeletedKeyword) {
				t.Errorf("kept message 2 lacks %s: %v", DeletedKeyword, inbox[2].Flags)
			}
			for uid, want := range map[mail.UID]bool{1: tc.stamped, 2: tc.stamped && tc.kept, 3: false} {
				got := inbox[uid].Retrieved
				if got.IsZero() == want || (want && got.Before(before)) {
					t.Errorf("message %d retrieved at %v, want stamped=%v", uid, got, want)
				}
			}

			// The next session sees messages 1 and 3 only, with the same
			// UIDLs as before.
			c = dialRaw(t, addr)
			c.login("user@example.com")
			again := c.multi("UIDL")
			want := []string{"1 " + strings.Fields(uidls[0])[1], "2 " + strings.Fields(uidls[2])[1]}
			if !slices.Equal(again, want) {
				t.Fatalf("UIDL after the update = %q, want %q", again, want)
			}
			c.ok("QUIT")
		})
	}
}

func TestCapaPolicy(t *testing.T) {
	e := newEnv(t)
	addr := e.gateway(func(c *Config) { c.Keep, c.LoginDelay = "5d", time.Minute })
	acct := e.account("user@example.com")
	e.setPolicy(acct, meta.POP3Policy{Mode: meta.POP3KeepForever, LoginDelay: 120})

	c := dialRaw(t, addr)
	caps := c.multi("CAPA")
	for _, want := range []string{"EXPIRE 5 USER", "LOGIN-DELAY 60 USER"} {
		if !slices.Contains(caps, want) {
			t.Fatalf("CAPA before login lacks %q: %q", want, caps)
		}
	}
	c.login("user@example.com")
	caps = c.multi("CAPA")
	for _, want := range []string{"EXPIRE NEVER", "LOGIN-DELAY 120"} {
		if !slices.Contains(caps, want) {
			t.Fatalf("CAPA after login lacks %q: %q", want, caps)
		}
	}
}

func TestLoginDelay(t *testing.T) {
	e := newEnv(t)
	delay := func(c *Config) { c.LoginDelay = time.Hour }
	addr := e.gateway(delay)
	other := e.gateway(delay) // another pod, same store
	e.account("user@example.com")

	c := dialRaw(t, addr)
	c.login("user@example.com")
	// A login refused for IN-USE does not count as one.
	d := dialRaw(t, other)
	d.ok("USER user@example.com")
	if got := d.cmd("PASS pw"); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Fatalf("second login while locked: %q", got)
	}
	c.ok("QUIT")
	c.eof()
	d.ok("USER user@example.com")
	if got := d.cmd("PASS pw"); !strings.HasPrefix(got, "-ERR [LOGIN-DELAY]") {
		t.Fatalf("login within the delay: %q", got)
	}
	// The refused login holds no lock: the state is still AUTHORIZATION.
	if got := d.cmd("STAT"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("STAT after a refused login: %q", got)
	}
}

func TestConnectionsPerIP(t *testing.T) {
	e := newEnv(t)
	addr := e.gateway(func(c *Config) { c.MaxConnsPerIP = 2 })
	dialRaw(t, addr)
	dialRaw(t, addr)
	c := newReaderConn(t, addr)
	if got := c.line(); got != "-ERR [SYS/TEMP] Too many connections from your address" {
		t.Fatalf("third connection: %q", got)
	}
	c.eof()
}

// newReaderConn dials without reading a greeting.
func newReaderConn(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, conn: c, r: bufio.NewReader(c)}
}

func TestCommandRate(t *testing.T) {
	e := newEnv(t)
	addr := e.gateway(func(c *Config) { c.CommandRate, c.CommandBurst = 0.001, 2 })
	c := dialRaw(t, addr)
	// The burst is answered; the third command waits its turn, and the
	// answers owed are sent before the wait.
	c.send("NOOP\r\nCAPA\r\nNOOP\r\n")
	if got := c.line(); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("NOOP in AUTHORIZATION: %q", got)
	}
	if got := c.line(); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("CAPA: %q", got)
	}
	for l := c.line(); l != "."; l = c.line() {
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if l, err := c.r.ReadString('\n'); err == nil {
		t.Fatalf("third command answered within the pace: %q", l)
	}
	// Shutting the gateway down ends the waiting session (the cleanup
	// waits for it).
}
