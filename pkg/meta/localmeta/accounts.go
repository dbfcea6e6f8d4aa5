package localmeta

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

const maxLoginLen = 255

// canonicalLogin lower-cases a login and rejects empty or malformed ones.
func canonicalLogin(login string) (string, error) {
	if login == "" || len(login) > maxLoginLen || !utf8.ValidString(login) {
		return "", fmt.Errorf("%w: login %q", meta.ErrInvalidArgument, login)
	}
	for _, r := range login {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '\\' {
			return "", fmt.Errorf("%w: login %q", meta.ErrInvalidArgument, login)
		}
	}
	return strings.ToLower(login), nil
}

func validPOP3(p meta.POP3Policy) error {
	switch p.Mode {
	case meta.POP3Default, meta.POP3Delete, meta.POP3KeepForever, meta.POP3KeepDays:
	default:
		return fmt.Errorf("%w: POP3 policy mode %q", meta.ErrInvalidArgument, p.Mode)
	}
	if p.KeepDays < 0 || p.LoginDelay < 0 || (p.Mode == meta.POP3KeepDays && p.KeepDays == 0) {
		return fmt.Errorf("%w: POP3 policy %+v", meta.ErrInvalidArgument, p)
	}
	return nil
}

func (s *Store) CreateAccount(ctx context.Context, na meta.NewAccount) (meta.Account, error) {
	login, err := canonicalLogin(na.Login)
	if err != nil {
		return meta.Account{}, fmt.Errorf("create account: %w", err)
	}
	if na.Quota.LimitBytes < 0 || na.Quota.LimitMessages < 0 {
		return meta.Account{}, fmt.Errorf("create account %s: %w: negative quota", login, meta.ErrInvalidArgument)
	}
	var out meta.Account
	err = s.update(ctx, func(w *wtx) error {
		logins := w.tx.Bucket(bktLogins)
		if logins.Get([]byte(login)) != nil {
			return fmt.Errorf("login %s: %w", login, meta.ErrExists)
		}
		if w.tx.Bucket(bktAliases).Get([]byte(login)) != nil {
			return fmt.Errorf("login %s: %w: it is an alias", login, meta.ErrExists)
		}
		id, err := newAccountID(w.tx.Bucket(bktAccounts))
		if err != nil {
			return err
		}
		ab, err := w.tx.Bucket(bktAccounts).CreateBucket([]byte(id))
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bktNames, bktSubs, bktRefs, bktMboxes} {
			if _, err := ab.CreateBucket(name); err != nil {
				return err
			}
		}
		rec := accountRec{Login: login, PasswordHash: na.PasswordHash, Created: w.now.UTC()}
		q := quotaRec{LimitBytes: na.Quota.LimitBytes, LimitMessages: na.Quota.LimitMessages}
		if err := ab.Put(keyRec, encodeAccount(rec)); err != nil {
			return err
		}
		if err := ab.Put(keyQuota, encodeQuota(q)); err != nil {
			return err
		}
		if err := ab.Put(keyCtr, encodeCtr(ctrRec{NextMailbox: 1})); err != nil {
			return err
		}
		if err := logins.Put([]byte(login), []byte(id)); err != nil {
			return err
		}
		a, err := w.account(id)
		if err != nil {
			return err
		}
		for _, dm := range mail.DefaultMailboxes {
			if _, err := w.createMailbox(a, dm.Name, dm.SpecialUse); err != nil {
				return err
			}
		}
		out = accountFromRec(id, rec, q)
		return nil
	})
	if err != nil {
		return meta.Account{}, fmt.Errorf("create account %s: %w", login, err)
	}
	return out, nil
}

// newAccountID returns a random id, unused in accounts. Random rather
// than a counter: a store rebuilt from scratch must not hand an old
// account's id (and so its blobs, keyed by account id) to a new user.
func newAccountID(accounts *bolt.Bucket) (mail.AccountID, error) {
	for range 8 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id := strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 36)
		if accounts.Bucket([]byte(id)) == nil {
			return mail.AccountID(id), nil
		}
	}
	return "", errors.New("no free account id")
}

func accountFromRec(id mail.AccountID, r accountRec, q quotaRec) meta.Account {
	return meta.Account{
		ID:           id,
		Login:        r.Login,
		PasswordHash: r.PasswordHash,
		Quota: meta.Quota{
			LimitBytes: q.LimitBytes, LimitMessages: q.LimitMessages,
			UsedBytes: q.UsedBytes, UsedMessages: q.UsedMessages,
		},
		POP3:        r.POP3,
		Disabled:    r.Disabled,
		Created:     r.Created,
		SieveScript: r.SieveScript,
		Aliases:     r.Aliases,
	}
}

func readAccount(tx *bolt.Tx, id mail.AccountID) (meta.Account, error) {
	ab := accountBucket(tx, id)
	if ab == nil {
		return meta.Account{}, fmt.Errorf("account %s: %w", id, meta.ErrNoSuchAccount)
	}
	r, err := decodeAccount(ab.Get(keyRec))
	if err != nil {
		return meta.Account{}, err
	}
	q, err := decodeQuota(ab.Get(keyQuota))
	if err != nil {
		return meta.Account{}, err
	}
	return accountFromRec(id, r, q), nil
}

func (s *Store) Account(ctx context.Context, id mail.AccountID) (meta.Account, error) {
	var out meta.Account
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		out, err = readAccount(tx, id)
		return err
	})
	if err != nil {
		return meta.Account{}, fmt.Errorf("read account %s: %w", id, err)
	}
	return out, nil
}

func (s *Store) LookupLogin(ctx context.Context, login string) (meta.Account, error) {
	l, err := canonicalLogin(login)
	if err != nil {
		// A login that cannot exist is simply unknown.
		return meta.Account{}, fmt.Errorf("look up login: %w", meta.ErrNoSuchAccount)
	}
	var out meta.Account
	err = s.view(ctx, func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bktLogins).Get([]byte(l))
		if id == nil {
			return meta.ErrNoSuchAccount
		}
		out, err = readAccount(tx, mail.AccountID(id))
		return err
	})
	if err != nil {
		return meta.Account{}, fmt.Errorf("look up login %s: %w", l, err)
	}
	return out, nil
}

func (s *Store) ListAccounts(ctx context.Context) ([]meta.Account, error) {
	var out []meta.Account
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bktLogins).ForEach(func(_, id []byte) error {
			a, err := readAccount(tx, mail.AccountID(id))
			if err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

func (s *Store) UpdateAccount(ctx context.Context, id mail.AccountID, u meta.AccountUpdate) (meta.Account, error) {
	if (u.LimitBytes != nil && *u.LimitBytes < 0) || (u.LimitMsgs != nil && *u.LimitMsgs < 0) {
		return meta.Account{}, fmt.Errorf("update account %s: %w: negative quota", id, meta.ErrInvalidArgument)
	}
	if u.POP3 != nil {
		if err := validPOP3(*u.POP3); err != nil {
			return meta.Account{}, fmt.Errorf("update account %s: %w", id, err)
		}
	}
	var out meta.Account
	err := s.update(ctx, func(w *wtx) error {
		a, err := w.account(id)
		if err != nil {
			return err
		}
		rec, err := decodeAccount(a.b.Get(keyRec))
		if err != nil {
			return err
		}
		if u.PasswordHash != nil {
			rec.PasswordHash = *u.PasswordHash
		}
		if u.Disabled != nil {
			rec.Disabled = *u.Disabled
		}
		if u.POP3 != nil {
			rec.POP3 = *u.POP3
		}
		if u.SieveScript != nil {
			rec.SieveScript = *u.SieveScript
		}
		if u.LimitBytes != nil {
			a.q.LimitBytes = *u.LimitBytes
			a.qDirty = true
		}
		if u.LimitMsgs != nil {
			a.q.LimitMessages = *u.LimitMsgs
			a.qDirty = true
		}
		if err := a.b.Put(keyRec, encodeAccount(rec)); err != nil {
			return err
		}
		out = accountFromRec(id, rec, a.q)
		return nil
	})
	if err != nil {
		return meta.Account{}, fmt.Errorf("update account %s: %w", id, err)
	}
	return out, nil
}

func (s *Store) DeleteAccount(ctx context.Context, id mail.AccountID) error {
	err := s.update(ctx, func(w *wtx) error {
		a, err := w.account(id)
		if err != nil {
			return err
		}
		rec, err := decodeAccount(a.b.Get(keyRec))
		if err != nil {
			return err
		}
		// Queue every referenced blob; collect first, a cursor must not
		// see its bucket change.
		var blobs [][]byte
		if err := a.b.Bucket(bktRefs).ForEach(func(k, _ []byte) error {
			blobs = append(blobs, k)
			return nil
		}); err != nil {
			return err
		}
		for _, b := range blobs {
			if err := w.queueBlob(id, mail.BlobID(b)); err != nil {
				return err
			}
		}
		if err := w.emitMailboxGone(a); err != nil {
			return err
		}
		if err := w.tx.Bucket(bktLogins).Delete([]byte(rec.Login)); err != nil {
			return err
		}
		for _, al := range rec.Aliases {
			if err := w.tx.Bucket(bktAliases).Delete([]byte(al)); err != nil {
				return err
			}
		}
		delete(w.accts, id)
		return w.tx.Bucket(bktAccounts).DeleteBucket([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete account %s: %w", id, err)
	}
	return nil
}

// emitMailboxGone records an EventMailbox for every mailbox of a.
func (w *wtx) emitMailboxGone(a *acctState) error {
	return a.b.Bucket(bktMboxes).ForEachBucket(func(k []byte) error {
		id := mail.MailboxID(decodeU64(k))
		ms := mail.ModSeq(0)
		if rec, err := decodeMailbox(a.b.Bucket(bktMboxes).Bucket(k).Get(keyRec)); err == nil {
			ms = rec.HighestModSeq
		}
		w.emit(meta.Event{Account: a.id, Mailbox: id, Kind: meta.EventMailbox, ModSeq: ms})
		return nil
	})
}

func (s *Store) ResetIndex(ctx context.Context, id mail.AccountID) error {
	err := s.update(ctx, func(w *wtx) error {
		a, err := w.account(id)
		if err != nil {
			return err
		}
		if err := w.emitMailboxGone(a); err != nil {
			return err
		}
		// Dropping references without queueing: recovery re-adds
		// entries for the blobs it finds.
		for _, name := range [][]byte{bktMboxes, bktNames, bktRefs} {
			if err := a.b.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := a.b.CreateBucket(name); err != nil {
				return err
			}
		}
		a.mboxes = make(map[mail.MailboxID]*mboxState)
		a.q.UsedBytes, a.q.UsedMessages = 0, 0
		a.qDirty = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("reset index of account %s: %w", id, err)
	}
	return nil
}
