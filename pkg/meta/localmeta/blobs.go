package localmeta

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
)

// PendingBlobs lists, oldest first, up to limit blobs (all when limit <= 0)
// that lost their last reference before olderThan. It works for deleted
// accounts too: their queue outlives them until forgotten.
func (s *Store) PendingBlobs(ctx context.Context, acct mail.AccountID, olderThan time.Time, limit int) ([]mail.BlobID, error) {
	var out []mail.BlobID
	cutoff := uint64(max(olderThan.UnixNano(), 0))
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bktGC).Bucket([]byte(acct))
		if b == nil || acct == "" {
			return nil
		}
		c := b.Bucket(bktGCQueue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k) >= cutoff || (limit > 0 && len(out) >= limit) {
				break
			}
			out = append(out, mail.BlobID(k[8:]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pending blobs of account %s: %w", acct, err)
	}
	return out, nil
}

// ForgetBlobs drops blobs from the queue; when a deleted account's queue
// empties, its bucket goes too.
func (s *Store) ForgetBlobs(ctx context.Context, acct mail.AccountID, ids []mail.BlobID) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.update(ctx, func(w *wtx) error {
		if acct == "" || w.tx.Bucket(bktGC).Bucket([]byte(acct)) == nil {
			return nil
		}
		for _, id := range ids {
			if err := w.unqueueBlob(acct, id); err != nil {
				return err
			}
		}
		q, _, err := w.gcBuckets(acct, false)
		if err != nil {
			return err
		}
		if k, _ := q.Cursor().First(); k == nil && accountBucket(w.tx, acct) == nil {
			return w.tx.Bucket(bktGC).DeleteBucket([]byte(acct))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget blobs of account %s: %w", acct, err)
	}
	return nil
}

func (s *Store) BlobReferenced(ctx context.Context, acct mail.AccountID, id mail.BlobID) (bool, error) {
	var ok bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ab := accountBucket(tx, acct)
		ok = ab != nil && id != "" && ab.Bucket(bktRefs).Get([]byte(id)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("check reference of blob %s: %w", id, err)
	}
	return ok, nil
}
