package lmtpgw

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
)

// The backends the wiring passes as Deps.Meta.
var (
	_ Store = (*grpcmeta.Client)(nil)
	_ Store = (*localmeta.Store)(nil)
	_ Store = meta.Store(nil)
)

// env is an in-process stack: the embedded metadata and blob backends, an
// ingester over them and LMTP gateways on loopback.
type env struct {
	t     testing.TB
	store *localmeta.Store
	blobs *flakyBlobs
	// meta is what the gateway sees: the store, or a wrapper of it.
	meta Store
	ing  *ingest.Ingester
	// ingest is what the gateway sees: ing, or a wrapper of it.
	ingest Ingester
	logs   *logRecorder
	gws    []*Gateway
}

type envOptions struct {
	maxMessageSize int64
	wrapMeta       func(Store) Store
}

func newEnv(t testing.TB, opts ...func(*envOptions)) *env {
	t.Helper()
	var o envOptions
	for _, f := range opts {
		f(&o)
	}
	if o.maxMessageSize == 0 {
		o.maxMessageSize = 1 << 20
	}
	dir := t.TempDir()
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil, localmeta.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	fs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs := &flakyBlobs{Store: fs}
	ing, err := ingest.New(ingest.Config{MaxMessageSize: o.maxMessageSize, SpoolMemory: 4096, SpoolDir: t.TempDir()}, ingest.Deps{Meta: store, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, blobs: blobs, meta: store, ing: ing, ingest: ing, logs: newLogRecorder()}
	if o.wrapMeta != nil {
		e.meta = o.wrapMeta(store)
	}
	return e
}

func testConfig() Config {
	return Config{ListenAddress: "x", Hostname: "lmtp.test", MaxRecipients: 100, DedupWindow: time.Hour,
		IdleTimeout: time.Minute, CommandTimeout: time.Minute, DataTimeout: time.Minute, WriteTimeout: time.Minute,
		MaxConnsPerIP: 100, SieveDeadline: 5 * time.Second, MaxLineLength: 4096}
}

// newGateway builds a gateway over the env.
func (e *env) newGateway(mod func(*Config)) *Gateway {
	e.t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg, Deps{Meta: e.meta, Ingest: e.ingest, Logger: slog.New(e.logs)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.gws = append(e.gws, g)
	return g
}

// serve runs g on ln until the test ends; the returned function stops it
// early and waits.
func (e *env) serve(g *Gateway, ln net.Listener) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

// gateway starts a gateway on loopback TCP and returns its address.
func (e *env) gateway(mod func(*Config)) string {
	e.t.Helper()
	g := e.newGateway(mod)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.serve(g, ln)
	return ln.Addr().String()
}

// account creates an account with the given quota limits.
func (e *env) account(login string, q meta.Quota) meta.Account {
	e.t.Helper()
	a, err := e.store.CreateAccount(context.Background(), meta.NewAccount{Login: login, PasswordHash: "x", Quota: q})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) setSieve(acct meta.Account, script string) {
	e.t.Helper()
	if _, err := e.store.UpdateAccount(context.Background(), acct.ID, meta.AccountUpdate{SieveScript: &script}); err != nil {
		e.t.Fatal(err)
	}
}

// stored is one entry with its blob's bytes.
type stored struct {
	meta.Entry
	data string
}

// mailbox returns the entries of a mailbox with their bytes; nil when the
// mailbox does not exist.
func (e *env) mailbox(acct meta.Account, name string) []stored {
	e.t.Helper()
	ctx := context.Background()
	mb, err := e.store.Mailbox(ctx, acct.ID, name)
	if err != nil {
		return nil
	}
	es, err := e.store.ListEntries(ctx, acct.ID, mb.ID, mail.AllUIDs(), meta.FieldAll, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := []stored{}
	for _, en := range es {
		rc, err := e.blobs.Get(ctx, acct.ID, en.Blob, blob.Whole)
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, stored{Entry: en, data: string(b)})
	}
	return out
}

// blobCount counts the account's blobs.
func (e *env) blobCount(acct meta.Account) int {
	e.t.Helper()
	n := 0
	if err := e.blobs.List(context.Background(), acct.ID, func(blob.Info) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// entryCount counts the entries in every mailbox of the account.
func (e *env) entryCount(acct meta.Account) int {
	e.t.Helper()
	mbs, err := e.store.ListMailboxes(context.Background(), acct.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, mb := range mbs {
		n += int(mb.Messages)
	}
	return n
}

// flakyBlobs is a blob store whose Put fails with blob.ErrUnavailable
// while fail is set, after reading part of the body, as a store that
// drops the connection would.
type flakyBlobs struct {
	blob.Store
	fail atomic.Bool
}

func (f *flakyBlobs) Put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m blob.Meta, o blob.PutOptions) (blob.Info, error) {
	if f.fail.Load() {
		_, _ = io.CopyN(io.Discard, r, 10)
		return blob.Info{}, fmt.Errorf("put blob %s: %w", id, blob.ErrUnavailable)
	}
	return f.Store.Put(ctx, acct, id, r, m, o)
}

// logRecorder is a slog handler that lets a test wait for a message.
type logRecorder struct {
	mu      sync.Mutex
	seen    map[string]int
	waiters map[string][]chan struct{}
}

func newLogRecorder() *logRecorder {
	return &logRecorder{seen: map[string]int{}, waiters: map[string][]chan struct{}{}}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[r.Message]++
	for _, ch := range l.waiters[r.Message] {
		close(ch)
	}
	delete(l.waiters, r.Message)
	return nil
}

// wait returns once a record with msg was logged (at any time).
func (l *logRecorder) wait(t testing.TB, msg string) {
	t.Helper()
	l.mu.Lock()
	if l.seen[msg] > 0 {
		l.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	l.waiters[msg] = append(l.waiters[msg], ch)
	l.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("no log record %q", msg)
	}
}

func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[msg]
}

// client is a line-level LMTP client for exact protocol checks.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, network, addr string) *client {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
	if g := cl.reply(); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting %q", g)
	}
	return cl
}

// line reads one line without its CRLF.
func (c *client) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// reply reads one reply, multi-line replies joined by "\n".
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// cmd sends a command and returns its reply.
func (c *client) cmd(format string, args ...any) string {
	c.t.Helper()
	c.send(fmt.Sprintf(format, args...) + "\r\n")
	return c.reply()
}

// expect sends a command whose reply must start with prefix.
func (c *client) expect(prefix, format string, args ...any) string {
	c.t.Helper()
	r := c.cmd(format, args...)
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("%s: got %q, want %s...", fmt.Sprintf(format, args...), r, prefix)
	}
	return r
}

// data sends DATA and the dot-stuffed body, and returns the n replies.
func (c *client) data(body string, n int) []string {
	c.t.Helper()
	c.expect("354", "DATA")
	c.send(dotStuff(body) + ".\r\n")
	replies := make([]string, n)
	for i := range replies {
		replies[i] = c.reply()
	}
	return replies
}

// dotStuff escapes body for DATA as go-smtp reads it (a dot is removed at
// the start of the body and after CRLF only). body must end with CRLF.
func dotStuff(body string) string {
	var b strings.Builder
	lineStart := true
	for _, l := range strings.SplitAfter(body, "\n") {
		if lineStart && strings.HasPrefix(l, ".") {
			b.WriteByte('.')
		}
		b.WriteString(l)
		lineStart = strings.HasSuffix(l, "\r\n")
	}
	return b.String()
}

// deliver runs a whole transaction and returns the DATA replies.
func deliver(t testing.TB, addr, from string, rcpts []string, body string) []string {
	t.Helper()
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	c.expect("250", "MAIL FROM:<%s>", from)
	for _, r := range rcpts {
		c.expect("250", "RCPT TO:<%s>", r)
	}
	replies := c.data(body, len(rcpts))
	c.expect("221", "QUIT")
	return replies
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// eof waits until the server closes the connection.
func (c *client) eof() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, err := c.r.ReadString('\n'); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatal("connection still open")
			}
			return
		}
	}
}
