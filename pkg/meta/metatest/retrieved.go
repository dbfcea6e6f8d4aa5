package metatest

import (
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// retrievedTests cover MarkRetrieved and Entry.Retrieved (the POP3 first
// retrieval behind the RFC 2449 EXPIRE reaper).
func retrievedTests() []test {
	return []test{
		{"MarkRetrieved", testMarkRetrieved},
		{"MarkRetrievedInvisible", testMarkRetrievedInvisible},
		{"MarkRetrievedNotCopied", testMarkRetrievedNotCopied},
		{"MarkRetrievedErrors", testMarkRetrievedErrors},
	}
}

// retrievedAt lists the mailbox with FieldInfo and returns each entry's
// Retrieved by UID.
func retrievedAt(t testing.TB, s meta.Store, acct mail.AccountID, mbox mail.MailboxID) map[mail.UID]time.Time {
	t.Helper()
	es, err := s.ListEntries(ctx(t), acct, mbox, mail.AllUIDs(), meta.FieldInfo, 0)
	noErr(t, "list entries", err)
	out := make(map[mail.UID]time.Time, len(es))
	for _, e := range es {
		out[e.UID] = e.Retrieved
	}
	return out
}

func markRetrieved(t testing.TB, s meta.Store, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, at time.Time) {
	t.Helper()
	noErr(t, "mark retrieved "+uids.String(), s.MarkRetrieved(ctx(t), acct, mbox, uids, at))
}

// wantRetrieved compares the marks of UIDs with want (zero: unmarked).
func wantRetrieved(t testing.TB, what string, got map[mail.UID]time.Time, want map[mail.UID]time.Time) {
	t.Helper()
	for u, w := range want {
		g, ok := got[u]
		if !ok {
			t.Errorf("%s: UID %d missing", what, u)
			continue
		}
		if !g.Equal(w) {
			t.Errorf("%s: UID %d retrieved at %v, want %v", what, u, g, w)
		}
	}
}

// testMarkRetrieved: the first mark of an entry sticks, later marks keep
// it, other entries stay unmarked, missing UIDs are ignored, and the mark
// keeps at least millisecond precision.
func testMarkRetrieved(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct).ID
	u1 := Append(t, s, acct, in).UID
	u2 := Append(t, s, acct, in).UID
	u3 := Append(t, s, acct, in).UID
	var zero time.Time

	wantRetrieved(t, "fresh entries", retrievedAt(t, s, acct, in), map[mail.UID]time.Time{u1: zero, u2: zero, u3: zero})

	// Sub-millisecond digits may be dropped, nothing coarser.
	t1 := time.Date(2025, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	t1ms := t1.Truncate(time.Millisecond)
	markRetrieved(t, s, acct, in, mail.NewUIDSet(u1, u2, u3+100), t1)
	got := retrievedAt(t, s, acct, in)
	wantRetrieved(t, "after the first mark", got, map[mail.UID]time.Time{u1: t1ms, u2: t1ms, u3: zero})
	if len(got) != 3 {
		t.Errorf("mailbox holds %d entries after marking a missing UID, want 3", len(got))
	}

	t2 := t1.Add(36 * time.Hour)
	t2ms := t2.Truncate(time.Millisecond)
	markRetrieved(t, s, acct, in, mail.AllUIDs(), t2)
	wantRetrieved(t, "after the second mark", retrievedAt(t, s, acct, in), map[mail.UID]time.Time{u1: t1ms, u2: t1ms, u3: t2ms})

	// An earlier time does not replace a mark either: the first wins.
	markRetrieved(t, s, acct, in, mail.NewUIDSet(u1), t1.Add(-time.Hour))
	wantRetrieved(t, "after an earlier mark", retrievedAt(t, s, acct, in), map[mail.UID]time.Time{u1: t1ms})

	// Every read path with FieldInfo carries the mark: a direct lookup,
	// FieldAll, and the changedSince path.
	es, err := s.ListEntries(ctx(t), acct, in, mail.NewUIDSet(u2), meta.FieldAll, 0)
	noErr(t, "list one entry", err)
	if len(es) != 1 || !es[0].Retrieved.Equal(t1ms) {
		t.Errorf("ListEntries(%d, FieldAll) = %+v, want Retrieved %v", u2, es, t1ms)
	}
	before := mailboxByID(t, s, acct, in).HighestModSeq
	_, err = s.StoreFlags(ctx(t), acct, in, meta.FlagChange{UIDs: mail.NewUIDSet(u3), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
	noErr(t, "store flags", err)
	es, err = s.ListEntries(ctx(t), acct, in, mail.AllUIDs(), meta.FieldInfo, before)
	noErr(t, "list changed entries", err)
	if len(es) != 1 || es[0].UID != u3 || !es[0].Retrieved.Equal(t2ms) {
		t.Errorf("ListEntries(changedSince %d) = %+v, want UID %d retrieved at %v", before, es, u3, t2ms)
	}

	// Expunge takes the mark with the entry; the others keep theirs.
	_, _, err = s.Expunge(ctx(t), acct, in, mail.NewUIDSet(u1))
	noErr(t, "expunge", err)
	got = retrievedAt(t, s, acct, in)
	if _, ok := got[u1]; ok || len(got) != 2 {
		t.Errorf("after expunge of %d: %v", u1, got)
	}
	wantRetrieved(t, "after expunge", got, map[mail.UID]time.Time{u2: t1ms, u3: t2ms})
	CheckAccount(t, s, acct)
}

// testMarkRetrievedInvisible: marking is not an IMAP change: no MODSEQ
// (neither the entries' nor HIGHESTMODSEQ), nothing in ChangesSince, no
// event (the next event is that of the next real change).
func testMarkRetrievedInvisible(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct).ID
	u1 := Append(t, s, acct, in).UID
	u2 := Append(t, s, acct, in).UID
	mbBefore := mailboxByID(t, s, acct, in)
	esBefore := entries(t, s, acct, in)
	w := watch(t, s, acct)

	markRetrieved(t, s, acct, in, mail.NewUIDSet(u1, u2), time.Now())

	mbAfter := mailboxByID(t, s, acct, in)
	if mbAfter.HighestModSeq != mbBefore.HighestModSeq || mbAfter.Messages != mbBefore.Messages ||
		mbAfter.Unseen != mbBefore.Unseen || mbAfter.Size != mbBefore.Size || mbAfter.UIDNext != mbBefore.UIDNext {
		t.Errorf("mailbox changed by MarkRetrieved:\n got %+v\nfrom %+v", mbAfter, mbBefore)
	}
	esAfter := entries(t, s, acct, in)
	if len(esAfter) != len(esBefore) {
		t.Fatalf("%d entries after MarkRetrieved, %d before", len(esAfter), len(esBefore))
	}
	for i := range esAfter {
		if esAfter[i].ModSeq != esBefore[i].ModSeq || !flagsEqual(normFlags(esAfter[i].Flags), normFlags(esBefore[i].Flags)) {
			t.Errorf("entry %d: MODSEQ %d flags %v, before %d %v", esAfter[i].UID,
				esAfter[i].ModSeq, esAfter[i].Flags, esBefore[i].ModSeq, esBefore[i].Flags)
		}
	}
	cs, err := s.ChangesSince(ctx(t), acct, in, mbBefore.HighestModSeq)
	noErr(t, "changes since", err)
	if len(cs.Changed) != 0 || !cs.Vanished.Empty() || cs.HighestModSeq != mbBefore.HighestModSeq {
		t.Errorf("ChangesSince(%d) after MarkRetrieved = %+v, want nothing", mbBefore.HighestModSeq, cs)
	}

	// Events of one account arrive in order: had MarkRetrieved published
	// one, it would come before the flags event.
	res, err := s.StoreFlags(ctx(t), acct, in, meta.FlagChange{UIDs: mail.NewUIDSet(u1), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagFlagged}})
	noErr(t, "store flags", err)
	if len(res.Updated) != 1 {
		t.Fatalf("store flags updated %+v", res.Updated)
	}
	ev := w.next("the first event after MarkRetrieved", func(meta.Event) bool { return true })
	if ev.Kind != meta.EventFlags || ev.Mailbox != in || ev.ModSeq != res.Updated[0].ModSeq {
		t.Errorf("first event after MarkRetrieved is %s, want the flags event at MODSEQ %d", fmtEvent(ev), res.Updated[0].ModSeq)
	}
}

// testMarkRetrievedNotCopied: a copy or a move is a new message, never
// retrieved; the source keeps its mark. Renaming INBOX moves its entries,
// so they lose the mark too.
func testMarkRetrievedNotCopied(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct).ID
	other := createMailbox(t, s, acct, "Other").ID
	u1 := Append(t, s, acct, in).UID
	u2 := Append(t, s, acct, in).UID
	u3 := Append(t, s, acct, in).UID
	at := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	markRetrieved(t, s, acct, in, mail.NewUIDSet(u1, u2, u3), at)

	c, err := s.Copy(ctx(t), acct, in, mail.NewUIDSet(u1), other)
	noErr(t, "copy", err)
	m, err := s.Move(ctx(t), acct, in, mail.NewUIDSet(u2), other)
	noErr(t, "move", err)
	if len(c.Dest) != 1 || len(m.Dest) != 1 {
		t.Fatalf("copy %+v, move %+v: want one destination each", c, m)
	}
	var zero time.Time
	wantRetrieved(t, "copy and move destinations", retrievedAt(t, s, acct, other),
		map[mail.UID]time.Time{c.Dest[0]: zero, m.Dest[0]: zero})
	wantRetrieved(t, "copy source", retrievedAt(t, s, acct, in), map[mail.UID]time.Time{u1: at, u3: at})

	// A copy back into the same mailbox is a new entry too.
	c2, err := s.Copy(ctx(t), acct, in, mail.NewUIDSet(u3), in)
	noErr(t, "copy within the mailbox", err)
	if len(c2.Dest) != 1 {
		t.Fatalf("copy within the mailbox: %+v", c2)
	}
	wantRetrieved(t, "copy within the mailbox", retrievedAt(t, s, acct, in),
		map[mail.UID]time.Time{u3: at, c2.Dest[0]: zero})

	noErr(t, "rename INBOX", s.RenameMailbox(ctx(t), acct, mail.Inbox, "Old"))
	old := mailbox(t, s, acct, "Old").ID
	got := retrievedAt(t, s, acct, old)
	if len(got) != 3 {
		t.Fatalf("renamed INBOX holds %d entries, want 3", len(got))
	}
	for u, r := range got {
		if !r.IsZero() {
			t.Errorf("entry %d moved by RENAME INBOX kept Retrieved %v", u, r)
		}
	}
	CheckAccount(t, s, acct)
}

// testMarkRetrievedErrors: unknown mailboxes and accounts fail as in the
// other Messages methods; an unset time is an invalid argument; an empty
// UID set is no error.
func testMarkRetrievedErrors(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct).ID
	gone := createMailbox(t, s, acct, "Gone").ID
	noErr(t, "delete mailbox", s.DeleteMailbox(ctx(t), acct, "Gone"))
	now := time.Now()

	tests := []struct {
		name string
		acct mail.AccountID
		mbox mail.MailboxID
		at   time.Time
		want []error
	}{
		{"unknown mailbox", acct, mail.MailboxID(1 << 40), now, []error{meta.ErrNoSuchMailbox}},
		{"deleted mailbox", acct, gone, now, []error{meta.ErrNoSuchMailbox}},
		{"unknown account", deletedAccount(t, s), in, now, []error{meta.ErrNoSuchAccount}},
		{"zero time", acct, in, time.Time{}, []error{meta.ErrInvalidArgument}},
		{"before the epoch", acct, in, time.Unix(-86400, 0), []error{meta.ErrInvalidArgument}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.MarkRetrieved(ctx(t), tc.acct, tc.mbox, mail.AllUIDs(), tc.at)
			wantErr(t, "mark retrieved", err, tc.want...)
		})
	}
	noErr(t, "mark an empty UID set", s.MarkRetrieved(ctx(t), acct, in, nil, now))
	noErr(t, "mark in an empty mailbox", s.MarkRetrieved(ctx(t), acct, in, mail.AllUIDs(), now))
}
