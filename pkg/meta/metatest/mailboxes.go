package metatest

import (
	"slices"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func mailboxTests() []test {
	return []test{
		{"Create", testCreateMailbox},
		{"CreateInvalidName", testCreateInvalidName},
		{"CreateInvalidSpecialUse", testCreateInvalidSpecialUse},
		{"CanonicalNames", testCanonicalNames},
		{"RecreateUIDValidity", testRecreateUIDValidity},
		{"DeleteInbox", testDeleteInbox},
		{"DeleteUnknown", testDeleteUnknownMailbox},
		{"DeleteExpungesAndQueuesBlobs", testDeleteMailbox},
		{"RenameWithChildren", testRenameWithChildren},
		{"RenameOntoExisting", testRenameOntoExisting},
		{"RenameUnknown", testRenameUnknown},
		{"RenameInbox", testRenameInbox},
		{"ListOrdered", testListMailboxes},
		{"Subscriptions", testSubscriptions},
		{"MailboxByID", testMailboxByID},
		{"UnknownAccount", testMailboxesUnknownAccount},
		{"ClaimRecent", testClaimRecent},
		{"ClaimRecentRace", testClaimRecentRace},
	}
}

func testCreateMailbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	for _, tc := range []struct{ name, special string }{
		{"Projects", ""},
		{"Important", mail.SpecialFlagged},
		{"Everything", mail.SpecialAll},
		{"Deep/Nested/Box", ""},
		{"Entwürfe/日本語", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb, err := s.CreateMailbox(ctx(t), acct, tc.name, tc.special)
			noErr(t, "create mailbox", err)
			if mb.Name != tc.name || mb.SpecialUse != tc.special || mb.UIDValidity == 0 ||
				mb.UIDNext != 1 || mb.Messages != 0 || mb.Unseen != 0 || mb.Size != 0 {
				t.Errorf("created %+v: want name %q, special use %q, UIDVALIDITY > 0, UIDNEXT 1, empty",
					mb, tc.name, tc.special)
			}
			if got := mailbox(t, s, acct, tc.name); got != mb {
				t.Errorf("Mailbox(%q) = %+v, want %+v", tc.name, got, mb)
			}
			if got := mailboxByID(t, s, acct, mb.ID); got != mb {
				t.Errorf("MailboxByID(%d) = %+v, want %+v", mb.ID, got, mb)
			}
			_, err = s.CreateMailbox(ctx(t), acct, tc.name, "")
			wantErr(t, "create again", err, meta.ErrExists)
		})
	}
	// Parents need not exist, and the store does not create them.
	for _, parent := range []string{"Deep", "Deep/Nested", "Entwürfe"} {
		_, err := s.Mailbox(ctx(t), acct, parent)
		wantErr(t, "parent "+parent, err, meta.ErrNoSuchMailbox)
	}
	_, err := s.Mailbox(ctx(t), acct, "Nonexistent")
	wantErr(t, "unknown mailbox", err, meta.ErrNoSuchMailbox)
}

func testCreateInvalidName(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	for _, tc := range []struct{ name, mbox string }{
		{"Empty", ""},
		{"LeadingDelimiter", "/a"},
		{"TrailingDelimiter", "a/"},
		{"DoubledDelimiter", "a//b"},
		{"ControlCharacter", "a\x01b"},
		{"NUL", "a\x00b"},
		{"Newline", "a\nb"},
		{"C1Control", "a\u0085b"},
		{"NotUTF8", "a\xffb"},
		{"TooLong", strings.Repeat("x", mail.MaxMailboxNameLen+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateMailbox(ctx(t), acct, tc.mbox, "")
			wantErr(t, "create mailbox", err, meta.ErrInvalidArgument, mail.ErrInvalidMailboxName)
		})
	}
	boxes, err := s.ListMailboxes(ctx(t), acct)
	noErr(t, "list mailboxes", err)
	if len(boxes) != len(mail.DefaultMailboxes) {
		t.Errorf("after invalid creates: %d mailboxes, want %d", len(boxes), len(mail.DefaultMailboxes))
	}
}

func testCreateInvalidSpecialUse(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	for _, tc := range []struct{ name, special string }{
		{"Unknown", `\Bogus`},
		{"NoBackslash", "Junk"},
		{"Keyword", "$Label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateMailbox(ctx(t), acct, "Box"+tc.name, tc.special)
			wantErr(t, "create mailbox", err, meta.ErrInvalidArgument)
			_, err = s.Mailbox(ctx(t), acct, "Box"+tc.name)
			wantErr(t, "mailbox after failed create", err, meta.ErrNoSuchMailbox)
		})
	}
}

// testCanonicalNames: names are canonical per mail.CanonicalMailboxName,
// so INBOX is case-insensitive, alone and as a prefix.
func testCanonicalNames(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct)
	for _, n := range []string{"inbox", "Inbox", "iNbOx"} {
		_, err := s.CreateMailbox(ctx(t), acct, n, "")
		wantErr(t, "create "+n, err, meta.ErrExists)
		if got := mailbox(t, s, acct, n); got.ID != in.ID || got.Name != mail.Inbox {
			t.Errorf("Mailbox(%q) = %+v, want INBOX id %d", n, got, in.ID)
		}
	}
	mb, err := s.CreateMailbox(ctx(t), acct, "inbox/Child", "")
	noErr(t, "create inbox/Child", err)
	if mb.Name != "INBOX/Child" {
		t.Errorf("created inbox/Child as %q, want INBOX/Child", mb.Name)
	}
	if got := mailbox(t, s, acct, "INBOX/Child"); got.ID != mb.ID {
		t.Errorf("Mailbox(INBOX/Child) = %+v, want id %d", got, mb.ID)
	}
	// Other names are case-sensitive.
	a := createMailbox(t, s, acct, "Case")
	b := createMailbox(t, s, acct, "case")
	if a.ID == b.ID {
		t.Errorf("Case and case share mailbox id %d", a.ID)
	}
}

func testRecreateUIDValidity(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	first := createMailbox(t, s, acct, "Again")
	Append(t, s, acct, first.ID)
	prev := first
	for i := 0; i < 3; i++ {
		noErr(t, "delete mailbox", s.DeleteMailbox(ctx(t), acct, "Again"))
		_, err := s.Mailbox(ctx(t), acct, "Again")
		wantErr(t, "mailbox after delete", err, meta.ErrNoSuchMailbox)
		mb := createMailbox(t, s, acct, "Again")
		if mb.UIDValidity <= prev.UIDValidity {
			t.Errorf("recreated UIDVALIDITY %d, want > %d", mb.UIDValidity, prev.UIDValidity)
		}
		if mb.ID == prev.ID || mb.ID == first.ID {
			t.Errorf("recreated mailbox reuses id %d", mb.ID)
		}
		if mb.UIDNext != 1 || mb.Messages != 0 {
			t.Errorf("recreated mailbox %+v: want UIDNEXT 1, empty", mb)
		}
		if es := entries(t, s, acct, mb.ID); len(es) != 0 {
			t.Errorf("recreated mailbox has entries %v", entryUIDs(es))
		}
		prev = mb
	}
}

func testDeleteInbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct)
	ap := Append(t, s, acct, in.ID)
	for _, n := range []string{"INBOX", "inbox"} {
		wantErr(t, "delete "+n, s.DeleteMailbox(ctx(t), acct, n), meta.ErrPermission)
	}
	if got := inbox(t, s, acct); got.ID != in.ID || got.Messages != 1 {
		t.Errorf("INBOX after refused delete: %+v", got)
	}
	if es := entries(t, s, acct, in.ID); len(es) != 1 || es[0].UID != ap.UID {
		t.Errorf("INBOX entries after refused delete: %v", entryUIDs(es))
	}
}

func testDeleteUnknownMailbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	wantErr(t, "delete unknown", s.DeleteMailbox(ctx(t), acct, "Nonexistent"), meta.ErrNoSuchMailbox)
	createMailbox(t, s, acct, "Once")
	noErr(t, "delete", s.DeleteMailbox(ctx(t), acct, "Once"))
	wantErr(t, "delete twice", s.DeleteMailbox(ctx(t), acct, "Once"), meta.ErrNoSuchMailbox)
}

func testDeleteMailbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	old := createMailbox(t, s, acct, "Old")
	child := createMailbox(t, s, acct, "Old/Child")
	in := inbox(t, s, acct)
	var gone []mail.BlobID
	var goneBytes int64
	for i := 0; i < 3; i++ {
		e := NewEntry()
		appendEntry(t, s, acct, old.ID, e)
		gone = append(gone, e.Blob)
		goneBytes += e.Size
	}
	// A blob shared with INBOX stays referenced.
	shared := NewEntry(mail.FlagSeen)
	ap := appendEntry(t, s, acct, old.ID, shared)
	_, err := s.Copy(ctx(t), acct, old.ID, mail.NewUIDSet(ap.UID), in.ID)
	noErr(t, "copy", err)
	ce := NewEntry()
	appendEntry(t, s, acct, child.ID, ce)
	usage := account(t, s, acct).Quota

	noErr(t, "delete mailbox", s.DeleteMailbox(ctx(t), acct, "Old"))

	_, err = s.Mailbox(ctx(t), acct, "Old")
	wantErr(t, "mailbox after delete", err, meta.ErrNoSuchMailbox)
	_, err = s.MailboxByID(ctx(t), acct, old.ID)
	wantErr(t, "mailbox by id after delete", err, meta.ErrNoSuchMailbox)
	_, err = s.ListEntries(ctx(t), acct, old.ID, mail.AllUIDs(), meta.FieldAll, 0)
	wantErr(t, "list entries after delete", err, meta.ErrNoSuchMailbox)
	_, err = s.AppendEntry(ctx(t), acct, old.ID, NewEntry())
	wantErr(t, "append after delete", err, meta.ErrNoSuchMailbox)

	q := account(t, s, acct).Quota
	if q.UsedMessages != usage.UsedMessages-4 || q.UsedBytes != usage.UsedBytes-goneBytes-shared.Size {
		t.Errorf("usage after delete: %+v, before %+v", q, usage)
	}
	pending := pendingSet(t, s, acct, later())
	for _, b := range gone {
		if !pending[b] || referenced(t, s, acct, b) {
			t.Errorf("blob %s of the deleted mailbox: pending %v, referenced %v; want pending, unreferenced",
				b, pending[b], referenced(t, s, acct, b))
		}
	}
	if pending[shared.Blob] || !referenced(t, s, acct, shared.Blob) {
		t.Errorf("blob %s shared with INBOX: pending %v, referenced %v; want referenced only",
			shared.Blob, pending[shared.Blob], referenced(t, s, acct, shared.Blob))
	}
	if len(pending) != len(gone) {
		t.Errorf("%d blobs pending, want %d", len(pending), len(gone))
	}
	// Children are left alone.
	if got := mailbox(t, s, acct, "Old/Child"); got.ID != child.ID || got.Messages != 1 {
		t.Errorf("child after parent delete: %+v, want id %d with 1 message", got, child.ID)
	}
	if !referenced(t, s, acct, ce.Blob) {
		t.Errorf("blob of the child mailbox no longer referenced")
	}
	CheckAccount(t, s, acct)
}

func testRenameWithChildren(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	names := []string{"A", "A/B", "A/B/C", "AB", "Z0"}
	before := map[string]meta.Mailbox{}
	uids := map[string][]mail.UID{}
	for _, n := range names {
		mb := createMailbox(t, s, acct, n)
		Append(t, s, acct, mb.ID, mail.FlagFlagged)
		Append(t, s, acct, mb.ID)
		before[n] = mailbox(t, s, acct, n)
		uids[n] = entryUIDs(entries(t, s, acct, mb.ID))
	}
	noErr(t, "rename", s.RenameMailbox(ctx(t), acct, "A", "Z/Y"))

	for _, n := range []string{"A", "A/B", "A/B/C"} {
		_, err := s.Mailbox(ctx(t), acct, n)
		wantErr(t, "old name "+n, err, meta.ErrNoSuchMailbox)
	}
	for old, renamed := range map[string]string{"A": "Z/Y", "A/B": "Z/Y/B", "A/B/C": "Z/Y/B/C", "AB": "AB", "Z0": "Z0"} {
		got := mailbox(t, s, acct, renamed)
		want := before[old]
		want.Name = renamed
		if got.ID != want.ID || got.UIDValidity != want.UIDValidity || got.UIDNext != want.UIDNext ||
			got.Messages != want.Messages || got.Unseen != want.Unseen || got.Size != want.Size {
			t.Errorf("%s renamed to %s: %+v, want %+v", old, renamed, got, want)
		}
		if g := entryUIDs(entries(t, s, acct, got.ID)); !slices.Equal(g, uids[old]) {
			t.Errorf("entries of %s: %v, want %v", renamed, g, uids[old])
		}
		if byID := mailboxByID(t, s, acct, want.ID); byID.Name != renamed {
			t.Errorf("MailboxByID(%d).Name = %q, want %q", want.ID, byID.Name, renamed)
		}
	}
	// The new parent "Z" was not created.
	_, err := s.Mailbox(ctx(t), acct, "Z")
	wantErr(t, "parent of the new name", err, meta.ErrNoSuchMailbox)
	CheckAccount(t, s, acct)
}

func testRenameOntoExisting(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	for _, n := range []string{"Src", "Src/Kid", "Dst", "Other", "Other/Kid"} {
		createMailbox(t, s, acct, n)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"Existing", "Src", "Dst"},
		{"ExistingChild", "Src", "Other"}, // Other/Kid would collide too
		{"Inbox", "Src", "INBOX"},
		{"Self", "Src", "Src"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, "rename", s.RenameMailbox(ctx(t), acct, tc.from, tc.to), meta.ErrExists)
		})
	}
	// A rename only some of whose children collide changes nothing.
	createMailbox(t, s, acct, "Free/Kid")
	err := s.RenameMailbox(ctx(t), acct, "Src", "Free")
	wantErr(t, "rename with a colliding child", err, meta.ErrExists)
	for _, n := range []string{"Src", "Src/Kid", "Dst", "Other", "Other/Kid", "Free/Kid"} {
		mailbox(t, s, acct, n)
	}
	_, err = s.Mailbox(ctx(t), acct, "Free")
	wantErr(t, "partially renamed parent", err, meta.ErrNoSuchMailbox)
}

func testRenameUnknown(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	err := s.RenameMailbox(ctx(t), acct, "Nonexistent", "Other")
	wantErr(t, "rename unknown", err, meta.ErrNoSuchMailbox)
	_, err = s.Mailbox(ctx(t), acct, "Other")
	wantErr(t, "target of a failed rename", err, meta.ErrNoSuchMailbox)
	createMailbox(t, s, acct, "Good")
	for _, bad := range []string{"", "a//b", "/x"} {
		err := s.RenameMailbox(ctx(t), acct, "Good", bad)
		wantErr(t, "rename to "+bad, err, meta.ErrInvalidArgument, mail.ErrInvalidMailboxName)
	}
	mailbox(t, s, acct, "Good")
}

func testRenameInbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct)
	child := createMailbox(t, s, acct, "INBOX/Kid")
	e1, e2 := NewEntry(mail.FlagSeen, mail.FlagFlagged), NewEntry()
	appendEntry(t, s, acct, in.ID, e1)
	appendEntry(t, s, acct, in.ID, e2)
	Append(t, s, acct, child.ID)
	in = inbox(t, s, acct)
	usage := account(t, s, acct).Quota

	noErr(t, "rename INBOX", s.RenameMailbox(ctx(t), acct, "INBOX", "Old Mail"))

	after := inbox(t, s, acct)
	if after.Messages != 0 || after.Unseen != 0 || after.Size != 0 {
		t.Errorf("INBOX after rename: %+v, want empty", after)
	}
	if after.UIDNext < in.UIDNext {
		t.Errorf("INBOX UIDNEXT went from %d to %d", in.UIDNext, after.UIDNext)
	}
	if es := entries(t, s, acct, after.ID); len(es) != 0 {
		t.Errorf("INBOX entries after rename: %v", entryUIDs(es))
	}
	moved := mailbox(t, s, acct, "Old Mail")
	if moved.ID == in.ID || moved.ID == child.ID {
		t.Errorf("new mailbox reuses id %d", moved.ID)
	}
	if moved.Messages != 2 || moved.Unseen != 1 || moved.Size != e1.Size+e2.Size {
		t.Errorf("renamed-to mailbox %+v: want 2 messages, 1 unseen, size %d", moved, e1.Size+e2.Size)
	}
	es := entries(t, s, acct, moved.ID)
	if len(es) != 2 {
		t.Fatalf("renamed-to mailbox holds %d entries, want 2", len(es))
	}
	for i, want := range []meta.NewEntry{e1, e2} {
		if es[i].Blob != want.Blob || es[i].Size != want.Size || !flagsEqual(es[i].Flags, sortedFlags(want.Flags)) {
			t.Errorf("entry %d: %+v, want blob %s size %d flags %v", i, es[i], want.Blob, want.Size, want.Flags)
		}
	}
	// Children of INBOX are not moved.
	if got := mailbox(t, s, acct, "INBOX/Kid"); got.ID != child.ID || got.Messages != 1 {
		t.Errorf("INBOX/Kid after INBOX rename: %+v", got)
	}
	_, err := s.Mailbox(ctx(t), acct, "Old Mail/Kid")
	wantErr(t, "moved child", err, meta.ErrNoSuchMailbox)
	if q := account(t, s, acct).Quota; q != usage {
		t.Errorf("usage after INBOX rename: %+v, want %+v", q, usage)
	}
	// INBOX keeps working.
	ap := Append(t, s, acct, after.ID)
	if ap.UID < in.UIDNext {
		t.Errorf("append to INBOX after rename got UID %d, want >= %d (UIDs are never reused)", ap.UID, in.UIDNext)
	}
	CheckAccount(t, s, acct)
}

func testListMailboxes(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	extra := []string{"zeta", "Alpha", "Alpha/beta", "INBOX/Sub", "Émile", "Z"}
	for _, n := range extra {
		createMailbox(t, s, acct, n)
	}
	boxes, err := s.ListMailboxes(ctx(t), acct)
	noErr(t, "list mailboxes", err)
	var got []string
	for _, mb := range boxes {
		got = append(got, mb.Name)
		if byName := mailbox(t, s, acct, mb.Name); byName != mb {
			t.Errorf("listed %+v, Mailbox says %+v", mb, byName)
		}
	}
	var want []string
	for _, d := range mail.DefaultMailboxes {
		want = append(want, d.Name)
	}
	want = append(want, extra...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ListMailboxes = %q, want %q", got, want)
	}
}

func testSubscriptions(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	createMailbox(t, s, acct, "Lists")
	createMailbox(t, s, acct, "Lists/Go")
	for _, n := range []string{"Lists/Go", "Lists", "Ghost/Box", "Archive"} {
		noErr(t, "subscribe "+n, s.SetSubscribed(ctx(t), acct, n, true))
	}
	noErr(t, "subscribe twice", s.SetSubscribed(ctx(t), acct, "Lists", true))
	subs, err := s.Subscriptions(ctx(t), acct)
	noErr(t, "subscriptions", err)
	if !slices.IsSorted(subs) {
		t.Errorf("Subscriptions not sorted: %q", subs)
	}
	for _, n := range []string{"Archive", "Ghost/Box", "Lists", "Lists/Go"} {
		if !slices.Contains(subs, n) {
			t.Errorf("Subscriptions %q lacks %q", subs, n)
		}
	}
	if c := countOf(subs, "Lists"); c != 1 {
		t.Errorf("Subscriptions lists Lists %d times", c)
	}
	if !mailbox(t, s, acct, "Lists").Subscribed || !mailbox(t, s, acct, "Lists/Go").Subscribed {
		t.Errorf("subscribed mailboxes do not say Subscribed")
	}
	_, err = s.Mailbox(ctx(t), acct, "Ghost/Box")
	wantErr(t, "subscribing does not create", err, meta.ErrNoSuchMailbox)

	noErr(t, "unsubscribe", s.SetSubscribed(ctx(t), acct, "Lists", false))
	noErr(t, "unsubscribe nonexistent", s.SetSubscribed(ctx(t), acct, "Ghost/Box", false))
	noErr(t, "unsubscribe never subscribed", s.SetSubscribed(ctx(t), acct, "Never/There", false))
	subs, err = s.Subscriptions(ctx(t), acct)
	noErr(t, "subscriptions", err)
	for _, n := range []string{"Lists", "Ghost/Box", "Never/There"} {
		if slices.Contains(subs, n) {
			t.Errorf("Subscriptions %q still lists %q", subs, n)
		}
	}
	if !slices.Contains(subs, "Lists/Go") {
		t.Errorf("Subscriptions %q lost Lists/Go", subs)
	}
	if mailbox(t, s, acct, "Lists").Subscribed {
		t.Errorf("unsubscribed mailbox says Subscribed")
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func testMailboxByID(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	boxes, err := s.ListMailboxes(ctx(t), acct)
	noErr(t, "list mailboxes", err)
	for _, mb := range boxes {
		if got := mailboxByID(t, s, acct, mb.ID); got != mb {
			t.Errorf("MailboxByID(%d) = %+v, want %+v", mb.ID, got, mb)
		}
	}
	gone := createMailbox(t, s, acct, "Gone")
	noErr(t, "delete", s.DeleteMailbox(ctx(t), acct, "Gone"))
	for _, id := range []mail.MailboxID{gone.ID, 1 << 40} {
		_, err := s.MailboxByID(ctx(t), acct, id)
		wantErr(t, "unknown mailbox id", err, meta.ErrNoSuchMailbox)
	}
	// Ids are per account: another account's id is not ours.
	other := NewAccount(t, s).ID
	o := createMailbox(t, s, other, "OnlyThere")
	if _, err := s.MailboxByID(ctx(t), acct, o.ID); err == nil {
		mb := mailboxByID(t, s, acct, o.ID)
		if mb.Name == "OnlyThere" {
			t.Errorf("MailboxByID returned another account's mailbox %+v", mb)
		}
	}
}

func testMailboxesUnknownAccount(t *testing.T, s meta.Store) {
	acct := deletedAccount(t, s)
	_, err := s.CreateMailbox(ctx(t), acct, "X", "")
	wantErr(t, "create mailbox", err, meta.ErrNoSuchAccount)
	_, err = s.ListMailboxes(ctx(t), acct)
	wantErr(t, "list mailboxes", err, meta.ErrNoSuchAccount)
	_, err = s.Mailbox(ctx(t), acct, mail.Inbox)
	wantErr(t, "mailbox", err, meta.ErrNoSuchAccount)
	wantErr(t, "delete mailbox", s.DeleteMailbox(ctx(t), acct, "X"), meta.ErrNoSuchAccount)
	wantErr(t, "rename mailbox", s.RenameMailbox(ctx(t), acct, "X", "Y"), meta.ErrNoSuchAccount)
}
