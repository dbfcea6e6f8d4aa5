package metasvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// workLeaseTTL is how long a maintenance lease outlives a replica that
// died holding it (or whose release failed because Redis was down): short,
// so one crash does not block an account's sweeps and recovery for long;
// the holder renews it every third of it while it works.
const workLeaseTTL = time.Minute

// holdLease takes the account's lease name for holder and keeps renewing
// it until release is called. The returned context ends when the lease is
// lost (taken over after it lapsed), so the work stops acting on the
// account. release stops the renewal and gives the lease back, retrying
// briefly; a release that still fails is logged, and the lease lapses
// after ttl.
func holdLease(ctx context.Context, store meta.Leases, acct mail.AccountID, name, holder string, ttl time.Duration, logger *slog.Logger) (context.Context, func(), error) {
	lease, err := store.AcquireLease(ctx, acct, name, holder, ttl)
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(wctx, ttl/3)
			_, err := store.RenewLease(rctx, acct, name, lease.Token, ttl)
			rcancel()
			switch {
			case err == nil:
			case errors.Is(err, meta.ErrLeaseLost):
				cancel(fmt.Errorf("%s lease of account %s: %w", name, acct, err))
				return
			default:
				// Renewal retries at the next tick; the lease lasts
				// three of them.
				logger.Warn("renew lease", "lease", name, "account", acct, "err", err)
			}
		}
	}()
	release := func() {
		cancel(nil)
		<-done
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer rcancel()
		for delay := 100 * time.Millisecond; ; delay *= 2 {
			err := store.ReleaseLease(rctx, acct, name, lease.Token)
			if err == nil {
				return
			}
			select {
			case <-rctx.Done():
				logger.Warn("release lease; it lapses by itself", "lease", name, "account", acct, "ttl", ttl, "err", err)
				return
			case <-time.After(delay):
			}
		}
	}
	return wctx, release, nil
}
