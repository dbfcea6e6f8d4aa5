package redismeta

// Aliases span two slots on Redis Cluster: the global index ({g}:aliases,
// {g}:addrs) and the account record ("al" in {a:<id>}:acct). No script
// can change both, so an alias goes through a claim protocol:
//
//  1. Claim (global slot, scriptClaimAlias): if the address is nobody's
//     login and nobody's alias, or already names this account, write
//     "<id> <claim>" with a fresh claim number, and the local-part member.
//  2. Commit (account slot, scriptCommitAlias): add the alias to the
//     record, unless that claim was revoked (step 3); then it fails and
//     the caller answers ErrExists.
//
// The record is the truth: an index entry counts only while the account
// it names lists the alias. A claim whose account does not list the alias
// is either in flight between steps 1 and 2 or left by a crash (between
// the steps of AddAlias, RemoveAlias or DeleteAccount). Whoever finds it
// in the way (AddAlias of another account, CreateAccount of that login)
// takes it over:
//
//  3. Fence (the owner's slot, scriptFenceAlias): if the owner's record
//     lists the alias, the address is taken (ErrExists); otherwise record
//     the claim number as revoked, so the owner's commit under it can never
//     succeed afterwards. An owner that no longer exists needs no fence
//     (ids are never reused).
//  4. Take over (global slot): claim again, expecting exactly the fenced
//     value; if the entry changed meanwhile, start over from what is
//     there now.
//
// So exactly one of two accounts racing for an address ends up listing
// it: the owner's commit and the taker's fence are ordered in the owner's
// slot, and whichever comes first decides. A listed alias always has its
// index entry: entries are only dropped after the record let go
// (RemoveAlias, DeleteAccount remove from the record first).
//
// What a crash can leave, and how it heals:
//   - an alias entry (and its local-part member) naming an account that
//     does not list it, or no longer exists: LookupAddress ignores it; the
//     next AddAlias of that address by any account, or CreateAccount of it
//     as a login, fences and takes it over. It never blocks the address.
//   - a local-part member of {g}:addrs whose address or account is gone:
//     bare local-part lookups check every candidate against its record,
//     so it only costs a read; a take-over of the alias drops it.
//   - a revocation in {a:<id>}:alfence that no commit consumed: a later
//     claim has a higher number and drops it; DeleteAccount removes it.
//   - the login of an account that DeleteAccount removed is handled as
//     before aliases existed (LookupLogin and LookupAddress find no
//     account behind it).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// maxTakeovers bounds how often AddAlias takes over stale claims in a row
// before it gives up, when other accounts keep claiming the same address.
const maxTakeovers = 4

// localPage is how many local-part index members one ZRANGEBYLEX reads.
const localPage = 100

// canonicalAlias trims and lower-cases an alias by the login rules and
// checks that it is local@domain.
func canonicalAlias(alias string) (string, error) {
	if !utf8.ValidString(alias) {
		return "", fmt.Errorf("%w: alias %q: not UTF-8", meta.ErrInvalidArgument, alias)
	}
	al, err := canonicalLogin(alias)
	if err != nil {
		return "", err
	}
	if err := meta.CheckAlias(al); err != nil {
		return "", err
	}
	return al, nil
}

// AddAlias claims the alias in the global index, then commits it to the
// account record (see the protocol above).
func (s *Store) AddAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	al, err := canonicalAlias(alias)
	if err != nil {
		return meta.Account{}, fmt.Errorf("add alias to account %s: %w", id, err)
	}
	// Early answers for the common mistakes, so that they leave no claim
	// behind; the scripts decide, not this.
	a, err := s.Account(ctx, id)
	if err != nil {
		return meta.Account{}, fmt.Errorf("add alias %s: %w", al, err)
	}
	if a.Login == al || slices.Contains(a.Aliases, al) {
		return meta.Account{}, fmt.Errorf("add alias %s to account %s: %w: the account has it", al, id, meta.ErrExists)
	}
	claim, err := s.claimAlias(ctx, id, al)
	if err != nil {
		return meta.Account{}, fmt.Errorf("add alias %s to account %s: %w", al, id, err)
	}
	res, err := scriptCommitAlias.Run(ctx, s.sc, []string{s.k.base(id)}, al, claim).StringSlice()
	if err == nil {
		return accountFromHash(id, pairs(res)), nil
	}
	err = wrap(err, "add alias %s to account %s", al, id)
	switch {
	case errors.Is(err, meta.ErrConflict):
		// Another account fenced our claim and took the address.
		return meta.Account{}, fmt.Errorf("add alias %s to account %s: %w: taken meanwhile", al, id, meta.ErrExists)
	case errors.Is(err, meta.ErrNoSuchAccount):
		// Deleted meanwhile: give the claim back. If this fails, the
		// claim is stale and is taken over when someone needs it.
		if rerr := scriptReleaseAlias.Run(ctx, s.sc, s.k.global(), al, string(id), string(id)+" "+claim).Err(); rerr != nil {
			s.logger.Warn("release alias claim of a deleted account", "account", id, "err", rerr)
		}
	}
	// ErrExists: the record lists it already (a concurrent AddAlias of
	// the same alias to the same account won); its entry is live.
	return meta.Account{}, err
}

// claimAlias runs steps 1, 3 and 4: it returns the claim number once the
// index names id, or ErrExists if the address is live elsewhere.
func (s *Store) claimAlias(ctx context.Context, id mail.AccountID, al string) (string, error) {
	expect := ""
	for range maxTakeovers {
		res, err := scriptClaimAlias.Run(ctx, s.sc, s.k.global(), al, string(id), expect).StringSlice()
		if err != nil {
			return "", wrap(err, "claim alias")
		}
		if len(res) != 2 {
			return "", fmt.Errorf("claim alias: unexpected reply %q", res)
		}
		switch res[0] {
		case "ok":
			return res[1], nil
		case "login":
			return "", fmt.Errorf("%w: it is a login", meta.ErrExists)
		}
		live, err := s.fenceAlias(ctx, al, res[1])
		if err != nil {
			return "", err
		}
		if live {
			return "", fmt.Errorf("%w: it is an alias of another account", meta.ErrExists)
		}
		expect = res[1]
	}
	return "", fmt.Errorf("%w: claimed by other accounts meanwhile", meta.ErrExists)
}

// fenceAlias is step 3 for the index value v ("<id> <claim>"): it reports
// whether the claim is live (its account lists the alias) and otherwise
// revokes it.
func (s *Store) fenceAlias(ctx context.Context, al, v string) (live bool, err error) {
	owner, claim, ok := strings.Cut(v, " ")
	if !ok || !validAccountID(mail.AccountID(owner)) {
		return false, nil // not written by this store: no account can commit it
	}
	n, err := scriptFenceAlias.Run(ctx, s.sc, []string{s.k.base(mail.AccountID(owner))}, al, claim).Int()
	if err != nil {
		return false, wrap(err, "fence alias claim of account %s", owner)
	}
	return n == 2, nil
}

// freeStaleAlias clears a stale alias entry for addr (fencing it first),
// or returns ErrExists if addr is a live alias.
func (s *Store) freeStaleAlias(ctx context.Context, addr string) error {
	v, err := s.c.HGet(ctx, s.k.aliases(), addr).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return wrap(err, "read alias %s", addr)
	}
	live, err := s.fenceAlias(ctx, addr, v)
	if err != nil {
		return err
	}
	if live {
		return fmt.Errorf("%w: it is an alias", meta.ErrExists)
	}
	owner, _, _ := strings.Cut(v, " ")
	if err := scriptReleaseAlias.Run(ctx, s.sc, s.k.global(), addr, owner, v).Err(); err != nil {
		return wrap(err, "release stale alias %s", addr)
	}
	return nil
}

// RemoveAlias takes the alias out of the record first, then out of the
// index. If the second step fails, the alias is already gone for every
// reader (the record is the truth) and the entry left is stale: it is
// logged, not returned, since retrying would find no alias to remove.
func (s *Store) RemoveAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	al := strings.ToLower(strings.TrimSpace(alias))
	if !validAccountID(id) {
		return meta.Account{}, fmt.Errorf("remove alias %s of account %s: %w", al, id, meta.ErrNoSuchAccount)
	}
	res, err := scriptRemoveAlias.Run(ctx, s.sc, []string{s.k.base(id)}, al).StringSlice()
	if err != nil {
		err = wrap(err, "remove alias %s of account %s", al, id)
		if errors.Is(err, meta.ErrInvalidArgument) {
			return meta.Account{}, fmt.Errorf("%w: not an alias of this account", err)
		}
		return meta.Account{}, err
	}
	if err := scriptReleaseAlias.Run(ctx, s.sc, s.k.global(), al, string(id), "").Err(); err != nil {
		s.logger.Warn("drop index entry of a removed alias", "account", id, "err", wrap(err, "release alias"))
	}
	return accountFromHash(id, pairs(res)), nil
}

// LookupAddress reads the login and alias indexes ({g} slot, one round
// trip) and checks the account behind an entry; a bare local part reads
// the local-part index by lexical range and checks each candidate.
func (s *Store) LookupAddress(ctx context.Context, addr string) (meta.Account, error) {
	ad, err := canonicalLogin(addr)
	if err != nil || !utf8.ValidString(addr) {
		// An address that cannot exist is simply unknown.
		return meta.Account{}, fmt.Errorf("look up address: %w", meta.ErrNoSuchAccount)
	}
	var login, alias *redis.StringCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		login = p.HGet(ctx, s.k.logins(), ad)
		alias = p.HGet(ctx, s.k.aliases(), ad)
		return nil
	})
	for _, c := range []*redis.StringCmd{login, alias} {
		if c != nil && c.Err() != nil && !errors.Is(c.Err(), redis.Nil) {
			err = c.Err()
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return meta.Account{}, wrap(err, "look up address %s", ad)
	}
	if id := login.Val(); id != "" {
		a, err := s.Account(ctx, mail.AccountID(id))
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, meta.ErrNoSuchAccount) {
			return meta.Account{}, fmt.Errorf("look up address %s: %w", ad, err)
		}
		// A login left by an interrupted DeleteAccount: no account.
	}
	if v := alias.Val(); v != "" {
		owner, _, _ := strings.Cut(v, " ")
		a, err := s.Account(ctx, mail.AccountID(owner))
		if err == nil && slices.Contains(a.Aliases, ad) {
			return a, nil
		}
		if err != nil && !errors.Is(err, meta.ErrNoSuchAccount) {
			return meta.Account{}, fmt.Errorf("look up address %s: %w", ad, err)
		}
	}
	if strings.Contains(ad, "@") {
		return meta.Account{}, fmt.Errorf("look up address %s: %w", ad, meta.ErrNoSuchAccount)
	}
	return s.lookupLocalPart(ctx, ad)
}

// lookupLocalPart finds the single account with a login or alias whose
// local part is lp. The members of {g}:addrs in ["lp@", "lpA") are the
// candidates; each distinct account among them is checked against its
// record, so stale members cost a read and change nothing.
func (s *Store) lookupLocalPart(ctx context.Context, lp string) (meta.Account, error) {
	seen := make(map[string]bool)
	var found []meta.Account
	for offset := int64(0); ; offset += localPage {
		members, err := s.c.ZRangeByLex(ctx, s.k.addrs(), &redis.ZRangeBy{
			Min: "[" + lp + "@", Max: "(" + lp + "A", Offset: offset, Count: localPage,
		}).Result()
		if err != nil {
			return meta.Account{}, wrap(err, "look up local part %s", lp)
		}
		for _, m := range members {
			addr, id, ok := strings.Cut(m, "\x00")
			if !ok || meta.LocalPart(addr) != lp || seen[id] {
				continue
			}
			seen[id] = true
			a, err := s.Account(ctx, mail.AccountID(id))
			if errors.Is(err, meta.ErrNoSuchAccount) {
				continue
			}
			if err != nil {
				return meta.Account{}, fmt.Errorf("look up local part %s: %w", lp, err)
			}
			if !hasLocalPart(a, lp) {
				continue
			}
			found = append(found, a)
			if len(found) > 1 {
				return meta.Account{}, fmt.Errorf("look up local part %s: ambiguous: %w", lp, meta.ErrNoSuchAccount)
			}
		}
		if len(members) < localPage {
			break
		}
	}
	if len(found) == 0 {
		return meta.Account{}, fmt.Errorf("look up local part %s: %w", lp, meta.ErrNoSuchAccount)
	}
	return found[0], nil
}

// hasLocalPart reports whether a's login (with a domain) or one of its
// aliases has the local part lp.
func hasLocalPart(a meta.Account, lp string) bool {
	if strings.Contains(a.Login, "@") && meta.LocalPart(a.Login) == lp {
		return true
	}
	for _, al := range a.Aliases {
		if meta.LocalPart(al) == lp {
			return true
		}
	}
	return false
}
