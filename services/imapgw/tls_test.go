package imapgw

import (
	"bufio"
	"compress/flate"
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

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstore/mailstore/pkg/meta"
)

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
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	e := newEnv(t)
	e.account("tls@example.com")
	certFile, keyFile, pool := testCert(t)
	addr := e.gateway(func(c *Config) {
		c.CertFile, c.KeyFile = certFile, keyFile
		c.AllowPlaintextLoopback = false
	})
	tlsAddr := e.tlsAddr

	// Before STARTTLS: LOGINDISABLED, and LOGIN is refused.
	c := dialRaw(t, addr)
	caps := c.ok("CAPABILITY")
	if !has(caps, "STARTTLS") || !has(caps, "LOGINDISABLED") || has(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities without TLS: %q", caps)
	}
	if _, tagged := c.cmd("LOGIN tls@example.com pw"); !strings.Contains(tagged, "NO [PRIVACYREQUIRED]") {
		t.Fatalf("plaintext LOGIN: %s", tagged)
	}

	cfg := &tls.Config{RootCAs: pool}
	for name, dial := range map[string]func() (*imapclient.Client, error){
		"STARTTLS": func() (*imapclient.Client, error) {
			return imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: cfg})
		},
		"implicit": func() (*imapclient.Client, error) {
			return imapclient.DialTLS(tlsAddr, &imapclient.Options{TLSConfig: cfg})
		},
	} {
		t.Run(name, func(t *testing.T) {
			cl, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.Login("tls@example.com", "pw").Wait(); err != nil {
				t.Fatalf("login over TLS: %v", err)
			}
			if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestQuota(t *testing.T) {
	e := newEnv(t)
	a := e.account("quota@example.com")
	lb, lm := int64(10<<10), int64(2)
	if _, err := e.store.UpdateAccount(t.Context(), a.ID, quotaUpdate(lb, lm)); err != nil {
		t.Fatal(err)
	}
	e.deliver(a, "INBOX", msg1)
	c := login(t, e.gateway(nil), "quota@example.com")
	lines := c.ok("GETQUOTAROOT INBOX")
	if !has(lines, `* QUOTAROOT INBOX ""`) || !has(lines, `* QUOTA "" (STORAGE 1 10 MESSAGE 1 2)`) {
		t.Fatalf("GETQUOTAROOT: %q", lines)
	}
	if lines := c.ok(`GETQUOTA ""`); !has(lines, "MESSAGE 1 2") {
		t.Fatalf("GETQUOTA: %q", lines)
	}
	if _, tagged := c.cmd(`SETQUOTA "" (STORAGE 1)`); !strings.Contains(tagged, "NO") {
		t.Fatalf("SETQUOTA: %s", tagged)
	}
	e.deliver(a, "INBOX", msg1)
	c.send("a APPEND INBOX {5+}\r\nhello\r\n")
	if _, tagged := c.until("a"); !strings.Contains(tagged, "NO [OVERQUOTA]") {
		t.Fatalf("APPEND over quota: %s", tagged)
	}
}

func TestCompress(t *testing.T) {
	e := newEnv(t)
	e.account("deflate@example.com")
	c := login(t, e.gateway(nil), "deflate@example.com")
	if _, tagged := c.cmd("COMPRESS DEFLATE"); !strings.Contains(tagged, "OK") {
		t.Fatalf("COMPRESS: %s", tagged)
	}
	fw, _ := flate.NewWriter(c.conn, flate.BestSpeed)
	fr := bufio.NewReader(flate.NewReader(c.conn))
	fw.Write([]byte("z1 SELECT INBOX\r\nz2 COMPRESS DEFLATE\r\n"))
	fw.Flush()
	var got []string
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := fr.ReadString('\n')
		if err != nil {
			t.Fatalf("read compressed: %v (%q)", err, got)
		}
		got = append(got, strings.TrimRight(l, "\r\n"))
		if strings.HasPrefix(l, "z2 ") {
			break
		}
	}
	if !has(got, "z1 OK [READ-WRITE]") || !has(got, "z2 NO [COMPRESSIONACTIVE]") {
		t.Fatalf("compressed session: %q", got)
	}
}

func quotaUpdate(bytes, msgs int64) meta.AccountUpdate {
	return meta.AccountUpdate{LimitBytes: &bytes, LimitMsgs: &msgs}
}
