package lmtpgw

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/mime"
)

const testBody = "From: Sender <a@example.com>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: hello\r\n" +
	"Message-ID: <1@example.com>\r\n" +
	"\r\n" +
	"line one\r\n" +
	".a line starting with a dot\r\n" +
	"..two dots\r\n" +
	".\r\n" +
	"end\r\n"

// addedFields matches the fields the gateway puts before a message from a
// client on loopback that said LHLO with any name.
func addedFields(from, rcpt, eol string) *regexp.Regexp {
	q := regexp.QuoteMeta
	return regexp.MustCompile(`^Return-Path: <` + q(from) + `>` + eol +
		`Delivered-To: ` + q(rcpt) + eol +
		`Received: from \S+ \(\[127\.0\.0\.1\]\)` + eol +
		"\tby lmtp\\.test with LMTP id [A-Z2-7]{16}" + eol +
		"\tfor <" + q(rcpt) + ">; ([^\r\n]+)" + eol)
}

// checkStored checks that en holds body behind the added fields for rcpt,
// with a structure that describes the stored bytes.
func checkStored(t *testing.T, en stored, from, rcpt, body string) {
	t.Helper()
	eol := "\r\n"
	if i := strings.IndexByte(body, '\n'); i >= 0 && (i == 0 || body[i-1] != '\r') {
		eol = "\n"
	}
	m := addedFields(from, rcpt, eol).FindStringSubmatchIndex(en.data)
	if m == nil {
		t.Fatalf("stored message does not start with the added fields:\n%q", en.data)
	}
	date, err := time.Parse(time.RFC1123Z, en.data[m[2]:m[3]])
	if err != nil || time.Since(date) > time.Hour {
		t.Errorf("Received date %q: %v", en.data[m[2]:m[3]], err)
	}
	if rest := en.data[m[1]:]; rest != body {
		t.Errorf("stored body differs:\n got %q\nwant %q", rest, body)
	}
	if en.Size != int64(len(en.data)) {
		t.Errorf("entry size %d, stored %d bytes", en.Size, len(en.data))
	}
	st, err := mime.UnmarshalStructure(en.Structure)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mime.Scan(strings.NewReader(en.data), mime.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != want.Size || st.HeaderSize != want.HeaderSize || st.Root.End != want.Root.End || st.Envelope.Subject != want.Envelope.Subject {
		t.Errorf("structure %+v, want %+v", st, want)
	}
}

func TestDeliver(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"dot lines", testBody},
		{"bare LF", "Subject: lf\n\nbody\nlast\r\n"},
		{"broken MIME", "Content-Type: multipart/mixed; boundary=\"x\r\nSubject: broken\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nno end\r\n"},
		{"no header", "just text, no header at all\r\n"},
		{"empty header", "\r\nbody after an empty header\r\n"},
		{"8bit", "Subject: h\xc3\xa9llo\r\n\r\nw\xc3\xb6rld \xff\x00\r\n"},
	}
	e := newEnv(t)
	alice := e.account("alice@example.com", meta.Quota{})
	addr := e.gateway(nil)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			replies := deliver(t, addr, "a@example.com", []string{"alice@example.com"}, tc.body)
			if want := "250 2.0.0 <alice@example.com> Saved"; replies[0] != want {
				t.Fatalf("reply %q, want %q", replies[0], want)
			}
			inbox := e.mailbox(alice, mail.Inbox)
			if len(inbox) != i+1 {
				t.Fatalf("%d entries in INBOX, want %d", len(inbox), i+1)
			}
			checkStored(t, inbox[i], "a@example.com", "alice@example.com", tc.body)
		})
	}
}

func TestNullSenderAndSMTPUTF8(t *testing.T) {
	e := newEnv(t)
	acct := e.account("j\xc3\xb6rg@example.com", meta.Quota{})
	addr := e.gateway(nil)
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<> SMTPUTF8")
	c.expect("250", "RCPT TO:<J\xc3\x96RG@example.com>")
	if r := c.data("Subject: bounce\r\n\r\nx\r\n", 1); !strings.HasPrefix(r[0], "250 ") {
		t.Fatal(r)
	}
	inbox := e.mailbox(acct, mail.Inbox)
	if len(inbox) != 1 || !strings.HasPrefix(inbox[0].data, "Return-Path: <>\r\nDelivered-To: J\xc3\x96RG@example.com\r\n") ||
		!strings.Contains(inbox[0].data, " with UTF8LMTP id ") {
		t.Fatalf("stored %+v", inbox)
	}
}

func TestLHLO(t *testing.T) {
	e := newEnv(t)
	addr := e.gateway(nil)
	c := dial(t, "tcp", addr)
	c.expect("500", "EHLO client.test")
	c.expect("500", "HELO client.test")
	caps := strings.Split(c.expect("250", "LHLO client.test"), "\n")
	for i := range caps {
		caps[i] = caps[i][4:]
	}
	for _, want := range []string{"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "CHUNKING", fmt.Sprintf("SIZE %d", 1<<20)} {
		if !slices.Contains(caps, want) {
			t.Errorf("LHLO lacks %s: %q", want, caps)
		}
	}
	c.expect("502 5.5.1 ", "RCPT TO:<x@example.com>")
}

func TestMultipleRecipients(t *testing.T) {
	tests := []struct {
		name         string
		tempfail     bool
		wantOverQuot string
	}{
		{"permanent", false, "552 5.2.2 <bob@example.com> "},
		{"temporary", true, "452 4.2.2 <bob@example.com> "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.account("alice@example.com", meta.Quota{})
			bob := e.account("bob@example.com", meta.Quota{LimitBytes: 100}) // room, but not for this message
			carol := e.account("carol@example.com", meta.Quota{})
			addr := e.gateway(func(c *Config) { c.OverQuotaTemporary = tc.tempfail })
			c := dial(t, "tcp", addr)
			c.expect("250", "LHLO client.test")
			c.expect("250", "MAIL FROM:<a@example.com>")
			c.expect("250", "RCPT TO:<alice@example.com>")
			c.expect("550 5.1.1 ", "RCPT TO:<nobody@example.com>")
			c.expect("250", "RCPT TO:<bob@example.com>")
			c.expect("250", "RCPT TO:<Carol@Example.com>")
			replies := c.data(testBody, 3)
			if !strings.HasPrefix(replies[0], "250 2.0.0 <alice@example.com>") ||
				!strings.HasPrefix(replies[1], tc.wantOverQuot) ||
				!strings.HasPrefix(replies[2], "250 2.0.0 <Carol@Example.com>") {
				t.Fatalf("replies %q", replies)
			}
			for _, r := range []struct {
				acct meta.Account
				rcpt string
			}{{alice, "alice@example.com"}, {carol, "Carol@Example.com"}} {
				inbox := e.mailbox(r.acct, mail.Inbox)
				if len(inbox) != 1 {
					t.Fatalf("%s: %d entries", r.rcpt, len(inbox))
				}
				checkStored(t, inbox[0], "a@example.com", r.rcpt, testBody)
			}
			if n, b := e.entryCount(bob), e.blobCount(bob); n != 0 || b != 0 {
				t.Errorf("bob has %d entries, %d blobs", n, b)
			}
			// Each recipient has its own blob.
			if a, c := e.mailbox(alice, mail.Inbox)[0].Blob, e.mailbox(carol, mail.Inbox)[0].Blob; a == c {
				t.Error("recipients share a blob")
			}
			c.expect("250", "NOOP")
			c.expect("221", "QUIT")
		})
	}
}

func TestQuotaAtRcpt(t *testing.T) {
	tests := []struct {
		name     string
		quota    meta.Quota
		fill     int // messages delivered first
		mail     string
		tempfail bool
		// atUsage sets the byte limit to the usage after the fill.
		atUsage bool
		want    string
	}{
		{"message limit reached", meta.Quota{LimitMessages: 1}, 1, "MAIL FROM:<a@example.com>", false, false, "552 5.2.2 "},
		{"byte limit reached", meta.Quota{}, 1, "MAIL FROM:<a@example.com>", false, true, "552 5.2.2 "},
		{"SIZE does not fit", meta.Quota{LimitBytes: 1000}, 0, "MAIL FROM:<a@example.com> SIZE=2000", false, false, "552 5.2.2 "},
		{"SIZE fits", meta.Quota{LimitBytes: 1000}, 0, "MAIL FROM:<a@example.com> SIZE=500", false, false, "250 "},
		{"temporary", meta.Quota{LimitMessages: 1}, 1, "MAIL FROM:<a@example.com>", true, false, "452 4.2.2 "},
		{"room left", meta.Quota{LimitMessages: 2}, 1, "MAIL FROM:<a@example.com>", false, false, "250 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			acct := e.account("u@example.com", tc.quota)
			addr := e.gateway(func(c *Config) { c.OverQuotaTemporary = tc.tempfail })
			for range tc.fill {
				if r := deliver(t, addr, "a@example.com", []string{"u@example.com"}, "Subject: x\r\n\r\nfill\r\n"); !strings.HasPrefix(r[0], "250") {
					t.Fatal(r)
				}
			}
			if tc.atUsage {
				a, err := e.store.Account(context.Background(), acct.ID)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.store.UpdateAccount(context.Background(), acct.ID, meta.AccountUpdate{LimitBytes: &a.Quota.UsedBytes}); err != nil {
					t.Fatal(err)
				}
			}
			c := dial(t, "tcp", addr)
			c.expect("250", "LHLO client.test")
			c.expect("250", "%s", tc.mail)
			c.expect(tc.want, "RCPT TO:<u@example.com>")
		})
	}
}

func TestAddresses(t *testing.T) {
	e := newEnv(t)
	dave := e.account("dave@example.com", meta.Quota{})
	erin := e.account("erin@example.com", meta.Quota{})
	ctx := context.Background()
	for _, al := range []struct {
		acct  meta.Account
		alias string
	}{{dave, "info@example.com"}, {erin, "odd+name@example.com"}} {
		if _, err := e.store.AddAlias(ctx, al.acct.ID, al.alias); err != nil {
			t.Fatal(err)
		}
	}
	addr := e.gateway(nil)
	tests := []struct {
		rcpt string
		want *meta.Account // nil: unknown
	}{
		{"dave@example.com", &dave},
		{"DAVE@EXAMPLE.COM", &dave},
		{"dave+lists@example.com", &dave},
		{"dave+a+b@example.com", &dave},
		{"info@example.com", &dave},
		{"info+x@example.com", &dave},
		{"odd+name@example.com", &erin}, // the whole address wins
		{"odd@example.com", nil},
		{"nobody+x@example.com", nil},
		{"+x@example.com", nil},
	}
	for _, tc := range tests {
		t.Run(tc.rcpt, func(t *testing.T) {
			c := dial(t, "tcp", addr)
			c.expect("250", "LHLO client.test")
			c.expect("250", "MAIL FROM:<a@example.com>")
			if tc.want == nil {
				c.expect("550 5.1.1 ", "RCPT TO:<%s>", tc.rcpt)
				return
			}
			c.expect("250", "RCPT TO:<%s>", tc.rcpt)
			before := len(e.mailbox(*tc.want, mail.Inbox))
			// A body of its own: the same message twice would be a retry.
			if r := c.data("Subject: "+tc.rcpt+"\r\n\r\nx\r\n", 1); !strings.HasPrefix(r[0], "250 ") {
				t.Fatal(r)
			}
			inbox := e.mailbox(*tc.want, mail.Inbox)
			if len(inbox) != before+1 {
				t.Fatalf("%d entries, want %d", len(inbox), before+1)
			}
			// Delivered-To keeps the address as given.
			if !strings.Contains(inbox[before].data, "\r\nDelivered-To: "+tc.rcpt+"\r\n") {
				t.Errorf("stored %q", inbox[before].data)
			}
		})
	}
}

func TestSieve(t *testing.T) {
	type want map[string][]mail.Flag // mailbox -> flags of its one entry
	tests := []struct {
		name    string
		script  string
		detail  string // +detail of the recipient
		body    string
		want    want
		created []string // mailboxes that must exist afterwards
		absent  []string // mailboxes that must not
	}{
		{name: "no script", want: want{"INBOX": nil}},
		{name: "keep", script: "keep;", want: want{"INBOX": nil}},
		{name: "fileinto", script: `require "fileinto"; fileinto "Archive";`, want: want{"Archive": nil}},
		{name: "fileinto create with parents", script: `require ["fileinto", "mailbox"]; fileinto :create "Lists/Go/Nuts";`,
			want: want{"Lists/Go/Nuts": nil}, created: []string{"Lists", "Lists/Go"}},
		{name: "fileinto missing mailbox", script: `require "fileinto"; fileinto "Nope";`, want: want{"INBOX": nil}, absent: []string{"Nope"}},
		{name: "fileinto missing and keep", script: `require ["fileinto", "imap4flags"]; fileinto :flags "$A" "Nope"; keep :flags "$B";`,
			want: want{"INBOX": {"$A", "$B"}}},
		{name: "flags", script: `require "imap4flags"; setflag "\\seen"; addflag "$Important"; keep;`,
			want: want{"INBOX": {"$Important", `\Seen`}}},
		{name: "fileinto flags", script: `require ["fileinto", "imap4flags"]; fileinto :flags "\\Flagged" "Archive";`,
			want: want{"Archive": {`\Flagged`}}},
		{name: "invalid flag", script: `require "imap4flags"; addflag ["\\Recent", "$ok"];`, want: want{"INBOX": nil}}, // does not compile
		{name: "discard", script: "discard;", want: want{}},
		{name: "copy", script: `require ["fileinto", "copy"]; fileinto :copy "Archive";`, want: want{"Archive": nil, "INBOX": nil}},
		{name: "header test", script: `require "fileinto"; if header :contains "subject" "hello" { fileinto "Junk"; }`, want: want{"Junk": nil}},
		{name: "subaddress", script: `require ["fileinto", "envelope", "subaddress"]; if envelope :detail "to" "lists" { fileinto "Lists"; }`,
			detail: "+lists", want: want{"INBOX": nil}}, // Lists does not exist: INBOX
		{name: "subaddress create", script: `require ["fileinto", "envelope", "subaddress", "mailbox"]; if envelope :detail "to" "lists" { fileinto :create "Lists"; }`,
			detail: "+lists", want: want{"Lists": nil}},
		{name: "envelope from", script: `require ["fileinto", "envelope"]; if envelope :is "from" "a@example.com" { fileinto "Junk"; }`, want: want{"Junk": nil}},
		{name: "syntax error", script: "if true {", want: want{"INBOX": nil}},
		{name: "sends mail", script: `redirect "x@example.org";`, want: want{"INBOX": nil}},
		{name: "bad mailbox name", script: `require ["fileinto", "mailbox"]; fileinto :create "a//b";`, want: want{"INBOX": nil}},
	}
	e := newEnv(t)
	addr := e.gateway(nil)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			login := fmt.Sprintf("s%d@example.com", i)
			acct := e.account(login, meta.Quota{})
			if tc.script != "" {
				e.setSieve(acct, tc.script)
			}
			rcpt := strings.Replace(login, "@", tc.detail+"@", 1)
			if r := deliver(t, addr, "a@example.com", []string{rcpt}, testBody); !strings.HasPrefix(r[0], "250 2.0.0") {
				t.Fatalf("reply %q", r)
			}
			total := 0
			for name, flags := range tc.want {
				got := e.mailbox(acct, name)
				if len(got) != 1 {
					t.Fatalf("%s: %d entries, want 1", name, len(got))
				}
				if !slices.Equal(got[0].Flags, flags) {
					t.Errorf("%s: flags %q, want %q", name, got[0].Flags, flags)
				}
				checkStored(t, got[0], "a@example.com", rcpt, testBody)
				total++
			}
			if n := e.entryCount(acct); n != total {
				t.Errorf("%d entries in all, want %d", n, total)
			}
			if n := e.blobCount(acct); n != total {
				t.Errorf("%d blobs, want %d", n, total)
			}
			for _, name := range tc.created {
				if e.mailbox(acct, name) == nil {
					t.Errorf("mailbox %s not created", name)
				}
			}
			for _, name := range tc.absent {
				if e.mailbox(acct, name) != nil {
					t.Errorf("mailbox %s created", name)
				}
			}
		})
	}
}

func TestSieveScriptCache(t *testing.T) {
	e := newEnv(t)
	acct := e.account("u@example.com", meta.Quota{})
	addr := e.gateway(nil)
	// An edited script takes effect on the next message.
	for i, step := range []struct{ script, mailbox string }{
		{`require "fileinto"; fileinto "Archive";`, "Archive"},
		{`require "fileinto"; fileinto "Junk";`, "Junk"},
		{`require "fileinto"; fileinto "Archive";`, "Archive"},
	} {
		e.setSieve(acct, step.script)
		before := len(e.mailbox(acct, step.mailbox))
		deliver(t, addr, "a@example.com", []string{"u@example.com"}, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
		if n := len(e.mailbox(acct, step.mailbox)); n != before+1 {
			t.Errorf("%s: %d entries, want %d", step.mailbox, n, before+1)
		}
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t, func(o *envOptions) { o.maxMessageSize = 300 })
	acct := e.account("u@example.com", meta.Quota{})
	e.account("v@example.com", meta.Quota{})
	addr := e.gateway(nil)
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 40)

	t.Run("announced", func(t *testing.T) {
		c := dial(t, "tcp", addr)
		if caps := c.expect("250", "LHLO client.test"); !strings.Contains(caps, "250-SIZE 300\n") {
			t.Errorf("caps %q", caps)
		}
		c.expect("552 5.3.4 ", "MAIL FROM:<a@example.com> SIZE=1000")
	})
	t.Run("DATA", func(t *testing.T) {
		c := dial(t, "tcp", addr)
		c.expect("250", "LHLO client.test")
		c.expect("250", "MAIL FROM:<a@example.com>")
		c.expect("250", "RCPT TO:<u@example.com>")
		c.expect("250", "RCPT TO:<v@example.com>")
		for _, r := range c.data(big, 2) {
			if !strings.HasPrefix(r, "552 5.3.4 ") {
				t.Errorf("reply %q", r)
			}
		}
		c.expect("250", "NOOP") // the connection goes on
	})
	t.Run("BDAT", func(t *testing.T) {
		c := dial(t, "tcp", addr)
		c.expect("250", "LHLO client.test")
		c.expect("250", "MAIL FROM:<a@example.com>")
		c.expect("250", "RCPT TO:<u@example.com>")
		c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(big), big))
		if r := c.reply(); !strings.HasPrefix(r, "552 5.3.4 ") {
			t.Errorf("reply %q", r)
		}
		c.expect("250", "NOOP")
	})
	t.Run("exactly at the limit", func(t *testing.T) {
		body := "Subject: fits\r\n\r\n" + strings.Repeat("x", 300-len("Subject: fits\r\n\r\n")-2) + "\r\n"
		if len(body) != 300 {
			t.Fatal(len(body))
		}
		c := dial(t, "tcp", addr)
		c.expect("250", "LHLO client.test")
		c.expect("250", "MAIL FROM:<a@example.com>")
		c.expect("250", "RCPT TO:<u@example.com>")
		c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body))
		if r := c.reply(); !strings.HasPrefix(r, "250 ") {
			t.Errorf("reply %q", r)
		}
	})
	if n := e.entryCount(acct); n != 1 {
		t.Errorf("%d entries, want only the one that fits", n)
	}
}

func TestMaxRecipients(t *testing.T) {
	e := newEnv(t)
	for _, l := range []string{"a", "b", "c"} {
		e.account(l+"@example.com", meta.Quota{})
	}
	addr := e.gateway(func(c *Config) { c.MaxRecipients = 2 })
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<x@example.com>")
	c.expect("250", "RCPT TO:<a@example.com>")
	c.expect("250", "RCPT TO:<b@example.com>")
	c.expect("452 4.5.3 ", "RCPT TO:<c@example.com>")
	for _, r := range c.data(testBody, 2) {
		if !strings.HasPrefix(r, "250 ") {
			t.Errorf("reply %q", r)
		}
	}
}

func TestBDAT(t *testing.T) {
	e := newEnv(t)
	a := e.account("a@example.com", meta.Quota{})
	b := e.account("b@example.com", meta.Quota{})
	addr := e.gateway(nil)
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<x@example.com> BODY=8BITMIME")
	c.expect("250", "RCPT TO:<a@example.com>")
	c.expect("250", "RCPT TO:<b@example.com>")
	// BDAT is not dot-stuffed; a lone dot line is data.
	body := "Subject: chunks\r\n\r\n.\r\n..x\r\nno final line break"
	for _, chunk := range []string{body[:10], ""} {
		c.send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
		if r := c.reply(); !strings.HasPrefix(r, "250") {
			t.Fatal(r)
		}
	}
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body)-10, body[10:]))
	for i, want := range []string{"250 2.0.0 <a@example.com>", "250 2.0.0 <b@example.com>"} {
		if r := c.reply(); !strings.HasPrefix(r, want) {
			t.Fatalf("reply %d %q, want %s", i, r, want)
		}
	}
	for _, acct := range []meta.Account{a, b} {
		inbox := e.mailbox(acct, mail.Inbox)
		if len(inbox) != 1 {
			t.Fatalf("%d entries", len(inbox))
		}
		checkStored(t, inbox[0], "x@example.com", acct.Login, body)
	}
}

func TestDedup(t *testing.T) {
	e := newEnv(t)
	alice := e.account("alice@example.com", meta.Quota{})
	bob := e.account("bob@example.com", meta.Quota{})
	e.setSieve(bob, `require ["fileinto", "copy"]; fileinto :copy "Archive";`)
	addr := e.gateway(nil)
	send := func(rcpts []string, body string) {
		t.Helper()
		for _, r := range deliver(t, addr, "a@example.com", rcpts, body) {
			if !strings.HasPrefix(r, "250 2.0.0 ") {
				t.Fatalf("reply %q", r)
			}
		}
	}
	counts := func() [2]int { return [2]int{e.entryCount(alice), e.entryCount(bob)} }

	send([]string{"alice@example.com"}, testBody)
	// The retry of a committed transaction whose answer was lost, with
	// one more recipient: only the new recipient's copies are stored.
	send([]string{"alice@example.com", "bob@example.com"}, testBody)
	if got := counts(); got != [2]int{1, 2} {
		t.Fatalf("entries %v, want [1 2]", got)
	}
	send([]string{"bob@example.com", "alice@example.com"}, testBody)
	if got := counts(); got != [2]int{1, 2} {
		t.Fatalf("after retry: entries %v, want [1 2]", got)
	}
	if n := e.blobCount(alice); n != 1 {
		t.Errorf("alice has %d blobs", n)
	}
	// The same Message-ID with another body is another message.
	send([]string{"alice@example.com"}, strings.Replace(testBody, "end\r\n", "changed\r\n", 1))
	if got := counts(); got != [2]int{2, 2} {
		t.Fatalf("entries %v, want [2 2]", got)
	}
	// A subaddress is the same mailbox: still a retry.
	send([]string{"alice+x@example.com"}, testBody)
	if got := counts(); got != [2]int{2, 2} {
		t.Fatalf("entries %v, want [2 2]", got)
	}

	t.Run("off", func(t *testing.T) {
		addr := e.gateway(func(c *Config) { c.DedupWindow = 0 })
		carol := e.account("carol@example.com", meta.Quota{})
		for range 2 {
			deliver(t, addr, "a@example.com", []string{"carol@example.com"}, testBody)
		}
		if n := e.entryCount(carol); n != 2 {
			t.Errorf("%d entries, want 2", n)
		}
	})
}

func TestDisconnectMidData(t *testing.T) {
	tests := []struct {
		name string
		send func(c *client)
	}{
		{"DATA", func(c *client) {
			c.expect("354", "DATA")
			c.send("Subject: cut\r\n\r\nhalf a mess")
		}},
		{"BDAT", func(c *client) {
			c.send("BDAT 100\r\nSubject: cut\r\n\r\nhalf")
		}},
		{"between chunks", func(c *client) {
			c.send("BDAT 5\r\nSubje")
			if r := c.reply(); !strings.HasPrefix(r, "250") {
				c.t.Fatal(r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			acct := e.account("u@example.com", meta.Quota{})
			addr := e.gateway(nil)
			c := dial(t, "tcp", addr)
			c.expect("250", "LHLO client.test")
			c.expect("250", "MAIL FROM:<a@example.com>")
			c.expect("250", "RCPT TO:<u@example.com>")
			tc.send(c)
			c.conn.Close()
			e.logs.wait(t, "message not received")
			if n, b := e.entryCount(acct), e.blobCount(acct); n != 0 || b != 0 {
				t.Errorf("%d entries, %d blobs", n, b)
			}
		})
	}
}

func TestBlobStoreUnavailable(t *testing.T) {
	e := newEnv(t)
	a := e.account("a@example.com", meta.Quota{})
	b := e.account("b@example.com", meta.Quota{})
	addr := e.gateway(nil)
	e.blobs.fail.Store(true)
	for _, r := range deliver(t, addr, "x@example.com", []string{"a@example.com", "b@example.com"}, testBody) {
		if !strings.HasPrefix(r, "451 4.3.0 ") {
			t.Errorf("reply %q", r)
		}
	}
	for _, acct := range []meta.Account{a, b} {
		if n, nb := e.entryCount(acct), e.blobCount(acct); n != 0 || nb != 0 {
			t.Errorf("%s: %d entries, %d blobs", acct.Login, n, nb)
		}
	}
	// The MTA's retry succeeds once the store is back.
	e.blobs.fail.Store(false)
	for _, r := range deliver(t, addr, "x@example.com", []string{"a@example.com", "b@example.com"}, testBody) {
		if !strings.HasPrefix(r, "250 ") {
			t.Errorf("reply %q", r)
		}
	}
	if n := e.entryCount(a) + e.entryCount(b); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}

// flakyMeta fails the calls named in fail with meta.ErrUnavailable.
type flakyMeta struct {
	Store
	failLookup, failCounter atomic.Bool
}

func (f *flakyMeta) LookupAddress(ctx context.Context, addr string) (meta.Account, error) {
	if f.failLookup.Load() {
		return meta.Account{}, fmt.Errorf("look up %s: %w", addr, meta.ErrUnavailable)
	}
	return f.Store.LookupAddress(ctx, addr)
}

func (f *flakyMeta) Counter(ctx context.Context, key string) (int64, error) {
	if f.failCounter.Load() {
		return 0, fmt.Errorf("counter: %w", meta.ErrUnavailable)
	}
	return f.Store.Counter(ctx, key)
}

func TestMetadataUnavailable(t *testing.T) {
	var fm *flakyMeta
	e := newEnv(t, func(o *envOptions) {
		o.wrapMeta = func(s Store) Store { fm = &flakyMeta{Store: s}; return fm }
	})
	acct := e.account("u@example.com", meta.Quota{})
	addr := e.gateway(nil)
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<a@example.com>")
	fm.failLookup.Store(true)
	c.expect("451 4.3.0 ", "RCPT TO:<u@example.com>")
	fm.failLookup.Store(false)
	c.expect("250", "RCPT TO:<u@example.com>")
	fm.failCounter.Store(true)
	if r := c.data(testBody, 1); !strings.HasPrefix(r[0], "451 4.3.0 ") {
		t.Errorf("reply %q", r)
	}
	if n := e.entryCount(acct); n != 0 {
		t.Errorf("%d entries", n)
	}
}

func TestPipelining(t *testing.T) {
	e := newEnv(t)
	acct := e.account("u@example.com", meta.Quota{})
	addr := e.gateway(nil)
	c := dial(t, "tcp", addr)
	c.send("LHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<u@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250-", "250 ", "250 ", "550 5.1.1 ", "354 "} {
		if r := c.reply(); !strings.HasPrefix(r, want) {
			t.Fatalf("reply %q, want %s", r, want)
		}
	}
	c.send(dotStuff(testBody) + ".\r\nRSET\r\nMAIL FROM:<b@example.com>\r\nRCPT TO:<u@example.com>\r\nRSET\r\nNOOP\r\nQUIT\r\n")
	for _, want := range []string{"250 2.0.0 <u@example.com>", "250 ", "250 ", "250 ", "250 ", "250 ", "221 "} {
		if r := c.reply(); !strings.HasPrefix(r, want) {
			t.Fatalf("reply %q, want %s", r, want)
		}
	}
	c.eof()
	if n := e.entryCount(acct); n != 1 {
		t.Errorf("%d entries", n)
	}
}

func TestNestedMail(t *testing.T) {
	e := newEnv(t)
	e.account("u@example.com", meta.Quota{})
	addr := e.gateway(nil)
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<a@example.com>")
	c.expect("250", "RCPT TO:<u@example.com>")
	c.expect("503 5.5.1 ", "MAIL FROM:<b@example.com>")
	c.expect("250", "RSET")
	c.expect("250", "MAIL FROM:<b@example.com>")
}

func TestConnectionsPerIP(t *testing.T) {
	e := newEnv(t)
	addr := e.gateway(func(c *Config) { c.MaxConnsPerIP = 1 })
	first := dial(t, "tcp", addr)
	first.expect("250", "LHLO client.test")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	second := &client{t: t, conn: c, r: newReader(c)}
	if r := second.line(); !strings.HasPrefix(r, "421 4.7.0 ") {
		t.Fatalf("second connection: %q", r)
	}
	second.eof()
	first.expect("250", "NOOP")
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	e.account("u@example.com", meta.Quota{})
	addr := e.gateway(func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	if r := c.reply(); !strings.HasPrefix(r, "421 4.4.2 ") {
		t.Fatalf("reply %q", r)
	}
	c.eof()

	// A client that stalls within DATA is cut off too, and nothing is
	// stored.
	c = dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<a@example.com>")
	c.expect("250", "RCPT TO:<u@example.com>")
	c.expect("354", "DATA")
	c.send("Subject: stalled\r\n")
	e.logs.wait(t, "message not received")
	c.eof()
}

func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "lmtp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "lmtp.sock")

	// A stale socket left by a crashed process is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	e := newEnv(t)
	acct := e.account("u@example.com", meta.Quota{})
	g := e.newGateway(func(c *Config) { c.MaxConnsPerIP = 1 })
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	e.serve(g, ln)
	if _, err := ListenUnix(path); err == nil {
		t.Error("a second listener on a live socket")
	}
	// Unix connections are not bounded per IP.
	other := dial(t, "unix", path)
	other.expect("250", "LHLO other.test")
	c := dial(t, "unix", path)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<a@example.com>")
	c.expect("250", "RCPT TO:<u@example.com>")
	if r := c.data(testBody, 1); !strings.HasPrefix(r[0], "250 ") {
		t.Fatal(r)
	}
	inbox := e.mailbox(acct, mail.Inbox)
	if len(inbox) != 1 || !strings.Contains(inbox[0].data, "\r\nReceived: from client.test (local)\r\n\tby lmtp.test with LMTP id ") {
		t.Fatalf("stored %+v", inbox)
	}

	notSocket := filepath.Join(dir, "file")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(notSocket); err == nil {
		t.Error("listened over a regular file")
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	e.account("u@example.com", meta.Quota{})
	g := e.newGateway(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := e.serve(g, ln)
	idle := dial(t, "tcp", ln.Addr().String())
	idle.expect("250", "LHLO client.test")
	inTx := dial(t, "tcp", ln.Addr().String())
	inTx.expect("250", "LHLO client.test")
	inTx.expect("250", "MAIL FROM:<a@example.com>")
	stop()
	idle.eof()
	inTx.eof()
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("still accepting")
	}
}

// blockingIngester holds IngestMany until released.
type blockingIngester struct {
	Ingester
	entered, release chan struct{}
}

func (b *blockingIngester) IngestMany(ctx context.Context, d ingest.Delivery) ([]ingest.TargetResult, error) {
	close(b.entered)
	<-b.release
	return b.Ingester.IngestMany(ctx, d)
}

// TestShutdownDuringDelivery: a session asked to end while it stores a
// message answers the delivery first, then closes.
func TestShutdownDuringDelivery(t *testing.T) {
	e := newEnv(t)
	acct := e.account("u@example.com", meta.Quota{})
	bi := &blockingIngester{Ingester: e.ing, entered: make(chan struct{}), release: make(chan struct{})}
	e.ingest = bi
	g := e.newGateway(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.serve(g, ln)
	c := dial(t, "tcp", ln.Addr().String())
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<a@example.com>")
	c.expect("250", "RCPT TO:<u@example.com>")
	c.expect("354", "DATA")
	c.send(dotStuff(testBody) + ".\r\n")
	<-bi.entered
	for _, s := range g.tcpConns.Sessions() {
		s.Shutdown()
	}
	close(bi.release)
	if r := c.reply(); !strings.HasPrefix(r, "250 2.0.0 ") {
		t.Fatalf("reply %q", r)
	}
	c.eof()
	if n := e.entryCount(acct); n != 1 {
		t.Errorf("%d entries", n)
	}
}

func TestRun(t *testing.T) {
	dir, err := os.MkdirTemp("", "lmtp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := newEnv(t)
	e.account("u@example.com", meta.Quota{})
	// Find a free port for -lmtp.listen-address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sock := filepath.Join(dir, "s")
	g := e.newGateway(func(c *Config) { c.ListenAddress, c.UnixSocket = addr, sock })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	e.logs.wait(t, "listening")
	for _, nw := range []struct{ network, addr string }{{"unix", sock}, {"tcp", addr}} {
		// Both listeners are open before Run logs.
		c := dial(t, nw.network, nw.addr)
		c.expect("250", "LHLO client.test")
		c.expect("221", "QUIT")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // the flag named, "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"unix only", func(c *Config) { c.ListenAddress, c.UnixSocket = "", "/tmp/x" }, ""},
		{"no listener", func(c *Config) { c.ListenAddress = "" }, "-lmtp.listen-address"},
		{"recipients", func(c *Config) { c.MaxRecipients = 0 }, "-lmtp.max-recipients"},
		{"dedup negative", func(c *Config) { c.DedupWindow = -time.Second }, "-lmtp.dedup-window"},
		{"dedup tiny", func(c *Config) { c.DedupWindow = time.Millisecond }, "-lmtp.dedup-window"},
		{"dedup off", func(c *Config) { c.DedupWindow = 0 }, ""},
		{"idle", func(c *Config) { c.IdleTimeout = 0 }, "-lmtp.idle-timeout"},
		{"command", func(c *Config) { c.CommandTimeout = 0 }, "-lmtp.command-timeout"},
		{"data", func(c *Config) { c.DataTimeout = 0 }, "-lmtp.data-timeout"},
		{"write", func(c *Config) { c.WriteTimeout = 0 }, "-lmtp.write-timeout"},
		{"per ip", func(c *Config) { c.MaxConnsPerIP = -1 }, "-lmtp.max-connections-per-ip"},
		{"sieve", func(c *Config) { c.SieveDeadline = 0 }, "-lmtp.sieve-deadline"},
		{"line", func(c *Config) { c.MaxLineLength = 999 }, "-lmtp.max-line-length"},
		{"hostname", func(c *Config) { c.Hostname = "bad host\r\nX: y" }, "-lmtp.hostname"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			fs := flagSet()
			c.RegisterFlags(fs)
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
	t.Run("hostname default", func(t *testing.T) {
		var c Config
		c.RegisterFlags(flagSet())
		if err := c.Validate(); err != nil || c.Hostname == "" {
			t.Errorf("Validate: %v, hostname %q", err, c.Hostname)
		}
	})
	t.Run("New", func(t *testing.T) {
		if _, err := New(testConfig(), Deps{}); err == nil {
			t.Error("New without deps")
		}
	})
}

func flagSet() *flag.FlagSet { return flag.NewFlagSet("test", flag.ContinueOnError) }
