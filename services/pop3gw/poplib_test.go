package pop3gw

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
)

// TestPoplib drives the gateway with Python's poplib: a full download and
// delete, byte-exact bodies (lines starting with a dot, a message without
// a final CRLF, bare LF line ends), octet counts, UIDL and TOP.
func TestPoplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t)
	acct := e.account("py@example.com")
	msgs := []struct {
		stored string
		lines  []string // as the client must see them, unstuffed
	}{
		{"Subject: one\r\nFrom: a@example.com\r\n\r\nhello\r\n.hidden dot\r\n..two dots\r\n.\r\nend\r\n",
			[]string{"Subject: one", "From: a@example.com", "", "hello", ".hidden dot", "..two dots", ".", "end"}},
		{"Subject: two\r\n\r\nno trailing crlf", []string{"Subject: two", "", "no trailing crlf"}},
		{"Subject: three\n\nbare\n.lf\n", []string{"Subject: three", "", "bare", ".lf"}},
	}
	var uidv uint32
	for _, m := range msgs {
		uidv = e.deliver(acct, m.stored).Appended.UIDValidity
	}
	addr := e.gateway(nil)
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(py, "testdata/poplib_client.py", host, port, "py@example.com", "pw").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("poplib: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got struct {
		Capa []string
		Stat []int64
		List []string
		UIDL []string
		Retr []struct {
			Lines  []string
			Octets int64
		}
		Top  []string
		Quit string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, c := range []string{"TOP", "USER", "UIDL", "PIPELINING", "SASL"} {
		if !slices.Contains(got.Capa, c) {
			t.Errorf("CAPA lacks %s: %q", c, got.Capa)
		}
	}
	var total int64
	for i, m := range msgs {
		t.Run(fmt.Sprint("message ", i+1), func(t *testing.T) {
			r := got.Retr[i]
			if !slices.Equal(r.Lines, m.lines) {
				t.Fatalf("RETR lines %q, want %q", r.Lines, m.lines)
			}
			// The listed size is what went over the wire: every line with
			// CRLF plus one stuffed dot per line starting with a dot.
			var wire int64
			for _, l := range m.lines {
				wire += int64(len(l)) + 2
				if strings.HasPrefix(l, ".") {
					wire++
				}
			}
			if want := fmt.Sprintf("%d %d", i+1, wire); got.List[i] != want {
				t.Fatalf("LIST %q, want %q", got.List[i], want)
			}
			// poplib counts the received bytes less the stuffed dots.
			dots := int64(0)
			for _, l := range m.lines {
				if strings.HasPrefix(l, ".") {
					dots++
				}
			}
			if r.Octets+dots != wire {
				t.Fatalf("poplib counted %d octets (+%d dots), LIST said %d", r.Octets, dots, wire)
			}
			if want := fmt.Sprintf("%d %d.%d", i+1, uidv, i+1); got.UIDL[i] != want {
				t.Fatalf("UIDL %q, want %q", got.UIDL[i], want)
			}
			total += wire
		})
	}
	if len(got.Stat) != 2 || got.Stat[0] != int64(len(msgs)) || got.Stat[1] != total {
		t.Fatalf("STAT %v, want [%d %d]", got.Stat, len(msgs), total)
	}
	if !slices.Equal(got.Top, msgs[0].lines[:3]) {
		t.Fatalf("TOP 1 0: %q", got.Top)
	}
	if !strings.HasPrefix(got.Quit, "+OK") {
		t.Fatalf("QUIT: %q", got.Quit)
	}
	if uids := e.inbox(acct); !slices.Equal(uids, []mail.UID{2, 3}) {
		t.Fatalf("INBOX after DELE 1 and QUIT: %v", uids)
	}
}
