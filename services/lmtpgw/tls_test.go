package lmtpgw

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// testCert writes a self-signed certificate for 127.0.0.1 and returns the
// files and a pool trusting it.
func testCert(t *testing.T) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lmtp test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestStartTLS: with a certificate the gateway offers STARTTLS, and a
// delivery over it is recorded as LMTPS in the Received field.
func TestStartTLS(t *testing.T) {
	e := newEnv(t)
	alice := e.account("alice@example.com", meta.Quota{})
	certFile, keyFile, pool := testCert(t)
	addr := e.gateway(func(c *Config) { c.CertFile, c.KeyFile = certFile, keyFile })

	c := dial(t, "tcp", addr)
	if got := c.cmd("LHLO mta.test"); !strings.Contains(got, "STARTTLS") {
		t.Fatalf("STARTTLS not offered: %q", got)
	}
	c.expect("220", "STARTTLS")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &client{t: t, conn: tc, r: newReader(tc)}
	if got := s.cmd("LHLO mta.test"); !strings.HasPrefix(got, "250") || strings.Contains(got, "STARTTLS") {
		t.Fatalf("STARTTLS offered again over TLS: %q", got)
	}
	s.expect("250", "MAIL FROM:<a@example.com>")
	s.expect("250", "RCPT TO:<alice@example.com>")
	if got := s.data("Subject: over TLS\r\n\r\nsecret\r\n", 1); !strings.HasPrefix(got[0], "250") {
		t.Fatalf("DATA over TLS: %q", got)
	}
	inbox := e.mailbox(alice, mail.Inbox)
	if len(inbox) != 1 || !strings.Contains(inbox[0].data, "with LMTPS") {
		t.Fatalf("INBOX %+v, want one message received with LMTPS", inbox)
	}

	// Without a certificate, STARTTLS is not offered.
	plain := dial(t, "tcp", e.gateway(nil))
	if got := plain.cmd("LHLO mta.test"); strings.Contains(got, "STARTTLS") {
		t.Fatalf("STARTTLS offered without a certificate: %q", got)
	}
}
