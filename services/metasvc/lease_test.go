package metasvc

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
)

// lossyLeases wraps a store: renewals report the lease lost after lose is
// set, and the first releases fail as if Redis were down.
type lossyLeases struct {
	meta.Leases
	lose         atomic.Bool
	failReleases atomic.Int32
	releases     atomic.Int32
}

func (l *lossyLeases) RenewLease(ctx context.Context, acct mail.AccountID, name string, token uint64, ttl time.Duration) (meta.Lease, error) {
	if l.lose.Load() {
		return meta.Lease{}, meta.ErrLeaseLost
	}
	return l.Leases.RenewLease(ctx, acct, name, token, ttl)
}

func (l *lossyLeases) ReleaseLease(ctx context.Context, acct mail.AccountID, name string, token uint64) error {
	l.releases.Add(1)
	if l.failReleases.Add(-1) >= 0 {
		return meta.ErrUnavailable
	}
	return l.Leases.ReleaseLease(ctx, acct, name, token)
}

func TestHoldLease(t *testing.T) {
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(t.TempDir(), "m.db")}, nil, localmeta.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, err := store.CreateAccount(context.Background(), meta.NewAccount{Login: "lease@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	const ttl = 60 * time.Millisecond

	t.Run("renewed while held, released with retries", func(t *testing.T) {
		l := &lossyLeases{Leases: store}
		l.failReleases.Store(2)
		ctx, release, err := holdLease(context.Background(), l, a.ID, "work", "test", ttl, logger)
		if err != nil {
			t.Fatal(err)
		}
		// Held well past its TTL thanks to the renewals.
		deadline := time.Now().Add(5 * ttl)
		for time.Now().Before(deadline) {
			if _, err := store.AcquireLease(context.Background(), a.ID, "work", "other", ttl); !errors.Is(err, meta.ErrLeaseHeld) {
				t.Fatalf("lease taken while held: %v", err)
			}
			time.Sleep(ttl / 4)
		}
		if ctx.Err() != nil {
			t.Fatal("work context ended while the lease was held")
		}
		release()
		if n := l.releases.Load(); n != 3 {
			t.Fatalf("%d release attempts, want 3 (two failures, then success)", n)
		}
		if _, err := store.AcquireLease(context.Background(), a.ID, "work", "other", ttl); err != nil {
			t.Fatalf("lease not free after release: %v", err)
		}
	})

	t.Run("lost lease ends the work", func(t *testing.T) {
		l := &lossyLeases{Leases: store}
		// The lease taken by "other" above lapses first.
		deadline := time.Now().Add(10 * time.Second)
		var ctx context.Context
		var release func()
		for {
			ctx, release, err = holdLease(context.Background(), l, a.ID, "work", "test", ttl, logger)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(ttl / 4)
		}
		defer release()
		l.lose.Store(true)
		select {
		case <-ctx.Done():
			if !errors.Is(context.Cause(ctx), meta.ErrLeaseLost) {
				t.Fatalf("cause %v, want ErrLeaseLost", context.Cause(ctx))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("work context still live after the lease was lost")
		}
	})
}
