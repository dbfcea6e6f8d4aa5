package grpcblob_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/blobtest"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/blob/grpcblob"
	"github.com/mailstore/mailstore/pkg/mail"
)

// serve starts a BlobService over store on 127.0.0.1:0 and returns a client
// connected to it over a real TCP connection.
func serve(t testing.TB, store blob.Store) *grpcblob.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	grpcblob.NewServer(store, nil).Register(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return grpcblob.New(cc)
}

func newFS(t testing.TB) *fsblob.Store {
	t.Helper()
	s, err := fsblob.New(fsblob.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return serve(t, newFS(t)) })
}

// putWatcher reports the result of every Put the server runs, so a test
// can wait until the server has finished with a stream.
type putWatcher struct {
	blob.Store
	done chan error
}

func (w *putWatcher) Put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m blob.Meta, o blob.PutOptions) (blob.Info, error) {
	info, err := w.Store.Put(ctx, acct, id, r, m, o)
	w.done <- err
	return info, err
}

// TestCancelMidPut cancels a Put after 1 MiB went over the wire: the server
// must see a failed stream, not the end of the body, and store nothing.
func TestCancelMidPut(t *testing.T) {
	tests := []struct {
		name  string
		abort func(cancel context.CancelFunc) error
	}{
		{"context-cancelled", func(cancel context.CancelFunc) error { cancel(); return context.Canceled }},
		{"reader-fails", func(context.CancelFunc) error { return errors.New("client disk broke") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backing := newFS(t)
			w := &putWatcher{Store: backing, done: make(chan error, 1)}
			c := serve(t, w)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			id := blob.NewBlobID(time.Now())
			body := io.MultiReader(io.LimitReader(zeros{}, 1<<20), readerFunc(func([]byte) (int, error) {
				return 0, tt.abort(cancel)
			}))
			if _, err := c.Put(ctx, "acct1", id, body, blob.Meta{Account: "acct1"}, blob.PutOptions{Size: -1}); err == nil {
				t.Fatal("cancelled put succeeded")
			}
			select {
			case err := <-w.done:
				if err == nil {
					t.Fatal("server stored the blob of a cancelled put")
				}
			case <-t.Context().Done():
				t.Fatal("server never finished the put")
			}
			if _, err := backing.Stat(t.Context(), "acct1", id); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("backing store after cancelled put: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestGetCloseEarly closes a Get after one read: the stream is cancelled
// and the server lets go of the blob.
func TestGetCloseEarly(t *testing.T) {
	c := serve(t, newFS(t))
	id := blob.NewBlobID(time.Now())
	if _, err := c.Put(t.Context(), "acct1", id, io.LimitReader(zeros{}, 4<<20), blob.Meta{}, blob.PutOptions{Size: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		rc, err := c.Get(t.Context(), "acct1", id, blob.Whole)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Stat(t.Context(), "acct1", id); err != nil {
		t.Errorf("stat after early closes: %v", err)
	}
}

// TestUnavailable: a client whose server is gone gets ErrUnavailable.
func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := grpcblob.New(cc)
	ctx := t.Context()
	id := blob.NewBlobID(time.Now())
	calls := map[string]func() error{
		"put": func() error {
			_, err := c.Put(ctx, "acct1", id, strings.NewReader("x"), blob.Meta{}, blob.PutOptions{Size: -1})
			return err
		},
		"get": func() error {
			_, err := c.Get(ctx, "acct1", id, blob.Whole)
			return err
		},
		"stat": func() error {
			_, err := c.Stat(ctx, "acct1", id)
			return err
		},
		"delete": func() error { return c.Delete(ctx, "acct1", id) },
		"list":   func() error { return c.List(ctx, "acct1", func(blob.Info) error { return nil }) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, blob.ErrUnavailable) {
				t.Errorf("%s: %v, want ErrUnavailable", name, err)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func BenchmarkStore(b *testing.B) {
	blobtest.Bench(b, serve(b, newFS(b)))
}
