// Package metatest is the conformance suite of the metadata contract in
// package meta. Every backend (localmeta, redismeta, grpcmeta) calls Run
// from its own tests with a factory of fresh stores, against the real
// backing servers: a backend earns its place by passing it.
//
// It is an ordinary package rather than a _test package so that backends
// and the multi-process tests can import it; besides Run it exports the
// invariant checker CheckAccount and a few helpers (NewAccount, Append,
// NewEntry) that other tests reuse.
//
// The suite asserts what the doc comments of package meta promise, and no
// more: where the contract leaves a choice to the backend (for instance
// the HIGHESTMODSEQ of an empty mailbox, or the MODSEQ a MOVE reports) the
// suite does not look. It never sleeps to wait for a condition: events are
// awaited on their channel with a generous failure bound, and expiries are
// polled until they happen or the bound passes.
package metatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// waitBound bounds every wait for something asynchronous (an event, an
// expiry). It is a failure bound, not a timing assertion: a correct
// backend is expected to be far quicker.
const waitBound = 10 * time.Second

// test is one named subtest; it gets a fresh store.
type test struct {
	name string
	fn   func(t *testing.T, s meta.Store)
}

// Run runs the conformance suite. newStore returns a fresh, empty store
// for one subtest and registers its own cleanup (closing the store,
// removing its data) with t.Cleanup. Subtests run in parallel, each with
// its own store.
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Accounts", accountTests()},
		{"Aliases", aliasTests()},
		{"Mailboxes", mailboxTests()},
		{"Messages", messageTests()},
		{"Retrieved", retrievedTests()},
		{"Changes", changeTests()},
		{"Feed", feedTests()},
		{"Leases", leaseTests()},
		{"Counters", counterTests()},
		{"Slots", slotTests()},
		{"Concurrency", concurrencyTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, newStore(t))
				})
			}
		})
	}
}

var uniqSeq atomic.Uint64

// uniq returns a string unique within this process and, thanks to the
// random part, very likely across processes sharing a backend.
func uniq() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%d%s", uniqSeq.Add(1), hex.EncodeToString(b[:]))
}

// testHash is a well-formed argon2id PHC string; the store treats it as
// opaque.
const testHash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

// NewAccount creates an account with a unique login, no quota limits and
// the default mailboxes, and fails the test if it cannot.
func NewAccount(t testing.TB, s meta.Store) meta.Account {
	t.Helper()
	a, err := s.CreateAccount(t.Context(), meta.NewAccount{
		Login:        "user" + uniq() + "@example.com",
		PasswordHash: testHash,
	})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	return a
}

var entrySeq atomic.Int64

// NewEntry returns a NewEntry with the given flags, a fresh blob id, and a
// size, internal date and structure distinct from every other NewEntry of
// this process, so that mix-ups show.
func NewEntry(flags ...mail.Flag) meta.NewEntry {
	n := entrySeq.Add(1)
	return meta.NewEntry{
		Flags:        flags,
		InternalDate: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second),
		Size:         1000 + n,
		Blob:         blob.NewBlobID(time.Now()),
		Structure:    []byte(fmt.Sprintf(`{"structure":%d}`, n)),
	}
}

// Append appends a NewEntry with flags to mailbox mbox of acct and fails
// the test if it cannot.
func Append(t testing.TB, s meta.Store, acct mail.AccountID, mbox mail.MailboxID, flags ...mail.Flag) meta.Appended {
	t.Helper()
	ap, err := s.AppendEntry(t.Context(), acct, mbox, NewEntry(flags...))
	if err != nil {
		t.Fatalf("append to mailbox %d: %v", mbox, err)
	}
	return ap
}

// appendEntry appends e and fails the test if it cannot.
func appendEntry(t testing.TB, s meta.Store, acct mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) meta.Appended {
	t.Helper()
	ap, err := s.AppendEntry(t.Context(), acct, mbox, e)
	if err != nil {
		t.Fatalf("append to mailbox %d: %v", mbox, err)
	}
	return ap
}

// mailbox returns the mailbox by name and fails the test if it cannot.
func mailbox(t testing.TB, s meta.Store, acct mail.AccountID, name string) meta.Mailbox {
	t.Helper()
	mb, err := s.Mailbox(t.Context(), acct, name)
	if err != nil {
		t.Fatalf("mailbox %q: %v", name, err)
	}
	return mb
}

// mailboxByID returns the mailbox by id and fails the test if it cannot.
func mailboxByID(t testing.TB, s meta.Store, acct mail.AccountID, id mail.MailboxID) meta.Mailbox {
	t.Helper()
	mb, err := s.MailboxByID(t.Context(), acct, id)
	if err != nil {
		t.Fatalf("mailbox %d: %v", id, err)
	}
	return mb
}

// createMailbox creates name and fails the test if it cannot.
func createMailbox(t testing.TB, s meta.Store, acct mail.AccountID, name string) meta.Mailbox {
	t.Helper()
	mb, err := s.CreateMailbox(t.Context(), acct, name, "")
	if err != nil {
		t.Fatalf("create mailbox %q: %v", name, err)
	}
	return mb
}

// account returns the account record and fails the test if it cannot.
func account(t testing.TB, s meta.Store, acct mail.AccountID) meta.Account {
	t.Helper()
	a, err := s.Account(t.Context(), acct)
	if err != nil {
		t.Fatalf("account %s: %v", acct, err)
	}
	return a
}

// entries lists every entry of the mailbox with all fields.
func entries(t testing.TB, s meta.Store, acct mail.AccountID, mbox mail.MailboxID) []meta.Entry {
	t.Helper()
	es, err := s.ListEntries(t.Context(), acct, mbox, mail.AllUIDs(), meta.FieldAll, 0)
	if err != nil {
		t.Fatalf("list entries of mailbox %d: %v", mbox, err)
	}
	return es
}

// entryUIDs returns the UIDs of es.
func entryUIDs(es []meta.Entry) []mail.UID {
	out := make([]mail.UID, 0, len(es))
	for _, e := range es {
		out = append(out, e.UID)
	}
	return out
}

// inbox returns the INBOX of acct.
func inbox(t testing.TB, s meta.Store, acct mail.AccountID) meta.Mailbox {
	t.Helper()
	return mailbox(t, s, acct, mail.Inbox)
}

// wantErr fails the test unless err matches one of targets (errors.Is).
func wantErr(t testing.TB, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	t.Errorf("%s: got error %v, want %v", what, err, targets)
}

// noErr fails the test now if err is not nil.
func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// flagsEqual reports whether two flag lists are equal, order included.
func flagsEqual(a, b []mail.Flag) bool { return slices.Equal(a, b) }

// hasFlag reports whether fs holds f.
func hasFlag(fs []mail.Flag, f mail.Flag) bool { return slices.Contains(fs, f) }

// pendingSet returns the pending blobs of acct that lost their last
// reference before olderThan, as a set.
func pendingSet(t testing.TB, s meta.Store, acct mail.AccountID, olderThan time.Time) map[mail.BlobID]bool {
	t.Helper()
	ids, err := s.PendingBlobs(t.Context(), acct, olderThan, 10000)
	if err != nil {
		t.Fatalf("pending blobs: %v", err)
	}
	set := make(map[mail.BlobID]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// referenced reports BlobReferenced and fails the test on an error.
func referenced(t testing.TB, s meta.Store, acct mail.AccountID, id mail.BlobID) bool {
	t.Helper()
	ok, err := s.BlobReferenced(t.Context(), acct, id)
	if err != nil {
		t.Fatalf("blob referenced %s: %v", id, err)
	}
	return ok
}

// later is a time safely after every deletion a test made: PendingBlobs
// with it lists every queued blob, whatever the clock resolution of the
// backend.
func later() time.Time { return time.Now().Add(time.Minute) }

// earlier is a time safely before anything a test does.
func earlier() time.Time { return time.Now().Add(-time.Minute) }

// ctx is shorthand for the test's context.
func ctx(t testing.TB) context.Context { return t.Context() }
