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

// reapLease is the per-account lease of the POP3 reaper. It is its own
// lease rather than the maintenance lease: the blob sweeper can hold that
// one for a long time (an orphan sweep lists a whole S3 prefix) and
// recovery for longer, and reaping must not starve behind them, nor they
// behind it. Nothing is lost by reaping beside them: an expunge only
// queues blobs the sweeper then handles, and entries that recovery
// recreates are new (never retrieved) and so never reaped. The lease only
// keeps replicas from doing the same work twice; Expunge reports only the
// UIDs it removed, so even without it no message would be counted twice.
const reapLease = "pop3-reaper"

// reapLeaseTTL bounds how long a crashed replica's lease blocks an
// account; the reaper renews it between pages.
const reapLeaseTTL = 5 * time.Minute

// reapWindow is the number of messages one ListEntries of the reaper aims
// at (see reapMailbox).
const reapWindow = 1000

// reaper expunges INBOX messages that a POP3 client retrieved more than
// KeepDays ago, for accounts whose effective policy is POP3KeepDays (RFC
// 2449 EXPIRE). Every metadata replica runs one; the per-account
// reapLease keeps them from working on one account at once. It expunges
// through the store, so IMAP sessions see the expunge as any other.
type reaper struct {
	store    meta.Store
	def      meta.POP3Policy
	interval time.Duration
	logger   *slog.Logger
	holder   string
	now      func() time.Time
}

func (r *reaper) run(ctx context.Context) error {
	if r.interval <= 0 {
		return nil
	}
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			r.reapAll(ctx)
		}
	}
}

// policy is the account's effective POP3 policy: its own, or the
// server-wide default when it has none.
func (r *reaper) policy(a meta.Account) meta.POP3Policy {
	if a.POP3.Mode != meta.POP3Default {
		return a.POP3
	}
	return r.def
}

// reapAll reaps every account whose policy keeps messages for some days
// and returns how many messages it expunged. Errors are logged, never
// fatal; an account whose lease another replica holds is skipped.
func (r *reaper) reapAll(ctx context.Context) int {
	accts, err := r.store.ListAccounts(ctx)
	if err != nil {
		r.logger.Warn("pop3 reap: list accounts", "err", err)
		return 0
	}
	total := 0
	for _, a := range accts {
		if ctx.Err() != nil {
			break
		}
		p := r.policy(a)
		if p.Mode != meta.POP3KeepDays {
			continue
		}
		n, err := r.reapAccount(ctx, a.ID, p.KeepDays)
		total += n
		switch {
		case errors.Is(err, meta.ErrLeaseHeld):
			r.logger.Debug("pop3 reap: account busy", "account", a.ID)
		case errors.Is(err, meta.ErrNoSuchAccount):
			// Deleted since the listing.
		case err != nil:
			r.logger.Warn("pop3 reap account", "account", a.ID, "err", err)
		}
		if n > 0 {
			r.logger.Info("pop3 reaped messages", "account", a.ID, "expunged", n, "keep_days", p.KeepDays)
		}
	}
	return total
}

// ReapAccount reaps one account now under its effective policy (for
// tests and admin tools): it returns how many messages it expunged, 0
// when the policy is not POP3KeepDays.
func (r *reaper) ReapAccount(ctx context.Context, acct mail.AccountID) (int, error) {
	a, err := r.store.Account(ctx, acct)
	if err != nil {
		return 0, fmt.Errorf("pop3 reap: %w", err)
	}
	p := r.policy(a)
	if p.Mode != meta.POP3KeepDays {
		return 0, nil
	}
	return r.reapAccount(ctx, acct, p.KeepDays)
}

// reapAccount expunges the account's INBOX messages retrieved at least
// keepDays ago, under the account's reapLease.
func (r *reaper) reapAccount(ctx context.Context, acct mail.AccountID, keepDays int) (int, error) {
	if keepDays < 1 {
		return 0, fmt.Errorf("pop3 reap account %s: %w: keep days %d", acct, meta.ErrInvalidArgument, keepDays)
	}
	// The store takes any positive count (the admin API is not bound by
	// ParsePOP3Keep); past 100 years, keeping is keeping, and the
	// duration below must not overflow.
	keepDays = min(keepDays, meta.MaxPOP3KeepDays)
	lease, err := r.store.AcquireLease(ctx, acct, reapLease, r.holder+" pop3 reap", reapLeaseTTL)
	if err != nil {
		return 0, fmt.Errorf("pop3 reap account %s: %w", acct, err)
	}
	defer func() { _ = r.store.ReleaseLease(context.WithoutCancel(ctx), acct, reapLease, lease.Token) }()

	mb, err := r.store.Mailbox(ctx, acct, mail.Inbox)
	if err != nil {
		return 0, fmt.Errorf("pop3 reap account %s: %w", acct, err)
	}
	cutoff := r.now().Add(-time.Duration(keepDays) * 24 * time.Hour)
	renew := func() error {
		_, err := r.store.RenewLease(ctx, acct, reapLease, lease.Token, reapLeaseTTL)
		return err
	}
	n, err := r.reapMailbox(ctx, acct, mb, cutoff, renew)
	if err != nil {
		return n, fmt.Errorf("pop3 reap account %s: %w", acct, err)
	}
	return n, nil
}

// reapMailbox expunges the entries of mb retrieved at or before cutoff,
// reading the mailbox in UID windows so that no read holds a whole big
// mailbox. A window spans about reapWindow messages if UIDs are spread
// evenly (at least reapWindow UIDs), so a mailbox whose UIDs went far
// ahead of its message count (years of delivery and expunge) takes about
// Messages/reapWindow reads, not UIDNEXT/reapWindow. Entries never
// retrieved are never expunged. renew is called between windows and ends
// the work when the lease is lost.
func (r *reaper) reapMailbox(ctx context.Context, acct mail.AccountID, mb meta.Mailbox, cutoff time.Time, renew func() error) (int, error) {
	if mb.Messages == 0 || mb.UIDNext <= 1 {
		return 0, nil
	}
	last := uint64(mb.UIDNext) - 1
	windows := (uint64(mb.Messages) + reapWindow - 1) / reapWindow
	width := max(uint64(reapWindow), (last+windows-1)/windows)
	expunged := 0
	for lo := uint64(1); lo <= last; lo += width {
		if lo > 1 {
			if err := renew(); err != nil {
				return expunged, err
			}
		}
		hi := min(lo+width-1, last)
		es, err := r.store.ListEntries(ctx, acct, mb.ID, mail.UIDSet{{Start: mail.UID(lo), Stop: mail.UID(hi)}}, meta.FieldInfo, 0)
		if err != nil {
			return expunged, err
		}
		var due mail.UIDSet
		for _, e := range es {
			if !e.Retrieved.IsZero() && !e.Retrieved.After(cutoff) {
				due = due.Add(e.UID)
			}
		}
		if due.Empty() {
			continue
		}
		gone, _, err := r.store.Expunge(ctx, acct, mb.ID, due)
		expunged += len(gone)
		if err != nil {
			return expunged, err
		}
	}
	return expunged, nil
}
