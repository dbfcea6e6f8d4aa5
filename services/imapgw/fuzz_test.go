package imapgw

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
)

// panicCounter counts "session panic" records: a session recovers from a
// panic (so the pod lives on), and the fuzz target must still fail.
type panicCounter struct{ n atomic.Int64 }

func (p *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "session panic" {
		p.n.Add(1)
	}
	return nil
}
func (p *panicCounter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicCounter) WithGroup(string) slog.Handler      { return p }

// FuzzSession feeds raw bytes to a logged-in session over a real
// connection, with a mailbox holding messages: no panic, no hang, and the
// gateway keeps serving.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"a SELECT INBOX\r\nb FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.10>)\r\n",
		"a SELECT INBOX\r\nb UID STORE 1 +FLAGS (\\Seen)\r\nc SEARCH OR FROM x TEXT y\r\n",
		"a APPEND INBOX {5}\r\nhello\r\n",
		"a APPEND INBOX {999999999999}\r\n",
		"a LIST (SUBSCRIBED) \"\" (\"*\" \"%\") RETURN (STATUS (MESSAGES))\r\n",
		"a SELECT INBOX (QRESYNC (1 1 1:*))\r\n",
		"a IDLE\r\nDONE\r\n",
		"a SELECT INBOX\r\nb FETCH 1 BINARY[1.2.3.4]<5.6>\r\nc SORT (REVERSE DATE) UTF-8 ALL\r\n",
		"\x00\xff\r\n((((((((((\r\n",
		"a CREATE \"&Jjo-\"\r\nb RENAME INBOX x/y\r\nc DELETE x\r\n",
		"a COMPRESS DEFLATE\r\n\x01\x02\x03",
	} {
		f.Add([]byte(seed))
	}
	// One stack for every input: each gets a fresh connection, and the
	// account's state carries over, which only widens what is tried.
	e := newEnv(f)
	pc := &panicCounter{}
	a := e.account("fuzz@example.com")
	e.deliver(a, mail.Inbox, msg1)
	e.deliver(a, mail.Inbox, corpus["attachment base64"])
	addr := e.gatewayWithLogger(func(c *Config) { c.IdleTimeout = time.Minute; c.MaxLineLength = 8192 }, slog.New(pc))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("l LOGIN fuzz@example.com pw\r\n"))
		c.Write(data)
		c.Write([]byte("\r\nz LOGOUT\r\n"))
		c.SetReadDeadline(time.Now().Add(time.Second))
		// The session may still be waiting (for a literal, in IDLE):
		// that is the protocol, not a hang; the deadline ends the read.
		_, _ = io.Copy(io.Discard, c)
		if pc.n.Load() > 0 {
			t.Fatalf("a session panicked on %q", data)
		}
		probe := dialRaw(t, addr)
		if lines := probe.ok("CAPABILITY"); !has(lines, "IMAP4rev2") {
			t.Fatalf("gateway stopped serving after %q", data)
		}
	})
}
