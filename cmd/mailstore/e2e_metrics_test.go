package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// scrape returns the process's /metrics text.
func scrape(t *testing.T, p *proc) string {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGatewayMetrics scrapes /metrics while an IMAP and a POP3 session
// are open and finds the session, command, login, byte and lock series,
// then the IMAP event lag after an APPEND.
func TestGatewayMetrics(t *testing.T) {
	metaAddr, blobAddr, imapAddr, popAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	p := startProc(t, "all", nil, "-target=all", "-data-dir="+t.TempDir(),
		"-metadata.listen-address="+metaAddr, "-metadata.address="+metaAddr,
		"-blob.listen-address="+blobAddr, "-blob.address="+blobAddr,
		"-imap.listen-address="+imapAddr, "-pop3.listen-address="+popAddr)
	mailctl(t, metaAddr, "pw\n", false, "account", "add", "metrics@example.com", "--password-stdin")

	im := dialIMAP(t, imapAddr, "metrics@example.com", "pw")
	im.ok("SELECT INBOX")
	im.cmd("SELECT nosuchbox")
	pop := dialPOP3(t, popAddr)
	if got := pop.login("metrics@example.com", "pw"); !strings.HasPrefix(got, "+OK") {
		t.Fatal(got)
	}
	pop.cmd("STAT")

	text := scrape(t, p)
	for _, want := range []string{
		`mailstore_imap_sessions_open 1`,
		`mailstore_imap_commands_total{command="LOGIN",result="ok"} 1`,
		`mailstore_imap_commands_total{command="SELECT",result="ok"} 1`,
		`mailstore_imap_commands_total{command="SELECT",result="no"} 1`,
		`mailstore_imap_command_duration_seconds_count{command="SELECT"} 2`,
		`mailstore_imap_logins_total{result="ok"} 1`,
		`mailstore_imap_connections_accepted_total 1`,
		`mailstore_imap_watch_streams 1`,
		`mailstore_pop3_sessions_open 1`,
		`mailstore_pop3_locks_held 1`,
		`mailstore_pop3_commands_total{command="STAT",result="ok"} 1`,
		`mailstore_pop3_logins_total{result="ok"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, series := range []string{"mailstore_imap_received_bytes_total", "mailstore_imap_sent_bytes_total", "mailstore_pop3_sent_bytes_total"} {
		if !regexp.MustCompile(`(?m)^` + series + ` [1-9]`).MatchString(text) {
			t.Errorf("/metrics: %s is not positive", series)
		}
	}
	pop.cmd("QUIT")

	// An APPEND from a second session reaches the first, IDLE in INBOX,
	// through the gateway's event stream. The hub records the event's
	// lag before it wakes the sessions, so once EXISTS arrives the
	// sample is in. (The failed SELECT above left no mailbox selected.)
	im.ok("SELECT INBOX")
	im.send("idle IDLE\r\n")
	if l := im.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %s", l)
	}
	dialIMAP(t, imapAddr, "metrics@example.com", "pw").appendMsg("INBOX", "Subject: lag\r\n\r\nlag\r\n")
	for l := im.line(); !strings.HasSuffix(l, " EXISTS"); l = im.line() {
	}
	im.send("DONE\r\n")
	for l := im.line(); !strings.HasPrefix(l, "idle "); l = im.line() {
	}
	text = scrape(t, p)
	if !regexp.MustCompile(`(?m)^mailstore_imap_event_lag_seconds_count [1-9]`).MatchString(text) {
		t.Errorf("/metrics: mailstore_imap_event_lag_seconds_count is not positive after an APPEND")
	}
}
