package redismeta

// Tests of what the conformance suite cannot see: the key layout and hash
// tags, the script error mapping, trimming of the vanished log, lease
// expiry in Redis, paging of big reads and a broken subscription.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// fixture is a store with one fresh account.
type fixture struct {
	s     *Store
	acct  mail.AccountID
	inbox mail.MailboxID
}

func newFixture(t *testing.T, cluster bool) fixture {
	t.Helper()
	s := newTestStore(t, cluster)
	a, err := s.CreateAccount(t.Context(), meta.NewAccount{Login: "u-" + testenv.Prefix(t) + "@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	mb, err := s.Mailbox(t.Context(), a.ID, mail.Inbox)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	return fixture{s: s, acct: a.ID, inbox: mb.ID}
}

func (f fixture) append(t testing.TB, mbox mail.MailboxID, flags ...mail.Flag) meta.Appended {
	t.Helper()
	ap, err := f.s.AppendEntry(t.Context(), f.acct, mbox, meta.NewEntry{
		Flags: flags, InternalDate: time.Unix(1700000000, 123456789), Size: 100,
		Blob: blob.NewBlobID(time.Now()), Structure: []byte("structure"),
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return ap
}

// scanKeys lists every key under the store's prefix, on every master.
func scanKeys(t *testing.T, s *Store) []string {
	t.Helper()
	var mu = make(chan struct{}, 1)
	var out []string
	scan := func(ctx context.Context, n *redis.Client) error {
		ks, err := n.Keys(ctx, s.k.prefix+"*").Result()
		mu <- struct{}{}
		out = append(out, ks...)
		<-mu
		return err
	}
	var err error
	switch c := s.c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(t.Context(), scan)
	case *redis.Client:
		err = scan(t.Context(), c)
	}
	if err != nil {
		t.Fatalf("scan keys: %v", err)
	}
	slices.Sort(out)
	return out
}

// TestKeyLayout builds every kind of key on a cluster, then checks that
// every key of the account maps to the slot of its base key, that the
// prefix comes before the hash tag, and that names and flags stay out of
// key names.
func TestKeyLayout(t *testing.T) {
	f := newFixture(t, true)
	ctx := t.Context()
	const oddName, oddFlag = "Pärchen Ünïcode/Sub", "$OddKeyword"
	mb, err := f.s.CreateMailbox(ctx, f.acct, oddName, "")
	if err != nil {
		t.Fatalf("create mailbox: %v", err)
	}
	ap := f.append(t, mb.ID, oddFlag)
	if _, _, err := f.s.Expunge(ctx, f.acct, mb.ID, mail.NewUIDSet(ap.UID)); err != nil {
		t.Fatalf("expunge: %v", err)
	}
	kept := f.append(t, mb.ID, mail.FlagSeen)
	if err := f.s.MarkRetrieved(ctx, f.acct, mb.ID, mail.NewUIDSet(kept.UID), time.Now()); err != nil {
		t.Fatalf("mark retrieved: %v", err)
	}
	if err := f.s.SetSubscribed(ctx, f.acct, oddName, true); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if _, err := f.s.AcquireLease(ctx, f.acct, "pop3 maildrop", "test", time.Minute); err != nil {
		t.Fatalf("acquire lease: %v", err)
	}
	if _, err := f.s.IncrCounter(ctx, "authfail/ip/192.0.2.1", 1, time.Minute); err != nil {
		t.Fatalf("incr counter: %v", err)
	}
	if _, err := f.s.AddAlias(ctx, f.acct, "alias-"+testenv.Prefix(t)+"@example.com"); err != nil {
		t.Fatalf("add alias: %v", err)
	}

	keys := scanKeys(t, f.s)
	base := f.s.k.base(f.acct)
	baseSlot := slot(t, f.s, base)
	want := map[string]bool{
		f.s.k.account(f.acct): true, f.s.k.mailboxes(f.acct): true, f.s.k.subs(f.acct): true,
		f.s.k.blobRefs(f.acct): true, f.s.k.blobGC(f.acct): true, f.s.k.fence(f.acct): true,
		f.s.k.lease(f.acct, "pop3 maildrop"): true,
		f.s.k.mailbox(f.acct, mb.ID):         true, f.s.k.mbUIDs(f.acct, mb.ID): true,
		f.s.k.mbFlags(f.acct, mb.ID): true, f.s.k.mbInfo(f.acct, mb.ID): true,
		f.s.k.mbModSeq(f.acct, mb.ID): true, f.s.k.mbVanished(f.acct, mb.ID): true, f.s.k.mbRetrieved(f.acct, mb.ID): true,
		f.s.k.mbAppended(f.acct, mb.ID): true, f.s.k.mbAppendedAt(f.acct, mb.ID): true,
		f.s.k.logins(): true, f.s.k.accounts(): true, f.s.k.accountIDs(): true,
		f.s.k.aliases(): true, f.s.k.addrs(): true, f.s.k.aliasIDs(): true,
		f.s.k.counter("authfail/ip/192.0.2.1"): true,
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, f.s.k.prefix) {
			t.Errorf("key %q lacks the prefix %q", k, f.s.k.prefix)
		}
		if strings.Contains(k, "Pärchen") || strings.Contains(k, "Sub") || strings.Contains(k, oddFlag) || strings.Contains(k, "maildrop") {
			t.Errorf("key %q holds a mailbox name, flag or lease name", k)
		}
		delete(want, k)
		if strings.HasPrefix(k, base) {
			if got := slot(t, f.s, k); got != baseSlot {
				t.Errorf("key %q in slot %d, account base in %d", k, got, baseSlot)
			}
		}
	}
	for k := range want {
		t.Errorf("expected key %q not found among %q", k, keys)
	}
	g := slot(t, f.s, f.s.k.accountIDs())
	for _, k := range f.s.k.global() {
		if got := slot(t, f.s, k); got != g {
			t.Errorf("global key %q in slot %d, %q in %d", k, got, f.s.k.accountIDs(), g)
		}
	}
	if got := slot(t, f.s, f.s.k.alFence(f.acct)); got != baseSlot {
		t.Errorf("key %q in slot %d, account base in %d", f.s.k.alFence(f.acct), got, baseSlot)
	}
	if !strings.HasPrefix(base, f.s.k.prefix+"{a:") {
		t.Errorf("base key %q: prefix must come before the hash tag", base)
	}
}

func slot(t *testing.T, s *Store, key string) int64 {
	t.Helper()
	n, err := s.c.ClusterKeySlot(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("cluster keyslot %q: %v", key, err)
	}
	return n
}

// TestScriptErrors raises every script error code on a real server and
// checks the sentinel it maps to, and that the message says what was
// attempted.
func TestScriptErrors(t *testing.T) {
	s := newTestStore(t, false)
	for code, want := range scriptErrors {
		t.Run(code, func(t *testing.T) {
			err := redis.NewScript(luaKeyPrelude+luaLib+fmt.Sprintf("fail(%q)", code)).
				Run(t.Context(), s.c, []string{s.k.base("1")}).Err()
			got := wrap(err, "do thing %d", 7)
			if !errors.Is(got, want) {
				t.Errorf("wrap(%v) = %v, want %v", err, got, want)
			}
			if !strings.HasPrefix(got.Error(), "do thing 7: ") || strings.Contains(got.Error(), "script:") {
				t.Errorf("message %q", got)
			}
		})
	}
}

func TestWrapUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"net", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, meta.ErrUnavailable},
		{"eof", io.EOF, meta.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, meta.ErrUnavailable},
		{"pool", redis.ErrPoolTimeout, meta.ErrUnavailable},
		{"canceled", context.Canceled, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := wrap(tc.err, "read"); !errors.Is(got, tc.want) {
				t.Errorf("wrap(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestVanishedTrim checks that the expunge log keeps ChangeLogMax entries,
// records where it was cut, and that ChangesSince sets Trimmed exactly
// when since lies before the cut.
func TestVanishedTrim(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("cluster=%v", cluster), func(t *testing.T) {
			f := newFixture(t, cluster)
			f.s.logMax = 3
			ctx := t.Context()
			var uids []mail.UID
			for range 8 {
				uids = append(uids, f.append(t, f.inbox).UID)
			}
			expunge := func(us ...mail.UID) mail.ModSeq {
				t.Helper()
				_, ms, err := f.s.Expunge(ctx, f.acct, f.inbox, mail.NewUIDSet(us...))
				if err != nil {
					t.Fatalf("expunge: %v", err)
				}
				return ms
			}
			// With a log of 3: [u0] -> [u0 u1 u2] -> [u0 u1 u2 u3 u4] cut to
			// [u2 u3 u4], inside the group of m2 -> [u2 u3 u4 u5] cut to
			// [u3 u4 u5]. The cut point stays m2.
			before := expunge(uids[0])
			m2 := expunge(uids[1], uids[2])
			m3 := expunge(uids[3], uids[4])
			m4 := expunge(uids[5])
			n, err := f.s.c.ZCard(ctx, f.s.k.mbVanished(f.acct, f.inbox)).Result()
			if err != nil || n != 3 {
				t.Fatalf("vanished log holds %d entries (%v), want 3", n, err)
			}
			vtrim, err := f.s.c.HGet(ctx, f.s.k.mailbox(f.acct, f.inbox), "vtrim").Uint64()
			if err != nil || mail.ModSeq(vtrim) != m2 {
				t.Fatalf("vtrim %d (%v), want %d", vtrim, err, m2)
			}
			tests := []struct {
				name     string
				since    mail.ModSeq
				trimmed  bool
				vanished mail.UIDSet
			}{
				{"before everything", before - 1, true, mail.NewUIDSet(uids[3], uids[4], uids[5])},
				{"before the cut", before, true, mail.NewUIDSet(uids[3], uids[4], uids[5])},
				{"at the cut", m2, false, mail.NewUIDSet(uids[3], uids[4], uids[5])},
				{"inside the log", m3, false, mail.NewUIDSet(uids[5])},
				{"at the end", m4, false, nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					cs, err := f.s.ChangesSince(ctx, f.acct, f.inbox, tc.since)
					if err != nil {
						t.Fatalf("changes since: %v", err)
					}
					if cs.Trimmed != tc.trimmed || cs.Vanished.String() != tc.vanished.String() {
						t.Errorf("since %d: trimmed %v vanished %s, want %v %s", tc.since, cs.Trimmed, cs.Vanished, tc.trimmed, tc.vanished)
					}
				})
			}
		})
	}
}

// TestLeaseRedis checks the PX expiry lives in Redis and that expiry
// (simulated by deleting the key, which is what PX does) loses the lease
// but never reuses a fencing token.
func TestLeaseRedis(t *testing.T) {
	f := newFixture(t, false)
	ctx := t.Context()
	l, err := f.s.AcquireLease(ctx, f.acct, "pop3", "a", 30*time.Second)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	key := f.s.k.lease(f.acct, "pop3")
	pttl, err := f.s.c.PTTL(ctx, key).Result()
	if err != nil || pttl <= 0 || pttl > 30*time.Second {
		t.Fatalf("lease PTTL %v (%v)", pttl, err)
	}
	if until := time.Until(l.Expires); until <= 25*time.Second || until > 31*time.Second {
		t.Errorf("expires in %v, want about 30s", until)
	}
	if _, err := f.s.AcquireLease(ctx, f.acct, "pop3", "b", time.Second); !errors.Is(err, meta.ErrLeaseHeld) {
		t.Errorf("second acquire: %v, want ErrLeaseHeld", err)
	}
	if err := f.s.c.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.RenewLease(ctx, f.acct, "pop3", l.Token, time.Second); !errors.Is(err, meta.ErrLeaseLost) {
		t.Errorf("renew after expiry: %v, want ErrLeaseLost", err)
	}
	l2, err := f.s.AcquireLease(ctx, f.acct, "pop3", "b", 100*time.Microsecond)
	if err != nil {
		t.Fatalf("acquire after expiry: %v", err)
	}
	if l2.Token <= l.Token {
		t.Errorf("token %d after %d", l2.Token, l.Token)
	}
	if _, err := f.s.AcquireLease(ctx, f.acct, "pop3", "b", 0); !errors.Is(err, meta.ErrInvalidArgument) {
		t.Errorf("zero ttl: %v", err)
	}
}

// TestCounterWindow checks the window starts at the first increment.
func TestCounterWindow(t *testing.T) {
	s := newTestStore(t, false)
	ctx := t.Context()
	if _, err := s.IncrCounter(ctx, "c", 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IncrCounter(ctx, "c", 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	pttl, err := s.c.PTTL(ctx, s.k.counter("c")).Result()
	if err != nil || pttl <= 0 || pttl > time.Minute {
		t.Errorf("PTTL %v (%v), want the first window", pttl, err)
	}
	if n, err := s.Counter(ctx, "c"); err != nil || n != 5 {
		t.Errorf("counter %d (%v), want 5", n, err)
	}
}

// TestListEntriesPaging lowers the page size so that ranges cross page
// boundaries.
func TestListEntriesPaging(t *testing.T) {
	f := newFixture(t, false)
	f.s.page = 7
	ctx := t.Context()
	var all []mail.UID
	for range 40 {
		all = append(all, f.append(t, f.inbox, mail.FlagSeen).UID)
	}
	// Every third entry was retrieved, among them the expunged all[3].
	var marked mail.UIDSet
	for i := 0; i < len(all); i += 3 {
		marked = marked.Add(all[i])
	}
	at := time.UnixMilli(1700000000123).UTC()
	if err := f.s.MarkRetrieved(ctx, f.acct, f.inbox, marked, at); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.Expunge(ctx, f.acct, f.inbox, mail.NewUIDSet(all[3], all[10], all[20])); err != nil {
		t.Fatal(err)
	}
	exists := func(s mail.UIDSet) []mail.UID {
		var out []mail.UID
		for i, u := range all {
			if s.Contains(u) && i != 3 && i != 10 && i != 20 {
				out = append(out, u)
			}
		}
		return out
	}
	tests := []struct {
		name string
		set  mail.UIDSet
	}{
		{"all", mail.AllUIDs()},
		{"ranges", uidSet(2, 9, 11, 30, 35, mail.MaxUID)},
		{"tail", uidSet(39, mail.MaxUID)},
		{"none", uidSet(1000, mail.MaxUID)},
		{"direct", mail.NewUIDSet(1, 4, 5, 21, 40, 999)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := f.s.ListEntries(ctx, f.acct, f.inbox, tc.set, meta.FieldAll, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []mail.UID
			for _, e := range es {
				got = append(got, e.UID)
				if e.Size != 100 || string(e.Structure) != "structure" || !slices.Equal(e.Flags, []mail.Flag{mail.FlagSeen}) ||
					!e.InternalDate.Equal(time.Unix(1700000000, 123456789)) {
					t.Errorf("entry %+v", e)
				}
				if want := marked.Contains(e.UID); want != e.Retrieved.Equal(at) || (!want && !e.Retrieved.IsZero()) {
					t.Errorf("entry %d retrieved at %v, marked %v", e.UID, e.Retrieved, want)
				}
			}
			if want := exists(tc.set); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestWatchBroken kills the server under a subscription: C closes and Err
// wraps ErrUnavailable; commands fail with ErrUnavailable too.
func TestWatchBroken(t *testing.T) {
	srv := testenv.NewRedis(t, testenv.RedisOptions{})
	s, err := New(Config{Addrs: []string{srv.Addr()}, KeyPrefix: "w:", DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	a, err := s.CreateAccount(ctx, meta.NewAccount{Login: "w@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Watch(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	srv.Kill()
	timeout := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case _, ok := <-sub.C():
			done = !ok
		case <-timeout:
			t.Fatal("subscription did not end after the server died")
		}
	}
	if err := sub.Err(); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("Err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Account(ctx, a.ID); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("account with the server down: %v, want ErrUnavailable", err)
	}
}

func TestCodec(t *testing.T) {
	t.Run("info", func(t *testing.T) {
		tests := []struct {
			name string
			date time.Time
			blob mail.BlobID
			st   []byte
		}{
			{"plain", time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), "abc", []byte("s")},
			{"zero date, no structure", time.Time{}, "b", nil},
			{"long blob", time.Unix(1, 0), mail.BlobID(strings.Repeat("x", 300)), []byte{0, 1, 2}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var e meta.Entry
				if err := unpackInfo(string(packInfo(tc.date, 1<<40, tc.blob, tc.st)), &e, true); err != nil {
					t.Fatal(err)
				}
				if !e.InternalDate.Equal(tc.date) || e.Size != 1<<40 || e.Blob != tc.blob || string(e.Structure) != string(tc.st) {
					t.Errorf("round trip: %+v", e)
				}
			})
		}
	})
	t.Run("event", func(t *testing.T) {
		tests := []struct {
			in   string
			want meta.Event
			bad  bool
		}{
			// The encoding of before the commit time: zero Time.
			{in: "7 1 42 1:3,5", want: meta.Event{Account: "9", Mailbox: 7, Kind: meta.EventAppend, ModSeq: 42, UIDs: uidSet(1, 3, 5, 5)}},
			{in: "3 4 1 ", want: meta.Event{Account: "9", Mailbox: 3, Kind: meta.EventMailbox, ModSeq: 1}},
			{in: "7 1 42 1:3,5 1700000000123", want: meta.Event{Account: "9", Mailbox: 7, Kind: meta.EventAppend, ModSeq: 42, UIDs: uidSet(1, 3, 5, 5), Time: time.UnixMilli(1700000000123).UTC()}},
			{in: "3 4 1  1700000000123", want: meta.Event{Account: "9", Mailbox: 3, Kind: meta.EventMailbox, ModSeq: 1, Time: time.UnixMilli(1700000000123).UTC()}},
			{in: "x 1 1 1", bad: true},
			{in: "1 1", bad: true},
			{in: "7 1 42 1 x", bad: true},
			{in: "7 1 42 1 -5", bad: true},
			{in: "7 1 42 1 1700000000123 9", bad: true},
		}
		for _, tc := range tests {
			got, err := decodeEvent("9", tc.in)
			if (err != nil) != tc.bad || (!tc.bad && fmt.Sprint(got) != fmt.Sprint(tc.want)) {
				t.Errorf("decodeEvent(%q) = %+v, %v", tc.in, got, err)
			}
		}
	})
	t.Run("ranges", func(t *testing.T) {
		if got := rangesArg(uidSet(1, 3, 5, 5, 9, mail.MaxUID)); got != "1:3,5,9:4294967295" {
			t.Errorf("rangesArg = %q", got)
		}
	})
}

// uidSet builds a set from start, stop pairs.
func uidSet(bounds ...mail.UID) mail.UIDSet {
	var s mail.UIDSet
	for i := 0; i+1 < len(bounds); i += 2 {
		s = s.AddRange(bounds[i], bounds[i+1])
	}
	return s
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(c Config) bool
	}{
		{"defaults", nil, false, func(c Config) bool {
			return slices.Equal(c.Addrs, []string{"127.0.0.1:6379"}) && c.ChangeLogMax == DefaultChangeLogMax && !c.Cluster
		}},
		{"cluster", []string{"-metadata.redis.addrs=a:1, b:2,c:3", "-metadata.redis.cluster"}, false, func(c Config) bool {
			return slices.Equal(c.Addrs, []string{"a:1", "b:2", "c:3"}) && c.Cluster
		}},
		{"sentinel", []string{"-metadata.redis.addrs=a:1,b:2", "-metadata.redis.master-name=m"}, false, nil},
		{"ambiguous", []string{"-metadata.redis.addrs=a:1,b:2"}, true, nil},
		{"no addrs", []string{"-metadata.redis.addrs="}, true, nil},
		{"braces in prefix", []string{"-metadata.redis.key-prefix={x}"}, true, nil},
		{"cluster db", []string{"-metadata.redis.cluster", "-metadata.redis.db=2"}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			c.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate = %v, want error %v", err, tc.wantErr)
			}
			if tc.check != nil && !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// TestRetrievedCleanup: retrieval marks go with their entries: expunge
// drops the field, deleting the mailbox or the account drops the hash.
func TestRetrievedCleanup(t *testing.T) {
	f := newFixture(t, false)
	ctx := t.Context()
	mb, err := f.s.CreateMailbox(ctx, f.acct, "Kept", "")
	if err != nil {
		t.Fatal(err)
	}
	u1, u2 := f.append(t, mb.ID).UID, f.append(t, mb.ID).UID
	u3 := f.append(t, f.inbox).UID
	if err := f.s.MarkRetrieved(ctx, f.acct, mb.ID, mail.NewUIDSet(u1, u2), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkRetrieved(ctx, f.acct, f.inbox, mail.NewUIDSet(u3), time.Now()); err != nil {
		t.Fatal(err)
	}
	key, inboxKey := f.s.k.mbRetrieved(f.acct, mb.ID), f.s.k.mbRetrieved(f.acct, f.inbox)
	if _, _, err := f.s.Expunge(ctx, f.acct, mb.ID, mail.NewUIDSet(u1)); err != nil {
		t.Fatal(err)
	}
	if fields, err := f.s.c.HKeys(ctx, key).Result(); err != nil || !slices.Equal(fields, []string{fmt.Sprint(u2)}) {
		t.Errorf("marks after expunge of %d: %v, %v; want only %d", u1, fields, err, u2)
	}
	if err := f.s.DeleteMailbox(ctx, f.acct, "Kept"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.c.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("marks of a deleted mailbox: exists %d, %v", n, err)
	}
	if err := f.s.DeleteAccount(ctx, f.acct); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.c.Exists(ctx, inboxKey).Result(); err != nil || n != 0 {
		t.Errorf("marks of a deleted account: exists %d, %v", n, err)
	}
}

// TestAppendReplayAgesOut: the record that answers a repeated append
// (mb:<M>:app, timed in mb:<M>:appat) is dropped by a later append once
// older than meta.AppendReplayWindow, and then the blob is a new entry.
func TestAppendReplayAgesOut(t *testing.T) {
	f := newFixture(t, false)
	ctx := t.Context()
	e := meta.NewEntry{Size: 10, Blob: blob.NewBlobID(time.Now())}
	first, err := f.s.AppendEntry(ctx, f.acct, f.inbox, e)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := f.s.AppendEntry(ctx, f.acct, f.inbox, e); err != nil || again != first {
		t.Fatalf("repeat = %+v, %v; want %+v", again, err, first)
	}
	// Age the record past the window, as if appended long ago.
	at := f.s.k.mbAppendedAt(f.acct, f.inbox)
	old := time.Now().Add(-meta.AppendReplayWindow - time.Minute).UnixMilli()
	if err := f.s.c.ZAdd(ctx, at, redis.Z{Score: float64(old), Member: string(e.Blob)}).Err(); err != nil {
		t.Fatal(err)
	}
	f.append(t, f.inbox) // drops the aged record
	if n, err := f.s.c.HLen(ctx, f.s.k.mbAppended(f.acct, f.inbox)).Result(); err != nil || n != 1 {
		t.Errorf("%d records in %s after one aged out (%v), want 1", n, f.s.k.mbAppended(f.acct, f.inbox), err)
	}
	again, err := f.s.AppendEntry(ctx, f.acct, f.inbox, e)
	if err != nil || again.UID <= first.UID {
		t.Fatalf("append of the blob after the window = %+v, %v; want a new entry", again, err)
	}
}
