package s3blob_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

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

// TestUnavailable points a store at a closed port: every call must fail
// with ErrUnavailable, which the gateways turn into a temporary failure.
func TestUnavailable(t *testing.T) {
	s, err := s3blob.New(s3blob.Config{
		Endpoint: "127.0.0.1:1", Bucket: "blobs", PathStyle: true, Insecure: true,
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
				t.Errorf("%s against a closed port: %v, want ErrUnavailable", name, err)
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
