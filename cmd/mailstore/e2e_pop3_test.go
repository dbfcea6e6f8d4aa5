package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// startPOP3 starts a POP3 gateway process against a stack.
func startPOP3(t *testing.T, name string, st *stack, extra ...string) (string, *proc) {
	t.Helper()
	addr := freeAddr(t)
	p := startProc(t, name, nil, append([]string{"-target=pop3", "-pop3.listen-address=" + addr,
		"-metadata.address=" + st.metaAddrs[0], "-blob.address=" + st.blobAddr}, extra...)...)
	return addr, p
}

// popStep is one step's answer from testdata/pop3_client.py.
type popStep struct {
	Login string
	Stat  []int64
	List  []string
	UIDL  []string
	Retr  []string
	Top   []string
	Dele  string
	Quit  string
	Err   string
}

// poplib runs Python's poplib against addr with the given steps.
func poplib(t *testing.T, addr, user, pass string, steps ...string) []popStep {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, append([]string{"testdata/pop3_client.py", host, port, user, pass}, steps...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("poplib %v: %v\n%s", steps, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got []popStep
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("poplib output %q: %v", out, err)
	}
	if len(got) == 1 && got[0].Login != "" {
		return got
	}
	if len(got) != len(steps) {
		t.Fatalf("poplib %v answered %d steps: %+v", steps, len(got), got)
	}
	for i, s := range got {
		if s.Err != "" {
			t.Fatalf("poplib step %s: %s", steps[i], s.Err)
		}
	}
	return got
}

// curlPOP3 runs curl against a pop3:// URL path with extra arguments and
// returns its output.
func curlPOP3(t *testing.T, addr, user, pass, path string, args ...string) string {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, append([]string{"-sS", "--max-time", "30", "-u", user + ":" + pass, "pop3://" + addr + path}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("curl %s %v: %v\n%s", path, args, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return string(out)
}

// popConn is a line-level POP3 client for lock checks.
type popConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialPOP3(t *testing.T, addr string) *popConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &popConn{t: t, conn: c, r: bufio.NewReader(c)}
	if g := p.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	return p
}

func (p *popConn) line() string {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (p *popConn) cmd(format string, args ...any) string {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.conn, format+"\r\n", args...); err != nil {
		p.t.Fatal(err)
	}
	return p.line()
}

// login logs in and returns the answer to PASS.
func (p *popConn) login(user, pass string) string {
	p.t.Helper()
	if l := p.cmd("USER %s", user); !strings.HasPrefix(l, "+OK") {
		p.t.Fatalf("USER: %s", l)
	}
	return p.cmd("PASS %s", pass)
}

// loginWhenFree logs in on addr, retrying while the maildrop is locked,
// until within; it returns the connection, logged in.
func loginWhenFree(t *testing.T, addr, user, pass string, within time.Duration) *popConn {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := dialPOP3(t, addr)
		got := c.login(user, pass)
		if strings.HasPrefix(got, "+OK") {
			return c
		}
		if !strings.HasPrefix(got, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("login: %s", got)
		}
		c.conn.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// inboxEntries reads INBOX of acct through the metadata service.
func inboxEntries(t *testing.T, m meta.Store, acct mail.AccountID) (meta.Mailbox, []meta.Entry) {
	t.Helper()
	ctx := context.Background()
	box, err := m.Mailbox(ctx, acct, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	es, err := m.ListEntries(ctx, acct, box.ID, mail.AllUIDs(), meta.FieldFlags|meta.FieldInfo, 0)
	if err != nil {
		t.Fatal(err)
	}
	return box, es
}

// wireLen is the size of a CRLF message as RETR sends it, dot-stuffed:
// what STAT and LIST must count.
func wireLen(msg string) int64 {
	n := int64(len(msg))
	for _, l := range crlfLines(msg) {
		if strings.HasPrefix(l, ".") {
			n++
		}
	}
	return n
}

// crlfLines is what poplib reports for a CRLF message: its lines,
// unstuffed, without line ends.
func crlfLines(msg string) []string {
	return strings.Split(strings.TrimSuffix(msg, "\r\n"), "\r\n")
}

// TestPOP3AcrossGateways: two POP3 gateway processes and an IMAP gateway
// over one metadata service on Redis and a blob service on S3, driven
// with Python's poplib, curl and raw connections: byte-exact downloads,
// UIDL stability across pods, the maildrop lock across pods (released on
// QUIT, on a dropped connection and after a killed pod's lease expires),
// IMAP and POP3 on one account at once, and each leave-on-server policy
// with the reaper.
func TestPOP3AcrossGateways(t *testing.T) {
	st := startRedisStack(t, 1, testenv.Redis(t), testenv.Prefix(t), testenv.S3(t, testenv.VersityGW),
		"-metadata.pop3.reap-interval=200ms")
	const user, pass = "pop@example.com", "pop-secret"
	mailctl(t, st.metaAddrs[0], pass+"\n", false, "account", "add", user, "--password-stdin")
	pop1, _ := startPOP3(t, "pop3-1", st)
	pop2, _ := startPOP3(t, "pop3-2", st)
	imapAddr := startIMAP(t, "imap", st)
	store := clientsFor(t, st.metaAddrs)[0]
	acct, err := store.LookupLogin(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}

	var big strings.Builder
	big.WriteString("Subject: big\r\n\r\n")
	for i := range 2000 {
		fmt.Fprintf(&big, "line %d of a 50 KB body\r\n", i)
		if i%100 == 0 {
			big.WriteString(".a line that starts with a dot\r\n")
		}
	}
	msgs := []string{
		"From: a@example.org\r\nSubject: dots\r\n\r\nhello\r\n.dot line\r\n..two dots\r\n.\r\nend\r\n",
		big.String(),
		"Subject: three\r\n\r\nthree\r\n",
	}
	im := dialIMAP(t, imapAddr, user, pass)
	for _, m := range msgs {
		im.appendMsg("INBOX", m)
	}
	im.ok("SELECT INBOX")

	var uidls []string
	t.Run("download with poplib, byte exact", func(t *testing.T) {
		steps := poplib(t, pop1, user, pass, "stat", "list", "uidl", "retr:1", "retr:2", "retr:3", "top:2:2", "quit")
		var total int64
		for _, m := range msgs {
			total += wireLen(m)
		}
		if want := []int64{3, total}; !slices.Equal(steps[0].Stat, want) {
			t.Fatalf("STAT %v, want %v", steps[0].Stat, want)
		}
		for i, m := range msgs {
			if want := fmt.Sprintf("%d %d", i+1, wireLen(m)); steps[1].List[i] != want {
				t.Errorf("LIST line %q, want %q", steps[1].List[i], want)
			}
			if got := steps[3+i].Retr; !slices.Equal(got, crlfLines(m)) {
				t.Errorf("RETR %d differs from the appended message", i+1)
			}
		}
		if want := []string{"Subject: big", "", "line 0 of a 50 KB body", ".a line that starts with a dot"}; !slices.Equal(steps[6].Top, want) {
			t.Errorf("TOP 2 2 = %q, want %q", steps[6].Top, want)
		}
		uidls = steps[2].UIDL
	})

	t.Run("curl on the other pod: same UIDLs, same bytes", func(t *testing.T) {
		got := curlPOP3(t, pop2, user, pass, "/", "-X", "UIDL")
		if lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n"); !slices.Equal(lines, uidls) {
			t.Fatalf("UIDL via curl on pop3-2 = %q, via poplib on pop3-1 = %q", lines, uidls)
		}
		for i, m := range msgs {
			if got := curlPOP3(t, pop2, user, pass, fmt.Sprintf("/%d", i+1)); got != m {
				t.Errorf("curl RETR %d: %d bytes differ from the %d appended", i+1, len(got), len(m))
			}
		}
	})

	t.Run("lock across pods, released on QUIT", func(t *testing.T) {
		holder := dialPOP3(t, pop1)
		if got := holder.login(user, pass); !strings.HasPrefix(got, "+OK") {
			t.Fatalf("login: %s", got)
		}
		if got := poplib(t, pop2, user, pass, "stat"); !strings.HasPrefix(got[0].Login, "-ERR [IN-USE]") {
			t.Fatalf("second login on another pod: %+v", got)
		}
		if got := holder.cmd("QUIT"); !strings.HasPrefix(got, "+OK") {
			t.Fatalf("QUIT: %s", got)
		}
		// QUIT's answer is sent after the release: no retry needed.
		poplib(t, pop2, user, pass, "stat", "quit")
	})

	t.Run("lock released when a client drops", func(t *testing.T) {
		steps := poplib(t, pop2, user, pass, "dele:1", "drop")
		if steps[0].Dele == "" {
			t.Fatalf("DELE: %+v", steps)
		}
		// Well within the 60s lease: the drop released it.
		c := loginWhenFree(t, pop1, user, pass, 10*time.Second)
		if got := c.cmd("STAT"); !strings.HasPrefix(got, "+OK 3 ") {
			t.Fatalf("STAT after a dropped session's DELE: %s (the drop must delete nothing)", got)
		}
		c.cmd("QUIT")
	})

	t.Run("lock of a killed pod lapses with its lease", func(t *testing.T) {
		pop3, p3 := startPOP3(t, "pop3-3", st, "-pop3.lease-ttl=6s")
		c := dialPOP3(t, pop3)
		if got := c.login(user, pass); !strings.HasPrefix(got, "+OK") {
			t.Fatalf("login on pop3-3: %s", got)
		}
		p3.kill()
		if got := dialPOP3(t, pop1).login(user, pass); !strings.HasPrefix(got, "-ERR [IN-USE]") {
			t.Fatalf("login right after the holder's pod died: %s", got)
		}
		c2 := loginWhenFree(t, pop1, user, pass, 30*time.Second)
		c2.cmd("QUIT")
	})

	t.Run("IMAP and POP3 at once", func(t *testing.T) {
		c := loginWhenFree(t, pop1, user, pass, 10*time.Second)
		// A message appended over IMAP during the session is not in its
		// snapshot; one deleted by POP3 reaches the IMAP session.
		im.appendMsg("INBOX", "Subject: four\r\n\r\nfour\r\n")
		if got := c.cmd("STAT"); !strings.HasPrefix(got, "+OK 3 ") {
			t.Fatalf("STAT after an IMAP APPEND: %s", got)
		}
		if got := c.cmd("DELE 3"); !strings.HasPrefix(got, "+OK") {
			t.Fatal(got)
		}
		if got := c.cmd("QUIT"); !strings.Contains(got, "1 messages deleted") {
			t.Fatalf("QUIT: %s", got)
		}
		im.noopUntil("* 3 EXPUNGE")
		got := poplib(t, pop2, user, pass, "uidl", "quit")[0].UIDL
		if len(got) != 3 || got[0] != uidls[0] || got[1] != uidls[1] {
			t.Fatalf("UIDL after the update = %q (before: %q)", got, uidls)
		}
	})

	t.Run("keep forever hides deleted messages from POP3 only", func(t *testing.T) {
		mailctl(t, st.metaAddrs[0], "", false, "account", "pop3", user, "--keep=forever")
		steps := poplib(t, pop1, user, pass, "retr:1", "dele:1", "quit")
		if !strings.Contains(steps[2].Quit, "1 messages deleted") {
			t.Fatalf("QUIT: %q", steps[2].Quit)
		}
		_, es := inboxEntries(t, store, acct.ID)
		if len(es) != 3 || !slices.Contains(es[0].Flags, "$POP3Deleted") {
			t.Fatalf("INBOX after DELE under keep-forever: %+v", es)
		}
		if got := poplib(t, pop2, user, pass, "stat", "quit")[0].Stat; got[0] != 2 {
			t.Fatalf("STAT after a kept DELE = %v, want 2 messages", got)
		}
	})

	t.Run("keep days: the reaper removes what was retrieved long enough ago", func(t *testing.T) {
		mailctl(t, st.metaAddrs[0], "", false, "account", "pop3", user, "--keep=3d")
		c := loginWhenFree(t, pop2, user, pass, 10*time.Second)
		if got := c.cmd("CAPA"); !strings.HasPrefix(got, "+OK") {
			t.Fatal(got)
		}
		var caps []string
		for l := c.line(); l != "."; l = c.line() {
			caps = append(caps, l)
		}
		if !slices.Contains(caps, "EXPIRE 3") {
			t.Fatalf("CAPA under keep-3d: %q", caps)
		}
		for n := 1; n <= 2; n++ {
			if got := c.cmd("RETR %d", n); !strings.HasPrefix(got, "+OK") {
				t.Fatal(got)
			}
			for l := c.line(); l != "."; l = c.line() {
			}
		}
		c.cmd("QUIT")
		// A new message that was (say) first retrieved four days ago is
		// due; the two retrieved now and the hidden one never retrieved
		// are not.
		im.appendMsg("INBOX", "Subject: five\r\n\r\nfive\r\n")
		box, es := inboxEntries(t, store, acct.ID)
		old := es[len(es)-1].UID
		if err := store.MarkRetrieved(context.Background(), acct.ID, box.ID, mail.NewUIDSet(old), time.Now().Add(-4*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, es = inboxEntries(t, store, acct.ID)
			if !slices.ContainsFunc(es, func(e meta.Entry) bool { return e.UID == old }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the reaper left message %d, retrieved four days ago", old)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(es) != 3 || !es[0].Retrieved.IsZero() || time.Since(es[1].Retrieved) > time.Hour || time.Since(es[2].Retrieved) > time.Hour {
			t.Fatalf("after the reaper INBOX is %+v, want the hidden message and the two retrieved today", es)
		}
		im.noopUntil("EXPUNGE")
	})

	t.Run("full download and delete", func(t *testing.T) {
		mailctl(t, st.metaAddrs[0], "", false, "account", "pop3", user, "--keep=none")
		steps := poplib(t, pop1, user, pass, "stat")
		n := int(steps[0].Stat[0])
		var args []string
		for i := 1; i <= n; i++ {
			args = append(args, fmt.Sprintf("retr:%d", i), fmt.Sprintf("dele:%d", i))
		}
		// Two of the INBOX messages were hidden by keep-forever; "none"
		// shows nothing new, it only governs deletes from now on.
		steps = poplib(t, pop2, user, pass, append(args, "quit")...)
		if !strings.Contains(steps[len(steps)-1].Quit, fmt.Sprintf("%d messages deleted", n)) {
			t.Fatalf("QUIT: %q", steps[len(steps)-1].Quit)
		}
		if got := poplib(t, pop1, user, pass, "stat", "quit")[0].Stat; got[0] != 0 {
			t.Fatalf("STAT after deleting everything = %v", got)
		}
	})
}
