package localmeta

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func canonicalName(name string) (string, error) {
	n, err := mail.CanonicalMailboxName(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", meta.ErrInvalidArgument, err)
	}
	return n, nil
}

func validSpecialUse(su string) error {
	switch su {
	case "", mail.SpecialAll, mail.SpecialArchive, mail.SpecialDrafts, mail.SpecialFlagged,
		mail.SpecialJunk, mail.SpecialSent, mail.SpecialTrash:
		return nil
	}
	return fmt.Errorf("%w: special use %q", meta.ErrInvalidArgument, su)
}

// createMailbox creates the mailbox name (canonical) in a with a fresh id
// and a UIDVALIDITY greater than any issued in the account before.
func (w *wtx) createMailbox(a *acctState, name, specialUse string) (*mboxState, error) {
	names := a.b.Bucket(bktNames)
	if names.Get([]byte(name)) != nil {
		return nil, fmt.Errorf("mailbox %q: %w", name, meta.ErrExists)
	}
	ctr, err := decodeCtr(a.b.Get(keyCtr))
	if err != nil {
		return nil, err
	}
	id := mail.MailboxID(ctr.NextMailbox)
	ctr.NextMailbox++
	// Time-based like Dovecot's, so a client's cache keyed by name and
	// UIDVALIDITY never matches a different incarnation, and strictly
	// increasing within the account.
	uv := max(ctr.LastUIDValidity+1, uint32(max(w.now.Unix(), 1)))
	ctr.LastUIDValidity = uv
	if err := a.b.Put(keyCtr, encodeCtr(ctr)); err != nil {
		return nil, err
	}
	b, err := a.b.Bucket(bktMboxes).CreateBucket(mboxKey(id))
	if err != nil {
		return nil, err
	}
	m := &mboxState{id: id, b: b, dirty: true, rec: mboxRec{
		Name:          name,
		SpecialUse:    specialUse,
		UIDValidity:   uv,
		UIDNext:       1,
		HighestModSeq: 1, // RFC 7162: a mod-sequence is positive
	}}
	if m.e, err = b.CreateBucket(bktEntries); err != nil {
		return nil, err
	}
	if m.m, err = b.CreateBucket(bktModSeqs); err != nil {
		return nil, err
	}
	if m.v, err = b.CreateBucket(bktVanished); err != nil {
		return nil, err
	}
	if err := names.Put([]byte(name), mboxKey(id)); err != nil {
		return nil, err
	}
	a.mboxes[id] = m
	w.emit(meta.Event{Account: a.id, Mailbox: id, Kind: meta.EventMailbox, ModSeq: m.rec.HighestModSeq})
	return m, nil
}

func (s *Store) CreateMailbox(ctx context.Context, acct mail.AccountID, name, specialUse string) (meta.Mailbox, error) {
	cn, err := canonicalName(name)
	if err != nil {
		return meta.Mailbox{}, fmt.Errorf("create mailbox: %w", err)
	}
	if err := validSpecialUse(specialUse); err != nil {
		return meta.Mailbox{}, fmt.Errorf("create mailbox %q: %w", cn, err)
	}
	var out meta.Mailbox
	err = s.update(ctx, func(w *wtx) error {
		a, err := w.account(acct)
		if err != nil {
			return err
		}
		m, err := w.createMailbox(a, cn, specialUse)
		if err != nil {
			return err
		}
		out = mailboxFromRec(a.b, m.id, &m.rec)
		return nil
	})
	if err != nil {
		return meta.Mailbox{}, fmt.Errorf("create mailbox %q: %w", cn, err)
	}
	return out, nil
}

func (s *Store) DeleteMailbox(ctx context.Context, acct mail.AccountID, name string) error {
	cn, err := canonicalName(name)
	if err != nil {
		return fmt.Errorf("delete mailbox: %w", err)
	}
	if cn == mail.Inbox {
		return fmt.Errorf("delete mailbox %q: %w", cn, meta.ErrPermission)
	}
	err = s.update(ctx, func(w *wtx) error {
		a, err := w.account(acct)
		if err != nil {
			return err
		}
		m, err := a.mailboxByName(cn)
		if err != nil {
			return err
		}
		// Release what the entries hold: usage and blob references.
		var blobs [][]byte
		var size, msgs int64
		if err := m.e.ForEach(func(_, v []byte) error {
			off, err := entryTailOffset(v)
			if err != nil {
				return err
			}
			ti, err := decodeTail(v[off:])
			if err != nil {
				return err
			}
			blobs = append(blobs, ti.Blob)
			size += ti.Size
			msgs++
			return nil
		}); err != nil {
			return err
		}
		for _, b := range blobs {
			if err := w.decRef(a, b); err != nil {
				return err
			}
		}
		a.use(-size, -msgs)
		if err := a.b.Bucket(bktNames).Delete([]byte(cn)); err != nil {
			return err
		}
		if err := a.b.Bucket(bktMboxes).DeleteBucket(mboxKey(m.id)); err != nil {
			return err
		}
		m.gone = true
		delete(a.mboxes, m.id)
		w.emit(meta.Event{Account: acct, Mailbox: m.id, Kind: meta.EventMailbox, ModSeq: m.rec.HighestModSeq})
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete mailbox %q: %w", cn, err)
	}
	return nil
}

func (s *Store) RenameMailbox(ctx context.Context, acct mail.AccountID, oldName, newName string) error {
	on, err := canonicalName(oldName)
	if err != nil {
		return fmt.Errorf("rename mailbox: %w", err)
	}
	nn, err := canonicalName(newName)
	if err != nil {
		return fmt.Errorf("rename mailbox %q: %w", on, err)
	}
	err = s.update(ctx, func(w *wtx) error {
		a, err := w.account(acct)
		if err != nil {
			return err
		}
		src, err := a.mailboxByName(on)
		if err != nil {
			return err
		}
		names := a.b.Bucket(bktNames)
		if names.Get([]byte(nn)) != nil {
			return fmt.Errorf("mailbox %q: %w", nn, meta.ErrExists)
		}
		if on == mail.Inbox {
			return w.renameInbox(a, src, nn)
		}
		return w.renameTree(a, on, nn)
	})
	if err != nil {
		return fmt.Errorf("rename mailbox %q to %q: %w", on, nn, err)
	}
	return nil
}

// renameInbox creates newName and moves every INBOX entry into it (RFC
// 3501 RENAME of INBOX); INBOX stays, empty, and keeps its children.
func (w *wtx) renameInbox(a *acctState, inbox *mboxState, newName string) error {
	dst, err := w.createMailbox(a, newName, "")
	if err != nil {
		return err
	}
	_, err = w.copyEntries(a, inbox, mail.AllUIDs(), dst, true)
	return err
}

// renameTree renames oldName and every mailbox below it, keeping ids,
// UIDVALIDITY and entries; subscriptions follow the names.
func (w *wtx) renameTree(a *acctState, oldName, newName string) error {
	names := a.b.Bucket(bktNames)
	subs := a.b.Bucket(bktSubs)
	type move struct {
		from, to string
		id       mail.MailboxID
	}
	var moves []move
	prefix := []byte(oldName + string(mail.Delimiter))
	moves = append(moves, move{from: oldName, to: newName, id: mail.MailboxID(decodeU64(names.Get([]byte(oldName))))})
	c := names.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		to := newName + string(k[len(oldName):])
		moves = append(moves, move{from: string(k), to: to, id: mail.MailboxID(decodeU64(v))})
	}
	renamed := make(map[string]bool, len(moves))
	for _, mv := range moves {
		renamed[mv.from] = true
	}
	for _, mv := range moves[1:] {
		if len(mv.to) > mail.MaxMailboxNameLen {
			return fmt.Errorf("%w: %q: too long", meta.ErrInvalidArgument, mv.to)
		}
		if names.Get([]byte(mv.to)) != nil && !renamed[mv.to] {
			return fmt.Errorf("mailbox %q: %w", mv.to, meta.ErrExists)
		}
	}
	subscribed := make(map[string]bool)
	for _, mv := range moves {
		if subs.Get([]byte(mv.from)) != nil {
			subscribed[mv.from] = true
			if err := subs.Delete([]byte(mv.from)); err != nil {
				return err
			}
		}
		if err := names.Delete([]byte(mv.from)); err != nil {
			return err
		}
	}
	for _, mv := range moves {
		m, err := a.mailbox(mv.id)
		if err != nil {
			return err
		}
		m.rec.Name = mv.to
		m.dirty = true
		if err := names.Put([]byte(mv.to), mboxKey(mv.id)); err != nil {
			return err
		}
		if subscribed[mv.from] {
			if err := subs.Put([]byte(mv.to), emptyValue); err != nil {
				return err
			}
		}
		w.emit(meta.Event{Account: a.id, Mailbox: mv.id, Kind: meta.EventMailbox, ModSeq: m.rec.HighestModSeq})
	}
	return nil
}

func (s *Store) Mailbox(ctx context.Context, acct mail.AccountID, name string) (meta.Mailbox, error) {
	cn, err := canonicalName(name)
	if err != nil {
		// No mailbox can have a name that is not valid.
		return meta.Mailbox{}, fmt.Errorf("read mailbox %q: %w: %w", name, meta.ErrNoSuchMailbox, err)
	}
	var out meta.Mailbox
	err = s.view(ctx, func(tx *bolt.Tx) error {
		ab := accountBucket(tx, acct)
		if ab == nil {
			return fmt.Errorf("%w: %w", meta.ErrNoSuchMailbox, meta.ErrNoSuchAccount)
		}
		v := ab.Bucket(bktNames).Get([]byte(cn))
		if v == nil {
			return meta.ErrNoSuchMailbox
		}
		id := mail.MailboxID(decodeU64(v))
		_, rec, err := readMailbox(tx, acct, id)
		if err != nil {
			return err
		}
		out = mailboxFromRec(ab, id, &rec)
		return nil
	})
	if err != nil {
		return meta.Mailbox{}, fmt.Errorf("read mailbox %q: %w", cn, err)
	}
	return out, nil
}

func (s *Store) MailboxByID(ctx context.Context, acct mail.AccountID, id mail.MailboxID) (meta.Mailbox, error) {
	var out meta.Mailbox
	err := s.view(ctx, func(tx *bolt.Tx) error {
		_, rec, err := readMailbox(tx, acct, id)
		if err != nil {
			return err
		}
		out = mailboxFromRec(accountBucket(tx, acct), id, &rec)
		return nil
	})
	if err != nil {
		return meta.Mailbox{}, fmt.Errorf("read mailbox %d: %w", id, err)
	}
	return out, nil
}

func (s *Store) ListMailboxes(ctx context.Context, acct mail.AccountID) ([]meta.Mailbox, error) {
	var out []meta.Mailbox
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ab := accountBucket(tx, acct)
		if ab == nil {
			return meta.ErrNoSuchAccount
		}
		mboxes := ab.Bucket(bktMboxes)
		return ab.Bucket(bktNames).ForEach(func(_, v []byte) error {
			b := mboxes.Bucket(v)
			if b == nil {
				return errors.New("name index points at a missing mailbox")
			}
			rec, err := decodeMailbox(b.Get(keyRec))
			if err != nil {
				return err
			}
			out = append(out, mailboxFromRec(ab, mail.MailboxID(decodeU64(v)), &rec))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list mailboxes of account %s: %w", acct, err)
	}
	return out, nil
}

func (s *Store) SetSubscribed(ctx context.Context, acct mail.AccountID, name string, subscribed bool) error {
	cn, err := canonicalName(name)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	err = s.update(ctx, func(w *wtx) error {
		a, err := w.account(acct)
		if err != nil {
			return err
		}
		subs := a.b.Bucket(bktSubs)
		if subscribed {
			return subs.Put([]byte(cn), emptyValue)
		}
		return subs.Delete([]byte(cn))
	})
	if err != nil {
		return fmt.Errorf("set subscription of %q: %w", cn, err)
	}
	return nil
}

func (s *Store) Subscriptions(ctx context.Context, acct mail.AccountID) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ab := accountBucket(tx, acct)
		if ab == nil {
			return meta.ErrNoSuchAccount
		}
		return ab.Bucket(bktSubs).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of account %s: %w", acct, err)
	}
	return out, nil
}

// ClaimRecent raises the mailbox's "recent" key in one write transaction,
// which bbolt serialises with every other writer.
func (s *Store) ClaimRecent(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, upTo mail.UID) (mail.UID, error) {
	var prev mail.UID
	err := s.update(ctx, func(w *wtx) error {
		a, err := w.account(acct)
		if err != nil {
			return err
		}
		m, err := a.mailbox(mbox)
		if err != nil {
			return err
		}
		if v := m.b.Get(keyRecent); len(v) == 4 {
			prev = mail.UID(binary.BigEndian.Uint32(v))
		} else if v != nil {
			return fmt.Errorf("recent mark: %w", errCorrupt)
		}
		if upTo > prev {
			return m.b.Put(keyRecent, uidKey(upTo))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("claim recent up to %d in mailbox %d: %w", upTo, mbox, err)
	}
	return prev, nil
}
