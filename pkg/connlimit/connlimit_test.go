package connlimit

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
)

func openStore(t *testing.T, opts ...localmeta.Option) *localmeta.Store {
	t.Helper()
	s, err := localmeta.Open(localmeta.Config{Path: filepath.Join(t.TempDir(), "meta.db")}, nil, append(opts, localmeta.WithNoSync())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSharedLimit: two pods' keepers share one limit; a release frees a
// slot for either.
func TestSharedLimit(t *testing.T) {
	store := openStore(t)
	a, b := New(store, "pod-a", time.Minute, nil), New(store, "pod-b", time.Minute, nil)
	ctx := context.Background()
	relA, ok := a.Acquire(ctx, "conn/imap/ip/192.0.2.1", 2)
	if !ok {
		t.Fatal("first slot refused")
	}
	if _, ok := b.Acquire(ctx, "conn/imap/ip/192.0.2.1", 2); !ok {
		t.Fatal("second slot refused")
	}
	if _, ok := b.Acquire(ctx, "conn/imap/ip/192.0.2.1", 2); ok {
		t.Fatal("third slot granted over a limit of 2")
	}
	if _, ok := a.Acquire(ctx, "conn/imap/ip/192.0.2.2", 2); !ok {
		t.Fatal("another key refused")
	}
	relA()
	relA() // idempotent
	if a.Held("conn/imap/ip/192.0.2.1") != 0 {
		t.Fatal("released slot still held")
	}
	if _, ok := b.Acquire(ctx, "conn/imap/ip/192.0.2.1", 2); !ok {
		t.Fatal("slot not free after a release")
	}
}

// TestRefreshKeepsSlots: Run keeps held slots alive past their TTL, and a
// keeper that stops refreshing (a dead pod) loses them.
func TestRefreshKeepsSlots(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	store := openStore(t, localmeta.WithClock(clock))
	const ttl = 300 * time.Millisecond
	live, dead := New(store, "live", ttl, nil), New(store, "dead", ttl, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, ok := live.Acquire(ctx, "k", 2); !ok {
		t.Fatal("live refused")
	}
	if _, ok := dead.Acquire(ctx, "k", 2); !ok {
		t.Fatal("dead refused")
	}
	// The live keeper refreshes directly (Run's ticker runs on real time).
	now = now.Add(ttl / 2)
	if err := store.RefreshSlots(ctx, "live", []string{"k"}, ttl); err != nil {
		t.Fatal(err)
	}
	now = now.Add(ttl/2 + time.Millisecond)
	total, err := store.SlotTotal(ctx, "k")
	if err != nil || total != 1 {
		t.Fatalf("after the dead pod's TTL: total %d, %v; want the live pod's 1", total, err)
	}
}

// TestRunRefreshes drives Run on real time with a short TTL.
func TestRunRefreshes(t *testing.T) {
	store := openStore(t)
	const ttl = 150 * time.Millisecond
	k := New(store, "pod", ttl, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if _, ok := k.Acquire(ctx, "k", 1); !ok {
		t.Fatal("refused")
	}
	deadline := time.Now().Add(5 * ttl)
	for time.Now().Before(deadline) {
		if n, err := store.SlotTotal(ctx, "k"); err != nil || n != 1 {
			t.Fatalf("slot lapsed while refreshed: %d, %v", n, err)
		}
		time.Sleep(ttl / 5)
	}
}

type downStore struct{}

func (downStore) AcquireSlot(context.Context, string, string, int64, time.Duration) (int64, error) {
	return 0, meta.ErrUnavailable
}
func (downStore) ReleaseSlot(context.Context, string, string) error { return meta.ErrUnavailable }
func (downStore) RefreshSlots(context.Context, string, []string, time.Duration) error {
	return errors.New("down")
}

func TestStoreDownLetsIn(t *testing.T) {
	k := New(downStore{}, "pod", time.Minute, nil)
	release, ok := k.Acquire(context.Background(), "k", 1)
	if !ok {
		t.Fatal("refused while the store is down")
	}
	release()
}
