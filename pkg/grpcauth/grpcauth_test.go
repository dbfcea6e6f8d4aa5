package grpcauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// pki writes a CA and two certificates it signs (for 127.0.0.1), and a
// certificate signed by another CA; it returns their file names.
type pki struct {
	ca, cert, key, otherCert, otherKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newCA := func() (*x509.Certificate, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	leaf := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kb)
	}
	ca, caKey := newCA()
	other, otherKey := newCA()
	var p pki
	p.ca = write("ca.crt", "CERTIFICATE", ca.Raw)
	p.cert, p.key = leaf(ca, caKey, "component")
	p.otherCert, p.otherKey = leaf(other, otherKey, "intruder")
	return p
}

// serve starts a health server with cfg and returns its address.
func serve(t *testing.T, cfg *Config) string {
	t.Helper()
	if err := cfg.Load("grpc."); err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// call makes one unary and one streaming call as cfg and returns the
// unary call's code (the stream's must agree).
func call(t *testing.T, addr string, cfg *Config) codes.Code {
	t.Helper()
	if err := cfg.Load("grpc."); err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := healthpb.NewHealthClient(cc)
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	code := status.Code(err)
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = w.Recv()
	}
	if sc := status.Code(err); sc != code {
		t.Fatalf("unary call %v, stream %v", code, sc)
	}
	return code
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	file := func(name, tok string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	right, wrong := file("right", "0123456789abcdef-right"), file("wrong", "0123456789abcdef-wrong")
	addr := serve(t, &Config{TokenFile: right})
	for _, tc := range []struct {
		name string
		cfg  Config
		want codes.Code
	}{
		{"no token", Config{}, codes.Unauthenticated},
		{"wrong token", Config{TokenFile: wrong}, codes.Unauthenticated},
		{"right token", Config{TokenFile: right}, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := call(t, addr, &tc.cfg); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if err := (&Config{TokenFile: file("short", "short")}).Load("grpc."); err == nil {
		t.Fatal("a short token accepted")
	}
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, &Config{CertFile: p.cert, KeyFile: p.key, CAFile: p.ca})
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"plaintext client", Config{}, false},
		{"certificate of another CA", Config{CertFile: p.otherCert, KeyFile: p.otherKey, CAFile: p.ca}, false},
		{"component certificate", Config{CertFile: p.cert, KeyFile: p.key, CAFile: p.ca}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := call(t, addr, &tc.cfg); (got == codes.OK) != tc.ok {
				t.Fatalf("got %v, want ok=%v", got, tc.ok)
			}
		})
	}
	if err := (&Config{CertFile: p.cert}).Load("grpc."); err == nil {
		t.Fatal("a certificate without key and CA accepted")
	}
}
