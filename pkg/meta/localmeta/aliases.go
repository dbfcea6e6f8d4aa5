package localmeta

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// canonicalAlias trims and lower-cases an alias by the login rules and
// checks that it is local@domain.
func canonicalAlias(alias string) (string, error) {
	al, err := canonicalLogin(strings.TrimSpace(alias))
	if err != nil {
		return "", err
	}
	if err := meta.CheckAlias(al); err != nil {
		return "", err
	}
	return al, nil
}

// AddAlias records the alias in the account and in aliases/, in one
// transaction: the single writer makes the uniqueness check and the
// claim one step.
func (s *Store) AddAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	al, err := canonicalAlias(alias)
	if err != nil {
		return meta.Account{}, fmt.Errorf("add alias to account %s: %w", id, err)
	}
	var out meta.Account
	err = s.update(ctx, func(w *wtx) error {
		a, err := w.account(id)
		if err != nil {
			return err
		}
		if w.tx.Bucket(bktLogins).Get([]byte(al)) != nil {
			return fmt.Errorf("%w: it is a login", meta.ErrExists)
		}
		aliases := w.tx.Bucket(bktAliases)
		if aliases.Get([]byte(al)) != nil {
			return fmt.Errorf("%w: it is an alias", meta.ErrExists)
		}
		rec, err := decodeAccount(a.b.Get(keyRec))
		if err != nil {
			return err
		}
		i, _ := slices.BinarySearch(rec.Aliases, al)
		rec.Aliases = slices.Insert(rec.Aliases, i, al)
		if err := a.b.Put(keyRec, encodeAccount(rec)); err != nil {
			return err
		}
		if err := aliases.Put([]byte(al), []byte(id)); err != nil {
			return err
		}
		out = accountFromRec(id, rec, a.q)
		return nil
	})
	if err != nil {
		return meta.Account{}, fmt.Errorf("add alias %s to account %s: %w", al, id, err)
	}
	return out, nil
}

// RemoveAlias drops the alias from the account and from aliases/.
func (s *Store) RemoveAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	al := strings.ToLower(strings.TrimSpace(alias))
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
		i, found := slices.BinarySearch(rec.Aliases, al)
		if !found {
			return fmt.Errorf("%w: not an alias of this account", meta.ErrInvalidArgument)
		}
		rec.Aliases = slices.Delete(rec.Aliases, i, i+1)
		if err := a.b.Put(keyRec, encodeAccount(rec)); err != nil {
			return err
		}
		aliases := w.tx.Bucket(bktAliases)
		if bytes.Equal(aliases.Get([]byte(al)), []byte(id)) {
			if err := aliases.Delete([]byte(al)); err != nil {
				return err
			}
		}
		out = accountFromRec(id, rec, a.q)
		return nil
	})
	if err != nil {
		return meta.Account{}, fmt.Errorf("remove alias %s of account %s: %w", al, id, err)
	}
	return out, nil
}

// LookupAddress reads logins/ and aliases/ in one read transaction; a bare
// local part walks the keys "<local part>@..." of both.
func (s *Store) LookupAddress(ctx context.Context, addr string) (meta.Account, error) {
	ad, err := canonicalLogin(strings.TrimSpace(addr))
	if err != nil {
		// An address that cannot exist is simply unknown.
		return meta.Account{}, fmt.Errorf("look up address: %w", meta.ErrNoSuchAccount)
	}
	var out meta.Account
	err = s.view(ctx, func(tx *bolt.Tx) (err error) {
		if id := tx.Bucket(bktLogins).Get([]byte(ad)); id != nil {
			out, err = readAccount(tx, mail.AccountID(id))
			return err
		}
		if strings.Contains(ad, "@") {
			id := tx.Bucket(bktAliases).Get([]byte(ad))
			if id == nil {
				return meta.ErrNoSuchAccount
			}
			out, err = readAccount(tx, mail.AccountID(id))
			return err
		}
		var found mail.AccountID
		for _, b := range [][]byte{bktLogins, bktAliases} {
			prefix := []byte(ad + "@")
			c := tx.Bucket(b).Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if meta.LocalPart(string(k)) != ad {
					continue // "lp@x@y" has the local part "lp@x"
				}
				switch id := mail.AccountID(v); {
				case found == "":
					found = id
				case found != id:
					return fmt.Errorf("ambiguous: %w", meta.ErrNoSuchAccount)
				}
			}
		}
		if found == "" {
			return meta.ErrNoSuchAccount
		}
		out, err = readAccount(tx, found)
		return err
	})
	if err != nil {
		return meta.Account{}, fmt.Errorf("look up address %s: %w", ad, err)
	}
	return out, nil
}
