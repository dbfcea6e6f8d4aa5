package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The passwords of the secrets test: distinctive, so that any copy of
// one in a log line, a metric or a span is found.
const (
	secretUser  = "secret@example.com"
	secretPW    = "Pw-7f3a9c-SECRET"
	secretOldPW = "Pw-7f3a9c-SECRET-old"
	secretBadPW = "Pw-7f3a9c-SECRET-wrong"
)

// secretForms returns every form in which a password of the test may
// travel: as is, base64 alone, and base64 of a SASL PLAIN payload.
func secretForms(user string) []string {
	var out []string
	for _, pw := range []string{secretPW, secretOldPW, secretBadPW} {
		b64 := base64.StdEncoding.EncodeToString
		out = append(out, pw, b64([]byte(pw)), b64([]byte("\x00"+user+"\x00"+pw)), b64([]byte(user+"\x00"+user+"\x00"+pw)))
	}
	// The common stem catches truncated or re-quoted copies too.
	return append(out, "7f3a9c-SECRET")
}

// textConn is a line-level client for the auth exchanges.
type textConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialText(t *testing.T, addr string) *textConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := &textConn{t: t, c: c, r: bufio.NewReader(c)}
	tc.line() // greeting
	return tc
}

func (c *textConn) line() string {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// send writes s plus CRLF and returns the next line that does not start
// with "* " (IMAP untagged data).
func (c *textConn) send(s string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	for {
		if l := c.line(); !strings.HasPrefix(l, "* ") {
			return l
		}
	}
}

// expect fails the test unless got starts with want.
func expectPrefix(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.HasPrefix(got, want) {
		t.Fatalf("%s: got %q, want %s...", what, got, want)
	}
}

// driveAuthPaths runs every IMAP and POP3 authentication path with the
// right and a wrong password.
func driveAuthPaths(t *testing.T, imapAddr, popAddr, user string) {
	t.Helper()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plain := func(pw string) string { return b64("\x00" + user + "\x00" + pw) }
	for _, pw := range []string{secretPW, secretBadPW} {
		ok := pw == secretPW
		imapWant, popWant := "a NO", "-ERR"
		if ok {
			imapWant, popWant = "a OK", "+OK"
		}
		t.Run(fmt.Sprintf("imap ok=%v", ok), func(t *testing.T) {
			c := dialText(t, imapAddr)
			expectPrefix(t, "LOGIN", c.send("a LOGIN "+user+" "+pw), imapWant)
			c = dialText(t, imapAddr)
			expectPrefix(t, "LOGIN quoted", c.send(`a LOGIN "`+user+`" "`+pw+`"`), imapWant)
			c = dialText(t, imapAddr)
			expectPrefix(t, "LOGIN literal", c.send(fmt.Sprintf("a LOGIN %s {%d}", user, len(pw))), "+")
			expectPrefix(t, "LOGIN literal", c.send(pw), imapWant)
			c = dialText(t, imapAddr)
			expectPrefix(t, "AUTHENTICATE PLAIN with initial response", c.send("a AUTHENTICATE PLAIN "+plain(pw)), imapWant)
			c = dialText(t, imapAddr)
			expectPrefix(t, "AUTHENTICATE PLAIN", c.send("a AUTHENTICATE PLAIN"), "+")
			expectPrefix(t, "AUTHENTICATE PLAIN", c.send(plain(pw)), imapWant)
			c = dialText(t, imapAddr)
			expectPrefix(t, "AUTHENTICATE LOGIN", c.send("a AUTHENTICATE LOGIN"), "+")
			expectPrefix(t, "AUTHENTICATE LOGIN", c.send(b64(user)), "+")
			expectPrefix(t, "AUTHENTICATE LOGIN", c.send(b64(pw)), imapWant)
		})
		t.Run(fmt.Sprintf("pop3 ok=%v", ok), func(t *testing.T) {
			quit := func(c *textConn) {
				if ok {
					expectPrefix(t, "QUIT", c.send("QUIT"), "+OK")
				}
			}
			c := dialText(t, popAddr)
			expectPrefix(t, "USER", c.send("USER "+user), "+OK")
			expectPrefix(t, "PASS", c.send("PASS "+pw), popWant)
			quit(c)
			c = dialText(t, popAddr)
			expectPrefix(t, "AUTH PLAIN with initial response", c.send("AUTH PLAIN "+plain(pw)), popWant)
			quit(c)
			c = dialText(t, popAddr)
			expectPrefix(t, "AUTH PLAIN", c.send("AUTH PLAIN"), "+")
			expectPrefix(t, "AUTH PLAIN", c.send(plain(pw)), popWant)
			quit(c)
			c = dialText(t, popAddr)
			expectPrefix(t, "AUTH LOGIN", c.send("AUTH LOGIN"), "+")
			expectPrefix(t, "AUTH LOGIN", c.send(b64(user)), "+")
			expectPrefix(t, "AUTH LOGIN", c.send(b64(pw)), popWant)
			quit(c)
		})
	}
}

// findSecrets returns a description of each secret form found in text.
func findSecrets(where, text, user string) []string {
	var found []string
	for _, s := range secretForms(user) {
		if i := strings.Index(text, s); i >= 0 {
			found = append(found, fmt.Sprintf("%s holds %q: ...%s...", where, s, text[max(0, i-120):min(len(text), i+len(s)+40)]))
		}
	}
	return found
}

// TestSecretsNeverLogged drives every authentication path, and the admin
// CLI's password commands, against a -target=all process logging at debug
// level, then searches its output and its metrics for the passwords in
// every form they travelled in.
func TestSecretsNeverLogged(t *testing.T) {
	metaAddr, blobAddr, imapAddr, popAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	p := startProc(t, "all", nil, "-target=all", "-data-dir="+t.TempDir(), "-log.level=debug",
		"-metadata.listen-address="+metaAddr, "-metadata.address="+metaAddr,
		"-blob.listen-address="+blobAddr, "-blob.address="+blobAddr,
		"-imap.listen-address="+imapAddr, "-pop3.listen-address="+popAddr,
		"-imap.auth.failure-delay=1ms", "-pop3.auth.failure-delay=1ms",
		"-metadata.auth.max-account-failures=1000")

	var cli []string
	cli = append(cli, mailctl(t, metaAddr, secretOldPW+"\n", false, "account", "add", secretUser, "--password-stdin"))
	cli = append(cli, mailctl(t, metaAddr, secretPW+"\n", false, "account", "passwd", secretUser, "--password-stdin"))
	// A failing admin call with a password: an unknown account.
	cli = append(cli, mailctl(t, metaAddr, secretBadPW+"\n", true, "account", "passwd", "nobody@example.com", "--password-stdin"))
	driveAuthPaths(t, imapAddr, popAddr, secretUser)

	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := p.out.String()
	// The auth paths do log (user, remote, failures), so the search
	// below looks at real records.
	if !strings.Contains(out, "authentication failed") || !strings.Contains(out, "user="+secretUser) {
		t.Fatalf("the process logged no authentication record:\n%.2000s", out)
	}
	found := findSecrets("process output", out, secretUser)
	found = append(found, findSecrets("/metrics", string(metrics), secretUser)...)
	for i, o := range cli {
		found = append(found, findSecrets(fmt.Sprintf("mailctl output %d", i), o, secretUser)...)
	}
	for _, f := range found {
		t.Error(f)
	}
	t.Logf("searched %d bytes of output at debug level and %d bytes of metrics", len(out), len(metrics))
}
