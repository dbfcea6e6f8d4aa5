package metatest

import (
	"slices"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func changeTests() []test {
	return []test{
		{"ChangesSince", testChangesSince},
		{"Vanished", testVanished},
		{"HighestModSeq", testChangesHighestModSeq},
	}
}

// changes reads ChangesSince and checks what holds for every change set.
func changes(t testing.TB, s meta.Store, acct mail.AccountID, mb mail.MailboxID, since mail.ModSeq) meta.ChangeSet {
	t.Helper()
	cs, err := s.ChangesSince(ctx(t), acct, mb, since)
	noErr(t, "changes since", err)
	if hi := mailboxByID(t, s, acct, mb).HighestModSeq; cs.HighestModSeq != hi {
		t.Errorf("ChangeSet.HighestModSeq %d, mailbox says %d", cs.HighestModSeq, hi)
	}
	for i, e := range cs.Changed {
		if e.ModSeq <= since || e.ModSeq > cs.HighestModSeq {
			t.Errorf("changed UID %d has MODSEQ %d, want in (%d, %d]", e.UID, e.ModSeq, since, cs.HighestModSeq)
		}
		if i > 0 && e.UID <= cs.Changed[i-1].UID {
			t.Errorf("Changed not in UID order: %v", entryUIDs(cs.Changed))
		}
		if cs.Vanished.Contains(e.UID) {
			t.Errorf("UID %d both changed and vanished", e.UID)
		}
	}
	if cs.Trimmed {
		t.Errorf("ChangesSince(%d) says Trimmed on a short, fresh log", since)
	}
	return cs
}

func testChangesSince(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := createMailbox(t, s, acct, "Changes").ID
	m0 := mailboxByID(t, s, acct, mb).HighestModSeq
	if cs := changes(t, s, acct, mb, m0); len(cs.Changed) != 0 || !cs.Vanished.Empty() {
		t.Errorf("changes of an empty mailbox: %+v", cs)
	}
	u := []mail.UID{
		Append(t, s, acct, mb).UID,
		Append(t, s, acct, mb, mail.FlagSeen).UID,
		Append(t, s, acct, mb, "$Label").UID,
	}
	cs := changes(t, s, acct, mb, m0)
	if got := entryUIDs(cs.Changed); !slices.Equal(got, u) {
		t.Errorf("changes after appends: %v, want %v", got, u)
	}
	if len(cs.Changed) == 3 && (!flagsEqual(cs.Changed[1].Flags, []mail.Flag{mail.FlagSeen}) || !flagsEqual(cs.Changed[2].Flags, []mail.Flag{"$Label"})) {
		t.Errorf("changes carry flags %v, %v", cs.Changed[1].Flags, cs.Changed[2].Flags)
	}
	m1 := cs.HighestModSeq

	res, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: mail.NewUIDSet(u[1]), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagFlagged}})
	noErr(t, "store flags", err)
	if len(res.Updated) != 1 {
		t.Fatalf("store updated %+v", res.Updated)
	}
	cs = changes(t, s, acct, mb, m1)
	want := []mail.Flag{mail.FlagFlagged, mail.FlagSeen}
	if len(cs.Changed) != 1 || cs.Changed[0].UID != u[1] || !flagsEqual(cs.Changed[0].Flags, want) ||
		cs.Changed[0].ModSeq != res.Updated[0].ModSeq {
		t.Errorf("changes after flags: %+v, want UID %d with %v at MODSEQ %d", cs.Changed, u[1], want, res.Updated[0].ModSeq)
	}

	gone, m3, err := s.Expunge(ctx(t), acct, mb, mail.NewUIDSet(u[2]))
	noErr(t, "expunge", err)
	if len(gone) != 1 {
		t.Fatalf("expunged %v", gone)
	}
	cs = changes(t, s, acct, mb, m1)
	if got := entryUIDs(cs.Changed); !slices.Equal(got, []mail.UID{u[1]}) || cs.Vanished.String() != mail.NewUIDSet(u[2]).String() {
		t.Errorf("changes after expunge: changed %v, vanished %v; want [%d], %d", got, cs.Vanished, u[1], u[2])
	}
	if cs.HighestModSeq != m3 {
		t.Errorf("HighestModSeq %d, want the expunge's %d", cs.HighestModSeq, m3)
	}
	cs = changes(t, s, acct, mb, m3)
	if len(cs.Changed) != 0 || !cs.Vanished.Empty() {
		t.Errorf("changes since the last change: %+v", cs)
	}
}

func testVanished(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	other := createMailbox(t, s, acct, "Other").ID
	u := appendN(t, s, acct, mb, 4)
	_, mA, err := s.Expunge(ctx(t), acct, mb, mail.NewUIDSet(u[0]))
	noErr(t, "expunge", err)
	_, err = s.Move(ctx(t), acct, mb, mail.NewUIDSet(u[1]), other)
	noErr(t, "move", err)

	cs := changes(t, s, acct, mb, 0)
	if !cs.Vanished.Contains(u[0]) || !cs.Vanished.Contains(u[1]) || cs.Vanished.Count() != 2 {
		t.Errorf("vanished since 0: %v, want %d and %d", cs.Vanished, u[0], u[1])
	}
	if got := entryUIDs(cs.Changed); !slices.Equal(got, u[2:]) {
		t.Errorf("changed since 0: %v, want %v", got, u[2:])
	}
	cs = changes(t, s, acct, mb, mA)
	if cs.Vanished.Contains(u[0]) || !cs.Vanished.Contains(u[1]) {
		t.Errorf("vanished since the first expunge (MODSEQ %d): %v, want only %d", mA, cs.Vanished, u[1])
	}
	if len(cs.Changed) != 0 {
		t.Errorf("changed since %d: %v, want none", mA, entryUIDs(cs.Changed))
	}
	// The destination of the move sees an append.
	if cs := changes(t, s, acct, other, 0); len(cs.Changed) != 1 || !cs.Vanished.Empty() {
		t.Errorf("changes of the move's destination: %+v", cs)
	}
}

func testChangesHighestModSeq(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	other := createMailbox(t, s, acct, "Other").ID
	prev := changes(t, s, acct, mb, 0).HighestModSeq
	ops := []struct {
		name string
		do   func()
	}{
		{"append", func() { Append(t, s, acct, mb) }},
		{"append", func() { Append(t, s, acct, mb) }},
		{"flags", func() {
			_, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: mail.AllUIDs(), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
			noErr(t, "store", err)
		}},
		{"copy in", func() {
			Append(t, s, acct, other)
			_, err := s.Copy(ctx(t), acct, other, mail.AllUIDs(), mb)
			noErr(t, "copy", err)
		}},
		{"move out", func() {
			_, err := s.Move(ctx(t), acct, mb, mail.NewUIDSet(entries(t, s, acct, mb)[0].UID), other)
			noErr(t, "move", err)
		}},
		{"expunge", func() {
			_, _, err := s.Expunge(ctx(t), acct, mb, mail.AllUIDs())
			noErr(t, "expunge", err)
		}},
	}
	for _, op := range ops {
		op.do()
		cs := changes(t, s, acct, mb, 0)
		if cs.HighestModSeq <= prev {
			t.Errorf("after %s: HIGHESTMODSEQ %d, want > %d", op.name, cs.HighestModSeq, prev)
		}
		prev = cs.HighestModSeq
	}
}
