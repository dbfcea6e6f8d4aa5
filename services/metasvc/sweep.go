package metasvc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// SweepConfig tunes the blob sweeper.
type SweepConfig struct {
	// Interval between sweeps of released blobs; 0 disables sweeping.
	Interval time.Duration
	// Grace is how long a blob whose last entry went stays before it is
	// deleted, so a reader that looked the entry up just before can still
	// fetch the body.
	Grace time.Duration
	// OrphanInterval between sweeps for blobs that no entry ever
	// referenced (left by a crash between upload and commit); 0 disables.
	OrphanInterval time.Duration
	// OrphanAge is how old an unreferenced blob must be to be removed; it
	// must be far longer than any upload-to-commit gap.
	OrphanAge time.Duration
}

// sweeper deletes blobs that lost their last entry, and orphans. Every
// metadata replica runs one; the per-account maintenance lease keeps them
// (and recovery) from working on one account at once.
type sweeper struct {
	store  meta.Store
	blobs  blob.Store
	cfg    SweepConfig
	logger *slog.Logger
	holder string
	now    func() time.Time
}

func (s *sweeper) run(ctx context.Context) error {
	if s.cfg.Interval <= 0 {
		return nil
	}
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	var orphans <-chan time.Time
	if s.cfg.OrphanInterval > 0 {
		t := time.NewTicker(s.cfg.OrphanInterval)
		defer t.Stop()
		orphans = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.sweepAll(ctx, false)
		case <-orphans:
			s.sweepAll(ctx, true)
		}
	}
}

// sweepAll sweeps every account; errors are logged, never fatal.
func (s *sweeper) sweepAll(ctx context.Context, orphans bool) {
	accts, err := s.store.ListAccounts(ctx)
	if err != nil {
		s.logger.Warn("sweep: list accounts", "err", err)
		return
	}
	for _, a := range accts {
		if ctx.Err() != nil {
			return
		}
		n, err := s.SweepAccount(ctx, a.ID, orphans)
		if err != nil && !errors.Is(err, meta.ErrLeaseHeld) {
			s.logger.Warn("sweep account", "account", a.ID, "err", err)
		}
		if n > 0 {
			s.logger.Info("swept blobs", "account", a.ID, "deleted", n, "orphans", orphans)
		}
	}
}

// SweepAccount deletes the account's released blobs past the grace
// period, and with orphans also its unreferenced blobs past OrphanAge. It
// returns how many blobs it deleted.
func (s *sweeper) SweepAccount(ctx context.Context, acct mail.AccountID, orphans bool) (int, error) {
	ctx, release, err := holdLease(ctx, s.store, acct, maintenanceLease, s.holder+" sweep", workLeaseTTL, s.logger)
	if err != nil {
		return 0, err
	}
	defer release()

	deleted := 0
	for {
		ids, err := s.store.PendingBlobs(ctx, acct, s.now().Add(-s.cfg.Grace), 500)
		if err != nil {
			return deleted, err
		}
		if len(ids) == 0 {
			break
		}
		var done []mail.BlobID
		for _, id := range ids {
			// A blob queued for deletion may have been referenced again
			// by a recovery; only delete what nothing refers to.
			ref, err := s.store.BlobReferenced(ctx, acct, id)
			if err != nil {
				return deleted, err
			}
			if !ref {
				if err := s.blobs.Delete(ctx, acct, id); err != nil {
					return deleted, err
				}
				deleted++
			}
			done = append(done, id)
		}
		if err := s.store.ForgetBlobs(ctx, acct, done); err != nil {
			return deleted, err
		}
		if len(ids) < 500 {
			break
		}
	}
	if !orphans {
		return deleted, nil
	}
	cutoff := s.now().Add(-s.cfg.OrphanAge)
	var candidates []mail.BlobID
	if err := s.blobs.List(ctx, acct, func(i blob.Info) error {
		if i.Modified.Before(cutoff) {
			candidates = append(candidates, i.ID)
		}
		return nil
	}); err != nil {
		return deleted, err
	}
	for _, id := range candidates {
		ref, err := s.store.BlobReferenced(ctx, acct, id)
		if err != nil {
			return deleted, err
		}
		if ref {
			continue
		}
		if err := s.blobs.Delete(ctx, acct, id); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}
