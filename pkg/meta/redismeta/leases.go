package redismeta

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// ttlMillis rounds a TTL up to whole milliseconds.
func ttlMillis(ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("%w: ttl %v", meta.ErrInvalidArgument, ttl)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

// AcquireLease takes the lease in one script: the lease key expires (PX,
// Redis server time) unless renewed; the fencing token comes from a
// per-account counter that outlives the lease, so it only grows.
func (s *Store) AcquireLease(ctx context.Context, acct mail.AccountID, name, holder string, ttl time.Duration) (meta.Lease, error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return meta.Lease{}, fmt.Errorf("acquire lease %q: %w", name, err)
	}
	if !validAccountID(acct) {
		return meta.Lease{}, fmt.Errorf("acquire lease %q: %w", name, meta.ErrNoSuchAccount)
	}
	res, err := scriptAcquireLease.Run(ctx, s.sc, []string{s.k.base(acct)}, leaseHash(name), holder, ms).Int64Slice()
	if err != nil {
		return meta.Lease{}, wrap(err, "acquire lease %q of account %s", name, acct)
	}
	return meta.Lease{Token: uint64(res[0]), Expires: time.UnixMilli(res[1])}, nil
}

// RenewLease extends the lease if it is still held under token.
func (s *Store) RenewLease(ctx context.Context, acct mail.AccountID, name string, token uint64, ttl time.Duration) (meta.Lease, error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return meta.Lease{}, fmt.Errorf("renew lease %q: %w", name, err)
	}
	if !validAccountID(acct) {
		return meta.Lease{}, fmt.Errorf("renew lease %q: %w", name, meta.ErrLeaseLost)
	}
	exp, err := scriptRenewLease.Run(ctx, s.sc, []string{s.k.base(acct)}, leaseHash(name), strconv.FormatUint(token, 10), ms).Int64()
	if err != nil {
		return meta.Lease{}, wrap(err, "renew lease %q of account %s", name, acct)
	}
	return meta.Lease{Token: token, Expires: time.UnixMilli(exp)}, nil
}

// ReleaseLease deletes the lease if it is still held under token.
func (s *Store) ReleaseLease(ctx context.Context, acct mail.AccountID, name string, token uint64) error {
	if !validAccountID(acct) {
		return nil
	}
	if err := scriptReleaseLease.Run(ctx, s.sc, []string{s.k.base(acct)}, leaseHash(name), strconv.FormatUint(token, 10)).Err(); err != nil {
		return wrap(err, "release lease %q of account %s", name, acct)
	}
	return nil
}

// IncrCounter adds delta in one MULTI: INCRBY, then PEXPIRE NX, so the
// window starts at the first increment and later ones do not extend it.
func (s *Store) IncrCounter(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	ms, err := ttlMillis(window)
	if err != nil {
		return 0, fmt.Errorf("increment counter %q: %w", key, err)
	}
	k := s.k.counter(key)
	var incr *redis.IntCmd
	if _, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.IncrBy(ctx, k, delta)
		p.Do(ctx, "PEXPIRE", k, ms, "NX")
		return nil
	}); err != nil {
		return 0, wrap(err, "increment counter %q", key)
	}
	return incr.Val(), nil
}

// Counter returns the counter's value, 0 if unset or expired.
func (s *Store) Counter(ctx context.Context, key string) (int64, error) {
	n, err := s.c.Get(ctx, s.k.counter(key)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap(err, "read counter %q", key)
	}
	return n, nil
}

// PendingBlobs lists blobs that lost their last reference before
// olderThan (by Redis server time, as the scripts record it).
func (s *Store) PendingBlobs(ctx context.Context, acct mail.AccountID, olderThan time.Time, limit int) ([]mail.BlobID, error) {
	if !validAccountID(acct) {
		return nil, nil
	}
	count := int64(limit)
	if limit <= 0 {
		count = -1
	}
	ids, err := s.c.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.k.blobGC(acct), ByScore: true,
		Start: "-inf", Stop: "(" + strconv.FormatInt(olderThan.UnixMilli(), 10), Count: count}).Result()
	if err != nil {
		return nil, wrap(err, "pending blobs of account %s", acct)
	}
	out := make([]mail.BlobID, len(ids))
	for i, id := range ids {
		out[i] = mail.BlobID(id)
	}
	return out, nil
}

// ForgetBlobs drops blobs from the pending list.
func (s *Store) ForgetBlobs(ctx context.Context, acct mail.AccountID, ids []mail.BlobID) error {
	if !validAccountID(acct) || len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = string(id)
	}
	if err := s.c.ZRem(ctx, s.k.blobGC(acct), members...).Err(); err != nil {
		return wrap(err, "forget blobs of account %s", acct)
	}
	return nil
}

// BlobReferenced reports whether an entry of the account refers to id.
func (s *Store) BlobReferenced(ctx context.Context, acct mail.AccountID, id mail.BlobID) (bool, error) {
	if !validAccountID(acct) {
		return false, nil
	}
	ok, err := s.c.HExists(ctx, s.k.blobRefs(acct), string(id)).Result()
	if err != nil {
		return false, wrap(err, "blob referenced %s", id)
	}
	return ok, nil
}
