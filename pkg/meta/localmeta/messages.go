package localmeta

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// mailboxOf loads the account and one of its mailboxes; a missing account
// is both ErrNoSuchMailbox and ErrNoSuchAccount.
func (w *wtx) mailboxOf(acct mail.AccountID, mbox mail.MailboxID) (*acctState, *mboxState, error) {
	a, err := w.account(acct)
	if err != nil {
		if errors.Is(err, meta.ErrNoSuchAccount) {
			err = fmt.Errorf("%w: %w", meta.ErrNoSuchMailbox, err)
		}
		return nil, nil, err
	}
	m, err := a.mailbox(mbox)
	if err != nil {
		return nil, nil, err
	}
	return a, m, nil
}

// forEachInSet calls fn for every entry of eb with a UID in uids, in UID
// order. fn must not change eb.
func forEachInSet(eb *bolt.Bucket, uids mail.UIDSet, fn func(u mail.UID, v []byte) error) error {
	c := eb.Cursor()
	var key [4]byte
	for _, r := range uids {
		binary.BigEndian.PutUint32(key[:], uint32(r.Start))
		for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
			u := mail.UID(binary.BigEndian.Uint32(k))
			if u > r.Stop {
				break
			}
			if err := fn(u, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// changedUIDs returns, in UID order, the UIDs in filter (all when nil)
// whose entry has a MODSEQ above since, from the MODSEQ index.
func changedUIDs(mb *bolt.Bucket, since mail.ModSeq, filter mail.UIDSet, all bool) []mail.UID {
	var out []mail.UID
	c := mb.Cursor()
	for k, _ := c.Seek(u64Key(uint64(since) + 1)); k != nil; k, _ = c.Next() {
		_, u := splitModSeqKey(k)
		if all || filter.Contains(u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// insertEntry stores a new entry and updates counters, usage and the blob
// reference.
func (w *wtx) insertEntry(a *acctState, m *mboxState, u mail.UID, value []byte, ms mail.ModSeq, size int64, blob []byte) error {
	if err := m.e.Put(uidKey(u), value); err != nil {
		return err
	}
	if err := m.m.Put(modSeqKey(ms, u), emptyValue); err != nil {
		return err
	}
	m.rec.Messages++
	m.rec.Size += size
	if !entrySeen(value) {
		m.rec.Unseen++
	}
	if u >= m.rec.UIDNext {
		m.rec.UIDNext = u + 1
	}
	m.dirty = true
	a.use(size, 1)
	return w.incRef(a, blob)
}

// allocUIDs checks that n more UIDs fit in m.
func (m *mboxState) allocUIDs(n int) error {
	if uint64(m.rec.UIDNext)+uint64(n) > uint64(mail.MaxUID) {
		return fmt.Errorf("%w: UID space of mailbox %d exhausted", meta.ErrInvalidArgument, m.id)
	}
	return nil
}

func (s *Store) AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) (meta.Appended, error) {
	if e.Blob == "" || e.Size < 0 {
		return meta.Appended{}, fmt.Errorf("append to mailbox %d: %w: entry needs a blob and a size", mbox, meta.ErrInvalidArgument)
	}
	fs, err := parseFlags(e.Flags)
	if err != nil {
		return meta.Appended{}, fmt.Errorf("append to mailbox %d: %w", mbox, err)
	}
	tail := packTail(e.InternalDate, e.Size, e.Blob, e.Structure)
	var out meta.Appended
	err = s.update(ctx, func(w *wtx) error {
		a, m, err := w.mailboxOf(acct, mbox)
		if err != nil {
			return err
		}
		if u, ms, ok := appendedBefore(m, e.Blob); ok {
			// A repeat of an append whose answer was lost.
			out = meta.Appended{Mailbox: mbox, UIDValidity: m.rec.UIDValidity, UID: u, ModSeq: ms}
			return nil
		}
		if err := a.checkQuota(e.Size, 1); err != nil {
			return err
		}
		if err := m.allocUIDs(1); err != nil {
			return err
		}
		u := m.rec.UIDNext
		ms := m.nextModSeq()
		if err := w.insertEntry(a, m, u, packEntry(ms, fs, tail), ms, e.Size, []byte(e.Blob)); err != nil {
			return err
		}
		if err := rememberAppend(m, e.Blob, u, ms, w.now); err != nil {
			return err
		}
		out = meta.Appended{Mailbox: mbox, UIDValidity: m.rec.UIDValidity, UID: u, ModSeq: ms}
		w.emit(meta.Event{Account: acct, Mailbox: mbox, Kind: meta.EventAppend, ModSeq: ms, UIDs: mail.NewUIDSet(u)})
		return nil
	})
	if err != nil {
		return meta.Appended{}, fmt.Errorf("append to mailbox %d: %w", mbox, err)
	}
	return out, nil
}

func (s *Store) ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, changedSince mail.ModSeq) ([]meta.Entry, error) {
	var out []meta.Entry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b, rec, err := readMailbox(tx, acct, mbox)
		if err != nil {
			return err
		}
		eb := b.Bucket(bktEntries)
		ed := entryDecoder{fields: f}
		var rr retrievedReader
		if f&meta.FieldInfo != 0 {
			rr = newRetrievedReader(b)
		}
		if changedSince > 0 {
			if changedSince >= rec.HighestModSeq {
				return nil
			}
			list := changedUIDs(b.Bucket(bktModSeqs), changedSince, uids, false)
			out = make([]meta.Entry, 0, len(list))
			for _, u := range list {
				v := eb.Get(uidKey(u))
				if v == nil {
					return fmt.Errorf("MODSEQ index names missing UID %d: %w", u, errCorrupt)
				}
				e, err := ed.decode(u, v)
				if err != nil {
					return err
				}
				e.Retrieved = rr.at(u)
				out = append(out, e)
			}
			return nil
		}
		out = make([]meta.Entry, 0, min(rec.Messages, int64(uids.Count())))
		return forEachInSet(eb, uids, func(u mail.UID, v []byte) error {
			e, err := ed.decode(u, v)
			if err != nil {
				return err
			}
			e.Retrieved = rr.at(u)
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list entries of mailbox %d: %w", mbox, err)
	}
	return out, nil
}

func (s *Store) StoreFlags(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, c meta.FlagChange) (meta.FlagResult, error) {
	switch c.Op {
	case meta.FlagsReplace, meta.FlagsAdd, meta.FlagsRemove:
	default:
		return meta.FlagResult{}, fmt.Errorf("store flags in mailbox %d: %w: flag op %d", mbox, meta.ErrInvalidArgument, c.Op)
	}
	arg, err := parseFlags(c.Flags)
	if err != nil {
		return meta.FlagResult{}, fmt.Errorf("store flags in mailbox %d: %w", mbox, err)
	}
	var res meta.FlagResult
	err = s.update(ctx, func(w *wtx) error {
		_, m, err := w.mailboxOf(acct, mbox)
		if err != nil {
			return err
		}
		type change struct {
			u        mail.UID
			old      []byte
			from, to flagSet
		}
		var changes []change
		err = forEachInSet(m.e, c.UIDs, func(u mail.UID, v []byte) error {
			if c.UnchangedSince != 0 && entryModSeq(v) > c.UnchangedSince {
				res.Modified = res.Modified.Add(u)
				return nil
			}
			from, err := entryFlags(v)
			if err != nil {
				return err
			}
			to := from.apply(c.Op, arg)
			if !to.equal(from) {
				changes = append(changes, change{u: u, old: v, from: from, to: to})
			} else {
				res.Unchanged = append(res.Unchanged, meta.Entry{UID: u, ModSeq: entryModSeq(v), Flags: from.list()})
			}
			return nil
		})
		if err != nil || len(changes) == 0 {
			return err
		}
		ms := m.nextModSeq()
		var set mail.UIDSet
		res.Updated = make([]meta.Entry, 0, len(changes))
		for _, ch := range changes {
			off, err := entryTailOffset(ch.old)
			if err != nil {
				return err
			}
			oldMS := entryModSeq(ch.old)
			if err := m.e.Put(uidKey(ch.u), packEntry(ms, ch.to, ch.old[off:])); err != nil {
				return err
			}
			if err := m.m.Delete(modSeqKey(oldMS, ch.u)); err != nil {
				return err
			}
			if err := m.m.Put(modSeqKey(ms, ch.u), emptyValue); err != nil {
				return err
			}
			wasSeen, isSeen := ch.from.sys&seenBit != 0, ch.to.sys&seenBit != 0
			switch {
			case wasSeen && !isSeen:
				m.rec.Unseen++
			case !wasSeen && isSeen:
				m.rec.Unseen--
			}
			set = set.Add(ch.u)
			res.Updated = append(res.Updated, meta.Entry{UID: ch.u, ModSeq: ms, Flags: ch.to.list()})
		}
		w.emit(meta.Event{Account: acct, Mailbox: mbox, Kind: meta.EventFlags, ModSeq: ms, UIDs: set})
		return nil
	})
	if err != nil {
		return meta.FlagResult{}, fmt.Errorf("store flags in mailbox %d: %w", mbox, err)
	}
	return res, nil
}

// expungeEntries removes the entries of m with UIDs in uids under one new
// MODSEQ, logs them as vanished, and releases usage and blob references.
func (w *wtx) expungeEntries(a *acctState, m *mboxState, uids mail.UIDSet) ([]mail.UID, mail.ModSeq, error) {
	type gone struct {
		u    mail.UID
		ms   mail.ModSeq
		seen bool
		size int64
		blob []byte
	}
	var list []gone
	err := forEachInSet(m.e, uids, func(u mail.UID, v []byte) error {
		off, err := entryTailOffset(v)
		if err != nil {
			return err
		}
		ti, err := decodeTail(v[off:])
		if err != nil {
			return err
		}
		list = append(list, gone{u: u, ms: entryModSeq(v), seen: entrySeen(v), size: ti.Size, blob: ti.Blob})
		return nil
	})
	if err != nil || len(list) == 0 {
		return nil, m.rec.HighestModSeq, err
	}
	ms := m.nextModSeq()
	out := make([]mail.UID, 0, len(list))
	var set mail.UIDSet
	rb := m.b.Bucket(bktRetrieved)
	for _, g := range list {
		if err := m.e.Delete(uidKey(g.u)); err != nil {
			return nil, 0, err
		}
		if err := m.m.Delete(modSeqKey(g.ms, g.u)); err != nil {
			return nil, 0, err
		}
		if err := m.v.Put(modSeqKey(ms, g.u), emptyValue); err != nil {
			return nil, 0, err
		}
		if rb != nil {
			if err := rb.Delete(uidKey(g.u)); err != nil {
				return nil, 0, err
			}
		}
		m.rec.Messages--
		m.rec.Size -= g.size
		if !g.seen {
			m.rec.Unseen--
		}
		a.use(-g.size, -1)
		if err := w.decRef(a, g.blob); err != nil {
			return nil, 0, err
		}
		out = append(out, g.u)
		set = set.Add(g.u)
	}
	m.rec.VanishedCount += int64(len(list))
	if err := w.trimVanished(m); err != nil {
		return nil, 0, err
	}
	w.emit(meta.Event{Account: a.id, Mailbox: m.id, Kind: meta.EventExpunge, ModSeq: ms, UIDs: set})
	return out, ms, nil
}

// trimVanished drops the oldest vanished-log keys beyond ChangeLogMax and
// raises the trim point to the newest MODSEQ dropped.
func (w *wtx) trimVanished(m *mboxState) error {
	limit := int64(w.s.cfg.ChangeLogMax)
	if limit <= 0 || m.rec.VanishedCount <= limit {
		return nil
	}
	excess := m.rec.VanishedCount - limit
	keys := make([][]byte, 0, excess)
	c := m.v.Cursor()
	for k, _ := c.First(); k != nil && int64(len(keys)) < excess; k, _ = c.Next() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		ms, _ := splitModSeqKey(k)
		m.rec.VanishedFloor = max(m.rec.VanishedFloor, ms)
		if err := m.v.Delete(k); err != nil {
			return err
		}
	}
	m.rec.VanishedCount -= int64(len(keys))
	m.dirty = true
	return nil
}

func (s *Store) Expunge(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet) ([]mail.UID, mail.ModSeq, error) {
	var out []mail.UID
	var ms mail.ModSeq
	err := s.update(ctx, func(w *wtx) error {
		a, m, err := w.mailboxOf(acct, mbox)
		if err != nil {
			return err
		}
		out, ms, err = w.expungeEntries(a, m, uids)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("expunge from mailbox %d: %w", mbox, err)
	}
	return out, ms, nil
}

// copyEntries copies the entries of src with UIDs in uids to dst, in UID
// order, under one new MODSEQ of dst; with move it then expunges the
// sources. Quota is checked for a copy only (a move leaves usage as is).
// References are taken before they are dropped, so a moved blob is never
// queued for deletion.
func (w *wtx) copyEntries(a *acctState, src *mboxState, uids mail.UIDSet, dst *mboxState, move bool) (meta.Copied, error) {
	type item struct {
		u    mail.UID
		v    []byte
		size int64
		blob []byte
	}
	var items []item
	var total int64
	err := forEachInSet(src.e, uids, func(u mail.UID, v []byte) error {
		off, err := entryTailOffset(v)
		if err != nil {
			return err
		}
		ti, err := decodeTail(v[off:])
		if err != nil {
			return err
		}
		items = append(items, item{u: u, v: v, size: ti.Size, blob: ti.Blob})
		total += ti.Size
		return nil
	})
	if err != nil {
		return meta.Copied{}, err
	}
	out := meta.Copied{UIDValidity: dst.rec.UIDValidity}
	if len(items) == 0 {
		out.ModSeq = dst.rec.HighestModSeq
		return out, nil
	}
	if !move {
		if err := a.checkQuota(total, int64(len(items))); err != nil {
			return meta.Copied{}, err
		}
	}
	if err := dst.allocUIDs(len(items)); err != nil {
		return meta.Copied{}, err
	}
	ms := dst.nextModSeq()
	out.ModSeq = ms
	out.Source = make([]mail.UID, 0, len(items))
	out.Dest = make([]mail.UID, 0, len(items))
	var srcSet, dstSet mail.UIDSet
	for _, it := range items {
		u := dst.rec.UIDNext
		// Same flags and tail: only the MODSEQ differs.
		v := make([]byte, len(it.v))
		copy(v, it.v)
		binary.BigEndian.PutUint64(v, uint64(ms))
		if err := w.insertEntry(a, dst, u, v, ms, it.size, it.blob); err != nil {
			return meta.Copied{}, err
		}
		out.Source = append(out.Source, it.u)
		out.Dest = append(out.Dest, u)
		srcSet = srcSet.Add(it.u)
		dstSet = dstSet.Add(u)
	}
	w.emit(meta.Event{Account: a.id, Mailbox: dst.id, Kind: meta.EventAppend, ModSeq: ms, UIDs: dstSet})
	if move {
		if _, _, err := w.expungeEntries(a, src, srcSet); err != nil {
			return meta.Copied{}, err
		}
	}
	return out, nil
}

func (s *Store) copyOrMove(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID, move bool) (meta.Copied, error) {
	var out meta.Copied
	err := s.update(ctx, func(w *wtx) error {
		a, sm, err := w.mailboxOf(acct, src)
		if err != nil {
			return err
		}
		dm, err := a.mailbox(dst)
		if err != nil {
			return err
		}
		out, err = w.copyEntries(a, sm, uids, dm, move)
		return err
	})
	return out, err
}

func (s *Store) Copy(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	out, err := s.copyOrMove(ctx, acct, src, uids, dst, false)
	if err != nil {
		return meta.Copied{}, fmt.Errorf("copy from mailbox %d to %d: %w", src, dst, err)
	}
	return out, nil
}

func (s *Store) Move(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	out, err := s.copyOrMove(ctx, acct, src, uids, dst, true)
	if err != nil {
		return meta.Copied{}, fmt.Errorf("move from mailbox %d to %d: %w", src, dst, err)
	}
	return out, nil
}

func (s *Store) ChangesSince(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, since mail.ModSeq) (meta.ChangeSet, error) {
	var cs meta.ChangeSet
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b, rec, err := readMailbox(tx, acct, mbox)
		if err != nil {
			return err
		}
		cs.HighestModSeq = rec.HighestModSeq
		cs.Trimmed = since < rec.VanishedFloor
		if since >= rec.HighestModSeq {
			return nil
		}
		eb := b.Bucket(bktEntries)
		ed := entryDecoder{fields: meta.FieldFlags}
		list := changedUIDs(b.Bucket(bktModSeqs), since, nil, true)
		cs.Changed = make([]meta.Entry, 0, len(list))
		for _, u := range list {
			v := eb.Get(uidKey(u))
			if v == nil {
				return fmt.Errorf("MODSEQ index names missing UID %d: %w", u, errCorrupt)
			}
			e, err := ed.decode(u, v)
			if err != nil {
				return err
			}
			cs.Changed = append(cs.Changed, e)
		}
		var gone []mail.UID
		c := b.Bucket(bktVanished).Cursor()
		for k, _ := c.Seek(u64Key(uint64(since) + 1)); k != nil; k, _ = c.Next() {
			_, u := splitModSeqKey(k)
			gone = append(gone, u)
		}
		slices.Sort(gone)
		for _, u := range gone {
			cs.Vanished = cs.Vanished.Add(u)
		}
		return nil
	})
	if err != nil {
		return meta.ChangeSet{}, fmt.Errorf("read changes of mailbox %d since %d: %w", mbox, since, err)
	}
	return cs, nil
}

// appendedBefore returns the entry an earlier AppendEntry of blob to m
// made, if it is remembered (bktAppended).
func appendedBefore(m *mboxState, blob mail.BlobID) (mail.UID, mail.ModSeq, bool) {
	ab := m.b.Bucket(bktAppended)
	if ab == nil {
		return 0, 0, false
	}
	v := ab.Get([]byte(blob))
	if len(v) != 20 {
		return 0, 0, false
	}
	return mail.UID(binary.BigEndian.Uint32(v)), mail.ModSeq(binary.BigEndian.Uint64(v[4:])), true
}

// rememberAppend records that blob became entry u of m at now, and forgets
// a few records older than meta.AppendReplayWindow.
func rememberAppend(m *mboxState, blob mail.BlobID, u mail.UID, ms mail.ModSeq, now time.Time) error {
	ab, err := m.b.CreateBucketIfNotExists(bktAppended)
	if err != nil {
		return err
	}
	tb, err := m.b.CreateBucketIfNotExists(bktAppendAt)
	if err != nil {
		return err
	}
	at := uint64(now.UnixMilli())
	v := make([]byte, 20)
	binary.BigEndian.PutUint32(v, uint32(u))
	binary.BigEndian.PutUint64(v[4:], uint64(ms))
	binary.BigEndian.PutUint64(v[12:], at)
	if err := ab.Put([]byte(blob), v); err != nil {
		return err
	}
	if err := tb.Put(append(u64Key(at), blob...), emptyValue); err != nil {
		return err
	}
	cutoff := at - uint64(meta.AppendReplayWindow.Milliseconds())
	var old [][]byte
	c := tb.Cursor()
	for k, _ := c.First(); k != nil && len(old) < 8 && binary.BigEndian.Uint64(k) < cutoff; k, _ = c.Next() {
		old = append(old, k)
	}
	for _, k := range old {
		// Keys from a cursor are valid only inside the transaction, and
		// deleting during iteration skips keys: delete afterwards.
		if err := tb.Delete(k); err != nil {
			return err
		}
		if v := ab.Get(k[8:]); len(v) == 20 && binary.BigEndian.Uint64(v[12:]) != binary.BigEndian.Uint64(k) {
			continue // appended again since: that record stays
		}
		if err := ab.Delete(k[8:]); err != nil {
			return err
		}
	}
	return nil
}
