package localmeta

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// MarkRetrieved records the first POP3 retrieval in the r/ bucket of the
// mailbox (see the schema): only for existing entries without a mark, with
// no MODSEQ and no event.
func (s *Store) MarkRetrieved(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, at time.Time) error {
	ms := at.UnixMilli()
	if ms <= 0 {
		return fmt.Errorf("mark retrieved in mailbox %d: %w: time %v not after the epoch", mbox, meta.ErrInvalidArgument, at)
	}
	val := u64Key(uint64(ms))
	err := s.update(ctx, func(w *wtx) error {
		_, m, err := w.mailboxOf(acct, mbox)
		if err != nil {
			return err
		}
		var todo []mail.UID
		rb := m.b.Bucket(bktRetrieved)
		err = forEachInSet(m.e, uids, func(u mail.UID, _ []byte) error {
			if rb == nil || rb.Get(uidKey(u)) == nil {
				todo = append(todo, u)
			}
			return nil
		})
		if err != nil || len(todo) == 0 {
			return err
		}
		if rb == nil {
			if rb, err = m.b.CreateBucket(bktRetrieved); err != nil {
				return err
			}
		}
		for _, u := range todo {
			if err := rb.Put(uidKey(u), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark retrieved in mailbox %d: %w", mbox, err)
	}
	return nil
}

// retrievedReader looks up retrieval marks for entries read in ascending
// UID order, with one cursor over r/: a step forward when the next mark is
// the next entry, a seek otherwise. The zero reader (no r/ bucket, or
// FieldInfo not asked) reports zero for every UID.
type retrievedReader struct {
	c   *bolt.Cursor
	k   []byte
	v   []byte
	any bool // the cursor has been positioned
}

func newRetrievedReader(mb *bolt.Bucket) retrievedReader {
	rb := mb.Bucket(bktRetrieved)
	if rb == nil {
		return retrievedReader{}
	}
	return retrievedReader{c: rb.Cursor()}
}

// at returns the mark of u; successive calls must not go down in UID.
func (r *retrievedReader) at(u mail.UID) time.Time {
	if r.c == nil {
		return time.Time{}
	}
	key := uidKey(u)
	switch {
	case !r.any:
		r.k, r.v = r.c.Seek(key)
		r.any = true
	case r.k != nil && binary.BigEndian.Uint32(r.k) < uint32(u):
		r.k, r.v = r.c.Next()
		if r.k != nil && binary.BigEndian.Uint32(r.k) < uint32(u) {
			r.k, r.v = r.c.Seek(key)
		}
	}
	if r.k == nil || binary.BigEndian.Uint32(r.k) != uint32(u) || len(r.v) != 8 {
		return time.Time{}
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(r.v))).UTC()
}
