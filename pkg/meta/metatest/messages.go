package metatest

import (
	"slices"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func messageTests() []test {
	return []test{
		{"AppendCounters", testAppendCounters},
		{"AppendStoresFields", testAppendStoresFields},
		{"AppendReplay", testAppendReplay},
		{"FlagsCanonicalSorted", testFlagsCanonical},
		{"Quota", testQuota},
		{"ListEntriesUIDSets", testListEntriesUIDSets},
		{"ListEntriesFields", testListEntriesFields},
		{"ListEntriesChangedSince", testListEntriesChangedSince},
		{"StoreFlags", testStoreFlags},
		{"StoreFlagsUnchangedSince", testStoreFlagsUnchangedSince},
		{"Expunge", testExpunge},
		{"CopySharesBlobs", testCopySharesBlobs},
		{"CopyUID", testCopyUID},
		{"CopySameMailbox", testCopySameMailbox},
		{"CopyQuota", testCopyQuota},
		{"Move", testMove},
		{"UnknownMailbox", testMessagesUnknownMailbox},
		{"UnknownAccount", testMessagesUnknownAccount},
	}
}

// sortedFlags returns fs the way the store keeps them: canonical, unique,
// sorted, never \Recent.
func sortedFlags(fs []mail.Flag) []mail.Flag {
	out := []mail.Flag{}
	for _, f := range fs {
		c, err := mail.CanonicalFlag(string(f))
		if err != nil || slices.Contains(out, c) {
			continue
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// checkEntry compares a stored entry with what was appended.
func checkEntry(t testing.TB, what string, got meta.Entry, want meta.NewEntry) {
	t.Helper()
	if !flagsEqual(normFlags(got.Flags), sortedFlags(want.Flags)) || !got.InternalDate.Equal(want.InternalDate) ||
		got.Size != want.Size || got.Blob != want.Blob || string(got.Structure) != string(want.Structure) {
		t.Errorf("%s: stored %+v\nwant flags %v, date %v, size %d, blob %s, structure %q", what, got,
			sortedFlags(want.Flags), want.InternalDate, want.Size, want.Blob, want.Structure)
	}
}

// normFlags treats a nil and an empty flag list alike.
func normFlags(fs []mail.Flag) []mail.Flag {
	if fs == nil {
		return []mail.Flag{}
	}
	return fs
}

func isSeen(fs []mail.Flag) bool { return slices.Contains(sortedFlags(fs), mail.FlagSeen) }

func testAppendCounters(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := createMailbox(t, s, acct, "Counters")
	var lastUID mail.UID
	for _, tc := range []struct {
		name  string
		flags []mail.Flag
	}{
		{"Unseen", nil},
		{"Seen", []mail.Flag{mail.FlagSeen}},
		{"Flagged", []mail.Flag{mail.FlagFlagged}},
		{"SeenDraft", []mail.Flag{mail.FlagDraft, mail.FlagSeen}},
		{"LowerCaseSeen", []mail.Flag{`\seen`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := mailboxByID(t, s, acct, mb.ID)
			q := account(t, s, acct).Quota
			e := NewEntry(tc.flags...)
			ap := appendEntry(t, s, acct, mb.ID, e)
			if ap.Mailbox != mb.ID || ap.UIDValidity != mb.UIDValidity {
				t.Errorf("appended %+v: want mailbox %d, UIDVALIDITY %d", ap, mb.ID, mb.UIDValidity)
			}
			if ap.UID < before.UIDNext || ap.UID <= lastUID {
				t.Errorf("UID %d: want >= UIDNEXT %d and > previous UID %d", ap.UID, before.UIDNext, lastUID)
			}
			if ap.ModSeq <= before.HighestModSeq {
				t.Errorf("MODSEQ %d: want > HIGHESTMODSEQ %d", ap.ModSeq, before.HighestModSeq)
			}
			lastUID = ap.UID
			after := mailboxByID(t, s, acct, mb.ID)
			unseen := before.Unseen
			if !isSeen(tc.flags) {
				unseen++
			}
			if after.UIDNext <= ap.UID || after.HighestModSeq != ap.ModSeq || after.Messages != before.Messages+1 ||
				after.Unseen != unseen || after.Size != before.Size+e.Size || after.UIDValidity != before.UIDValidity {
				t.Errorf("after append of UID %d (MODSEQ %d, size %d):\n got %+v\nfrom %+v", ap.UID, ap.ModSeq, e.Size, after, before)
			}
			want := q
			want.UsedBytes += e.Size
			want.UsedMessages++
			if got := account(t, s, acct).Quota; got != want {
				t.Errorf("usage %+v, want %+v", got, want)
			}
		})
	}
	CheckAccount(t, s, acct)
}

func testAppendStoresFields(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct)
	appended := []meta.NewEntry{NewEntry(), NewEntry(mail.FlagAnswered, "$Forwarded"), NewEntry(mail.FlagSeen)}
	var aps []meta.Appended
	for _, e := range appended {
		aps = append(aps, appendEntry(t, s, acct, mb.ID, e))
	}
	es := entries(t, s, acct, mb.ID)
	if len(es) != len(appended) {
		t.Fatalf("%d entries, want %d", len(es), len(appended))
	}
	for i, e := range es {
		if e.UID != aps[i].UID || e.ModSeq != aps[i].ModSeq {
			t.Errorf("entry %d: UID %d MODSEQ %d, appended as UID %d MODSEQ %d", i, e.UID, e.ModSeq, aps[i].UID, aps[i].ModSeq)
		}
		checkEntry(t, "entry", e, appended[i])
	}
}

func testFlagsCanonical(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct)
	for _, tc := range []struct {
		name string
		in   []mail.Flag
		want []mail.Flag
	}{
		{"None", nil, []mail.Flag{}},
		{"SystemCase", []mail.Flag{`\seen`, `\FLAGGED`}, []mail.Flag{mail.FlagFlagged, mail.FlagSeen}},
		{"Duplicates", []mail.Flag{`\Seen`, `\seen`, "$Label", "$Label"}, []mail.Flag{"$Label", mail.FlagSeen}},
		{"Sorted", []mail.Flag{mail.FlagSeen, "$alpha", mail.FlagAnswered, "$Zeta", mail.FlagDraft},
			[]mail.Flag{"$Zeta", "$alpha", mail.FlagAnswered, mail.FlagDraft, mail.FlagSeen}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap := Append(t, s, acct, mb.ID, tc.in...)
			es, err := s.ListEntries(ctx(t), acct, mb.ID, mail.NewUIDSet(ap.UID), meta.FieldFlags, 0)
			noErr(t, "list entries", err)
			if len(es) != 1 || !flagsEqual(normFlags(es[0].Flags), tc.want) {
				t.Errorf("stored %+v, want flags %q", es, tc.want)
			}
			// The same through StoreFlags.
			res, err := s.StoreFlags(ctx(t), acct, mb.ID, meta.FlagChange{
				UIDs: mail.NewUIDSet(ap.UID), Op: meta.FlagsReplace, Flags: append([]mail.Flag{"$Tmp"}, tc.in...),
			})
			noErr(t, "store flags", err)
			want := sortedFlags(append([]mail.Flag{"$Tmp"}, tc.want...))
			if len(res.Updated) != 1 || !flagsEqual(res.Updated[0].Flags, want) {
				t.Errorf("StoreFlags updated %+v, want flags %q", res.Updated, want)
			}
		})
	}
	// \Recent is never stored: either refused or dropped.
	t.Run("Recent", func(t *testing.T) {
		ap, err := s.AppendEntry(ctx(t), acct, mb.ID, NewEntry(mail.FlagRecent, mail.FlagSeen))
		if err != nil {
			wantErr(t, "append with \\Recent", err, meta.ErrInvalidArgument, mail.ErrInvalidFlag)
			ap = Append(t, s, acct, mb.ID, mail.FlagSeen)
		}
		_, err = s.StoreFlags(ctx(t), acct, mb.ID, meta.FlagChange{
			UIDs: mail.NewUIDSet(ap.UID), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagRecent},
		})
		if err != nil {
			wantErr(t, "store \\Recent", err, meta.ErrInvalidArgument, mail.ErrInvalidFlag)
		}
		for _, e := range entries(t, s, acct, mb.ID) {
			if hasFlag(e.Flags, mail.FlagRecent) {
				t.Errorf("UID %d stores \\Recent: %v", e.UID, e.Flags)
			}
		}
	})
	CheckAccount(t, s, acct)
}

func testQuota(t *testing.T, s meta.Store) {
	for _, tc := range []struct {
		name string
		// limit sets the limits given the two entries that must fit.
		limit func(e1, e2 meta.NewEntry) meta.AccountUpdate
	}{
		{"Bytes", func(e1, e2 meta.NewEntry) meta.AccountUpdate {
			n := e1.Size + e2.Size
			return meta.AccountUpdate{LimitBytes: &n}
		}},
		{"Messages", func(e1, e2 meta.NewEntry) meta.AccountUpdate {
			n := int64(2)
			return meta.AccountUpdate{LimitMsgs: &n}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := NewAccount(t, s).ID
			in := inbox(t, s, acct)
			other := createMailbox(t, s, acct, "Other")
			e1, e2, e3 := NewEntry(), NewEntry(), NewEntry()
			_, err := s.UpdateAccount(ctx(t), acct, tc.limit(e1, e2))
			noErr(t, "set limit", err)
			appendEntry(t, s, acct, in.ID, e1)
			appendEntry(t, s, acct, other.ID, e2) // exactly at the limit: fits
			// The limit is per account: every mailbox counts.
			for _, mb := range []mail.MailboxID{in.ID, other.ID} {
				before := mailboxByID(t, s, acct, mb)
				q := account(t, s, acct).Quota
				_, err := s.AppendEntry(ctx(t), acct, mb, e3)
				wantErr(t, "append over quota", err, meta.ErrOverQuota)
				if after := mailboxByID(t, s, acct, mb); after != before {
					t.Errorf("mailbox after refused append:\n got %+v\nwant %+v", after, before)
				}
				if got := account(t, s, acct).Quota; got != q {
					t.Errorf("usage after refused append: %+v, want %+v", got, q)
				}
				if len(entries(t, s, acct, mb)) != 1 {
					t.Errorf("refused append left an entry")
				}
				if referenced(t, s, acct, e3.Blob) {
					t.Errorf("blob of a refused append is referenced")
				}
			}
			// Lifting the limit (0 = unlimited) lets it in.
			zero := int64(0)
			_, err = s.UpdateAccount(ctx(t), acct, meta.AccountUpdate{LimitBytes: &zero, LimitMsgs: &zero})
			noErr(t, "lift limits", err)
			appendEntry(t, s, acct, in.ID, e3)
			CheckAccount(t, s, acct)
		})
	}
}

// appendN appends n unseen entries and returns their UIDs.
func appendN(t testing.TB, s meta.Store, acct mail.AccountID, mbox mail.MailboxID, n int, flags ...mail.Flag) []mail.UID {
	t.Helper()
	var uids []mail.UID
	for i := 0; i < n; i++ {
		uids = append(uids, Append(t, s, acct, mbox, flags...).UID)
	}
	return uids
}

func testListEntriesUIDSets(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	u := appendN(t, s, acct, mb, 6)
	_, _, err := s.Expunge(ctx(t), acct, mb, mail.NewUIDSet(u[2]))
	noErr(t, "expunge", err)
	star, err := mail.ParseUIDSet("1:*")
	noErr(t, "parse 1:*", err)
	for _, tc := range []struct {
		name string
		set  mail.UIDSet
		want []mail.UID
	}{
		{"All", mail.AllUIDs(), []mail.UID{u[0], u[1], u[3], u[4], u[5]}},
		{"OneToStar", star, []mail.UID{u[0], u[1], u[3], u[4], u[5]}},
		{"Some", mail.NewUIDSet(u[1]).AddRange(u[3], u[4]), []mail.UID{u[1], u[3], u[4]}},
		{"Expunged", mail.NewUIDSet(u[2]), nil},
		{"OpenEnded", mail.UIDSet{{Start: u[4], Stop: mail.MaxUID}}, []mail.UID{u[4], u[5]}},
		{"PastTheEnd", mail.UIDSet{{Start: u[5] + 1, Stop: mail.MaxUID}}, nil},
		{"Unknown", mail.NewUIDSet(u[5]+10, u[5]+1000), nil},
		{"Empty", nil, nil},
		{"MaxUID", mail.NewUIDSet(mail.MaxUID), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := s.ListEntries(ctx(t), acct, mb, tc.set, meta.FieldFlags, 0)
			noErr(t, "list entries "+tc.set.String(), err)
			if got := entryUIDs(es); !slices.Equal(got, tc.want) && (len(got) > 0 || len(tc.want) > 0) {
				t.Errorf("ListEntries(%s) = %v, want %v", tc.set, got, tc.want)
			}
		})
	}
}

func testListEntriesFields(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	e := NewEntry(mail.FlagSeen, "$Label")
	ap := appendEntry(t, s, acct, mb, e)
	for _, tc := range []struct {
		name  string
		f     meta.Fields
		check func(meta.Entry) bool
	}{
		{"None", 0, func(meta.Entry) bool { return true }},
		{"Flags", meta.FieldFlags, func(g meta.Entry) bool { return flagsEqual(g.Flags, sortedFlags(e.Flags)) }},
		{"Info", meta.FieldInfo, func(g meta.Entry) bool {
			return g.InternalDate.Equal(e.InternalDate) && g.Size == e.Size && g.Blob == e.Blob
		}},
		{"Structure", meta.FieldStructure, func(g meta.Entry) bool { return string(g.Structure) == string(e.Structure) }},
		{"FlagsStructure", meta.FieldFlags | meta.FieldStructure, func(g meta.Entry) bool {
			return flagsEqual(g.Flags, sortedFlags(e.Flags)) && string(g.Structure) == string(e.Structure)
		}},
		{"All", meta.FieldAll, func(g meta.Entry) bool {
			checkEntry(t, "all fields", g, e)
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := s.ListEntries(ctx(t), acct, mb, mail.AllUIDs(), tc.f, 0)
			noErr(t, "list entries", err)
			if len(es) != 1 || es[0].UID != ap.UID || es[0].ModSeq != ap.ModSeq {
				t.Fatalf("ListEntries = %+v, want UID %d MODSEQ %d", es, ap.UID, ap.ModSeq)
			}
			if !tc.check(es[0]) {
				t.Errorf("fields %b: got %+v, appended %+v", tc.f, es[0], e)
			}
		})
	}
}

func testListEntriesChangedSince(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	u := appendN(t, s, acct, mb, 3)
	m0 := mailboxByID(t, s, acct, mb).HighestModSeq
	res, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: mail.NewUIDSet(u[1]), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagFlagged}})
	noErr(t, "store flags", err)
	if len(res.Updated) != 1 {
		t.Fatalf("StoreFlags updated %+v, want UID %d", res.Updated, u[1])
	}
	m1 := res.Updated[0].ModSeq
	ap := Append(t, s, acct, mb)
	for _, tc := range []struct {
		name  string
		since mail.ModSeq
		want  []mail.UID
	}{
		{"Zero", 0, []mail.UID{u[0], u[1], u[2], ap.UID}},
		{"BeforeFlags", m0, []mail.UID{u[1], ap.UID}},
		{"AfterFlags", m1, []mail.UID{ap.UID}},
		{"Highest", ap.ModSeq, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := s.ListEntries(ctx(t), acct, mb, mail.AllUIDs(), meta.FieldFlags, tc.since)
			noErr(t, "list entries", err)
			if got := entryUIDs(es); !slices.Equal(got, tc.want) && (len(got) > 0 || len(tc.want) > 0) {
				t.Errorf("changed since %d: %v, want %v", tc.since, got, tc.want)
			}
			for _, e := range es {
				if e.ModSeq <= tc.since {
					t.Errorf("UID %d MODSEQ %d listed as changed since %d", e.UID, e.ModSeq, tc.since)
				}
			}
		})
	}
}

func testStoreFlags(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	seen, flagged, label := mail.FlagSeen, mail.FlagFlagged, mail.Flag("$Label")
	type fl = []mail.Flag
	initial := []fl{{seen}, {}, {flagged, seen}}
	for _, tc := range []struct {
		name  string
		op    meta.FlagOp
		flags fl
		want  []fl // flags of the three entries afterwards
	}{
		{"Replace", meta.FlagsReplace, fl{flagged}, []fl{{flagged}, {flagged}, {flagged}}},
		{"ReplaceSame", meta.FlagsReplace, fl{seen, flagged}, []fl{{flagged, seen}, {flagged, seen}, {flagged, seen}}},
		{"ReplaceEmpty", meta.FlagsReplace, nil, []fl{{}, {}, {}}},
		{"AddSeen", meta.FlagsAdd, fl{seen}, []fl{{seen}, {seen}, {flagged, seen}}},
		{"AddKeyword", meta.FlagsAdd, fl{label, `\flagged`}, []fl{{label, flagged, seen}, {label, flagged}, {label, flagged, seen}}},
		{"AddNothing", meta.FlagsAdd, nil, initial},
		{"RemoveSeen", meta.FlagsRemove, fl{`\SEEN`}, []fl{{}, {}, {flagged}}},
		{"RemoveAbsent", meta.FlagsRemove, fl{mail.FlagDraft, label}, initial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb := createMailbox(t, s, acct, "Store"+tc.name).ID
			var u []mail.UID
			for _, f := range initial {
				u = append(u, Append(t, s, acct, mb, f...).UID)
			}
			before := mailboxByID(t, s, acct, mb)
			old := entries(t, s, acct, mb)
			// UIDs that do not exist are ignored.
			set := mail.NewUIDSet(u...).Add(u[2] + 5)
			res, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: set, Op: tc.op, Flags: tc.flags})
			noErr(t, "store flags", err)
			if !res.Modified.Empty() {
				t.Errorf("Modified = %v without UNCHANGEDSINCE", res.Modified)
			}
			updated := map[mail.UID]meta.Entry{}
			var maxMod mail.ModSeq
			for _, e := range res.Updated {
				updated[e.UID] = e
				maxMod = max(maxMod, e.ModSeq)
				if e.ModSeq <= before.HighestModSeq {
					t.Errorf("updated UID %d got MODSEQ %d, want > %d", e.UID, e.ModSeq, before.HighestModSeq)
				}
			}
			if len(updated) != len(res.Updated) {
				t.Errorf("Updated lists a UID twice: %+v", res.Updated)
			}
			same := map[mail.UID]meta.Entry{}
			for _, e := range res.Unchanged {
				if _, dup := updated[e.UID]; dup {
					t.Errorf("UID %d is in both Updated and Unchanged", e.UID)
				}
				same[e.UID] = e
			}
			if len(same) != len(res.Unchanged) {
				t.Errorf("Unchanged lists a UID twice: %+v", res.Unchanged)
			}
			if len(res.Updated)+len(res.Unchanged) != len(u) {
				t.Errorf("Updated %+v and Unchanged %+v, want the %d existing UIDs between them", res.Updated, res.Unchanged, len(u))
			}
			now := entries(t, s, acct, mb)
			unseen := int64(0)
			for i, e := range now {
				want := sortedFlags(tc.want[i])
				changed := !flagsEqual(normFlags(old[i].Flags), want)
				if !flagsEqual(normFlags(e.Flags), want) {
					t.Errorf("UID %d flags %q, want %q", e.UID, e.Flags, want)
				}
				if !hasFlag(want, seen) {
					unseen++
				}
				up, listed := updated[e.UID]
				switch {
				case changed && !listed:
					t.Errorf("UID %d changed but is not in Updated %+v", e.UID, res.Updated)
				case !changed && listed:
					t.Errorf("UID %d unchanged but listed in Updated", e.UID)
				case changed && (up.ModSeq != e.ModSeq || !flagsEqual(normFlags(up.Flags), want)):
					t.Errorf("Updated says %+v, stored %+v", up, e)
				case !changed && e.ModSeq != old[i].ModSeq:
					t.Errorf("unchanged UID %d got a new MODSEQ %d (was %d)", e.UID, e.ModSeq, old[i].ModSeq)
				}
				if sm, ok := same[e.UID]; !changed && (!ok || sm.ModSeq != e.ModSeq || !flagsEqual(normFlags(sm.Flags), want)) {
					t.Errorf("UID %d unchanged: Unchanged says %+v (listed %v), stored %+v", e.UID, sm, ok, e)
				}
			}
			after := mailboxByID(t, s, acct, mb)
			if after.Unseen != unseen || after.Messages != before.Messages || after.Size != before.Size {
				t.Errorf("mailbox after store: %+v, want %d unseen", after, unseen)
			}
			if len(res.Updated) > 0 && after.HighestModSeq != maxMod {
				t.Errorf("HIGHESTMODSEQ %d, want %d (the MODSEQ of the change)", after.HighestModSeq, maxMod)
			}
			if len(res.Updated) == 0 && after.HighestModSeq < before.HighestModSeq {
				t.Errorf("HIGHESTMODSEQ went back from %d to %d", before.HighestModSeq, after.HighestModSeq)
			}
		})
	}
	CheckAccount(t, s, acct)
}

func testStoreFlagsUnchangedSince(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	u := appendN(t, s, acct, mb, 3)
	m0 := mailboxByID(t, s, acct, mb).HighestModSeq
	res, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: mail.NewUIDSet(u[1]), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagFlagged}})
	noErr(t, "store flags", err)
	if len(res.Updated) != 1 {
		t.Fatalf("updated %+v", res.Updated)
	}
	m1 := res.Updated[0].ModSeq

	// u[1] changed after m0: it fails the condition and is left alone.
	res, err = s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{
		UIDs: mail.AllUIDs(), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}, UnchangedSince: m0,
	})
	noErr(t, "store flags unchanged since", err)
	if got := res.Modified; got.String() != mail.NewUIDSet(u[1]).String() {
		t.Errorf("Modified = %v, want %d", got, u[1])
	}
	if got := entryUIDs(res.Updated); !slices.Equal(sortedUIDs(got), []mail.UID{u[0], u[2]}) {
		t.Errorf("Updated = %v, want %v", got, []mail.UID{u[0], u[2]})
	}
	es := entries(t, s, acct, mb)
	want := [][]mail.Flag{{mail.FlagSeen}, {mail.FlagFlagged}, {mail.FlagSeen}}
	for i, e := range es {
		if !flagsEqual(normFlags(e.Flags), want[i]) {
			t.Errorf("UID %d flags %q, want %q", e.UID, e.Flags, want[i])
		}
	}
	if es[1].ModSeq != m1 {
		t.Errorf("refused UID %d got MODSEQ %d, want unchanged %d", u[1], es[1].ModSeq, m1)
	}
	if got := mailboxByID(t, s, acct, mb).Unseen; got != 1 {
		t.Errorf("Unseen = %d, want 1", got)
	}

	// With a recent enough condition everything applies; entries already
	// as asked are neither updated nor refused.
	hi := mailboxByID(t, s, acct, mb).HighestModSeq
	res, err = s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{
		UIDs: mail.AllUIDs(), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}, UnchangedSince: hi,
	})
	noErr(t, "store flags unchanged since highest", err)
	if !res.Modified.Empty() || len(res.Updated) != 1 || res.Updated[0].UID != u[1] {
		t.Errorf("Updated %+v, Modified %v; want only UID %d updated", res.Updated, res.Modified, u[1])
	}
	if got := entryUIDs(res.Unchanged); !slices.Equal(sortedUIDs(got), []mail.UID{u[0], u[2]}) {
		t.Errorf("Unchanged = %v, want %v (already \\Seen)", got, []mail.UID{u[0], u[2]})
	}
	if got := mailboxByID(t, s, acct, mb).Unseen; got != 0 {
		t.Errorf("Unseen = %d, want 0", got)
	}
}

func sortedUIDs(u []mail.UID) []mail.UID {
	u = slices.Clone(u)
	slices.Sort(u)
	return u
}

func testExpunge(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := createMailbox(t, s, acct, "Trashcan").ID
	var es []meta.NewEntry
	var u []mail.UID
	for i := 0; i < 5; i++ {
		var flags []mail.Flag
		if i%2 == 0 {
			flags = []mail.Flag{mail.FlagSeen, mail.FlagDeleted}
		}
		e := NewEntry(flags...)
		es = append(es, e)
		u = append(u, appendEntry(t, s, acct, mb, e).UID)
	}
	before := mailboxByID(t, s, acct, mb)
	q := account(t, s, acct).Quota

	// u[1] (unseen) and u[4] (seen), plus UIDs that do not exist.
	set := mail.NewUIDSet(u[1], u[4], u[4]+1, u[4]+100)
	got, modseq, err := s.Expunge(ctx(t), acct, mb, set)
	noErr(t, "expunge", err)
	if !slices.Equal(got, []mail.UID{u[1], u[4]}) {
		t.Errorf("expunged %v, want %v", got, []mail.UID{u[1], u[4]})
	}
	if modseq <= before.HighestModSeq {
		t.Errorf("expunge MODSEQ %d, want > %d", modseq, before.HighestModSeq)
	}
	after := mailboxByID(t, s, acct, mb)
	gone := es[1].Size + es[4].Size
	if after.Messages != before.Messages-2 || after.Unseen != before.Unseen-1 || after.Size != before.Size-gone ||
		after.HighestModSeq != modseq || after.UIDNext != before.UIDNext {
		t.Errorf("after expunge:\n got %+v\nfrom %+v", after, before)
	}
	wantQ := q
	wantQ.UsedBytes -= gone
	wantQ.UsedMessages -= 2
	if got := account(t, s, acct).Quota; got != wantQ {
		t.Errorf("usage %+v, want %+v", got, wantQ)
	}
	if got := entryUIDs(entries(t, s, acct, mb)); !slices.Equal(got, []mail.UID{u[0], u[2], u[3]}) {
		t.Errorf("remaining %v", got)
	}
	pending := pendingSet(t, s, acct, later())
	for _, i := range []int{1, 4} {
		if referenced(t, s, acct, es[i].Blob) || !pending[es[i].Blob] {
			t.Errorf("expunged blob %s: want unreferenced and pending", es[i].Blob)
		}
	}
	if len(pending) != 2 {
		t.Errorf("%d blobs pending, want 2", len(pending))
	}
	if p := pendingSet(t, s, acct, earlier()); len(p) != 0 {
		t.Errorf("blobs pending since before the expunge: %v", p)
	}

	// Expunging again finds nothing.
	got, _, err = s.Expunge(ctx(t), acct, mb, set)
	noErr(t, "expunge again", err)
	if len(got) != 0 {
		t.Errorf("second expunge returned %v", got)
	}
	// UIDs are never reused, even the highest one after its expunge.
	if ap := Append(t, s, acct, mb); ap.UID <= u[4] {
		t.Errorf("append after expunge got UID %d, want > %d", ap.UID, u[4])
	}
	// Expunge everything, open-ended.
	got, _, err = s.Expunge(ctx(t), acct, mb, mail.AllUIDs())
	noErr(t, "expunge all", err)
	if len(got) != 4 {
		t.Errorf("expunge 1:* returned %v, want 4 UIDs", got)
	}
	if mbx := mailboxByID(t, s, acct, mb); mbx.Messages != 0 || mbx.Unseen != 0 || mbx.Size != 0 {
		t.Errorf("after expunging all: %+v", mbx)
	}
	CheckAccount(t, s, acct)
}

func testCopySharesBlobs(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	src := inbox(t, s, acct).ID
	dst := createMailbox(t, s, acct, "Copies").ID
	e := NewEntry(mail.FlagSeen)
	ap := appendEntry(t, s, acct, src, e)
	c, err := s.Copy(ctx(t), acct, src, mail.NewUIDSet(ap.UID), dst)
	noErr(t, "copy", err)
	if len(c.Dest) != 1 {
		t.Fatalf("copied %+v", c)
	}
	c2, err := s.Copy(ctx(t), acct, dst, mail.NewUIDSet(c.Dest[0]), dst)
	noErr(t, "copy within the mailbox", err)
	if len(c2.Dest) != 1 {
		t.Fatalf("copied %+v", c2)
	}
	for _, mb := range []mail.MailboxID{src, dst} {
		for _, got := range entries(t, s, acct, mb) {
			if got.Blob != e.Blob {
				t.Errorf("copy in mailbox %d has blob %s, want shared %s", mb, got.Blob, e.Blob)
			}
		}
	}
	steps := []struct {
		mb  mail.MailboxID
		uid mail.UID
	}{{src, ap.UID}, {dst, c.Dest[0]}, {dst, c2.Dest[0]}}
	for i, st := range steps {
		if !referenced(t, s, acct, e.Blob) {
			t.Fatalf("blob unreferenced with %d entries left", len(steps)-i)
		}
		if p := pendingSet(t, s, acct, later()); p[e.Blob] {
			t.Fatalf("blob pending with %d entries left", len(steps)-i)
		}
		_, _, err := s.Expunge(ctx(t), acct, st.mb, mail.NewUIDSet(st.uid))
		noErr(t, "expunge", err)
	}
	if referenced(t, s, acct, e.Blob) {
		t.Errorf("blob still referenced after its last entry went")
	}
	if p := pendingSet(t, s, acct, earlier()); p[e.Blob] {
		t.Errorf("blob listed as pending before it lost its last reference")
	}
	if p := pendingSet(t, s, acct, later()); !p[e.Blob] || len(p) != 1 {
		t.Errorf("pending = %v, want only %s", p, e.Blob)
	}
	noErr(t, "forget blobs", s.ForgetBlobs(ctx(t), acct, []mail.BlobID{e.Blob}))
	if p := pendingSet(t, s, acct, later()); len(p) != 0 {
		t.Errorf("pending after forget = %v", p)
	}
	noErr(t, "forget again", s.ForgetBlobs(ctx(t), acct, []mail.BlobID{e.Blob}))
	CheckAccount(t, s, acct)

	// PendingBlobs honours its limit.
	for i := 0; i < 3; i++ {
		Append(t, s, acct, src)
	}
	_, _, err = s.Expunge(ctx(t), acct, src, mail.AllUIDs())
	noErr(t, "expunge all", err)
	ids, err := s.PendingBlobs(ctx(t), acct, later(), 2)
	noErr(t, "pending blobs", err)
	if len(ids) != 2 {
		t.Errorf("PendingBlobs with limit 2 returned %d", len(ids))
	}
}

func testCopyUID(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	src := inbox(t, s, acct).ID
	dst := createMailbox(t, s, acct, "Dest").ID
	var es []meta.NewEntry
	var u []mail.UID
	for _, f := range [][]mail.Flag{{mail.FlagSeen}, nil, {mail.FlagFlagged, "$Label"}, {mail.FlagAnswered}} {
		e := NewEntry(f...)
		es = append(es, e)
		u = append(u, appendEntry(t, s, acct, src, e).UID)
	}
	Append(t, s, acct, dst)
	srcBefore, dstBefore := mailboxByID(t, s, acct, src), mailboxByID(t, s, acct, dst)
	srcEntries := entries(t, s, acct, src)
	q := account(t, s, acct).Quota

	c, err := s.Copy(ctx(t), acct, src, mail.NewUIDSet(u[3], u[0], u[2], u[3]+7), dst)
	noErr(t, "copy", err)
	if c.UIDValidity != dstBefore.UIDValidity {
		t.Errorf("COPYUID UIDVALIDITY %d, want the destination's %d", c.UIDValidity, dstBefore.UIDValidity)
	}
	if want := []mail.UID{u[0], u[2], u[3]}; !slices.Equal(c.Source, want) {
		t.Errorf("Source = %v, want %v", c.Source, want)
	}
	if len(c.Dest) != len(c.Source) {
		t.Fatalf("Dest %v for Source %v", c.Dest, c.Source)
	}
	for i, d := range c.Dest {
		if d < dstBefore.UIDNext || (i > 0 && d <= c.Dest[i-1]) {
			t.Errorf("Dest = %v: want increasing UIDs >= UIDNEXT %d", c.Dest, dstBefore.UIDNext)
		}
	}
	if c.ModSeq <= dstBefore.HighestModSeq {
		t.Errorf("copy MODSEQ %d, want > destination HIGHESTMODSEQ %d", c.ModSeq, dstBefore.HighestModSeq)
	}
	dstAfter := mailboxByID(t, s, acct, dst)
	byUID := map[mail.UID]meta.Entry{}
	for _, e := range entries(t, s, acct, dst) {
		byUID[e.UID] = e
	}
	var added int64
	unseen := int64(0)
	for i, d := range c.Dest {
		want := es[slices.Index(u, c.Source[i])]
		got, ok := byUID[d]
		if !ok {
			t.Errorf("copy UID %d missing", d)
			continue
		}
		checkEntry(t, "copy", got, want)
		if got.ModSeq <= dstBefore.HighestModSeq || got.ModSeq > c.ModSeq {
			t.Errorf("copy UID %d MODSEQ %d, want in (%d, %d]", d, got.ModSeq, dstBefore.HighestModSeq, c.ModSeq)
		}
		added += want.Size
		if !isSeen(want.Flags) {
			unseen++
		}
	}
	if dstAfter.Messages != dstBefore.Messages+3 || dstAfter.Size != dstBefore.Size+added ||
		dstAfter.Unseen != dstBefore.Unseen+unseen || dstAfter.HighestModSeq != c.ModSeq || dstAfter.UIDNext <= c.Dest[2] {
		t.Errorf("destination after copy:\n got %+v\nfrom %+v", dstAfter, dstBefore)
	}
	if got := mailboxByID(t, s, acct, src); got != srcBefore {
		t.Errorf("source changed by copy: %+v, was %+v", got, srcBefore)
	}
	if got := entries(t, s, acct, src); !slices.EqualFunc(got, srcEntries, func(a, b meta.Entry) bool {
		return a.UID == b.UID && a.ModSeq == b.ModSeq && flagsEqual(a.Flags, b.Flags)
	}) {
		t.Errorf("source entries changed by copy")
	}
	wantQ := q
	wantQ.UsedBytes += added
	wantQ.UsedMessages += 3
	if got := account(t, s, acct).Quota; got != wantQ {
		t.Errorf("usage after copy %+v, want %+v", got, wantQ)
	}
	// Copying nothing that exists copies nothing.
	c, err = s.Copy(ctx(t), acct, src, mail.NewUIDSet(u[3]+50), dst)
	noErr(t, "copy of nothing", err)
	if len(c.Source) != 0 || len(c.Dest) != 0 {
		t.Errorf("copy of nothing: %+v", c)
	}
	CheckAccount(t, s, acct)
}

func testCopySameMailbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	e := NewEntry(mail.FlagFlagged)
	ap := appendEntry(t, s, acct, mb, e)
	c, err := s.Copy(ctx(t), acct, mb, mail.AllUIDs(), mb)
	noErr(t, "copy", err)
	if len(c.Dest) != 1 || c.Dest[0] <= ap.UID {
		t.Fatalf("copy to the same mailbox: %+v", c)
	}
	es := entries(t, s, acct, mb)
	if len(es) != 2 {
		t.Fatalf("%d entries, want 2", len(es))
	}
	checkEntry(t, "copy", es[1], e)
	CheckAccount(t, s, acct)
}

func testCopyQuota(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	src := inbox(t, s, acct).ID
	dst := createMailbox(t, s, acct, "Dest").ID
	e1, e2 := NewEntry(), NewEntry()
	appendEntry(t, s, acct, src, e1)
	appendEntry(t, s, acct, src, e2)
	for _, tc := range []struct {
		name string
		u    meta.AccountUpdate
	}{
		{"Messages", meta.AccountUpdate{LimitMsgs: ptr(int64(3))}},
		{"Bytes", meta.AccountUpdate{LimitBytes: ptr(2*(e1.Size+e2.Size) - 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zero := int64(0)
			_, err := s.UpdateAccount(ctx(t), acct, meta.AccountUpdate{LimitMsgs: &zero, LimitBytes: &zero})
			noErr(t, "clear limits", err)
			_, err = s.UpdateAccount(ctx(t), acct, tc.u)
			noErr(t, "set limit", err)
			before := mailboxByID(t, s, acct, dst)
			q := account(t, s, acct).Quota
			_, err = s.Copy(ctx(t), acct, src, mail.AllUIDs(), dst)
			wantErr(t, "copy over quota", err, meta.ErrOverQuota)
			if got := mailboxByID(t, s, acct, dst); got != before {
				t.Errorf("destination after refused copy: %+v, was %+v", got, before)
			}
			if got := account(t, s, acct).Quota; got != q {
				t.Errorf("usage after refused copy: %+v, was %+v", got, q)
			}
			if es := entries(t, s, acct, dst); len(es) != 0 {
				t.Errorf("refused copy left %v", entryUIDs(es))
			}
		})
	}
	zero := int64(0)
	_, err := s.UpdateAccount(ctx(t), acct, meta.AccountUpdate{LimitMsgs: &zero, LimitBytes: &zero})
	noErr(t, "clear limits", err)
	_, err = s.Copy(ctx(t), acct, src, mail.AllUIDs(), dst)
	noErr(t, "copy without limits", err)
	CheckAccount(t, s, acct)
}

func ptr[T any](v T) *T { return &v }

func testMove(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	src := inbox(t, s, acct).ID
	dst := createMailbox(t, s, acct, "Moved").ID
	var es []meta.NewEntry
	var u []mail.UID
	for _, f := range [][]mail.Flag{{mail.FlagSeen}, nil, {mail.FlagDraft}} {
		e := NewEntry(f...)
		es = append(es, e)
		u = append(u, appendEntry(t, s, acct, src, e).UID)
	}
	Append(t, s, acct, dst, mail.FlagSeen)
	srcBefore, dstBefore := mailboxByID(t, s, acct, src), mailboxByID(t, s, acct, dst)
	q := account(t, s, acct).Quota

	c, err := s.Move(ctx(t), acct, src, mail.NewUIDSet(u[0], u[2], u[2]+9), dst)
	noErr(t, "move", err)
	if c.UIDValidity != dstBefore.UIDValidity || !slices.Equal(c.Source, []mail.UID{u[0], u[2]}) || len(c.Dest) != 2 {
		t.Fatalf("move reported %+v: want UIDVALIDITY %d, Source %v", c, dstBefore.UIDValidity, []mail.UID{u[0], u[2]})
	}
	if c.Dest[0] < dstBefore.UIDNext || c.Dest[1] <= c.Dest[0] {
		t.Errorf("Dest = %v, want increasing from UIDNEXT %d", c.Dest, dstBefore.UIDNext)
	}
	if got := entryUIDs(entries(t, s, acct, src)); !slices.Equal(got, []mail.UID{u[1]}) {
		t.Errorf("source after move holds %v, want %v", got, []mail.UID{u[1]})
	}
	byUID := map[mail.UID]meta.Entry{}
	for _, e := range entries(t, s, acct, dst) {
		byUID[e.UID] = e
	}
	for i, d := range c.Dest {
		checkEntry(t, "moved entry", byUID[d], es[slices.Index(u, c.Source[i])])
	}
	srcAfter, dstAfter := mailboxByID(t, s, acct, src), mailboxByID(t, s, acct, dst)
	moved := es[0].Size + es[2].Size
	if srcAfter.Messages != 1 || srcAfter.Unseen != 1 || srcAfter.Size != srcBefore.Size-moved ||
		srcAfter.HighestModSeq <= srcBefore.HighestModSeq || srcAfter.UIDNext != srcBefore.UIDNext {
		t.Errorf("source after move:\n got %+v\nfrom %+v", srcAfter, srcBefore)
	}
	if dstAfter.Messages != 3 || dstAfter.Unseen != dstBefore.Unseen+1 || dstAfter.Size != dstBefore.Size+moved ||
		dstAfter.HighestModSeq <= dstBefore.HighestModSeq {
		t.Errorf("destination after move:\n got %+v\nfrom %+v", dstAfter, dstBefore)
	}
	if got := account(t, s, acct).Quota; got != q {
		t.Errorf("usage after move %+v, want unchanged %+v", got, q)
	}
	for _, i := range []int{0, 2} {
		if !referenced(t, s, acct, es[i].Blob) {
			t.Errorf("moved blob %s unreferenced", es[i].Blob)
		}
	}
	if p := pendingSet(t, s, acct, later()); len(p) != 0 {
		t.Errorf("move queued blobs for deletion: %v", p)
	}
	CheckAccount(t, s, acct)
}

func testMessagesUnknownMailbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	in := inbox(t, s, acct).ID
	ap := Append(t, s, acct, in)
	gone := createMailbox(t, s, acct, "Gone").ID
	noErr(t, "delete mailbox", s.DeleteMailbox(ctx(t), acct, "Gone"))
	set := mail.NewUIDSet(ap.UID)
	for _, id := range []mail.MailboxID{gone, 1 << 40} {
		_, err := s.AppendEntry(ctx(t), acct, id, NewEntry())
		wantErr(t, "append", err, meta.ErrNoSuchMailbox)
		_, err = s.ListEntries(ctx(t), acct, id, mail.AllUIDs(), meta.FieldAll, 0)
		wantErr(t, "list entries", err, meta.ErrNoSuchMailbox)
		_, err = s.StoreFlags(ctx(t), acct, id, meta.FlagChange{UIDs: mail.AllUIDs(), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
		wantErr(t, "store flags", err, meta.ErrNoSuchMailbox)
		_, _, err = s.Expunge(ctx(t), acct, id, mail.AllUIDs())
		wantErr(t, "expunge", err, meta.ErrNoSuchMailbox)
		_, err = s.Copy(ctx(t), acct, in, set, id)
		wantErr(t, "copy to unknown", err, meta.ErrNoSuchMailbox)
		_, err = s.Copy(ctx(t), acct, id, set, in)
		wantErr(t, "copy from unknown", err, meta.ErrNoSuchMailbox)
		_, err = s.Move(ctx(t), acct, in, set, id)
		wantErr(t, "move to unknown", err, meta.ErrNoSuchMailbox)
		_, err = s.Move(ctx(t), acct, id, set, in)
		wantErr(t, "move from unknown", err, meta.ErrNoSuchMailbox)
		_, err = s.ChangesSince(ctx(t), acct, id, 0)
		wantErr(t, "changes since", err, meta.ErrNoSuchMailbox)
	}
	// The failed move left the source alone.
	if got := entryUIDs(entries(t, s, acct, in)); !slices.Equal(got, []mail.UID{ap.UID}) {
		t.Errorf("INBOX after failed moves: %v", got)
	}
	CheckAccount(t, s, acct)
}

func testMessagesUnknownAccount(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	in := inbox(t, s, a.ID).ID
	ap := Append(t, s, a.ID, in)
	noErr(t, "delete account", s.DeleteAccount(ctx(t), a.ID))
	acct := a.ID
	set := mail.NewUIDSet(ap.UID)
	_, err := s.AppendEntry(ctx(t), acct, in, NewEntry())
	wantErr(t, "append", err, meta.ErrNoSuchAccount)
	_, err = s.ListEntries(ctx(t), acct, in, mail.AllUIDs(), meta.FieldAll, 0)
	wantErr(t, "list entries", err, meta.ErrNoSuchAccount)
	_, err = s.StoreFlags(ctx(t), acct, in, meta.FlagChange{UIDs: set, Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
	wantErr(t, "store flags", err, meta.ErrNoSuchAccount)
	_, _, err = s.Expunge(ctx(t), acct, in, set)
	wantErr(t, "expunge", err, meta.ErrNoSuchAccount)
	_, err = s.Copy(ctx(t), acct, in, set, in)
	wantErr(t, "copy", err, meta.ErrNoSuchAccount)
	_, err = s.Move(ctx(t), acct, in, set, in)
	wantErr(t, "move", err, meta.ErrNoSuchAccount)
	_, err = s.ChangesSince(ctx(t), acct, in, 0)
	wantErr(t, "changes since", err, meta.ErrNoSuchAccount)
}

// testAppendReplay: AppendEntry is idempotent per mailbox and blob, so a
// caller that lost the answer can ask again; the same blob in another
// mailbox is a new entry.
func testAppendReplay(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	box := createMailbox(t, s, acct, "Replay")
	other := createMailbox(t, s, acct, "Other")
	e := NewEntry(mail.FlagSeen)
	first := appendEntry(t, s, acct, box.ID, e)
	before := account(t, s, acct).Quota

	t.Run("Repeat", func(t *testing.T) {
		again := appendEntry(t, s, acct, box.ID, e)
		if again != first {
			t.Errorf("repeated append = %+v, first was %+v", again, first)
		}
		if got := entryUIDs(entries(t, s, acct, box.ID)); !slices.Equal(got, []mail.UID{first.UID}) {
			t.Errorf("entries after the repeat: %v, want [%d]", got, first.UID)
		}
		if m := mailboxByID(t, s, acct, box.ID); m.Messages != 1 || m.UIDNext != first.UID+1 || m.HighestModSeq != first.ModSeq {
			t.Errorf("mailbox after the repeat: %d messages, UIDNEXT %d, HIGHESTMODSEQ %d; want 1, %d, %d",
				m.Messages, m.UIDNext, m.HighestModSeq, first.UID+1, first.ModSeq)
		}
		if q := account(t, s, acct).Quota; q != before {
			t.Errorf("quota after the repeat %+v, before %+v", q, before)
		}
	})
	t.Run("OtherMailbox", func(t *testing.T) {
		ap := appendEntry(t, s, acct, other.ID, e)
		if ap.Mailbox != other.ID || len(entries(t, s, acct, other.ID)) != 1 {
			t.Errorf("append of the same blob to another mailbox = %+v, entries %v", ap, entryUIDs(entries(t, s, acct, other.ID)))
		}
	})
	t.Run("AfterExpunge", func(t *testing.T) {
		_, _, err := s.Expunge(ctx(t), acct, box.ID, mail.NewUIDSet(first.UID))
		noErr(t, "expunge", err)
		again := appendEntry(t, s, acct, box.ID, e)
		if again != first {
			t.Errorf("append repeated after expunge = %+v, first was %+v", again, first)
		}
		if got := entries(t, s, acct, box.ID); len(got) != 0 {
			t.Errorf("entries after a repeat of an expunged append: %v", entryUIDs(got))
		}
	})
	t.Run("NewBlob", func(t *testing.T) {
		ap := appendEntry(t, s, acct, box.ID, NewEntry())
		if ap.UID <= first.UID {
			t.Errorf("append of a new blob got UID %d, not above %d", ap.UID, first.UID)
		}
	})
}
