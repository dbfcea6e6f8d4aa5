package metatest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func aliasTests() []test {
	return []test{
		{"AddRemoveLookup", testAliasAddRemove},
		{"Invalid", testAliasInvalid},
		{"NoSuchAccount", testAliasNoAccount},
		{"Conflicts", testAliasConflicts},
		{"LookupUnknown", testLookupAddressUnknown},
		{"BareLocalPart", testBareLocalPart},
		{"DeleteAccountFreesAliases", testDeleteFreesAliases},
		{"ConcurrentAdd", testAliasRace},
	}
}

// addAlias adds alias to acct and fails the test if it cannot.
func addAlias(t testing.TB, s meta.Store, acct mail.AccountID, alias string) meta.Account {
	t.Helper()
	a, err := s.AddAlias(ctx(t), acct, alias)
	if err != nil {
		t.Fatalf("add alias %q to %s: %v", alias, acct, err)
	}
	return a
}

// newAccountLogin creates an account with the given login.
func newAccountLogin(t testing.TB, s meta.Store, login string) meta.Account {
	t.Helper()
	a, err := s.CreateAccount(ctx(t), meta.NewAccount{Login: login, PasswordHash: testHash})
	if err != nil {
		t.Fatalf("create account %q: %v", login, err)
	}
	return a
}

// lookupIs fails the test unless addr finds the account want.
func lookupIs(t testing.TB, s meta.Store, addr string, want mail.AccountID) {
	t.Helper()
	got, err := s.LookupAddress(ctx(t), addr)
	if err != nil {
		t.Errorf("look up address %q: %v, want account %s", addr, err, want)
		return
	}
	if got.ID != want {
		t.Errorf("look up address %q: account %s (%s), want %s", addr, got.ID, got.Login, want)
	}
}

// lookupNone fails the test unless addr finds no account; ambiguous says
// whether the error must say "ambiguous" (or must not).
func lookupNone(t testing.TB, s meta.Store, addr string, ambiguous bool) {
	t.Helper()
	got, err := s.LookupAddress(ctx(t), addr)
	if !errors.Is(err, meta.ErrNoSuchAccount) {
		t.Errorf("look up address %q: got %+v, %v; want ErrNoSuchAccount", addr, got, err)
		return
	}
	if has := strings.Contains(err.Error(), "ambiguous"); has != ambiguous {
		t.Errorf("look up address %q: error %q: mentions ambiguous = %t, want %t", addr, err, has, ambiguous)
	}
}

func testAliasAddRemove(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	u := uniq()
	x, y := "x"+u+"@alias.example", "a"+u+"@alias.example" // y sorts first
	got := addAlias(t, s, a.ID, "  X"+u+"@Alias.Example ")
	if want := []string{x}; !slices.Equal(got.Aliases, want) {
		t.Errorf("after add: Aliases = %q, want %q", got.Aliases, want)
	}
	want := a
	want.Aliases = []string{x}
	sameAccount(t, "record returned by AddAlias", got, want)
	got = addAlias(t, s, a.ID, strings.ToUpper(y))
	want.Aliases = []string{y, x}
	sameAccount(t, "record returned by second AddAlias", got, want)
	sameAccount(t, "Account after AddAlias", account(t, s, a.ID), want)
	byLogin, err := s.LookupLogin(ctx(t), a.Login)
	noErr(t, "lookup login", err)
	sameAccount(t, "LookupLogin after AddAlias", byLogin, want)
	all, err := s.ListAccounts(ctx(t))
	noErr(t, "list accounts", err)
	if i := slices.IndexFunc(all, func(b meta.Account) bool { return b.ID == a.ID }); i < 0 {
		t.Errorf("account %s not listed", a.ID)
	} else {
		sameAccount(t, "listed account", all[i], want)
	}

	for _, addr := range []string{x, strings.ToUpper(x), " " + y + " ", a.Login, strings.ToUpper(a.Login)} {
		lookupIs(t, s, addr, a.ID)
	}
	// An alias is an address for delivery, not a login.
	_, err = s.LookupLogin(ctx(t), x)
	wantErr(t, "LookupLogin of an alias", err, meta.ErrNoSuchAccount)

	got, err = s.RemoveAlias(ctx(t), a.ID, strings.ToUpper(x))
	noErr(t, "remove alias", err)
	want.Aliases = []string{y}
	sameAccount(t, "record returned by RemoveAlias", got, want)
	sameAccount(t, "Account after RemoveAlias", account(t, s, a.ID), want)
	lookupNone(t, s, x, false)
	lookupIs(t, s, y, a.ID)

	_, err = s.RemoveAlias(ctx(t), a.ID, x)
	wantErr(t, "remove the alias again", err, meta.ErrInvalidArgument)
	_, err = s.RemoveAlias(ctx(t), a.ID, a.Login)
	wantErr(t, "remove the login as an alias", err, meta.ErrInvalidArgument)
	_, err = s.RemoveAlias(ctx(t), a.ID, "not an address")
	wantErr(t, "remove a malformed alias", err, meta.ErrInvalidArgument)

	got, err = s.RemoveAlias(ctx(t), a.ID, y)
	noErr(t, "remove last alias", err)
	if len(got.Aliases) != 0 {
		t.Errorf("after removing every alias: Aliases = %q, want none", got.Aliases)
	}
	lookupNone(t, s, y, false)
	// Removed aliases can be added again.
	addAlias(t, s, a.ID, x)
	lookupIs(t, s, x, a.ID)
}

func testAliasInvalid(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	for _, tc := range []struct{ name, alias string }{
		{"Empty", ""},
		{"Blank", "   "},
		{"NoAt", "nodomain"},
		{"NoLocalPart", "@example.com"},
		{"NoDomain", "user@"},
		{"TwoAts", "a@b@example.com"},
		{"InnerSpace", "a b@example.com"},
		{"Control", "a\x01b@example.com"},
		{"NotUTF8", "a\xffb@example.com"},
		{"TooLong", strings.Repeat("a", 300) + "@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.AddAlias(ctx(t), a.ID, tc.alias)
			wantErr(t, fmt.Sprintf("add alias %q", tc.alias), err, meta.ErrInvalidArgument)
		})
	}
	if got := account(t, s, a.ID); len(got.Aliases) != 0 {
		t.Errorf("after invalid aliases: Aliases = %q, want none", got.Aliases)
	}
}

func testAliasNoAccount(t *testing.T, s meta.Store) {
	gone := NewAccount(t, s)
	noErr(t, "delete account", s.DeleteAccount(ctx(t), gone.ID))
	alias := "n" + uniq() + "@example.com"
	for _, id := range []mail.AccountID{gone.ID, "nosuchaccount0", ""} {
		_, err := s.AddAlias(ctx(t), id, alias)
		wantErr(t, fmt.Sprintf("add alias to account %q", id), err, meta.ErrNoSuchAccount)
		_, err = s.RemoveAlias(ctx(t), id, alias)
		wantErr(t, fmt.Sprintf("remove alias of account %q", id), err, meta.ErrNoSuchAccount)
	}
	lookupNone(t, s, alias, false)
	// A failed add left nothing behind.
	b := NewAccount(t, s)
	addAlias(t, s, b.ID, alias)
}

func testAliasConflicts(t *testing.T, s meta.Store) {
	a, b := NewAccount(t, s), NewAccount(t, s)
	x := "shared" + uniq() + "@Example.net"
	addAlias(t, s, a.ID, x)
	for _, tc := range []struct {
		name  string
		acct  mail.AccountID
		alias string
	}{
		{"OtherAccountsAlias", b.ID, x},
		{"OtherAccountsAliasUpper", b.ID, strings.ToUpper(x)},
		{"OwnAliasAgain", a.ID, strings.ToLower(x)},
		{"OwnLogin", a.ID, a.Login},
		{"OwnLoginUpper", a.ID, strings.ToUpper(a.Login)},
		{"OtherAccountsLogin", a.ID, b.Login},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.AddAlias(ctx(t), tc.acct, tc.alias)
			wantErr(t, fmt.Sprintf("add alias %q to %s", tc.alias, tc.acct), err, meta.ErrExists)
		})
	}
	_, err := s.CreateAccount(ctx(t), meta.NewAccount{Login: strings.ToUpper(x), PasswordHash: testHash})
	wantErr(t, "create account with an alias as login", err, meta.ErrExists)

	sameAccount(t, "B after refused aliases", account(t, s, b.ID), b)
	wantA := a
	wantA.Aliases = []string{strings.ToLower(x)}
	sameAccount(t, "A after refused aliases", account(t, s, a.ID), wantA)
	lookupIs(t, s, x, a.ID)

	// Once A lets go, B may take it, and it is no longer A's.
	_, err = s.RemoveAlias(ctx(t), a.ID, x)
	noErr(t, "remove alias", err)
	addAlias(t, s, b.ID, x)
	lookupIs(t, s, x, b.ID)
	_, err = s.RemoveAlias(ctx(t), a.ID, x)
	wantErr(t, "remove B's alias from A", err, meta.ErrInvalidArgument)
	lookupIs(t, s, x, b.ID)
}

func testLookupAddressUnknown(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	addAlias(t, s, a.ID, "known"+uniq()+"@example.com")
	for _, tc := range []struct{ name, addr string }{
		{"Empty", ""},
		{"Blank", "  "},
		{"UnknownAddress", "nobody" + uniq() + "@example.com"},
		{"UnknownLocalPart", "nobody" + uniq()},
		{"KnownLocalPartOtherDomain", meta.LocalPart(a.Login) + "@other.example"},
		{"DomainOnly", "@example.com"},
		{"NotUTF8", "\xff\xfe"},
	} {
		t.Run(tc.name, func(t *testing.T) { lookupNone(t, s, tc.addr, false) })
	}
}

func testBareLocalPart(t *testing.T, s meta.Store) {
	lp := "bare" + uniq()
	a := newAccountLogin(t, s, lp+"@one.example")
	t.Run("UniqueLogin", func(t *testing.T) {
		lookupIs(t, s, lp, a.ID)
		lookupIs(t, s, strings.ToUpper(lp), a.ID)
	})

	b := NewAccount(t, s)
	addAlias(t, s, b.ID, lp+"@two.example")
	t.Run("AmbiguousLoginAndAlias", func(t *testing.T) { lookupNone(t, s, lp, true) })
	t.Run("FullAddressesStillExact", func(t *testing.T) {
		lookupIs(t, s, lp+"@one.example", a.ID)
		lookupIs(t, s, lp+"@two.example", b.ID)
	})
	_, err := s.RemoveAlias(ctx(t), b.ID, lp+"@two.example")
	noErr(t, "remove alias", err)
	t.Run("UniqueAgainAfterRemove", func(t *testing.T) { lookupIs(t, s, lp, a.ID) })

	addAlias(t, s, a.ID, lp+"@three.example")
	t.Run("SameAccountTwice", func(t *testing.T) { lookupIs(t, s, lp, a.ID) })

	c := newAccountLogin(t, s, strings.ToUpper(lp))
	t.Run("LoginWithoutDomainWins", func(t *testing.T) { lookupIs(t, s, lp, c.ID) })
	noErr(t, "delete account", s.DeleteAccount(ctx(t), c.ID))
	t.Run("AfterLoginWithoutDomainDeleted", func(t *testing.T) { lookupIs(t, s, lp, a.ID) })

	lq := "alias" + uniq()
	d, e := NewAccount(t, s), NewAccount(t, s)
	addAlias(t, s, d.ID, lq+"@four.example")
	t.Run("UniqueAlias", func(t *testing.T) { lookupIs(t, s, lq, d.ID) })
	addAlias(t, s, e.ID, lq+"@five.example")
	t.Run("AmbiguousAliases", func(t *testing.T) { lookupNone(t, s, lq, true) })
	noErr(t, "delete account", s.DeleteAccount(ctx(t), d.ID))
	t.Run("UniqueAfterDelete", func(t *testing.T) { lookupIs(t, s, lq, e.ID) })

	t.Run("PrefixIsNoMatch", func(t *testing.T) {
		lookupNone(t, s, lp[:len(lp)-1], false)
		lookupNone(t, s, lq[:len(lq)-1], false)
	})
}

func testDeleteFreesAliases(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	u := uniq()
	x, y := "gone"+u+"@example.com", "lone"+u+"@example.org"
	addAlias(t, s, a.ID, x)
	addAlias(t, s, a.ID, y)
	noErr(t, "delete account", s.DeleteAccount(ctx(t), a.ID))
	lookupNone(t, s, x, false)
	lookupNone(t, s, y, false)
	lookupNone(t, s, meta.LocalPart(y), false)
	lookupNone(t, s, a.Login, false)

	b := NewAccount(t, s)
	addAlias(t, s, b.ID, x)
	lookupIs(t, s, x, b.ID)
	c := newAccountLogin(t, s, y)
	lookupIs(t, s, y, c.ID)
	lookupIs(t, s, meta.LocalPart(y), c.ID)
}

// testAliasRace lets several accounts add the same address at once, many
// times over: exactly one must win each time, and the records and lookups
// must agree on the winner.
func testAliasRace(t *testing.T, s meta.Store) {
	const accounts, rounds = 4, 15
	var accts [accounts]meta.Account
	for i := range accts {
		accts[i] = NewAccount(t, s)
	}
	for r := range rounds {
		alias := fmt.Sprintf("race%d-%s@example.com", r, uniq())
		var wg sync.WaitGroup
		errs := make([]error, accounts)
		start := make(chan struct{})
		for i := range accts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = s.AddAlias(ctx(t), accts[i].ID, alias)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: accounts %d and %d both added %q", r, winner, i, alias)
			case err == nil:
				winner = i
			case !errors.Is(err, meta.ErrExists):
				t.Errorf("round %d: account %d: add alias: %v, want nil or ErrExists", r, i, err)
			}
		}
		if winner < 0 {
			t.Errorf("round %d: nobody added %q: %v", r, alias, errs)
			continue
		}
		lookupIs(t, s, alias, accts[winner].ID)
		for i := range accts {
			has := slices.Contains(account(t, s, accts[i].ID).Aliases, alias)
			if has != (i == winner) {
				t.Errorf("round %d: account %d lists %q: %t, want %t", r, i, alias, has, i == winner)
			}
		}
	}
}
