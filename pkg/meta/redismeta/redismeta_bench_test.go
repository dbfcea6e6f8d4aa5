package redismeta

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// benchFixture is a store on the shared standalone server with one
// account; entries are appended to its INBOX.
func benchFixture(b *testing.B) (*Store, mail.AccountID, mail.MailboxID) {
	b.Helper()
	s := newTestStore(b, false)
	a, err := s.CreateAccount(b.Context(), meta.NewAccount{Login: "bench-" + testenv.Prefix(b) + "@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	mb, err := s.Mailbox(b.Context(), a.ID, mail.Inbox)
	if err != nil {
		b.Fatal(err)
	}
	return s, a.ID, mb.ID
}

func benchEntry() meta.NewEntry {
	return meta.NewEntry{
		Flags:        []mail.Flag{"$Label1"},
		InternalDate: time.Now(),
		Size:         4096,
		Blob:         blob.NewBlobID(time.Now()),
		Structure:    make([]byte, 600), // a typical envelope + body structure
	}
}

// fill appends n entries with pipelined EVALSHAs of the append script.
func fill(b *testing.B, s *Store, acct mail.AccountID, mbox mail.MailboxID, n int) {
	b.Helper()
	ctx := b.Context()
	if err := scriptAppend.Load(ctx, s.c).Err(); err != nil {
		b.Fatal(err)
	}
	for done := 0; done < n; {
		batch := min(1000, n-done)
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range batch {
				e := benchEntry()
				scriptAppend.EvalSha(ctx, p, []string{s.k.base(acct)}, mbArg(mbox), joinFlags(e.Flags),
					packInfo(e.InternalDate, e.Size, e.Blob, e.Structure), string(e.Blob), e.Size, "0", meta.AppendReplayWindow.Milliseconds())
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += batch
	}
}

func BenchmarkAppendEntry(b *testing.B) {
	s, acct, mbox := benchFixture(b)
	e := benchEntry()
	for b.Loop() {
		if _, err := s.AppendEntry(b.Context(), acct, mbox, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreFlags(b *testing.B) {
	s, acct, mbox := benchFixture(b)
	fill(b, s, acct, mbox, 1000)
	ops := []meta.FlagOp{meta.FlagsAdd, meta.FlagsRemove}
	i := 0
	for b.Loop() {
		uid := mail.UID(i%1000 + 1)
		_, err := s.StoreFlags(b.Context(), acct, mbox, meta.FlagChange{
			UIDs: mail.NewUIDSet(uid), Op: ops[(i/1000)%2], Flags: []mail.Flag{mail.FlagSeen},
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func benchList(b *testing.B, n int, f meta.Fields) {
	s, acct, mbox := benchFixture(b)
	fill(b, s, acct, mbox, n)
	for b.Loop() {
		es, err := s.ListEntries(b.Context(), acct, mbox, mail.AllUIDs(), f, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) != n {
			b.Fatalf("listed %d entries, want %d", len(es), n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
}

func BenchmarkListEntries1k(b *testing.B) {
	b.Run("flags", func(b *testing.B) { benchList(b, 1000, meta.FieldFlags) })
	b.Run("all", func(b *testing.B) { benchList(b, 1000, meta.FieldAll) })
}

func BenchmarkListEntries100k(b *testing.B) {
	b.Run("flags", func(b *testing.B) { benchList(b, 100_000, meta.FieldFlags) })
	b.Run("all", func(b *testing.B) { benchList(b, 100_000, meta.FieldAll) })
}

// BenchmarkStatus is the cost of STATUS / SELECT counters.
func BenchmarkStatus(b *testing.B) {
	s, acct, mbox := benchFixture(b)
	fill(b, s, acct, mbox, 1000)
	for b.Loop() {
		mb, err := s.MailboxByID(b.Context(), acct, mbox)
		if err != nil {
			b.Fatal(err)
		}
		if mb.Messages != 1000 {
			b.Fatalf("messages %d", mb.Messages)
		}
	}
}
