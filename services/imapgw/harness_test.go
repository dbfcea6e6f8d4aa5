package imapgw

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/password"
	"github.com/mailstore/mailstore/services/metasvc"
)

// env is an in-process stack: the embedded metadata and blob backends,
// one or more gateways on loopback. End-to-end tests over real processes,
// Redis and S3 live in cmd/mailstore.
type env struct {
	t     testing.TB
	store meta.Store
	blobs blob.Store
	ing   *ingest.Ingester
	auth  meta.Authenticator
	// gws are the gateways started, in order.
	gws []*Gateway
	// tlsAddr is the implicit-TLS address of the last gateway started
	// with a certificate.
	tlsAddr string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil, localmeta.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := metasvc.New(metasvc.Config{Auth: metasvc.AuthConfig{FailureWindow: time.Minute}}, metasvc.Deps{Store: store, Blobs: blobs, PasswordParams: &password.Fast})
	if err != nil {
		t.Fatal(err)
	}
	ing, err := ingest.New(ingest.Config{MaxMessageSize: 10 << 20}, ingest.Deps{Meta: store, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, blobs: blobs, ing: ing, auth: svc.Authenticator()}
}

// gateway starts a gateway and returns its address.
func (e *env) gateway(mod func(*Config)) string {
	e.t.Helper()
	return e.gatewayWithLogger(mod, nil)
}

// gatewayWithLogger is gateway with the gateway's logger.
func (e *env) gatewayWithLogger(mod func(*Config), logger *slog.Logger) string {
	e.t.Helper()
	cfg := Config{MaxLineLength: 64 << 10, MaxLiteral: 1 << 20, IdleTimeout: 30 * time.Minute, CommandTimeout: time.Minute, WriteTimeout: time.Minute, ListenAddress: "x", AllowPlaintextLoopback: true, MaxAuthFailures: 3, AuthFailureDelay: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg, Deps{Meta: e.store, Auth: e.auth, Blobs: e.blobs, Ingest: e.ing, Logger: logger})
	if err != nil {
		e.t.Fatal(err)
	}
	e.gws = append(e.gws, g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln, false) }()
	e.t.Cleanup(func() { cancel(); <-done })
	if g.TLSEnabled() {
		tln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.t.Fatal(err)
		}
		tdone := make(chan struct{})
		go func() { defer close(tdone); _ = g.Serve(ctx, tln, true) }()
		e.t.Cleanup(func() { cancel(); <-tdone })
		e.tlsAddr = tln.Addr().String()
	}
	return ln.Addr().String()
}

// account creates login with password "pw".
func (e *env) account(login string) meta.Account {
	e.t.Helper()
	h, err := password.Hash("pw", password.Fast)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.store.CreateAccount(context.Background(), meta.NewAccount{Login: login, PasswordHash: h})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// deliver stores a message in mailbox name of acct, as LMTP would.
func (e *env) deliver(acct meta.Account, name, body string, flags ...mail.Flag) ingest.Result {
	e.t.Helper()
	m, err := e.store.Mailbox(context.Background(), acct.ID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.ing.Ingest(context.Background(), ingest.Request{
		Target: ingest.Target{Account: acct.ID, Mailbox: m.ID, MailboxName: name, Flags: flags},
		Size:   int64(len(body)), Body: strings.NewReader(body),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// raw is a line-level IMAP client for exact protocol checks.
type raw struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, conn: c, r: bufio.NewReader(c)}
	if g := r.line(); !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting %q", g)
	}
	return r
}

// line reads one response line (without CRLF), failing after 10s.
func (r *raw) line() string {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// cmd sends "tag cmd" and returns the untagged lines and the tagged line.
func (r *raw) cmd(format string, args ...any) ([]string, string) {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	return r.until(tag)
}

// until reads lines up to the tagged response of tag.
func (r *raw) until(tag string) ([]string, string) {
	r.t.Helper()
	var lines []string
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return lines, l
		}
		lines = append(lines, l)
	}
}

// ok runs a command that must succeed and returns its untagged lines.
func (r *raw) ok(format string, args ...any) []string {
	r.t.Helper()
	lines, tagged := r.cmd(format, args...)
	if !strings.Contains(tagged, " OK") {
		r.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), tagged, lines)
	}
	return lines
}

func has(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// sessions counts a gateway's open sessions.
func (g *Gateway) sessionCount() int {
	return g.conns.Len()
}
