package grpcmeta_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	pb "github.com/mailstore/mailstore/proto/mailstore/metadata/v1"
)

func manyEntries(n, structSize int) []meta.Entry {
	es := make([]meta.Entry, n)
	for i := range es {
		es[i] = meta.Entry{
			UID:          mail.UID(i + 1),
			ModSeq:       mail.ModSeq(i + 10),
			Flags:        []mail.Flag{mail.FlagSeen, "$Label1"},
			InternalDate: time.Date(2024, 2, 29, 12, 0, 0, i, time.UTC),
			Size:         int64(1000 + i),
			Blob:         mail.BlobID("blob" + string(rune('a'+i%26))),
			Structure:    bytes.Repeat([]byte{byte(i)}, structSize),
		}
	}
	return es
}

func sameEntries(t *testing.T, got, want []meta.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.UID != w.UID || g.ModSeq != w.ModSeq || !slices.Equal(g.Flags, w.Flags) ||
			!g.InternalDate.Equal(w.InternalDate) || g.Size != w.Size || g.Blob != w.Blob ||
			!bytes.Equal(g.Structure, w.Structure) {
			t.Fatalf("entry %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// TestListEntriesChunks checks that entries arrive whole and in order and
// that the server cuts them in chunks bounded by count and by size.
func TestListEntriesChunks(t *testing.T) {
	tests := []struct {
		name          string
		n, structSize int
		maxChunk      int
	}{
		{"empty", 0, 0, 0},
		{"one", 1, 10, 1},
		{"count bound", 1234, 10, 500},
		{"size bound", 100, 100 << 10, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &stubStore{entries: manyEntries(tc.n, tc.structSize)}
			ts := startServer(t, store, nil)
			got, err := ts.client.ListEntries(testCtx(t), "a1", 1, mail.AllUIDs(), meta.FieldAll, 0)
			if err != nil {
				t.Fatal(err)
			}
			sameEntries(t, got, store.entries)

			// The raw stream: no chunk over the bounds.
			stream, err := pb.NewMetadataServiceClient(ts.conn).ListEntries(testCtx(t), &pb.ListEntriesRequest{AccountId: "a1", MailboxId: 1})
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for {
				resp, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if n := len(resp.GetEntries()); n == 0 || n > tc.maxChunk {
					t.Errorf("chunk of %d entries, want 1..%d", n, tc.maxChunk)
				}
				total += len(resp.GetEntries())
			}
			if total != tc.n {
				t.Errorf("%d entries streamed, want %d", total, tc.n)
			}
		})
	}
}

func TestChangesSince(t *testing.T) {
	tests := []struct {
		name    string
		changes meta.ChangeSet
	}{
		{"nothing", meta.ChangeSet{HighestModSeq: 5}},
		{"vanished only", meta.ChangeSet{HighestModSeq: 9, Vanished: mail.NewUIDSet(3, 4, 9), Trimmed: true}},
		{"many changed", meta.ChangeSet{HighestModSeq: 2000, Changed: manyEntries(1201, 0), Vanished: mail.NewUIDSet(5000)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, &stubStore{changes: tc.changes}, nil)
			got, err := ts.client.ChangesSince(testCtx(t), "a1", 1, 4)
			if err != nil {
				t.Fatal(err)
			}
			if got.HighestModSeq != tc.changes.HighestModSeq || got.Trimmed != tc.changes.Trimmed ||
				got.Vanished.String() != tc.changes.Vanished.String() {
				t.Errorf("got %+v, want %+v", got, tc.changes)
			}
			sameEntries(t, got.Changed, tc.changes.Changed)
		})
	}
}

// TestArgumentsCross checks that request fields reach the store intact:
// optional fields, times, flags and open-ended UID sets.
func TestArgumentsCross(t *testing.T) {
	store := &stubStore{}
	ts := startServer(t, store, nil)
	ctx := testCtx(t)

	t.Run("UpdateAccount", func(t *testing.T) {
		hash, limit, disabled := "$argon2id$new", int64(0), true
		pop3 := meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 30, LoginDelay: 60}
		if _, err := ts.client.UpdateAccount(ctx, "a1", meta.AccountUpdate{PasswordHash: &hash, LimitBytes: &limit, Disabled: &disabled, POP3: &pop3}); err != nil {
			t.Fatal(err)
		}
		u := store.lastUpdate
		if u.PasswordHash == nil || *u.PasswordHash != hash || u.LimitBytes == nil || *u.LimitBytes != 0 ||
			u.LimitMsgs != nil || u.Disabled == nil || !*u.Disabled || u.POP3 == nil || *u.POP3 != pop3 || u.SieveScript != nil {
			t.Errorf("update arrived as %+v", u)
		}
	})
	t.Run("AppendEntry", func(t *testing.T) {
		e := meta.NewEntry{Flags: []mail.Flag{mail.FlagDraft}, InternalDate: time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC), Size: 12, Blob: "b1", Structure: []byte("s")}
		a, err := ts.client.AppendEntry(ctx, "a1", 5, e)
		if err != nil {
			t.Fatal(err)
		}
		if a != (meta.Appended{Mailbox: 5, UIDValidity: 7, UID: 42, ModSeq: 99}) {
			t.Errorf("appended = %+v", a)
		}
		got := store.lastEntry
		if !slices.Equal(got.Flags, e.Flags) || !got.InternalDate.Equal(e.InternalDate) || got.Size != 12 || got.Blob != "b1" || string(got.Structure) != "s" {
			t.Errorf("entry arrived as %+v", got)
		}
	})
	t.Run("AppendEntry zero date", func(t *testing.T) {
		if _, err := ts.client.AppendEntry(ctx, "a1", 5, meta.NewEntry{}); err != nil {
			t.Fatal(err)
		}
		if !store.lastEntry.InternalDate.IsZero() {
			t.Errorf("zero date arrived as %v", store.lastEntry.InternalDate)
		}
	})
	t.Run("StoreFlags", func(t *testing.T) {
		c := meta.FlagChange{UIDs: mail.UIDSet{{Start: 1, Stop: 3}, {Start: 10, Stop: mail.MaxUID}}, Op: meta.FlagsRemove, Flags: []mail.Flag{mail.FlagSeen}, UnchangedSince: 77}
		r, err := ts.client.StoreFlags(ctx, "a1", 5, c)
		if err != nil {
			t.Fatal(err)
		}
		got := store.lastFlags
		if got.UIDs.String() != "1:3,10:*" || got.Op != meta.FlagsRemove || !slices.Equal(got.Flags, c.Flags) || got.UnchangedSince != 77 {
			t.Errorf("change arrived as %+v", got)
		}
		if len(r.Updated) != 1 || r.Updated[0].UID != 3 || r.Updated[0].ModSeq != 10 || r.Modified.String() != "4:5" {
			t.Errorf("result = %+v", r)
		}
		if len(r.Unchanged) != 1 || r.Unchanged[0].UID != 2 || r.Unchanged[0].ModSeq != 7 || !slices.Equal(r.Unchanged[0].Flags, []mail.Flag{mail.FlagFlagged}) {
			t.Errorf("unchanged entries = %+v", r.Unchanged)
		}
	})
}

func TestListMailboxesPattern(t *testing.T) {
	var mbs []meta.Mailbox
	for i, name := range []string{"Archive", "INBOX", "INBOX/Lists", "INBOX/Lists/go", "Sent", "a/b/c"} {
		mbs = append(mbs, meta.Mailbox{ID: mail.MailboxID(i + 1), Name: name})
	}
	ts := startServer(t, &stubStore{mailboxes: mbs}, nil)
	tests := []struct {
		pattern string
		want    []string
	}{
		{"*", []string{"Archive", "INBOX", "INBOX/Lists", "INBOX/Lists/go", "Sent", "a/b/c"}},
		{"%", []string{"Archive", "INBOX", "Sent"}},
		{"inbox/%", []string{"INBOX/Lists"}},
		{"a/*", []string{"a/b/c"}},
		{"nothing", nil},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			got, err := ts.client.ListMailboxesMatching(testCtx(t), "a1", tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("names = %q, want %q", names, tc.want)
			}
		})
	}
	t.Run("no pattern", func(t *testing.T) {
		got, err := ts.client.ListMailboxes(testCtx(t), "a1")
		if err != nil || len(got) != len(mbs) {
			t.Errorf("got %d mailboxes, %v; want %d", len(got), err, len(mbs))
		}
	})
}
