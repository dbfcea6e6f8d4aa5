package pop3gw

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
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

// env is an in-process stack: the embedded metadata and blob backends and
// one or more POP3 gateways on loopback sharing them, as pods share the
// metadata and blob services.
type env struct {
	t     testing.TB
	store meta.Store
	blobs blob.Store
	ing   *ingest.Ingester
	auth  meta.Authenticator
	gws   []*Gateway
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

func testConfig() Config {
	return Config{ListenAddress: "x", AllowPlaintextLoopback: true, MaxLineLength: 1024, LeaseTTL: time.Minute,
		IdleTimeout: 10 * time.Minute, CommandTimeout: time.Minute, WriteTimeout: time.Minute,
		MaxAuthFailures: 3, AuthFailureDelay: time.Millisecond}
}

// gateway starts a gateway ("pod") and returns its address.
func (e *env) gateway(mod func(*Config)) string {
	e.t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg, Deps{Meta: e.store, Auth: e.auth, Blobs: e.blobs, Pod: fmt.Sprintf("pod-%d", len(e.gws)+1)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.gws = append(e.gws, g)
	ctx, cancel := context.WithCancel(context.Background())
	serve := func(implicit bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = g.Serve(ctx, ln, implicit) }()
		e.t.Cleanup(func() { cancel(); <-done })
		return ln.Addr().String()
	}
	addr := serve(false)
	if g.TLSEnabled() {
		e.tlsAddr = serve(true)
	}
	return addr
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

// deliver stores a message in INBOX of acct, as LMTP would.
func (e *env) deliver(acct meta.Account, body string) ingest.Result {
	e.t.Helper()
	m, err := e.store.Mailbox(context.Background(), acct.ID, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.ing.Ingest(context.Background(), ingest.Request{
		Target: ingest.Target{Account: acct.ID, Mailbox: m.ID, MailboxName: "INBOX"},
		Size:   int64(len(body)), Body: strings.NewReader(body),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// inbox returns the UIDs in INBOX of acct.
func (e *env) inbox(acct meta.Account) []mail.UID {
	e.t.Helper()
	ctx := context.Background()
	m, err := e.store.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	es, err := e.store.ListEntries(ctx, acct.ID, m.ID, mail.AllUIDs(), 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var uids []mail.UID
	for _, en := range es {
		uids = append(uids, en.UID)
	}
	return uids
}

// raw is a line-level POP3 client for exact protocol checks.
type raw struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newRaw(t, c)
}

func newRaw(t testing.TB, c net.Conn) *raw {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, conn: c, r: bufio.NewReader(c)}
	if g := r.line(); !strings.HasPrefix(g, "+OK ") {
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
	if !strings.HasSuffix(l, "\r\n") {
		r.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// cmd sends a command line and returns the status line.
func (r *raw) cmd(format string, args ...any) string {
	r.t.Helper()
	r.send(fmt.Sprintf(format, args...) + "\r\n")
	return r.line()
}

// ok runs a command that must answer +OK.
func (r *raw) ok(format string, args ...any) string {
	r.t.Helper()
	l := r.cmd(format, args...)
	if !strings.HasPrefix(l, "+OK") {
		r.t.Fatalf("%s: %s", fmt.Sprintf(format, args...), l)
	}
	return l
}

// multi runs a command with a multi-line +OK answer and returns the lines
// between the status line and the ".", still dot-stuffed.
func (r *raw) multi(format string, args ...any) []string {
	r.t.Helper()
	r.ok(format, args...)
	var lines []string
	for {
		l := r.line()
		if l == "." {
			return lines
		}
		lines = append(lines, l)
	}
}

// login logs in with USER/PASS.
func (r *raw) login(user string) {
	r.t.Helper()
	r.ok("USER %s", user)
	r.ok("PASS pw")
}

// eof waits until the server closes the connection.
func (r *raw) eof() {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := r.r.ReadString('\n'); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				r.t.Fatal("connection still open")
			}
			return
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// testCert writes a self-signed certificate for 127.0.0.1 and returns the
// file names and a pool trusting it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailstore test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// tlsClient wraps c in a TLS client trusting pool.
func tlsClient(c net.Conn, pool *x509.CertPool) *tls.Conn {
	return tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
}
