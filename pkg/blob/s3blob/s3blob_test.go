package s3blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/blobtest"
	"github.com/mailstore/mailstore/pkg/blob/s3blob"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var kinds = []string{testenv.VersityGW, testenv.MinIO}

// newStore returns a store on a fresh bucket of srv, created by EnsureBucket.
func newStore(t testing.TB, srv testenv.S3Server, prefix string) *s3blob.Store {
	t.Helper()
	cfg := s3blob.Config{
		Endpoint:  srv.Endpoint,
		Bucket:    srv.NewBucket(t),
		Region:    srv.Region,
		PathStyle: true,
		Insecure:  true,
		Prefix:    prefix,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PartSize:  5 << 20, // the minimum, so that the suite's bodies cross parts
	}
	s, err := s3blob.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			srv := testenv.S3(t, kind)
			blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, srv, "") })
		})
	}
}

// TestPrefix runs the suite under a key prefix, where List must not see
// keys outside it.
func TestPrefix(t *testing.T) {
	srv := testenv.S3(t, testenv.MinIO)
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, srv, "mail/v1/") })
}

func TestEnsureBucketCreates(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			srv := testenv.S3(t, kind)
			s, err := s3blob.New(s3blob.Config{
				Endpoint: srv.Endpoint, Bucket: "fresh-" + strings.ToLower(testenv.Prefix(t)), Region: srv.Region,
				PathStyle: true, Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // idempotent
				if err := s.EnsureBucket(t.Context()); err != nil {
					t.Fatalf("ensure bucket: %v", err)
				}
			}
			if _, err := s.Put(t.Context(), "acct1", "abc", strings.NewReader("x"), blob.Meta{}, blob.PutOptions{Size: 1}); err != nil {
				t.Fatalf("put into the new bucket: %v", err)
			}
		})
	}
}

// brokenServer accepts connections and, after reading the start of the
// request, closes them: with a reset (RST) when reset is set, else
// cleanly (the client reads EOF).
func brokenServer(t *testing.T, reset bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 64))
			if reset {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestUnavailable points a store at a closed port, at a server that
// resets connections and at one that closes them without an answer (an
// S3 server killed or cut off mid-request): every call must fail with
// ErrUnavailable, which the gateways turn into a temporary failure.
func TestUnavailable(t *testing.T) {
	for name, endpoint := range map[string]string{
		"ClosedPort": "127.0.0.1:1",
		"Reset":      brokenServer(t, true),
		"EOF":        brokenServer(t, false),
	} {
		t.Run(name, func(t *testing.T) { testUnavailable(t, endpoint) })
	}
}

func testUnavailable(t *testing.T, endpoint string) {
	s, err := s3blob.New(s3blob.Config{
		Endpoint: endpoint, Bucket: "blobs", PathStyle: true, Insecure: true,
		AccessKey: "k", SecretKey: "secretsecret", MaxRetries: 1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	id := blob.NewBlobID(time.Now())
	calls := map[string]func() error{
		"put": func() error {
			_, err := s.Put(ctx, "acct1", id, strings.NewReader("x"), blob.Meta{}, blob.PutOptions{Size: -1})
			return err
		},
		"get": func() error {
			_, err := s.Get(ctx, "acct1", id, blob.Whole)
			return err
		},
		"stat": func() error {
			_, err := s.Stat(ctx, "acct1", id)
			return err
		},
		"delete": func() error { return s.Delete(ctx, "acct1", id) },
		"list": func() error {
			return s.List(ctx, "acct1", func(blob.Info) error { return nil })
		},
		"ensure-bucket": func() error { return s.EnsureBucket(ctx) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, blob.ErrUnavailable) {
				t.Errorf("%s against %s: %v, want ErrUnavailable", name, endpoint, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  s3blob.Config
		ok   bool
	}{
		{"minimal", s3blob.Config{Endpoint: "s3:9000", Bucket: "blobs"}, true},
		{"no-endpoint", s3blob.Config{Bucket: "b"}, false},
		{"no-bucket", s3blob.Config{Endpoint: "s3:9000"}, false},
		{"bad-bucket", s3blob.Config{Endpoint: "s3:9000", Bucket: "B_"}, false},
		{"small-parts", s3blob.Config{Endpoint: "s3:9000", Bucket: "blobs", PartSize: 1 << 20}, false},
		{"one-key-file", s3blob.Config{Endpoint: "s3:9000", Bucket: "blobs", AccessKeyFile: "/a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func BenchmarkStore(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			blobtest.Bench(b, newStore(b, testenv.S3(b, kind), ""))
		})
	}
}

// TestFailedPutAbortsUpload checks what List cannot see: a multipart Put
// whose body breaks leaves no incomplete upload (and so no storage) behind.
func TestFailedPutAbortsUpload(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			srv := testenv.S3(t, kind)
			s := newStore(t, srv, "")
			bucket := s.Bucket()
			boom := errors.New("boom")
			body := io.MultiReader(io.LimitReader(zeros{}, 12<<20), errReader{boom})
			_, err := s.Put(t.Context(), "acct1", blob.NewBlobID(time.Now()), body, blob.Meta{}, blob.PutOptions{Size: -1})
			if !errors.Is(err, boom) {
				t.Fatalf("put: %v, want the reader's error", err)
			}
			c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: srv.Region, BucketLookup: minio.BucketLookupPath})
			if err != nil {
				t.Fatal(err)
			}
			for up := range c.ListIncompleteUploads(t.Context(), bucket, "", true) {
				if up.Err != nil {
					t.Fatalf("list incomplete uploads: %v", up.Err)
				}
				t.Errorf("incomplete upload left: %s %s", up.Key, up.UploadID)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestPutAnswerLost: when the answer to a write is lost (the connection
// reset after the server stored the object), minio-go retries, and the
// conditional retry is refused because the object exists: Put must still
// succeed, since the object is its own, for a single PUT and for a
// multipart upload. The S3 server sits behind a toxiproxy proxy that
// resets every answer for a second.
func TestPutAnswerLost(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			srv := testenv.S3(t, kind)
			tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
			p := toxiproxy.NewProxy(tp, "s3", "127.0.0.1:0", srv.Endpoint)
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Stop)
			proxied := srv
			proxied.Endpoint = p.Listen
			s := newStore(t, proxied, "")
			for _, size := range []int{96, 8 << 20} { // one PUT; two parts of 5 MiB at most
				t.Run(strconv.Itoa(size), func(t *testing.T) {
					body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
					const reset = `{"name":"reset","stream":"downstream","toxicity":1,"type":"reset_peer","attributes":{"timeout":0}}`
					if _, err := p.Toxics.AddToxicJson(strings.NewReader(reset)); err != nil {
						t.Fatal(err)
					}
					healed := make(chan struct{})
					go func() {
						defer close(healed)
						time.Sleep(time.Second)
						_ = p.Toxics.RemoveToxic(context.Background(), "reset")
					}()
					id := blob.NewBlobID(time.Now())
					info, err := s.Put(t.Context(), "acct1", id, bytes.NewReader(body), blob.Meta{}, blob.PutOptions{Size: int64(size)})
					<-healed
					if err != nil {
						t.Fatalf("Put with its answers reset for a second: %v", err)
					}
					if info.Size != int64(size) {
						t.Errorf("Put says %d bytes, sent %d", info.Size, size)
					}
					rc, err := s.Get(t.Context(), "acct1", id, blob.Whole)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, body) {
						t.Errorf("stored %d bytes (%v), want the %d sent", len(got), err, len(body))
					}
				})
			}
		})
	}
}
