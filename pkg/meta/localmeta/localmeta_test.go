package localmeta

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openAt opens a store on path and closes it at the end of the test.
func openAt(t testing.TB, path string, cfg Config, opts ...Option) *Store {
	t.Helper()
	cfg.Path = path
	s, err := Open(cfg, nil, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openTemp opens a store on a fresh file.
func openTemp(t testing.TB, cfg Config, opts ...Option) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "meta.db"), cfg, opts...)
}

func newAccount(t testing.TB, s *Store) (meta.Account, meta.Mailbox) {
	t.Helper()
	a, err := s.CreateAccount(context.Background(), meta.NewAccount{Login: fmt.Sprintf("user%d@example.com", time.Now().UnixNano())})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	in, err := s.Mailbox(context.Background(), a.ID, mail.Inbox)
	if err != nil {
		t.Fatalf("INBOX: %v", err)
	}
	return a, in
}

var blobSeq int

func appendOne(t testing.TB, s *Store, acct mail.AccountID, mbox mail.MailboxID, flags ...mail.Flag) meta.Appended {
	t.Helper()
	blobSeq++
	ap, err := s.AppendEntry(context.Background(), acct, mbox, meta.NewEntry{
		Flags:        flags,
		InternalDate: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
		Size:         100,
		Blob:         mail.BlobID(fmt.Sprintf("blob%d", blobSeq)),
		Structure:    []byte("structure"),
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return ap
}

func TestConfig(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.Path != "" || c.ChangeLogMax != 10000 {
		t.Errorf("defaults %+v, want empty path and change log 10000", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if err := fs.Parse([]string{"-metadata.local.path=/x/meta.db", "-metadata.local.change-log-max=5"}); err != nil {
		t.Fatal(err)
	}
	if c.Path != "/x/meta.db" || c.ChangeLogMax != 5 {
		t.Errorf("parsed %+v", c)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"Zero", Config{}, true},
		{"Negative", Config{ChangeLogMax: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
	if _, err := Open(Config{}, nil); err == nil {
		t.Errorf("Open without a path succeeded")
	}
}

func TestFileLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	openAt(t, path, Config{})
	start := time.Now()
	s2, err := Open(Config{Path: path}, nil, WithLockTimeout(100*time.Millisecond))
	if err == nil {
		_ = s2.Close()
		t.Fatalf("second open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second open took %v to fail", d)
	}
}

func TestReopenPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(Config{Path: path, ChangeLogMax: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, in := newAccount(t, s)
	u1 := appendOne(t, s, a.ID, in.ID, mail.FlagSeen, "$Label").UID
	u2 := appendOne(t, s, a.ID, in.ID).UID
	retrieved := time.UnixMilli(1741600000123).UTC()
	if err := s.MarkRetrieved(ctx, a.ID, in.ID, mail.NewUIDSet(u1, u2), retrieved); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Expunge(ctx, a.ID, in.ID, mail.NewUIDSet(u2)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSubscribed(ctx, a.ID, "Ghost", true); err != nil {
		t.Fatal(err)
	}
	l, err := s.AcquireLease(ctx, a.ID, "pop3", "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.MailboxByID(ctx, a.ID, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, a.ID); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("read after close: %v, want ErrUnavailable", err)
	}

	s = openAt(t, path, Config{ChangeLogMax: 100})
	after, err := s.MailboxByID(ctx, a.ID, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("mailbox after reopen %+v, want %+v", after, before)
	}
	got, err := s.LookupLogin(ctx, a.Login)
	if err != nil || got.ID != a.ID || got.Quota.UsedMessages != 1 {
		t.Errorf("account after reopen %+v, %v", got, err)
	}
	es, err := s.ListEntries(ctx, a.ID, in.ID, mail.AllUIDs(), meta.FieldAll, 0)
	if err != nil || len(es) != 1 || es[0].UID != u1 || !slices.Equal(es[0].Flags, []mail.Flag{"$Label", mail.FlagSeen}) ||
		!es[0].Retrieved.Equal(retrieved) {
		t.Errorf("entries after reopen %+v, %v", es, err)
	}
	// The expunge took u2's retrieval mark with it.
	var marks int
	if err := s.db.View(func(tx *bolt.Tx) error {
		b, _, err := readMailbox(tx, a.ID, in.ID)
		if err != nil {
			return err
		}
		marks = b.Bucket(bktRetrieved).Stats().KeyN
		return nil
	}); err != nil || marks != 1 {
		t.Errorf("retrieval marks after expunge: %d, %v; want 1", marks, err)
	}
	cs, err := s.ChangesSince(ctx, a.ID, in.ID, 0)
	if err != nil || !cs.Vanished.Contains(u2) {
		t.Errorf("changes after reopen %+v, %v", cs, err)
	}
	subs, err := s.Subscriptions(ctx, a.ID)
	if err != nil || !slices.Contains(subs, "Ghost") {
		t.Errorf("subscriptions after reopen %q, %v", subs, err)
	}
	// Leases do not survive a restart, but their fencing tokens only grow.
	l2, err := s.AcquireLease(ctx, a.ID, "pop3", "test", time.Minute)
	if err != nil {
		t.Fatalf("acquire after restart: %v", err)
	}
	if l2.Token <= l.Token {
		t.Errorf("token after restart %d, want > %d", l2.Token, l.Token)
	}
	mb, err := s.CreateMailbox(ctx, a.ID, "New", "")
	if err != nil {
		t.Fatal(err)
	}
	if mb.ID <= in.ID {
		t.Errorf("mailbox id after reopen %d, want > %d", mb.ID, in.ID)
	}
}

func TestVanishedTrim(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Config{ChangeLogMax: 3})
	a, in := newAccount(t, s)
	var uids []mail.UID
	for range 6 {
		uids = append(uids, appendOne(t, s, a.ID, in.ID).UID)
	}
	var mods []mail.ModSeq
	// Expunge u0, u1 together, then u2, u3, u4 one by one: 5 logged, 3 kept.
	_, m, err := s.Expunge(ctx, a.ID, in.ID, mail.NewUIDSet(uids[0], uids[1]))
	if err != nil {
		t.Fatal(err)
	}
	mods = append(mods, m)
	for _, u := range uids[2:5] {
		_, m, err := s.Expunge(ctx, a.ID, in.ID, mail.NewUIDSet(u))
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	for _, tc := range []struct {
		name     string
		since    mail.ModSeq
		trimmed  bool
		vanished mail.UIDSet
	}{
		{"Zero", 0, true, mail.NewUIDSet(uids[2], uids[3], uids[4])},
		{"BeforeTrimPoint", mods[0] - 1, true, mail.NewUIDSet(uids[2], uids[3], uids[4])},
		{"AtTrimPoint", mods[1], false, mail.NewUIDSet(uids[3], uids[4])},
		{"Latest", mods[3], false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := s.ChangesSince(ctx, a.ID, in.ID, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if cs.Trimmed != tc.trimmed || cs.Vanished.String() != tc.vanished.String() {
				t.Errorf("since %d: trimmed %v vanished %v, want %v %v", tc.since, cs.Trimmed, cs.Vanished, tc.trimmed, tc.vanished)
			}
		})
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Config{}, WithEventBuffer(2))
	a, in := newAccount(t, s)
	slow, err := s.Watch(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	var got []mail.ModSeq
	for range 3 {
		ap := appendOne(t, s, a.ID, in.ID)
		ev := <-fast.C()
		got = append(got, ev.ModSeq)
		if ev.Kind != meta.EventAppend || ev.ModSeq != ap.ModSeq || !ev.UIDs.Contains(ap.UID) || ev.Mailbox != in.ID {
			t.Errorf("event %+v for append %+v", ev, ap)
		}
	}
	n := 0
	for range slow.C() {
		n++
	}
	if n != 2 {
		t.Errorf("slow subscriber got %d events before being dropped, want 2", n)
	}
	if err := slow.Err(); !errors.Is(err, ErrSlowSubscriber) || !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("slow subscriber Err() = %v, want ErrSlowSubscriber (ErrUnavailable)", err)
	}
	if fast.Err() != nil {
		t.Errorf("fast subscriber Err() = %v", fast.Err())
	}
	if err := slow.Close(); err != nil {
		t.Errorf("close of a dropped subscription: %v", err)
	}
}

func TestEventsInModSeqOrder(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Config{}, WithNoSync())
	a, in := newAccount(t, s)
	sub, err := s.Watch(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := s.AppendEntry(ctx, a.ID, in.ID, meta.NewEntry{Size: 1, Blob: mail.BlobID(fmt.Sprintf("w%d-%d", w, i))})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var last mail.ModSeq
	for range writers * each {
		ev := <-sub.C()
		if ev.ModSeq <= last {
			t.Fatalf("event MODSEQ %d after %d", ev.ModSeq, last)
		}
		last = ev.ModSeq
	}
}

func TestWatchEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(s *Store, cancel context.CancelFunc, sub meta.Subscription)
		want error
	}{
		{"Close", func(_ *Store, _ context.CancelFunc, sub meta.Subscription) { _ = sub.Close() }, nil},
		{"Context", func(_ *Store, cancel context.CancelFunc, _ meta.Subscription) { cancel() }, context.Canceled},
		{"StoreClose", func(s *Store, _ context.CancelFunc, _ meta.Subscription) { _ = s.Close() }, meta.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t, Config{})
			a, _ := newAccount(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sub, err := s.Watch(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			tc.end(s, cancel, sub)
			for range sub.C() {
			}
			if err := sub.Err(); (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("Err() = %v, want %v", err, tc.want)
			}
		})
	}
	s := openTemp(t, Config{})
	if _, err := s.Watch(context.Background(), "nobody"); !errors.Is(err, meta.ErrNoSuchAccount) {
		t.Errorf("watch unknown account: %v", err)
	}
}

func TestLeasesWithClock(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := openTemp(t, Config{}, WithClock(clk.Now))
	l1, err := s.AcquireLease(ctx, "a", "pop3", "one", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "a", "pop3", "two", time.Minute); !errors.Is(err, meta.ErrLeaseHeld) {
		t.Errorf("second acquire: %v, want ErrLeaseHeld", err)
	}
	if _, err := s.AcquireLease(ctx, "b", "pop3", "two", time.Minute); err != nil {
		t.Errorf("same name, other account: %v", err)
	}
	clk.Advance(50 * time.Second)
	r, err := s.RenewLease(ctx, "a", "pop3", l1.Token, time.Minute)
	if err != nil || !r.Expires.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("renew: %+v, %v", r, err)
	}
	clk.Advance(59 * time.Second)
	if _, err := s.AcquireLease(ctx, "a", "pop3", "two", time.Minute); !errors.Is(err, meta.ErrLeaseHeld) {
		t.Errorf("acquire of a renewed lease: %v, want ErrLeaseHeld", err)
	}
	clk.Advance(time.Second)
	l2, err := s.AcquireLease(ctx, "a", "pop3", "two", time.Minute)
	if err != nil {
		t.Fatalf("acquire after expiry: %v", err)
	}
	if l2.Token <= l1.Token {
		t.Errorf("token %d after %d", l2.Token, l1.Token)
	}
	if _, err := s.RenewLease(ctx, "a", "pop3", l1.Token, time.Minute); !errors.Is(err, meta.ErrLeaseLost) {
		t.Errorf("renew of a lost lease: %v, want ErrLeaseLost", err)
	}
	if err := s.ReleaseLease(ctx, "a", "pop3", l1.Token); err != nil {
		t.Errorf("release of a lost lease: %v", err)
	}
	if _, err := s.AcquireLease(ctx, "a", "pop3", "three", time.Minute); !errors.Is(err, meta.ErrLeaseHeld) {
		t.Errorf("releasing a lost lease freed the new holder's: %v", err)
	}
	if err := s.ReleaseLease(ctx, "a", "pop3", l2.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "a", "pop3", "three", time.Minute); err != nil {
		t.Errorf("acquire after release: %v", err)
	}
}

func TestCountersWithClock(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := openTemp(t, Config{}, WithClock(clk.Now))
	for i, want := range []int64{1, 2, 3} {
		if v, err := s.IncrCounter(ctx, "k", 1, time.Minute); err != nil || v != want {
			t.Fatalf("incr %d: %d, %v", i, v, err)
		}
		clk.Advance(10 * time.Second)
	}
	if v, _ := s.IncrCounter(ctx, "k", -1, time.Minute); v != 2 {
		t.Errorf("decrement: %d, want 2", v)
	}
	clk.Advance(30 * time.Second) // 60s after the first increment
	if v, _ := s.Counter(ctx, "k"); v != 0 {
		t.Errorf("counter after its window: %d, want 0", v)
	}
	if v, _ := s.IncrCounter(ctx, "k", 5, time.Minute); v != 5 {
		t.Errorf("incr in a new window: %d, want 5", v)
	}
}

func TestBlobQueueTimes(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := openTemp(t, Config{}, WithClock(clk.Now))
	a, in := newAccount(t, s)
	ap := appendOne(t, s, a.ID, in.ID)
	es, _ := s.ListEntries(ctx, a.ID, in.ID, mail.AllUIDs(), meta.FieldInfo, 0)
	blob := es[0].Blob
	if _, _, err := s.Expunge(ctx, a.ID, in.ID, mail.NewUIDSet(ap.UID)); err != nil {
		t.Fatal(err)
	}
	expunged := clk.Now()
	for _, tc := range []struct {
		name      string
		olderThan time.Time
		want      int
	}{
		{"At", expunged, 0},
		{"After", expunged.Add(time.Nanosecond), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := s.PendingBlobs(ctx, a.ID, tc.olderThan, 10)
			if err != nil || len(ids) != tc.want {
				t.Errorf("pending %v, %v; want %d", ids, err, tc.want)
			}
		})
	}
	// Referenced again (recovery, into a mailbox it rebuilds) before the
	// sweep: no longer pending. (In the same mailbox, the append would be
	// taken for a repeat of the first: see meta.AppendReplayWindow.)
	rebuilt, err := s.CreateMailbox(ctx, a.ID, "Rebuilt", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEntry(ctx, a.ID, rebuilt.ID, meta.NewEntry{Size: 1, Blob: blob}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.PendingBlobs(ctx, a.ID, expunged.Add(time.Hour), 10); len(ids) != 0 {
		t.Errorf("re-referenced blob still pending: %v", ids)
	}
}

func TestFlagEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []mail.Flag
		want []mail.Flag
	}{
		{"None", nil, nil},
		{"System", []mail.Flag{mail.FlagSeen, mail.FlagAnswered}, []mail.Flag{mail.FlagAnswered, mail.FlagSeen}},
		{"KeywordsAround", []mail.Flag{"zeta", mail.FlagSeen, "$A", "Junk", "^x", "]"},
			[]mail.Flag{"$A", "Junk", mail.FlagSeen, "^x", "zeta"}},
		{"RecentDropped", []mail.Flag{`\recent`, "k"}, []mail.Flag{"k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := parseFlags(tc.in)
			if tc.name == "KeywordsAround" {
				// ']' is not a valid keyword.
				if !errors.Is(err, meta.ErrInvalidArgument) {
					t.Fatalf("parse %q: %v, want ErrInvalidArgument", tc.in, err)
				}
				fs, err = parseFlags(tc.in[:5])
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fs.list(); !slices.Equal(got, tc.want) {
				t.Errorf("list() = %q, want %q", got, tc.want)
			}
			tail := packTail(time.Unix(5, 6), 7, "b", []byte("s"))
			v := packEntry(9, fs, tail)
			ed := entryDecoder{fields: meta.FieldAll}
			e, err := ed.decode(3, v)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.Flags, tc.want) || e.UID != 3 || e.ModSeq != 9 || e.Size != 7 || e.Blob != "b" ||
				string(e.Structure) != "s" || !e.InternalDate.Equal(time.Unix(5, 6)) {
				t.Errorf("decoded %+v", e)
			}
			if entrySeen(v) != slices.Contains(tc.want, mail.FlagSeen) {
				t.Errorf("entrySeen = %v", entrySeen(v))
			}
		})
	}
}

// TestAliasesPersist checks that aliases and their index survive a reopen
// and that an account record written before aliases existed (no alias
// section) still decodes.
func TestAliasesPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateAccount(t.Context(), meta.NewAccount{Login: "p@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddAlias(t.Context(), a.ID, "Q@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, addr := range []string{"q@example.com", "q", "p"} {
		got, err := s.LookupAddress(t.Context(), addr)
		if err != nil || got.ID != a.ID || !slices.Equal(got.Aliases, []string{"q@example.com"}) {
			t.Errorf("look up %q after reopen: %+v, %v", addr, got, err)
		}
	}

	old := accountRec{Login: "old@example.com", PasswordHash: "h", Created: time.Unix(1700000000, 0).UTC(), SieveScript: "keep;"}
	enc := encodeAccount(old)
	dec, err := decodeAccount(enc)
	if err != nil || dec.Aliases != nil || dec.SieveScript != "keep;" {
		t.Errorf("record without aliases: %+v, %v", dec, err)
	}
	withAliases := old
	withAliases.Aliases = []string{"a@example.com", "b@example.com"}
	enc2 := encodeAccount(withAliases)
	if !bytes.HasPrefix(enc2, enc) {
		t.Errorf("aliases are not an appended section: %x vs %x", enc2, enc)
	}
	if dec, err := decodeAccount(enc2); err != nil || !slices.Equal(dec.Aliases, withAliases.Aliases) {
		t.Errorf("record with aliases: %+v, %v", dec, err)
	}
	if _, err := decodeAccount(append(enc, 5)); err == nil {
		t.Error("a truncated alias section decoded without error")
	}
}

// TestAppendReplayAgesOut: the record that makes a repeated append answer
// the first one is dropped once older than meta.AppendReplayWindow (by a
// later append), and is kept while younger.
func TestAppendReplayAgesOut(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := openTemp(t, Config{}, WithClock(clk.Now))
	a, in := newAccount(t, s)
	e := meta.NewEntry{Size: 1, Blob: "replayed"}
	first, err := s.AppendEntry(ctx, a.ID, in.ID, e)
	if err != nil {
		t.Fatal(err)
	}
	records := func() (n int) {
		t.Helper()
		if err := s.db.View(func(tx *bolt.Tx) error {
			b, _, err := readMailbox(tx, a.ID, in.ID)
			if err != nil {
				return err
			}
			n = b.Bucket(bktAppended).Stats().KeyN
			if m := b.Bucket(bktAppendAt).Stats().KeyN; m != n {
				t.Errorf("%d records in a/, %d in at/", n, m)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}

	clk.Advance(meta.AppendReplayWindow - time.Second)
	appendOne(t, s, a.ID, in.ID)
	if again, err := s.AppendEntry(ctx, a.ID, in.ID, e); err != nil || again != first {
		t.Fatalf("repeat within the window = %+v, %v; want %+v", again, err, first)
	}
	if n := records(); n != 2 {
		t.Errorf("%d append records within the window, want 2", n)
	}

	clk.Advance(2 * time.Second)
	appendOne(t, s, a.ID, in.ID) // drops the aged-out record
	if n := records(); n != 2 {
		t.Errorf("%d append records after one aged out, want 2", n)
	}
	again, err := s.AppendEntry(ctx, a.ID, in.ID, e)
	if err != nil || again.UID <= first.UID {
		t.Fatalf("append of the blob after the window = %+v, %v; want a new entry", again, err)
	}
}
