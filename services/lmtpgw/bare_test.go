package lmtpgw

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func TestRCPTRewriter(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"bare local part", "RCPT TO:<john>\r\n", "RCPT TO:<john@" + bareDomain + ">\r\n"},
		{"lower case, parameters", "rcpt to:<John> NOTIFY=NEVER\r\n", "rcpt to:<John@" + bareDomain + "> NOTIFY=NEVER\r\n"},
		{"with a domain", "RCPT TO:<john@example.com>\r\n", "RCPT TO:<john@example.com>\r\n"},
		{"empty path", "RCPT TO:<>\r\n", "RCPT TO:<>\r\n"},
		{"data left alone", "DATA\r\nRCPT TO:<inbody>\r\n.\r\nRCPT TO:<after>\r\n",
			"DATA\r\nRCPT TO:<inbody>\r\n.\r\nRCPT TO:<after@" + bareDomain + ">\r\n"},
		{"bdat chunk left alone", "BDAT 16 LAST\r\nRCPT TO:<chunk>\r\nRCPT TO:<next>\r\n",
			"BDAT 16 LAST\r\nRCPT TO:<chunk>\r\nRCPT TO:<next@" + bareDomain + ">\r\n"},
		{"after STARTTLS nothing is touched", "STARTTLS\r\nRCPT TO:<x>\r\n", "STARTTLS\r\nRCPT TO:<x>\r\n"},
		{"mail from left alone", "MAIL FROM:<root>\r\n", "MAIL FROM:<root>\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time too: line boundaries must not matter.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := io.ReadAll(newRCPTRewriter(r))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func TestRCPTRewriterLongLine(t *testing.T) {
	// A line longer than the buffer passes through whole, and its tail is
	// not taken for a command.
	long := "X" + strings.Repeat("a", 20000) + " RCPT TO:<tail>\r\nRCPT TO:<next>\r\n"
	got, err := io.ReadAll(newRCPTRewriter(strings.NewReader(long)))
	if err != nil {
		t.Fatal(err)
	}
	want := "X" + strings.Repeat("a", 20000) + " RCPT TO:<tail>\r\nRCPT TO:<next@" + bareDomain + ">\r\n"
	if string(got) != want {
		t.Fatalf("long line mangled (len %d, want %d)", len(got), len(want))
	}
}

// TestBareLocalPart: RCPT TO without a domain names the account with that
// login, or the single account with that local part; an ambiguous one is
// unknown.
func TestBareLocalPart(t *testing.T) {
	e := newEnv(t)
	john := e.account("john@example.com", meta.Quota{})
	e.account("info@a.example", meta.Quota{})
	e.account("info@b.example", meta.Quota{})
	root := e.account("root", meta.Quota{})
	addr := e.gateway(nil)

	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO mta.test")
	c.expect("250", "MAIL FROM:<cron@example.com>")
	c.expect("250", "RCPT TO:<john>")
	c.expect("250", "RCPT TO:<root>")
	c.expect("550 5.1.1", "RCPT TO:<info>")
	replies := c.data("Subject: from cron\r\n\r\nlocal delivery\r\n", 2)
	for _, r := range replies {
		if !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA replies %q", replies)
		}
	}
	for _, acct := range []meta.Account{john, root} {
		inbox := e.mailbox(acct, mail.Inbox)
		given := strings.SplitN(acct.Login, "@", 2)[0]
		if len(inbox) != 1 || !strings.Contains(inbox[0].data, "Delivered-To: "+given+"\r\n") {
			t.Fatalf("%s: INBOX %+v, want one message delivered to %q", acct.Login, inbox, given)
		}
	}
}
