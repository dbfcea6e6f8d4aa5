package redismeta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// canonicalLogin lower-cases and checks a login.
func canonicalLogin(login string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(login))
	if l == "" || len(l) > 255 || !utf8.ValidString(l) {
		return "", fmt.Errorf("%w: login %q", meta.ErrInvalidArgument, login)
	}
	for _, r := range l {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", fmt.Errorf("%w: login %q", meta.ErrInvalidArgument, login)
		}
	}
	return l, nil
}

// CreateAccount creates the account in three steps, each atomic: allocate
// an id, write the account with its default mailboxes (account slot), then
// claim the login (global slot), which fails if the login is a login or an
// alias by then. If it does, the account written in step two is dropped
// again. A crash between the steps leaves at most an account that no
// login or listing reaches. An alias entry left stale by a crash (see
// aliases.go) is cleared first rather than blocking the login.
func (s *Store) CreateAccount(ctx context.Context, a meta.NewAccount) (meta.Account, error) {
	login, err := canonicalLogin(a.Login)
	if err != nil {
		return meta.Account{}, fmt.Errorf("create account: %w", err)
	}
	if a.Quota.LimitBytes < 0 || a.Quota.LimitMessages < 0 {
		return meta.Account{}, fmt.Errorf("create account %s: %w: negative quota", login, meta.ErrInvalidArgument)
	}
	taken, err := s.c.HExists(ctx, s.k.logins(), login).Result()
	if err != nil {
		return meta.Account{}, wrap(err, "create account %s", login)
	}
	if taken {
		return meta.Account{}, fmt.Errorf("create account %s: %w", login, meta.ErrExists)
	}
	if err := s.freeStaleAlias(ctx, login); err != nil {
		return meta.Account{}, fmt.Errorf("create account %s: %w", login, err)
	}
	n, err := s.c.Incr(ctx, s.k.accountIDs()).Result()
	if err != nil {
		return meta.Account{}, wrap(err, "create account %s: allocate id", login)
	}
	id := mail.AccountID(strconv.FormatInt(n, 10))
	now := time.Now()
	args := []any{login, a.PasswordHash, a.Quota.LimitBytes, a.Quota.LimitMessages, now.UnixMilli(), now.Unix()}
	for _, m := range mail.DefaultMailboxes {
		args = append(args, m.Name, m.SpecialUse)
	}
	if err := scriptCreateAccount.Run(ctx, s.sc, []string{s.k.base(id)}, args...).Err(); err != nil {
		return meta.Account{}, wrap(err, "create account %s", login)
	}
	err = scriptClaimLogin.Run(ctx, s.sc, s.k.global(), login, string(id)).Err()
	if err != nil {
		if derr := scriptDropAccount.Run(ctx, s.sc, []string{s.k.base(id)}, "discard").Err(); derr != nil {
			s.logger.Warn("drop half-created account", "account", id, "err", derr)
		}
		return meta.Account{}, wrap(err, "create account %s", login)
	}
	return s.Account(ctx, id)
}

// Account returns the record by id.
func (s *Store) Account(ctx context.Context, id mail.AccountID) (meta.Account, error) {
	if !validAccountID(id) {
		return meta.Account{}, fmt.Errorf("account %s: %w", id, meta.ErrNoSuchAccount)
	}
	h, err := s.c.HGetAll(ctx, s.k.account(id)).Result()
	if err != nil {
		return meta.Account{}, wrap(err, "account %s", id)
	}
	if len(h) == 0 {
		return meta.Account{}, fmt.Errorf("account %s: %w", id, meta.ErrNoSuchAccount)
	}
	return accountFromHash(id, h), nil
}

func accountFromHash(id mail.AccountID, h map[string]string) meta.Account {
	i64 := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	return meta.Account{
		ID:           id,
		Login:        h["login"],
		PasswordHash: h["pw"],
		Quota: meta.Quota{
			LimitBytes:    i64("lb"),
			LimitMessages: i64("lm"),
			UsedBytes:     i64("ub"),
			UsedMessages:  i64("um"),
		},
		POP3: meta.POP3Policy{
			Mode:       h["pm"],
			KeepDays:   int(i64("pd")),
			LoginDelay: int(i64("pl")),
		},
		Disabled:    h["dis"] == "1",
		Created:     time.UnixMilli(i64("created")).UTC(),
		SieveScript: h["sieve"],
		Aliases:     aliasList(h["al"]),
	}
}

// aliasList splits the record's field "al" (sorted, space separated).
func aliasList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Fields(v)
}

// LookupLogin returns the record by login.
func (s *Store) LookupLogin(ctx context.Context, login string) (meta.Account, error) {
	l, err := canonicalLogin(login)
	if err != nil {
		return meta.Account{}, fmt.Errorf("lookup login: %w", meta.ErrNoSuchAccount)
	}
	id, err := s.c.HGet(ctx, s.k.logins(), l).Result()
	if errors.Is(err, redis.Nil) {
		return meta.Account{}, fmt.Errorf("lookup login %s: %w", l, meta.ErrNoSuchAccount)
	}
	if err != nil {
		return meta.Account{}, wrap(err, "lookup login %s", l)
	}
	a, err := s.Account(ctx, mail.AccountID(id))
	if err != nil {
		return meta.Account{}, fmt.Errorf("lookup login %s: %w", l, err)
	}
	return a, nil
}

// ListAccounts returns every account ordered by login. The account hashes
// live in different slots; one pipeline per 500 accounts reads them.
func (s *Store) ListAccounts(ctx context.Context) ([]meta.Account, error) {
	ids, err := s.c.SMembers(ctx, s.k.accounts()).Result()
	if err != nil {
		return nil, wrap(err, "list accounts")
	}
	out := make([]meta.Account, 0, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		cmds := make([]*redis.MapStringStringCmd, len(chunk))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				cmds[i] = p.HGetAll(ctx, s.k.account(mail.AccountID(id)))
			}
			return nil
		})
		if err != nil {
			return nil, wrap(err, "list accounts")
		}
		for i, c := range cmds {
			if h := c.Val(); len(h) > 0 {
				out = append(out, accountFromHash(mail.AccountID(chunk[i]), h))
			}
		}
	}
	slices.SortFunc(out, func(a, b meta.Account) int { return strings.Compare(a.Login, b.Login) })
	return out, nil
}

// UpdateAccount applies u in one script.
func (s *Store) UpdateAccount(ctx context.Context, id mail.AccountID, u meta.AccountUpdate) (meta.Account, error) {
	if !validAccountID(id) {
		return meta.Account{}, fmt.Errorf("update account %s: %w", id, meta.ErrNoSuchAccount)
	}
	var args []any
	if u.PasswordHash != nil {
		args = append(args, "pw", *u.PasswordHash)
	}
	if u.LimitBytes != nil {
		if *u.LimitBytes < 0 {
			return meta.Account{}, fmt.Errorf("update account %s: %w: negative byte limit", id, meta.ErrInvalidArgument)
		}
		args = append(args, "lb", *u.LimitBytes)
	}
	if u.LimitMsgs != nil {
		if *u.LimitMsgs < 0 {
			return meta.Account{}, fmt.Errorf("update account %s: %w: negative message limit", id, meta.ErrInvalidArgument)
		}
		args = append(args, "lm", *u.LimitMsgs)
	}
	if u.Disabled != nil {
		d := "0"
		if *u.Disabled {
			d = "1"
		}
		args = append(args, "dis", d)
	}
	if p := u.POP3; p != nil {
		switch p.Mode {
		case meta.POP3Default, meta.POP3Delete, meta.POP3KeepForever, meta.POP3KeepDays:
		default:
			return meta.Account{}, fmt.Errorf("update account %s: %w: POP3 mode %q", id, meta.ErrInvalidArgument, p.Mode)
		}
		if p.KeepDays < 0 || p.LoginDelay < 0 {
			return meta.Account{}, fmt.Errorf("update account %s: %w: negative POP3 setting", id, meta.ErrInvalidArgument)
		}
		args = append(args, "pm", p.Mode, "pd", p.KeepDays, "pl", p.LoginDelay)
	}
	if u.SieveScript != nil {
		args = append(args, "sieve", *u.SieveScript)
	}
	res, err := scriptUpdateAccount.Run(ctx, s.sc, []string{s.k.base(id)}, args...).StringSlice()
	if err != nil {
		return meta.Account{}, wrap(err, "update account %s", id)
	}
	return accountFromHash(id, pairs(res)), nil
}

// pairs turns an HGETALL reply returned by a script into a map.
func pairs(res []string) map[string]string {
	h := make(map[string]string, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		h[res[i]] = res[i+1]
	}
	return h
}

// DeleteAccount drops the account's index (queueing its blobs), then its
// login, aliases and listing. The blob queue (blobgc) stays for the
// sweeper. A crash between the two steps leaves index entries naming an
// account that no longer exists: LookupAddress ignores them, and AddAlias
// and CreateAccount take such aliases over.
func (s *Store) DeleteAccount(ctx context.Context, id mail.AccountID) error {
	a, err := s.Account(ctx, id)
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	if err := scriptDropAccount.Run(ctx, s.sc, []string{s.k.base(id)}, "delete").Err(); err != nil {
		return wrap(err, "delete account %s", id)
	}
	args := []any{a.Login, string(id)}
	for _, al := range a.Aliases {
		args = append(args, al)
	}
	if err := scriptUnclaimLogin.Run(ctx, s.sc, s.k.global(), args...).Err(); err != nil {
		return wrap(err, "delete account %s: drop login", id)
	}
	return nil
}

// ResetIndex drops every mailbox, entry and blob reference, keeping the
// account record and its id and UIDVALIDITY counters.
func (s *Store) ResetIndex(ctx context.Context, id mail.AccountID) error {
	if !validAccountID(id) {
		return fmt.Errorf("reset index %s: %w", id, meta.ErrNoSuchAccount)
	}
	if err := scriptDropAccount.Run(ctx, s.sc, []string{s.k.base(id)}, "reset").Err(); err != nil {
		return wrap(err, "reset index %s", id)
	}
	return nil
}
