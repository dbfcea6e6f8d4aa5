package metatest

import (
	"slices"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// CheckAccount checks the invariants of package meta on one account by
// recounting from ListEntries: in every mailbox UIDs are strictly
// increasing and below UIDNEXT, every MODSEQ is positive and at most
// HIGHESTMODSEQ, flags are canonical, sorted and unique without \Recent,
// and the counters (Messages, Unseen, Size) equal the recount; the
// account usage equals the sum over all mailboxes; every blob an entry
// names is referenced and not pending deletion.
//
// It reads the account in several calls, so it must run while nothing
// else changes the account (after the writers are done).
func CheckAccount(t testing.TB, s meta.Store, acct mail.AccountID) {
	t.Helper()
	a, err := s.Account(t.Context(), acct)
	if err != nil {
		t.Errorf("check account %s: %v", acct, err)
		return
	}
	boxes, err := s.ListMailboxes(t.Context(), acct)
	if err != nil {
		t.Errorf("check account %s: list mailboxes: %v", acct, err)
		return
	}
	var names []string
	ids := map[mail.MailboxID]string{}
	blobs := map[mail.BlobID]bool{}
	var bytes, msgs int64
	for _, mb := range boxes {
		names = append(names, mb.Name)
		if other, dup := ids[mb.ID]; dup {
			t.Errorf("mailboxes %q and %q share id %d", other, mb.Name, mb.ID)
		}
		ids[mb.ID] = mb.Name
		if c, err := mail.CanonicalMailboxName(mb.Name); err != nil || c != mb.Name {
			t.Errorf("mailbox name %q is not canonical (%q, %v)", mb.Name, c, err)
		}
		if mb.UIDValidity == 0 || mb.UIDNext == 0 {
			t.Errorf("mailbox %q: UIDVALIDITY %d, UIDNEXT %d; want both > 0", mb.Name, mb.UIDValidity, mb.UIDNext)
		}
		es, err := s.ListEntries(t.Context(), acct, mb.ID, mail.AllUIDs(), meta.FieldFlags|meta.FieldInfo, 0)
		if err != nil {
			t.Errorf("check mailbox %q: list entries: %v", mb.Name, err)
			continue
		}
		var unseen, size int64
		var prev mail.UID
		for _, e := range es {
			if e.UID <= prev {
				t.Errorf("mailbox %q: UID %d after %d: not strictly increasing", mb.Name, e.UID, prev)
			}
			prev = e.UID
			if e.UID >= mb.UIDNext {
				t.Errorf("mailbox %q: UID %d not below UIDNEXT %d", mb.Name, e.UID, mb.UIDNext)
			}
			if e.ModSeq == 0 || e.ModSeq > mb.HighestModSeq {
				t.Errorf("mailbox %q: UID %d MODSEQ %d, want in [1, HIGHESTMODSEQ %d]", mb.Name, e.UID, e.ModSeq, mb.HighestModSeq)
			}
			if !slices.IsSorted(e.Flags) || len(slices.Compact(slices.Clone(e.Flags))) != len(e.Flags) {
				t.Errorf("mailbox %q: UID %d flags %q not sorted and unique", mb.Name, e.UID, e.Flags)
			}
			for _, f := range e.Flags {
				if c, err := mail.CanonicalFlag(string(f)); err != nil || c != f {
					t.Errorf("mailbox %q: UID %d flag %q not canonical", mb.Name, e.UID, f)
				}
			}
			if !hasFlag(e.Flags, mail.FlagSeen) {
				unseen++
			}
			size += e.Size
			if e.Blob == "" {
				t.Errorf("mailbox %q: UID %d has no blob", mb.Name, e.UID)
			}
			blobs[e.Blob] = true
		}
		if int64(len(es)) != mb.Messages || unseen != mb.Unseen || size != mb.Size {
			t.Errorf("mailbox %q counters: %d messages, %d unseen, size %d; recount %d, %d, %d",
				mb.Name, mb.Messages, mb.Unseen, mb.Size, len(es), unseen, size)
		}
		bytes += size
		msgs += int64(len(es))
	}
	if !slices.IsSorted(names) {
		t.Errorf("ListMailboxes not ordered by name: %q", names)
	}
	if a.Quota.UsedBytes != bytes || a.Quota.UsedMessages != msgs {
		t.Errorf("account %s usage %d bytes, %d messages; recount %d, %d",
			acct, a.Quota.UsedBytes, a.Quota.UsedMessages, bytes, msgs)
	}
	pending, err := s.PendingBlobs(t.Context(), acct, later(), 100000)
	if err != nil {
		t.Errorf("check account %s: pending blobs: %v", acct, err)
	}
	for _, b := range pending {
		if blobs[b] {
			t.Errorf("blob %s is pending deletion but an entry refers to it", b)
		}
	}
	for b := range blobs {
		ok, err := s.BlobReferenced(t.Context(), acct, b)
		if err != nil || !ok {
			t.Errorf("blob %s of an entry: referenced %v, %v", b, ok, err)
		}
	}
}
