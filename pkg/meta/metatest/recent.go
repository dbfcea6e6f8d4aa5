package metatest

import (
	"sync"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// claim calls ClaimRecent and fails the test on error.
func claim(t testing.TB, s meta.Store, acct mail.AccountID, mbox mail.MailboxID, upTo mail.UID) mail.UID {
	t.Helper()
	prev, err := s.ClaimRecent(ctx(t), acct, mbox, upTo)
	noErr(t, "claim recent", err)
	return prev
}

// testClaimRecent: the mark starts at 0, each claim returns the mark
// before it, and a lower claim never lowers the mark.
func testClaimRecent(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct).ID
	other := createMailbox(t, s, acct, "Other").ID
	for i, tc := range []struct {
		mbox     mail.MailboxID
		upTo     mail.UID
		wantPrev mail.UID
	}{
		{in, 3, 0},
		{in, 5, 3},
		{in, 2, 5}, // lower: no change
		{in, 5, 5}, // equal: nothing new
		{in, 0, 5},
		{other, 1, 0}, // marks are per mailbox
		{in, 9, 5},
		{other, 0, 1},
	} {
		if got := claim(t, s, acct, tc.mbox, tc.upTo); got != tc.wantPrev {
			t.Errorf("claim %d (mailbox %d up to %d) returned %d, want %d", i, tc.mbox, tc.upTo, got, tc.wantPrev)
		}
	}

	// A recreated mailbox is a new mailbox: its mark starts again at 0.
	noErr(t, "delete mailbox", s.DeleteMailbox(ctx(t), acct, "Other"))
	_, err := s.ClaimRecent(ctx(t), acct, other, 4)
	wantErr(t, "claim recent in a deleted mailbox", err, meta.ErrNoSuchMailbox)
	again := createMailbox(t, s, acct, "Other").ID
	if got := claim(t, s, acct, again, 2); got != 0 {
		t.Errorf("first claim in a recreated mailbox returned %d, want 0", got)
	}

	_, err = s.ClaimRecent(ctx(t), acct, mail.MailboxID(1<<40), 1)
	wantErr(t, "claim recent in an unknown mailbox", err, meta.ErrNoSuchMailbox)
	_, err = s.ClaimRecent(ctx(t), deletedAccount(t, s), in, 1)
	wantErr(t, "claim recent in an unknown account", err, meta.ErrNoSuchAccount)
}

// testClaimRecentRace: 16 sessions claim increasing marks at once; every
// UID up to the final mark is claimed by exactly one of them, which is what
// makes \Recent hold in exactly one session across gateway pods.
func testClaimRecentRace(t *testing.T, s meta.Store) {
	const (
		workers = 16
		steps   = 20
	)
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct).ID

	type span struct{ prev, upTo mail.UID }
	var (
		mu    sync.Mutex
		spans []span
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := 1; k <= steps; k++ {
				upTo := mail.UID(2*k + w%2)
				prev, err := s.ClaimRecent(ctx(t), acct, in, upTo)
				if err != nil {
					t.Errorf("claim recent up to %d: %v", upTo, err)
					return
				}
				if prev < upTo {
					mu.Lock()
					spans = append(spans, span{prev, upTo})
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()

	const top = 2*steps + 1
	if got := claim(t, s, acct, in, 0); got != top {
		t.Fatalf("mark after the race is %d, want %d", got, top)
	}
	owners := make(map[mail.UID]int, top)
	for _, sp := range spans {
		for u := sp.prev + 1; u <= sp.upTo; u++ {
			owners[u]++
		}
	}
	for u := mail.UID(1); u <= top; u++ {
		if owners[u] != 1 {
			t.Errorf("UID %d claimed %d times, want exactly once", u, owners[u])
		}
	}
}
