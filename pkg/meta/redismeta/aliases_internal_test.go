package redismeta

// Tests of the alias claim protocol (aliases.go) that the conformance
// suite cannot see: the states a crash between its steps leaves, and a
// commit that loses to a take-over.

import (
	"errors"
	"slices"
	"testing"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func newAliasAccount(t *testing.T, s *Store, name string) meta.Account {
	t.Helper()
	a, err := s.CreateAccount(t.Context(), meta.NewAccount{Login: name + "-" + testenv.Prefix(t) + "@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	return a
}

// claim runs step 1 of AddAlias alone and returns the claim number.
func claim(t *testing.T, s *Store, id mail.AccountID, al string) string {
	t.Helper()
	res, err := scriptClaimAlias.Run(t.Context(), s.c, s.k.global(), al, string(id), "").StringSlice()
	if err != nil || len(res) != 2 || res[0] != "ok" {
		t.Fatalf("claim %s for %s: %q, %v", al, id, res, err)
	}
	return res[1]
}

func addAlias(t *testing.T, s *Store, id mail.AccountID, al string) {
	t.Helper()
	if _, err := s.AddAlias(t.Context(), id, al); err != nil {
		t.Fatalf("add alias %s to %s: %v", al, id, err)
	}
}

func wantLookup(t *testing.T, s *Store, addr string, want mail.AccountID) {
	t.Helper()
	a, err := s.LookupAddress(t.Context(), addr)
	switch {
	case want == "" && !errors.Is(err, meta.ErrNoSuchAccount):
		t.Errorf("look up %q: %+v, %v; want ErrNoSuchAccount", addr, a, err)
	case want != "" && (err != nil || a.ID != want):
		t.Errorf("look up %q: %q, %v; want %s", addr, a.ID, err, want)
	}
}

// TestAliasCrashHealing leaves, by running only the first steps of an
// operation, each state a crash can leave, and checks that lookups ignore
// the stale index entries and that they block neither another account's
// AddAlias nor a CreateAccount of the address as a login.
func TestAliasCrashHealing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash func(t *testing.T, s *Store, x meta.Account, als []string)
	}{
		{"AddAliasAfterClaim", func(t *testing.T, s *Store, x meta.Account, als []string) {
			for _, al := range als {
				claim(t, s, x.ID, al)
			}
		}},
		{"RemoveAliasAfterRecord", func(t *testing.T, s *Store, x meta.Account, als []string) {
			for _, al := range als {
				addAlias(t, s, x.ID, al)
				if err := scriptRemoveAlias.Run(t.Context(), s.c, []string{s.k.base(x.ID)}, al).Err(); err != nil {
					t.Fatalf("remove alias from record: %v", err)
				}
			}
		}},
		{"DeleteAccountAfterDrop", func(t *testing.T, s *Store, x meta.Account, als []string) {
			for _, al := range als {
				addAlias(t, s, x.ID, al)
			}
			if err := scriptDropAccount.Run(t.Context(), s.c, []string{s.k.base(x.ID)}, "delete").Err(); err != nil {
				t.Fatalf("drop account: %v", err)
			}
		}},
	} {
		for _, cluster := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/standalone", true: "/cluster"}[cluster]
			t.Run(name, func(t *testing.T) {
				s := newTestStore(t, cluster)
				x, y := newAliasAccount(t, s, "x"), newAliasAccount(t, s, "y")
				p := testenv.Prefix(t)
				taken, asLogin := "taken-"+p+"@example.com", "login-"+p+"@example.com"
				tc.crash(t, s, x, []string{taken, asLogin})
				if v, _ := s.c.HGet(t.Context(), s.k.aliases(), taken).Result(); v == "" {
					t.Fatalf("the crash left no index entry for %s", taken)
				}

				for _, addr := range []string{taken, asLogin, meta.LocalPart(taken), meta.LocalPart(asLogin)} {
					wantLookup(t, s, addr, "")
				}
				if xa, err := s.Account(t.Context(), x.ID); err == nil && len(xa.Aliases) != 0 {
					t.Errorf("account x lists %q after the crash", xa.Aliases)
				}

				addAlias(t, s, y.ID, taken)
				wantLookup(t, s, taken, y.ID)
				wantLookup(t, s, meta.LocalPart(taken), y.ID)
				z, err := s.CreateAccount(t.Context(), meta.NewAccount{Login: asLogin, PasswordHash: "x"})
				if err != nil {
					t.Fatalf("create account with the stale alias as login: %v", err)
				}
				wantLookup(t, s, asLogin, z.ID)
				wantLookup(t, s, meta.LocalPart(asLogin), z.ID)
				if xa, err := s.Account(t.Context(), x.ID); err == nil && len(xa.Aliases) != 0 {
					t.Errorf("account x lists %q after the take-over", xa.Aliases)
				}
			})
		}
	}
}

// TestAliasCommitRace interleaves the steps of two AddAlias calls by hand:
// a commit after a take-over fenced its claim fails, a commit before it
// wins, and a revocation does not hinder a later claim of the same
// account.
func TestAliasCommitRace(t *testing.T) {
	s := newTestStore(t, true)
	ctx := t.Context()
	x, y := newAliasAccount(t, s, "x"), newAliasAccount(t, s, "y")
	al := "race-" + testenv.Prefix(t) + "@example.com"

	t.Run("CommitAfterTakeover", func(t *testing.T) {
		c := claim(t, s, x.ID, al)
		addAlias(t, s, y.ID, al) // fences x's claim c
		err := wrap(scriptCommitAlias.Run(ctx, s.c, []string{s.k.base(x.ID)}, al, c).Err(), "commit")
		if !errors.Is(err, meta.ErrConflict) {
			t.Fatalf("late commit of a fenced claim: %v, want ErrConflict", err)
		}
		wantLookup(t, s, al, y.ID)
		if xa, _ := s.Account(ctx, x.ID); slices.Contains(xa.Aliases, al) {
			t.Errorf("x lists %s after losing", al)
		}
		if _, err := s.RemoveAlias(ctx, y.ID, al); err != nil {
			t.Fatalf("remove alias: %v", err)
		}
	})
	t.Run("LaterClaimAfterRevocation", func(t *testing.T) {
		addAlias(t, s, x.ID, al)
		wantLookup(t, s, al, x.ID)
		if n, _ := s.c.HLen(ctx, s.k.alFence(x.ID)).Result(); n != 0 {
			t.Errorf("revocations left after a later commit: %d", n)
		}
		if _, err := s.RemoveAlias(ctx, x.ID, al); err != nil {
			t.Fatalf("remove alias: %v", err)
		}
	})
	t.Run("CommitBeforeTakeover", func(t *testing.T) {
		c := claim(t, s, x.ID, al)
		if err := scriptCommitAlias.Run(ctx, s.c, []string{s.k.base(x.ID)}, al, c).Err(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		if _, err := s.AddAlias(ctx, y.ID, al); !errors.Is(err, meta.ErrExists) {
			t.Errorf("add a committed alias to another account: %v, want ErrExists", err)
		}
		wantLookup(t, s, al, x.ID)
	})
}
