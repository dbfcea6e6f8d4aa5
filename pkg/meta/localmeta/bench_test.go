package localmeta

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// fill appends n entries to mbox in one transaction, as a bulk import
// would: some seen, some with a keyword, each with a small structure.
func fill(b *testing.B, s *Store, acct mail.AccountID, mbox mail.MailboxID, n int) {
	b.Helper()
	structure := make([]byte, 512)
	seen, _ := parseFlags([]mail.Flag{mail.FlagSeen})
	kw, _ := parseFlags([]mail.Flag{mail.FlagSeen, "$Label"})
	err := s.update(context.Background(), func(w *wtx) error {
		a, m, err := w.mailboxOf(acct, mbox)
		if err != nil {
			return err
		}
		for i := range n {
			fs := flagSet{}
			switch i % 3 {
			case 1:
				fs = seen
			case 2:
				fs = kw
			}
			blob := fmt.Sprintf("blob-%08d", i)
			tail := packTail(time.Unix(1700000000+int64(i), 0), 2048, mail.BlobID(blob), structure)
			u := m.rec.UIDNext
			ms := m.nextModSeq()
			if err := w.insertEntry(a, m, u, packEntry(ms, fs, tail), ms, 2048, []byte(blob)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("fill: %v", err)
	}
}

func benchStore(b *testing.B) (*Store, mail.AccountID, mail.MailboxID) {
	b.Helper()
	s := openTemp(b, Config{ChangeLogMax: 10000})
	a, in := newAccount(b, s)
	return s, a.ID, in.ID
}

func BenchmarkAppendEntry(b *testing.B) {
	s, acct, mbox := benchStore(b)
	ctx := context.Background()
	structure := make([]byte, 512)
	i := 0
	for b.Loop() {
		i++
		_, err := s.AppendEntry(ctx, acct, mbox, meta.NewEntry{
			Flags:        []mail.Flag{mail.FlagSeen},
			InternalDate: time.Unix(1700000000, 0),
			Size:         2048,
			Blob:         mail.BlobID(fmt.Sprintf("blob-%d", i)),
			Structure:    structure,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreFlags(b *testing.B) {
	s, acct, mbox := benchStore(b)
	fill(b, s, acct, mbox, 1000)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		op := meta.FlagsAdd
		if i%2 == 1 {
			op = meta.FlagsRemove
		}
		u := mail.UID(i/2%1000 + 1)
		i++
		_, err := s.StoreFlags(ctx, acct, mbox, meta.FlagChange{UIDs: mail.NewUIDSet(u), Op: op, Flags: []mail.Flag{mail.FlagFlagged}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkListEntries(b *testing.B, n int) {
	s, acct, mbox := benchStore(b)
	fill(b, s, acct, mbox, n)
	ctx := context.Background()
	for b.Loop() {
		es, err := s.ListEntries(ctx, acct, mbox, mail.AllUIDs(), meta.FieldFlags, 0)
		if err != nil || len(es) != n {
			b.Fatalf("listed %d, %v", len(es), err)
		}
	}
}

func BenchmarkListEntries1k(b *testing.B)   { benchmarkListEntries(b, 1000) }
func BenchmarkListEntries100k(b *testing.B) { benchmarkListEntries(b, 100000) }

func BenchmarkStatus(b *testing.B) {
	s, acct, mbox := benchStore(b)
	fill(b, s, acct, mbox, 1000)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.MailboxByID(ctx, acct, mbox); err != nil {
			b.Fatal(err)
		}
	}
}
