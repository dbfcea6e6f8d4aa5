// Package grpcauth secures the internal gRPC between mailstore's
// components, so that nothing else in the cluster can call the metadata,
// blob or admin APIs: a shared bearer token read from a file (a
// Kubernetes Secret), mutual TLS with a private CA, or both. Servers check
// the token on every call, before the handler; clients attach it to every
// call.
package grpcauth

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mailstore/mailstore/pkg/certreload"
)

// Config says how components authenticate to each other.
type Config struct {
	// TokenFile holds the shared token; empty for none.
	TokenFile string
	// CertFile and KeyFile are this component's certificate (server and
	// client side alike); CAFile the CA that signs every component's. All
	// three set turns on mutual TLS.
	CertFile, KeyFile, CAFile string

	token []byte
}

// RegisterFlags registers the flags under prefix (e.g. "grpc").
func (c *Config) RegisterFlags(f *flag.FlagSet, prefix string) {
	f.StringVar(&c.TokenFile, prefix+"token-file", "", "File holding the shared token every internal gRPC call must carry (empty: no token).")
	f.StringVar(&c.CertFile, prefix+"tls.cert-file", "", "PEM certificate of this component for mutual TLS on internal gRPC (with -"+prefix+"tls.key-file and -"+prefix+"tls.ca-file); reloaded when it changes.")
	f.StringVar(&c.KeyFile, prefix+"tls.key-file", "", "PEM private key of -"+prefix+"tls.cert-file.")
	f.StringVar(&c.CAFile, prefix+"tls.ca-file", "", "PEM CA certificate that signs every component's certificate.")
}

// Load checks the settings and reads the token.
func (c *Config) Load(prefix string) error {
	n := 0
	for _, s := range []string{c.CertFile, c.KeyFile, c.CAFile} {
		if s != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return fmt.Errorf("-%stls.cert-file, -%stls.key-file and -%stls.ca-file: set all three or none", prefix, prefix, prefix)
	}
	c.token = nil
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return fmt.Errorf("-%stoken-file: %w", prefix, err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return fmt.Errorf("-%stoken-file: the token must be at least 16 characters", prefix)
		}
		c.token = []byte(tok)
	}
	return nil
}

func (c *Config) mtls() bool { return c.CAFile != "" }

func (c *Config) caPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in the CA file")
	}
	return pool, nil
}

// ServerOptions returns the options of a gRPC server: mTLS credentials
// and the token check, as configured.
func (c *Config) ServerOptions() ([]grpc.ServerOption, error) {
	var opts []grpc.ServerOption
	if c.mtls() {
		r, err := certreload.New(c.CertFile, c.KeyFile, nil)
		if err != nil {
			return nil, fmt.Errorf("grpc tls: %w", err)
		}
		pool, err := c.caPool()
		if err != nil {
			return nil, fmt.Errorf("grpc tls ca: %w", err)
		}
		tc := r.ServerConfig()
		tc.ClientAuth, tc.ClientCAs = tls.RequireAndVerifyClientCert, pool
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	if c.token != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(c.unary), grpc.ChainStreamInterceptor(c.stream))
	}
	return opts, nil
}

// DialOptions returns the options of a gRPC client of another component.
func (c *Config) DialOptions() ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if c.mtls() {
		r, err := certreload.New(c.CertFile, c.KeyFile, nil)
		if err != nil {
			return nil, fmt.Errorf("grpc tls: %w", err)
		}
		pool, err := c.caPool()
		if err != nil {
			return nil, fmt.Errorf("grpc tls ca: %w", err)
		}
		creds = credentials.NewTLS(&tls.Config{
			RootCAs: pool, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return r.GetCertificate(nil)
			},
		})
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if c.token != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds{token: string(c.token), secure: c.mtls()}))
	}
	return opts, nil
}

// tokenCreds attaches the token to every call.
type tokenCreds struct {
	token  string
	secure bool
}

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}

// RequireTransportSecurity: the token may cross plaintext gRPC inside a
// cluster network (a NetworkPolicy keeps others off it); with mTLS it is
// encrypted too.
func (t tokenCreds) RequireTransportSecurity() bool { return t.secure }

var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or wrong internal token")

func (c *Config) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(tok), c.token) == 1 {
			return nil
		}
	}
	return errUnauthenticated
}

func (c *Config) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (c *Config) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := c.check(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}
