package lmtpgw

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// TestSmtplib drives the gateway with Python's smtplib.LMTP: LHLO
// features, sendmail, and a multi-recipient transaction with one unknown
// recipient and one reply per accepted recipient after DATA.
func TestSmtplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t)
	a := e.account("a@example.com", meta.Quota{})
	b := e.account("b@example.com", meta.Quota{})
	addr := e.gateway(nil)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(py, "testdata/smtplib_client.py", host, port, "py@example.com", "a@example.com", "nobody@example.com", "b@example.com")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("smtplib: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got struct {
		LHLO            []any `json:"lhlo"`
		SendmailRefused map[string]any
		Rcpt            []int
		Data            [][]any
		Quit            int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var features []string
	for _, f := range got.LHLO[1].([]any) {
		features = append(features, f.(string))
	}
	for _, want := range []string{"pipelining", "enhancedstatuscodes", "8bitmime", "smtputf8", "chunking", "size"} {
		if !slices.Contains(features, want) {
			t.Errorf("features %q lack %s", features, want)
		}
	}
	if len(got.SendmailRefused) != 0 || !slices.Equal(got.Rcpt, []int{250, 550, 250}) || got.Quit != 221 {
		t.Errorf("smtplib saw %s", out)
	}
	if len(got.Data) != 2 {
		t.Fatalf("DATA replies %v", got.Data)
	}
	for i, rcpt := range []string{"a@example.com", "b@example.com"} {
		if code := got.Data[i][0].(float64); code != 250 || !strings.Contains(got.Data[i][1].(string), "<"+rcpt+">") {
			t.Errorf("DATA reply %d: %v", i, got.Data[i])
		}
	}
	inbox := e.mailbox(a, mail.Inbox)
	if len(inbox) != 2 {
		t.Fatalf("a has %d entries", len(inbox))
	}
	checkStored(t, inbox[0], "py@example.com", "a@example.com", "Subject: one\r\n\r\n.leading dot\r\nbody\r\n")
	if !strings.HasPrefix(inbox[0].data[strings.Index(inbox[0].data, "Received: from ")+len("Received: from "):], "python.test ([127.0.0.1])") {
		t.Errorf("Received field: %q", inbox[0].data)
	}
	checkStored(t, e.mailbox(b, mail.Inbox)[0], "py@example.com", "b@example.com", "Subject: two\r\n\r\nfor everyone\r\n")
}

// TestSwaks delivers with swaks --protocol LMTP, when installed.
func TestSwaks(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("MAILSTORE_REQUIRE_SERVERS") == "1" {
			t.Fatal("swaks not installed (scripts/tools.sh installs it)")
		}
		t.Skip("swaks not installed")
	}
	e := newEnv(t)
	a := e.account("a@example.com", meta.Quota{})
	b := e.account("b@example.com", meta.Quota{})
	addr := e.gateway(nil)
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(swaks, "--protocol", "LMTP", "--server", host, "--port", port, "--helo", "swaks.test",
		"--from", "sw@example.com", "--to", "a@example.com,b@example.com",
		"--header", "Subject: from swaks", "--body", "hello from swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	for _, acct := range []meta.Account{a, b} {
		inbox := e.mailbox(acct, mail.Inbox)
		if len(inbox) != 1 || !strings.Contains(inbox[0].data, "Subject: from swaks") ||
			!strings.Contains(inbox[0].data, "\r\nDelivered-To: "+acct.Login+"\r\n") {
			t.Errorf("%s: stored %+v\nswaks said:\n%s", acct.Login, inbox, out)
		}
	}
}
