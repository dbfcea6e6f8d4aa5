package localmeta

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// wtx is one write transaction: it caches the account and mailbox records
// it touches, writes the dirty ones back in flush, and collects the events
// to publish after commit.
type wtx struct {
	s      *Store
	tx     *bolt.Tx
	now    time.Time
	events []meta.Event
	accts  map[mail.AccountID]*acctState
}

type acctState struct {
	id     mail.AccountID
	b      *bolt.Bucket
	q      quotaRec
	qDirty bool
	mboxes map[mail.MailboxID]*mboxState
}

type mboxState struct {
	id    mail.MailboxID
	b     *bolt.Bucket
	e     *bolt.Bucket // entries
	m     *bolt.Bucket // MODSEQ index
	v     *bolt.Bucket // vanished log
	rec   mboxRec
	dirty bool
	gone  bool // deleted in this transaction
}

func (w *wtx) emit(ev meta.Event) { w.events = append(w.events, ev) }

// account loads the account, or ErrNoSuchAccount.
func (w *wtx) account(id mail.AccountID) (*acctState, error) {
	if a, ok := w.accts[id]; ok {
		return a, nil
	}
	b := accountBucket(w.tx, id)
	if b == nil {
		return nil, fmt.Errorf("account %s: %w", id, meta.ErrNoSuchAccount)
	}
	q, err := decodeQuota(b.Get(keyQuota))
	if err != nil {
		return nil, err
	}
	a := &acctState{id: id, b: b, q: q, mboxes: make(map[mail.MailboxID]*mboxState, 2)}
	w.accts[id] = a
	return a, nil
}

// mailbox loads a mailbox of a by id, or ErrNoSuchMailbox.
func (a *acctState) mailbox(id mail.MailboxID) (*mboxState, error) {
	if m, ok := a.mboxes[id]; ok && !m.gone {
		return m, nil
	}
	b := a.b.Bucket(bktMboxes).Bucket(mboxKey(id))
	if b == nil {
		return nil, fmt.Errorf("mailbox %d: %w", id, meta.ErrNoSuchMailbox)
	}
	rec, err := decodeMailbox(b.Get(keyRec))
	if err != nil {
		return nil, err
	}
	m := &mboxState{id: id, b: b, e: b.Bucket(bktEntries), m: b.Bucket(bktModSeqs), v: b.Bucket(bktVanished), rec: rec}
	a.mboxes[id] = m
	return m, nil
}

// mailboxByName loads a mailbox of a by canonical name.
func (a *acctState) mailboxByName(name string) (*mboxState, error) {
	v := a.b.Bucket(bktNames).Get([]byte(name))
	if v == nil {
		return nil, fmt.Errorf("mailbox %q: %w", name, meta.ErrNoSuchMailbox)
	}
	return a.mailbox(mail.MailboxID(decodeU64(v)))
}

// nextModSeq allocates a MODSEQ in m; every change gets its own.
func (m *mboxState) nextModSeq() mail.ModSeq {
	m.rec.HighestModSeq++
	m.dirty = true
	return m.rec.HighestModSeq
}

func (w *wtx) flush() error {
	for _, a := range w.accts {
		if a.qDirty {
			if err := a.b.Put(keyQuota, encodeQuota(a.q)); err != nil {
				return err
			}
		}
		for _, m := range a.mboxes {
			if m.dirty && !m.gone {
				if err := m.b.Put(keyRec, encodeMailbox(&m.rec)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkQuota fails with ErrOverQuota if adding bytes and msgs would pass a
// limit.
func (a *acctState) checkQuota(bytes, msgs int64) error {
	if a.q.LimitBytes > 0 && bytes > 0 && a.q.UsedBytes+bytes > a.q.LimitBytes {
		return fmt.Errorf("%w: %d of %d bytes used, %d more asked", meta.ErrOverQuota, a.q.UsedBytes, a.q.LimitBytes, bytes)
	}
	if a.q.LimitMessages > 0 && msgs > 0 && a.q.UsedMessages+msgs > a.q.LimitMessages {
		return fmt.Errorf("%w: %d of %d messages used, %d more asked", meta.ErrOverQuota, a.q.UsedMessages, a.q.LimitMessages, msgs)
	}
	return nil
}

func (a *acctState) use(bytes, msgs int64) {
	a.q.UsedBytes += bytes
	a.q.UsedMessages += msgs
	a.qDirty = true
}

// ---- blob references ----

func (w *wtx) incRef(a *acctState, blob []byte) error {
	refs := a.b.Bucket(bktRefs)
	n := uint64(0)
	if v := refs.Get(blob); v != nil {
		d := decoder{b: v}
		n = d.uvarint()
	} else if err := w.unqueueBlob(a.id, mail.BlobID(blob)); err != nil {
		// Referenced again (e.g. by recovery) before the sweeper ran.
		return err
	}
	e := encoder{b: make([]byte, 0, 4)}
	e.uvarint(n + 1)
	return refs.Put(blob, e.b)
}

func (w *wtx) decRef(a *acctState, blob []byte) error {
	refs := a.b.Bucket(bktRefs)
	v := refs.Get(blob)
	if v == nil {
		return nil
	}
	d := decoder{b: v}
	n := d.uvarint()
	if n > 1 {
		e := encoder{b: make([]byte, 0, 4)}
		e.uvarint(n - 1)
		return refs.Put(blob, e.b)
	}
	if err := refs.Delete(blob); err != nil {
		return err
	}
	return w.queueBlob(a.id, mail.BlobID(blob))
}

func (w *wtx) gcBuckets(acct mail.AccountID, create bool) (q, i *bolt.Bucket, err error) {
	root := w.tx.Bucket(bktGC)
	b := root.Bucket([]byte(acct))
	if b == nil {
		if !create {
			return nil, nil, nil
		}
		if b, err = root.CreateBucket([]byte(acct)); err != nil {
			return nil, nil, err
		}
		if _, err = b.CreateBucket(bktGCQueue); err != nil {
			return nil, nil, err
		}
		if _, err = b.CreateBucket(bktGCIndex); err != nil {
			return nil, nil, err
		}
	}
	return b.Bucket(bktGCQueue), b.Bucket(bktGCIndex), nil
}

// queueBlob puts a blob that lost its last reference on the GC queue.
func (w *wtx) queueBlob(acct mail.AccountID, blob mail.BlobID) error {
	q, i, err := w.gcBuckets(acct, true)
	if err != nil {
		return err
	}
	if i.Get([]byte(blob)) != nil {
		return nil
	}
	t := uint64(max(w.now.UnixNano(), 0))
	if err := q.Put(gcKey(t, blob), emptyValue); err != nil {
		return err
	}
	return i.Put([]byte(blob), u64Key(t))
}

// unqueueBlob takes a blob off the GC queue, if it is there.
func (w *wtx) unqueueBlob(acct mail.AccountID, blob mail.BlobID) error {
	q, i, err := w.gcBuckets(acct, false)
	if err != nil || q == nil {
		return err
	}
	v := i.Get([]byte(blob))
	if v == nil {
		return nil
	}
	if err := q.Delete(gcKey(decodeU64(v), blob)); err != nil {
		return err
	}
	return i.Delete([]byte(blob))
}

// ---- read helpers ----

func accountBucket(tx *bolt.Tx, id mail.AccountID) *bolt.Bucket {
	if id == "" {
		return nil
	}
	return tx.Bucket(bktAccounts).Bucket([]byte(id))
}

// readMailbox returns the mailbox bucket and record in a read transaction.
// A missing account is both ErrNoSuchAccount and ErrNoSuchMailbox.
func readMailbox(tx *bolt.Tx, acct mail.AccountID, id mail.MailboxID) (*bolt.Bucket, mboxRec, error) {
	ab := accountBucket(tx, acct)
	if ab == nil {
		return nil, mboxRec{}, fmt.Errorf("mailbox %d: %w: %w", id, meta.ErrNoSuchMailbox, meta.ErrNoSuchAccount)
	}
	b := ab.Bucket(bktMboxes).Bucket(mboxKey(id))
	if b == nil {
		return nil, mboxRec{}, fmt.Errorf("mailbox %d: %w", id, meta.ErrNoSuchMailbox)
	}
	rec, err := decodeMailbox(b.Get(keyRec))
	return b, rec, err
}

func mailboxFromRec(ab *bolt.Bucket, id mail.MailboxID, r *mboxRec) meta.Mailbox {
	return meta.Mailbox{
		ID:            id,
		Name:          r.Name,
		UIDValidity:   r.UIDValidity,
		UIDNext:       r.UIDNext,
		HighestModSeq: r.HighestModSeq,
		Messages:      r.Messages,
		Unseen:        r.Unseen,
		Size:          r.Size,
		SpecialUse:    r.SpecialUse,
		Subscribed:    ab.Bucket(bktSubs).Get([]byte(r.Name)) != nil,
	}
}
