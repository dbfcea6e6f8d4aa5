package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// lmtpResult is what testdata/lmtp_send.py prints.
type lmtpResult struct {
	RCPT []int
	Data [][2]any
}

// dataCodes returns the DATA reply codes.
func (r lmtpResult) dataCodes() []int {
	var out []int
	for _, d := range r.Data {
		out = append(out, int(d[0].(float64)))
	}
	return out
}

// lmtpSend delivers msg with Python's smtplib.LMTP.
func lmtpSend(t *testing.T, addr, from, msg string, rcpts ...string) lmtpResult {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	file := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, append([]string{"testdata/lmtp_send.py", host, port, from, file}, rcpts...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("lmtp_send: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var r lmtpResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("lmtp_send output %q: %v", out, err)
	}
	return r
}

// lmtpConn is a line-level LMTP client.
type lmtpConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLMTP(t *testing.T, addr string) *lmtpConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &lmtpConn{t: t, c: c, r: bufio.NewReader(c)}
	l.reply()
	return l
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (l *lmtpConn) reply() string {
	l.t.Helper()
	_ = l.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		s, err := l.r.ReadString('\n')
		if err != nil {
			l.t.Fatalf("read: %v", err)
		}
		if len(s) < 4 || s[3] != '-' {
			return strings.TrimRight(s, "\r\n")
		}
	}
}

func (l *lmtpConn) cmd(format string, args ...any) string {
	l.t.Helper()
	if _, err := fmt.Fprintf(l.c, format+"\r\n", args...); err != nil {
		l.t.Fatal(err)
	}
	return l.reply()
}

// inboxCount returns the messages in a mailbox of login.
func inboxCount(t *testing.T, m meta.Store, login, mbox string) (meta.Account, meta.Mailbox) {
	t.Helper()
	ctx := context.Background()
	a, err := m.LookupLogin(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	box, err := m.Mailbox(ctx, a.ID, mbox)
	if err != nil {
		t.Fatal(err)
	}
	return a, box
}

// TestLMTPAcrossGateways: two LMTP gateway processes, an IMAP and a POP3
// gateway over one metadata service on Redis and a blob service on S3.
func TestLMTPAcrossGateways(t *testing.T) {
	s3 := testenv.NewS3(t, testenv.VersityGW)
	st := startRedisStack(t, 1, testenv.Redis(t), testenv.Prefix(t), s3.Server)
	meta0 := st.metaAddrs[0]
	mailctl(t, meta0, "pw\n", false, "account", "add", "alice@example.com", "--password-stdin")
	mailctl(t, meta0, "pw\n", false, "account", "add", "bob@example.com", "--password-stdin", "--bytes", "200")
	mailctl(t, meta0, "", false, "account", "alias", "add", "alice@example.com", "info@example.com")
	startLMTP := func(name string) string {
		addr := freeAddr(t)
		startProc(t, name, nil, "-target=lmtp", "-lmtp.listen-address="+addr,
			"-metadata.address="+meta0, "-blob.address="+st.blobAddr)
		return addr
	}
	lmtp1, lmtp2 := startLMTP("lmtp-1"), startLMTP("lmtp-2")
	imapAddr := startIMAP(t, "imap", st)
	popAddr, _ := startPOP3(t, "pop3", st)
	store := clientsFor(t, st.metaAddrs)[0]

	body := "From: sender@example.org\r\nTo: alice@example.com\r\nSubject: hello\r\nMessage-ID: <one@example.org>\r\n\r\nfirst line\r\n.a dot line\r\n"

	t.Run("reaches IDLE on another pod, byte for byte over IMAP and POP3", func(t *testing.T) {
		im := dialIMAP(t, imapAddr, "alice@example.com", "pw")
		im.ok("SELECT INBOX")
		im.send("i IDLE\r\n")
		if l := im.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("IDLE: %q", l)
		}
		r := lmtpSend(t, lmtp1, "sender@example.org", body, "alice@example.com")
		if !slices.Equal(r.RCPT, []int{250}) || !slices.Equal(r.dataCodes(), []int{250}) {
			t.Fatalf("delivery: %+v", r)
		}
		if l := im.line(); l != "* 1 EXISTS" {
			t.Fatalf("IDLE saw %q, want * 1 EXISTS", l)
		}
		im.send("DONE\r\n")
		for l := im.line(); !strings.HasPrefix(l, "i "); l = im.line() {
		}
		lines := im.ok("FETCH 1 BODY[]")
		if !strings.HasPrefix(lines[0], "* 1 FETCH (") || !strings.Contains(lines[0], "BODY[] {") {
			t.Fatalf("FETCH: %q", lines)
		}
		// The literal: read its size and bytes from the raw lines.
		var n int
		fmt.Sscanf(lines[0][strings.Index(lines[0], "{")+1:], "%d}", &n)
		stored := strings.Join(lines[1:], "\r\n")
		if !strings.HasSuffix(stored[:n], body) {
			t.Fatalf("stored message does not end with the delivered one:\n%q", stored[:n])
		}
		for _, want := range []string{"Return-Path: <sender@example.org>\r\n", "Delivered-To: alice@example.com\r\n", "Received: from python.test"} {
			if !strings.Contains(stored[:n-len(body)], want) {
				t.Errorf("added header fields %q lack %q", stored[:n-len(body)], want)
			}
		}
		retr := poplib(t, popAddr, "alice@example.com", "pw", "retr:1", "quit")[0].Retr
		if got := strings.Join(retr, "\r\n") + "\r\n"; got != stored[:n] {
			t.Fatalf("POP3 RETR differs from IMAP BODY[]:\n%q\n%q", got, stored[:n])
		}
	})

	t.Run("one unknown and one over-quota recipient", func(t *testing.T) {
		msg := "Subject: to many\r\nMessage-ID: <many@example.org>\r\n\r\n" + strings.Repeat("a long enough body line\r\n", 20)
		r := lmtpSend(t, lmtp2, "sender@example.org", msg, "info@example.com", "nobody@example.com", "bob@example.com")
		if !slices.Equal(r.RCPT, []int{250, 550, 250}) || !slices.Equal(r.dataCodes(), []int{250, 552}) {
			t.Fatalf("replies %+v, want RCPT 250 550 250, DATA 250 (alias) 552 (over quota)", r)
		}
		if _, box := inboxCount(t, store, "bob@example.com", "INBOX"); box.Messages != 0 {
			t.Fatalf("over-quota recipient has %d messages", box.Messages)
		}
	})

	t.Run("Sieve: subaddress, fileinto :create, flags", func(t *testing.T) {
		script := `require ["envelope", "subaddress", "fileinto", "mailbox", "imap4flags"];
if envelope :detail "to" "lists" {
  if header :contains "subject" "urgent" { addflag "\\Flagged"; }
  fileinto :create "Lists/Daily";
}
`
		mailctl(t, meta0, script, false, "sieve", "set", "alice@example.com", "-")
		r := lmtpSend(t, lmtp1, "list@example.org", "Subject: urgent news\r\nMessage-ID: <list@example.org>\r\n\r\nlist mail\r\n", "alice+lists@example.com")
		if !slices.Equal(r.dataCodes(), []int{250}) {
			t.Fatalf("delivery: %+v", r)
		}
		a, box := inboxCount(t, store, "alice@example.com", "Lists/Daily")
		es, err := store.ListEntries(context.Background(), a.ID, box.ID, mail.AllUIDs(), meta.FieldFlags, 0)
		if err != nil || len(es) != 1 || !slices.Contains(es[0].Flags, mail.FlagFlagged) {
			t.Fatalf("Lists/Daily holds %+v, %v; want one \\Flagged message", es, err)
		}
		mailctl(t, meta0, "", false, "sieve", "set", "alice@example.com", "-")
	})

	t.Run("swaks", func(t *testing.T) {
		swaks, err := exec.LookPath("swaks")
		if err != nil {
			if os.Getenv("MAILSTORE_REQUIRE_SERVERS") == "1" {
				t.Fatal("swaks not installed (scripts/tools.sh installs it)")
			}
			t.Skip("swaks not installed")
		}
		_, before := inboxCount(t, store, "alice@example.com", "INBOX")
		host, port, _ := net.SplitHostPort(lmtp2)
		out, err := exec.Command(swaks, "--protocol", "LMTP", "--server", host, "--port", port,
			"--from", "swaks@example.org", "--to", "ALICE@Example.com", "--header", "Subject: via swaks").CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
		if _, after := inboxCount(t, store, "alice@example.com", "INBOX"); after.Messages != before.Messages+1 {
			t.Fatalf("INBOX has %d messages after swaks, want %d", after.Messages, before.Messages+1)
		}
	})

	t.Run("a retry of a committed delivery stores no second copy", func(t *testing.T) {
		msg := "Subject: retried\r\nMessage-ID: <retry@example.org>\r\n\r\nsame bytes\r\n"
		_, before := inboxCount(t, store, "alice@example.com", "INBOX")
		for _, gw := range []string{lmtp1, lmtp2} {
			if r := lmtpSend(t, gw, "sender@example.org", msg, "alice@example.com"); !slices.Equal(r.dataCodes(), []int{250}) {
				t.Fatalf("delivery: %+v", r)
			}
		}
		if _, after := inboxCount(t, store, "alice@example.com", "INBOX"); after.Messages != before.Messages+1 {
			t.Fatalf("INBOX grew by %d, want 1", after.Messages-before.Messages)
		}
	})

	t.Run("S3 stopped during the transaction: 451, nothing stored, then works", func(t *testing.T) {
		_, before := inboxCount(t, store, "alice@example.com", "INBOX")
		c := dialLMTP(t, lmtp1)
		c.cmd("LHLO test.example")
		c.cmd("MAIL FROM:<sender@example.org>")
		if got := c.cmd("RCPT TO:<alice@example.com>"); !strings.HasPrefix(got, "250") {
			t.Fatal(got)
		}
		s3.Kill()
		if got := c.cmd("DATA"); !strings.HasPrefix(got, "354") {
			t.Fatal(got)
		}
		if got := c.cmd("Subject: while S3 was down\r\nMessage-ID: <down@example.org>\r\n\r\nbody\r\n."); !strings.HasPrefix(got, "451 4.3.0") {
			t.Fatalf("delivery with S3 down: %q, want 451 4.3.0", got)
		}
		if _, now := inboxCount(t, store, "alice@example.com", "INBOX"); now.Messages != before.Messages {
			t.Fatalf("a message was stored while S3 was down")
		}
		s3.Restart()
		c.cmd("MAIL FROM:<sender@example.org>")
		c.cmd("RCPT TO:<alice@example.com>")
		c.cmd("DATA")
		if got := c.cmd("Subject: while S3 was down\r\nMessage-ID: <down@example.org>\r\n\r\nbody\r\n."); !strings.HasPrefix(got, "250") {
			t.Fatalf("retry after S3 came back: %q", got)
		}
		if _, now := inboxCount(t, store, "alice@example.com", "INBOX"); now.Messages != before.Messages+1 {
			t.Fatalf("INBOX has %d messages, want %d", now.Messages, before.Messages+1)
		}
	})
}
