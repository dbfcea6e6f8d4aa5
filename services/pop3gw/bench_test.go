package pop3gw

// Benchmarks of the gateway (figures in docs/benchmarks.md, run with
// `make bench-pop3`). Each reports figures with b.ReportMetric; none
// judges them. The gateway runs in-process over the embedded backends
// (bbolt, fsblob); a raw client pipelines its commands as mail clients
// that announce PIPELINING do.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/pkg/password"
	"github.com/mailstore/mailstore/services/metasvc"
)

// newBenchEnv is newEnv with bbolt's fsync per commit, as in production.
func newBenchEnv(b *testing.B) *env {
	b.Helper()
	dir := b.TempDir()
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	blobs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := metasvc.New(metasvc.Config{Auth: metasvc.AuthConfig{FailureWindow: time.Minute}},
		metasvc.Deps{Store: store, Blobs: blobs, PasswordParams: &password.Fast})
	if err != nil {
		b.Fatal(err)
	}
	return &env{t: b, store: store, blobs: blobs, auth: svc.Authenticator()}
}

// benchGateway starts an unpaced gateway (the figures are the gateway's,
// not the configured pace's; see the pace figure).
func (e *env) benchGateway() string {
	return e.gateway(func(c *Config) { c.CommandRate = 0 })
}

func benchAccount(b *testing.B, e *env, login string, params password.Params) meta.Account {
	b.Helper()
	h, err := password.Hash("pw", params)
	if err != nil {
		b.Fatal(err)
	}
	a, err := e.store.CreateAccount(context.Background(), meta.NewAccount{Login: login, PasswordHash: h})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// benchMessage is a message of about size bytes, CRLF lines of 76.
func benchMessage(i, size int) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "From: bench@example.com\r\nTo: user@example.com\r\nSubject: message %d\r\nMessage-ID: <%d@bench>\r\n\r\n", i, i)
	line := strings.Repeat("x", 74) + "\r\n"
	for sb.Len()+len(line) <= size {
		sb.WriteString(line)
	}
	return []byte(sb.String())
}

// seedInbox appends n messages of size bytes to INBOX. With shared, all
// entries point at one blob (fast to seed; each entry is still read and
// sent on its own); else each has its own blob.
func seedInbox(b *testing.B, e *env, acct mail.AccountID, n, size int, shared bool) {
	b.Helper()
	ctx := context.Background()
	box, err := e.store.Mailbox(ctx, acct, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	var id mail.BlobID
	var enc []byte
	for i := range n {
		if i == 0 || !shared {
			msg := benchMessage(i, size)
			s, err := mime.Scan(strings.NewReader(string(msg)), mime.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			if enc, err = mime.MarshalStructure(s); err != nil {
				b.Fatal(err)
			}
			id = blob.NewBlobID(time.Now())
			if _, err := e.blobs.Put(ctx, acct, id, strings.NewReader(string(msg)), blob.Meta{Account: acct, InternalDate: time.Now(), Mailbox: "INBOX"}, blob.PutOptions{Size: int64(len(msg))}); err != nil {
				b.Fatal(err)
			}
			size = len(msg)
		}
		if _, err := e.store.AppendEntry(ctx, acct, box.ID, meta.NewEntry{InternalDate: time.Now(), Size: int64(size), Blob: id, Structure: enc}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchConn is a pipelining POP3 client.
type benchConn struct {
	c  net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	tb testing.TB
}

func benchDial(tb testing.TB, addr string) *benchConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	bc := &benchConn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10), tb: tb}
	bc.status()
	return bc
}

func (c *benchConn) send(format string, args ...any) {
	fmt.Fprintf(c.w, format+"\r\n", args...)
}

func (c *benchConn) flush() {
	if err := c.w.Flush(); err != nil {
		c.tb.Fatal(err)
	}
}

// status reads a status line; -ERR fails.
func (c *benchConn) status() string {
	l, err := c.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "+OK") {
		c.tb.Fatalf("status %q: %v", l, err)
	}
	return l
}

// body reads a multi-line answer's lines up to "." and returns the bytes
// read (wire form).
func (c *benchConn) body() int64 {
	var n int64
	for {
		l, err := c.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			c.tb.Fatal(err)
		}
		n += int64(len(l))
		if string(l) == ".\r\n" {
			return n
		}
	}
}

func (c *benchConn) login(user string) {
	c.send("USER %s", user)
	c.send("PASS pw")
	c.flush()
	c.status()
	c.status()
}

func (c *benchConn) quit() {
	c.send("QUIT")
	c.flush()
	c.status()
	_, _ = io.Copy(io.Discard, c.r)
	c.c.Close()
}

// BenchmarkLogin: a fresh connection, USER, PASS (argon2id with the
// production cost), QUIT with nothing to update: lock, snapshot, unlock.
func BenchmarkLogin(b *testing.B) {
	e := newBenchEnv(b)
	addr := e.benchGateway()
	benchAccount(b, e, "login@example.com", password.Default)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			c := benchDial(b, addr)
			c.login("login@example.com")
			c.quit()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
	// One account allows one session at a time (the maildrop lock), so
	// parallel logins use one account per client goroutine.
	const accounts = 16
	for i := range accounts {
		benchAccount(b, e, fmt.Sprintf("p%d@example.com", i), password.Default)
	}
	b.Run("parallel", func(b *testing.B) {
		var next atomic.Int32
		b.RunParallel(func(pb *testing.PB) {
			user := fmt.Sprintf("p%d@example.com", next.Add(1)%accounts)
			for pb.Next() {
				c := benchDial(b, addr)
				c.login(user)
				c.quit()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}

// BenchmarkDownload: a mailbox of 1,000 messages of 50 KB, each its own
// blob; one session LISTs and RETRs them all (pipelined) and QUITs
// without deleting.
func BenchmarkDownload(b *testing.B) {
	e := newBenchEnv(b)
	addr := e.benchGateway()
	acct := benchAccount(b, e, "dl@example.com", password.Fast)
	const n, size = 1000, 50 << 10
	seedInbox(b, e, acct.ID, n, size, false)
	var bytes int64
	for b.Loop() {
		c := benchDial(b, addr)
		c.login("dl@example.com")
		c.send("LIST")
		for i := 1; i <= n; i++ {
			c.send("RETR %d", i)
		}
		c.flush()
		c.status()
		c.body()
		for range n {
			c.status()
			bytes += c.body()
		}
		c.quit()
	}
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDownloadAndDelete: 10,000 small messages (1 KB); one session
// RETRs and DELEs every one (pipelined) and QUITs, which expunges them
// all at once. Seeding each round is outside the timer.
func BenchmarkDownloadAndDelete(b *testing.B) {
	e := newBenchEnv(b)
	addr := e.benchGateway()
	acct := benchAccount(b, e, "dd@example.com", password.Fast)
	const n, size = 10_000, 1 << 10
	b.StopTimer()
	for range b.N {
		seedInbox(b, e, acct.ID, n, size, true)
		b.StartTimer()
		c := benchDial(b, addr)
		c.login("dd@example.com")
		for i := 1; i <= n; i++ {
			c.send("RETR %d", i)
			c.send("DELE %d", i)
		}
		c.flush()
		for range n {
			c.status()
			c.body()
			c.status()
		}
		c.send("QUIT")
		c.flush()
		if l := c.status(); !strings.Contains(l, fmt.Sprintf("(%d messages deleted)", n)) {
			b.Fatalf("QUIT: %q", l)
		}
		c.c.Close()
		b.StopTimer()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPacedCommands: 22,000 NOOPs pipelined through the default
// pace (-pop3.command-rate 1000/s after a burst of 20,000): the burst
// goes at full speed, the rest at the rate.
func BenchmarkPacedCommands(b *testing.B) {
	e := newBenchEnv(b)
	addr := e.gateway(func(c *Config) { c.CommandRate, c.CommandBurst = 1000, 20000 })
	benchAccount(b, e, "pace@example.com", password.Fast)
	const n = 22_000
	for b.Loop() {
		c := benchDial(b, addr)
		c.login("pace@example.com")
		for range n {
			c.send("NOOP")
		}
		c.flush()
		for range n {
			c.status()
		}
		c.quit()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "cmds/s")
}
