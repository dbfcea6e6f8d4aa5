package localmeta

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// Leases and counters live in memory: one metadata process serves them,
// and both are meant to vanish with it (a lease expires anyway, a rate
// limit window restarts). Only the fencing token counter is persisted, in
// blocks of tokenBlock, so tokens stay monotonic across restarts without
// a write per lease.

const (
	tokenBlock = 1024
	// sweepEvery bounds memory: every so many operations, expired leases
	// or counters are dropped.
	sweepEvery = 4096
)

type leaseKey struct {
	acct mail.AccountID
	name string
}

type leaseState struct {
	holder  string
	token   uint64
	expires time.Time
}

type counterState struct {
	value   int64
	expires time.Time
}

func (s *Store) live(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// takeToken returns the next fencing token, reserving a new block in the
// file when the current one is used up. Called with lmu held.
func (s *Store) takeToken() (uint64, error) {
	if s.nextToken > s.tokenLimit {
		limit := s.nextToken - 1 + tokenBlock
		err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bktMeta).Put(keyLeaseToken, u64Key(limit))
		})
		if err != nil {
			return 0, classify(err)
		}
		s.tokenLimit = limit
	}
	t := s.nextToken
	s.nextToken++
	return t, nil
}

func (s *Store) sweepLeases(now time.Time) {
	s.leaseOps++
	if s.leaseOps%sweepEvery != 0 {
		return
	}
	for k, l := range s.leases {
		if !now.Before(l.expires) {
			delete(s.leases, k)
		}
	}
}

func (s *Store) AcquireLease(ctx context.Context, acct mail.AccountID, name, holder string, ttl time.Duration) (meta.Lease, error) {
	if err := s.live(ctx); err != nil {
		return meta.Lease{}, fmt.Errorf("acquire lease %s of account %s: %w", name, acct, err)
	}
	if ttl <= 0 || name == "" {
		return meta.Lease{}, fmt.Errorf("acquire lease %q of account %s: %w: needs a name and a positive ttl", name, acct, meta.ErrInvalidArgument)
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	now := s.now()
	s.sweepLeases(now)
	k := leaseKey{acct, name}
	if l, ok := s.leases[k]; ok && now.Before(l.expires) {
		return meta.Lease{}, fmt.Errorf("acquire lease %s of account %s: %w by %s", name, acct, meta.ErrLeaseHeld, l.holder)
	}
	tok, err := s.takeToken()
	if err != nil {
		return meta.Lease{}, fmt.Errorf("acquire lease %s of account %s: %w", name, acct, err)
	}
	l := leaseState{holder: holder, token: tok, expires: now.Add(ttl)}
	s.leases[k] = l
	return meta.Lease{Token: tok, Expires: l.expires}, nil
}

func (s *Store) RenewLease(ctx context.Context, acct mail.AccountID, name string, token uint64, ttl time.Duration) (meta.Lease, error) {
	if err := s.live(ctx); err != nil {
		return meta.Lease{}, fmt.Errorf("renew lease %s of account %s: %w", name, acct, err)
	}
	if ttl <= 0 {
		return meta.Lease{}, fmt.Errorf("renew lease %s of account %s: %w: ttl %v", name, acct, meta.ErrInvalidArgument, ttl)
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	now := s.now()
	k := leaseKey{acct, name}
	l, ok := s.leases[k]
	if !ok || l.token != token || !now.Before(l.expires) {
		return meta.Lease{}, fmt.Errorf("renew lease %s of account %s: %w", name, acct, meta.ErrLeaseLost)
	}
	l.expires = now.Add(ttl)
	s.leases[k] = l
	return meta.Lease{Token: token, Expires: l.expires}, nil
}

func (s *Store) ReleaseLease(ctx context.Context, acct mail.AccountID, name string, token uint64) error {
	if err := s.live(ctx); err != nil {
		return fmt.Errorf("release lease %s of account %s: %w", name, acct, err)
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	k := leaseKey{acct, name}
	if l, ok := s.leases[k]; ok && l.token == token {
		delete(s.leases, k)
	}
	return nil
}

func (s *Store) IncrCounter(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	if err := s.live(ctx); err != nil {
		return 0, fmt.Errorf("increment counter %s: %w", key, err)
	}
	if window <= 0 {
		return 0, fmt.Errorf("increment counter %s: %w: window %v", key, meta.ErrInvalidArgument, window)
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	now := s.now()
	s.ctrOps++
	if s.ctrOps%sweepEvery == 0 {
		for k, c := range s.counters {
			if !now.Before(c.expires) {
				delete(s.counters, k)
			}
		}
	}
	c, ok := s.counters[key]
	if !ok || !now.Before(c.expires) {
		c = counterState{expires: now.Add(window)}
	}
	c.value += delta
	s.counters[key] = c
	return c.value, nil
}

func (s *Store) Counter(ctx context.Context, key string) (int64, error) {
	if err := s.live(ctx); err != nil {
		return 0, fmt.Errorf("read counter %s: %w", key, err)
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c, ok := s.counters[key]
	if !ok || !s.now().Before(c.expires) {
		return 0, nil
	}
	return c.value, nil
}
