package metasvc

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
	"github.com/mailstore/mailstore/pkg/meta/redismeta"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const day = 24 * time.Hour

// reapBackends are the metadata backends the reaper is tested on.
var reapBackends = []struct {
	name string
	open func(t *testing.T) meta.Store
}{
	{"local", openLocal},
	{"redis", openRedis},
}

func openLocal(t *testing.T) meta.Store {
	t.Helper()
	s, err := localmeta.Open(localmeta.Config{Path: filepath.Join(t.TempDir(), "meta.db")}, nil, localmeta.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openRedis opens a redismeta store on the shared test redis-server under
// a key prefix of its own, removed at cleanup.
func openRedis(t *testing.T) meta.Store {
	t.Helper()
	addr := testenv.Redis(t)
	prefix := testenv.Prefix(t) + ":"
	s, err := redismeta.New(redismeta.Config{
		Addrs: []string{addr}, KeyPrefix: prefix, ChangeLogMax: redismeta.DefaultChangeLogMax, PoolSize: 8,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = c.Unlink(ctx, iter.Val()).Err()
		}
	})
	return s
}

// warnings is a slog handler that records every record at Warn or above,
// so a test can assert that the reaper never complained.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	w.msgs = append(w.msgs, msg)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) none(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		t.Errorf("reaper logged a warning: %s", m)
	}
}

// newReaper builds a reaper over store with the server-wide default def
// and the clock now, logging warnings into w.
func newReaper(store meta.Store, def meta.POP3Policy, now func() time.Time, holder string, w *warnings) *reaper {
	return &reaper{store: store, def: def, interval: time.Hour, logger: slog.New(w), holder: holder, now: now}
}

// reapAccount is an account with INBOX entries retrieved at given ages.
type reapAccount struct {
	id    mail.AccountID
	inbox mail.MailboxID
	uids  map[string]mail.UID // by label
}

// ages are the labels of newPOP3Account's entries and when (how long
// before now) each was first retrieved; negative: never.
var ages = []struct {
	label string
	age   time.Duration
}{
	{"4 days ago", 4 * day},
	{"exactly 3 days ago", 3 * day},
	{"2 days ago", 2 * day},
	{"just now", 0},
	{"never", -1},
}

// newPOP3Account creates an account with policy p and one INBOX entry for
// each of ages, marked retrieved at now minus its age, plus one entry in
// another mailbox retrieved long ago (the reaper works on INBOX only).
func newPOP3Account(t *testing.T, s meta.Store, p meta.POP3Policy, now time.Time) reapAccount {
	t.Helper()
	ctx := t.Context()
	a := metatest.NewAccount(t, s)
	if _, err := s.UpdateAccount(ctx, a.ID, meta.AccountUpdate{POP3: &p}); err != nil {
		t.Fatal(err)
	}
	in, err := s.Mailbox(ctx, a.ID, mail.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	ra := reapAccount{id: a.ID, inbox: in.ID, uids: map[string]mail.UID{}}
	for _, x := range ages {
		u := metatest.Append(t, s, a.ID, in.ID).UID
		ra.uids[x.label] = u
		if x.age >= 0 {
			if err := s.MarkRetrieved(ctx, a.ID, in.ID, mail.NewUIDSet(u), now.Add(-x.age)); err != nil {
				t.Fatal(err)
			}
		}
	}
	other, err := s.CreateMailbox(ctx, a.ID, "Kept", "")
	if err != nil {
		t.Fatal(err)
	}
	u := metatest.Append(t, s, a.ID, other.ID).UID
	if err := s.MarkRetrieved(ctx, a.ID, other.ID, mail.NewUIDSet(u), now.Add(-100*day)); err != nil {
		t.Fatal(err)
	}
	return ra
}

// remaining returns the labels of the account's INBOX entries still there.
func (ra reapAccount) remaining(t *testing.T, s meta.Store) []string {
	t.Helper()
	es, err := s.ListEntries(t.Context(), ra.id, ra.inbox, mail.AllUIDs(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range ages {
		if slices.ContainsFunc(es, func(e meta.Entry) bool { return e.UID == ra.uids[x.label] }) {
			out = append(out, x.label)
		}
	}
	return out
}

var (
	keep3        = meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 3}
	keepForever  = meta.POP3Policy{Mode: meta.POP3KeepForever}
	deleteAtOnce = meta.POP3Policy{Mode: meta.POP3Delete}
	allLabels    = []string{"4 days ago", "exactly 3 days ago", "2 days ago", "just now", "never"}
	after3Days   = []string{"2 days ago", "just now", "never"}
)

// TestPOP3Reap: under "keep 3 days" (the account's own or the server's
// default) the reaper expunges INBOX entries retrieved 3 days ago or more,
// never those retrieved later or never retrieved; other policies, and
// other mailboxes, are left alone.
func TestPOP3Reap(t *testing.T) {
	for _, be := range reapBackends {
		t.Run(be.name, func(t *testing.T) {
			tests := []struct {
				name    string
				account meta.POP3Policy
				def     meta.POP3Policy
				want    []string
			}{
				{"own days", keep3, deleteAtOnce, after3Days},
				{"own days over default forever", keep3, keepForever, after3Days},
				{"default days", meta.POP3Policy{}, keep3, after3Days},
				{"own forever", keepForever, keep3, allLabels},
				{"own delete", deleteAtOnce, keep3, allLabels},
				{"default forever", meta.POP3Policy{}, keepForever, allLabels},
				{"default unset", meta.POP3Policy{}, meta.POP3Policy{}, allLabels},
				{"own longer days", meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 5}, keep3, allLabels},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					s := be.open(t)
					c := &clock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
					ra := newPOP3Account(t, s, tc.account, c.now())
					w := &warnings{}
					r := newReaper(s, tc.def, c.now, "test", w)
					before, err := s.Mailbox(t.Context(), ra.id, mail.Inbox)
					if err != nil {
						t.Fatal(err)
					}

					n := r.reapAll(t.Context())
					got := ra.remaining(t, s)
					if !slices.Equal(got, tc.want) {
						t.Errorf("INBOX keeps %q, want %q", got, tc.want)
					}
					if wantN := len(allLabels) - len(tc.want); n != wantN {
						t.Errorf("reapAll reported %d expunged, want %d", n, wantN)
					}
					if kept, err := s.Mailbox(t.Context(), ra.id, "Kept"); err != nil || kept.Messages != 1 {
						t.Errorf("mailbox Kept after reaping: %+v, %v; want its one message", kept, err)
					}
					// The expunge went through the store: IMAP sessions
					// catch up on it like any other.
					cs, err := s.ChangesSince(t.Context(), ra.id, ra.inbox, before.HighestModSeq)
					if err != nil {
						t.Fatal(err)
					}
					if int(cs.Vanished.Count()) != n {
						t.Errorf("ChangesSince reports vanished %s, want %d UIDs", cs.Vanished, n)
					}
					// Reaping again finds nothing new; a day later, the
					// entry retrieved 2 days ago is due.
					if n := r.reapAll(t.Context()); n != 0 {
						t.Errorf("second reapAll expunged %d, want 0", n)
					}
					if slices.Equal(tc.want, after3Days) {
						c.add(day)
						if n, err := r.ReapAccount(t.Context(), ra.id); n != 1 || err != nil {
							t.Errorf("ReapAccount a day later = %d, %v; want 1", n, err)
						}
						if got := ra.remaining(t, s); !slices.Equal(got, []string{"just now", "never"}) {
							t.Errorf("a day later INBOX keeps %q", got)
						}
					}
					w.none(t)
					metatest.CheckAccount(t, s, ra.id)
				})
			}
		})
	}
}

// TestPOP3ReapLeaseHeld: an account whose reaper lease another replica
// holds is skipped without a warning, and reaped once it is free.
func TestPOP3ReapLeaseHeld(t *testing.T) {
	for _, be := range reapBackends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			c := &clock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
			ra := newPOP3Account(t, s, keep3, c.now())
			w := &warnings{}
			r := newReaper(s, deleteAtOnce, c.now, "test", w)
			l, err := s.AcquireLease(t.Context(), ra.id, reapLease, "other replica", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if n := r.reapAll(t.Context()); n != 0 {
				t.Errorf("reapAll under a held lease expunged %d", n)
			}
			if got := ra.remaining(t, s); !slices.Equal(got, allLabels) {
				t.Errorf("INBOX under a held lease keeps %q", got)
			}
			if err := s.ReleaseLease(t.Context(), ra.id, reapLease, l.Token); err != nil {
				t.Fatal(err)
			}
			if n := r.reapAll(t.Context()); n != 2 {
				t.Errorf("reapAll after release expunged %d, want 2", n)
			}
			w.none(t)
		})
	}
}

// TestPOP3ReapConcurrent: two reapers (two replicas) run at once over the
// same store and many accounts; every due message is expunged exactly
// once, nothing else, and neither logs a warning.
func TestPOP3ReapConcurrent(t *testing.T) {
	const accounts = 12
	for _, be := range reapBackends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			c := &clock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
			var ras []reapAccount
			for i := range accounts {
				p := keep3
				if i%3 == 2 {
					p = keepForever
				}
				ras = append(ras, newPOP3Account(t, s, p, c.now()))
			}
			w := &warnings{}
			r1 := newReaper(s, deleteAtOnce, c.now, "replica-1", w)
			r2 := newReaper(s, deleteAtOnce, c.now, "replica-2", w)
			var (
				wg     sync.WaitGroup
				counts [2]int
				start  = make(chan struct{})
			)
			for i, r := range []*reaper{r1, r2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// Several passes each, so that they overlap.
					for range 3 {
						counts[i] += r.reapAll(t.Context())
					}
				}()
			}
			close(start)
			wg.Wait()

			want := 0
			for i, ra := range ras {
				wantLabels := after3Days
				if i%3 == 2 {
					wantLabels = allLabels
				} else {
					want += 2
				}
				if got := ra.remaining(t, s); !slices.Equal(got, wantLabels) {
					t.Errorf("account %d keeps %q, want %q", i, got, wantLabels)
				}
				metatest.CheckAccount(t, s, ra.id)
			}
			if counts[0]+counts[1] != want {
				t.Errorf("reapers expunged %d + %d messages, want %d in all", counts[0], counts[1], want)
			}
			w.none(t)
		})
	}
}

// countingStore counts ListEntries calls and records the widest UID span
// asked for.
type countingStore struct {
	meta.Store
	mu    sync.Mutex
	lists int
	spans []uint64
}

func (c *countingStore) ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, since mail.ModSeq) ([]meta.Entry, error) {
	c.mu.Lock()
	c.lists++
	for _, r := range uids {
		c.spans = append(c.spans, uint64(r.Stop-r.Start)+1)
	}
	c.mu.Unlock()
	return c.Store.ListEntries(ctx, acct, mbox, uids, f, since)
}

// TestPOP3ReapPaging: a big mailbox is read in UID windows (never 1:*),
// and a mailbox whose few messages are spread over a wide UID range is
// not walked a thousand UIDs at a time.
func TestPOP3ReapPaging(t *testing.T) {
	tests := []struct {
		name      string
		messages  int
		keepEvery int // of every keepEvery appended, keep two (expunge the rest before reaping)
		wantLists int
		wantSpan  uint64
	}{
		{"dense", 2500, 2, 3, 1000},
		{"sparse", 3000, 300, 1, 3000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openLocal(t)
			ctx := t.Context()
			now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
			a := metatest.NewAccount(t, s)
			if _, err := s.UpdateAccount(ctx, a.ID, meta.AccountUpdate{POP3: &keep3}); err != nil {
				t.Fatal(err)
			}
			in, err := s.Mailbox(ctx, a.ID, mail.Inbox)
			if err != nil {
				t.Fatal(err)
			}
			var drop, odd mail.UIDSet
			kept := 0
			for i := range tc.messages {
				u := metatest.Append(t, s, a.ID, in.ID).UID
				switch {
				case i%tc.keepEvery >= 2:
					drop = drop.Add(u)
				case u%2 == 1:
					kept++
					odd = odd.Add(u)
				default:
					kept++
				}
			}
			if !drop.Empty() {
				if _, _, err := s.Expunge(ctx, a.ID, in.ID, drop); err != nil {
					t.Fatal(err)
				}
			}
			// Odd UIDs were retrieved long ago, even ones never.
			if err := s.MarkRetrieved(ctx, a.ID, in.ID, odd, now.Add(-10*day)); err != nil {
				t.Fatal(err)
			}
			cs := &countingStore{Store: s}
			w := &warnings{}
			r := newReaper(cs, deleteAtOnce, func() time.Time { return now }, "test", w)
			n, err := r.ReapAccount(ctx, a.ID)
			if err != nil || n != int(odd.Count()) {
				t.Fatalf("ReapAccount = %d, %v; want %d", n, err, odd.Count())
			}
			if cs.lists != tc.wantLists || slices.Max(cs.spans) != tc.wantSpan {
				t.Errorf("%d ListEntries calls, widest span %d; want %d calls, span %d", cs.lists, slices.Max(cs.spans), tc.wantLists, tc.wantSpan)
			}
			es, err := s.ListEntries(ctx, a.ID, in.ID, mail.AllUIDs(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if e.UID%2 == 1 {
					t.Errorf("retrieved UID %d survived", e.UID)
				}
			}
			if want := kept - int(odd.Count()); len(es) != want {
				t.Errorf("%d entries left, want %d", len(es), want)
			}
			w.none(t)
		})
	}
}

func TestConfigPOP3(t *testing.T) {
	base := func() Config {
		return Config{ListenAddress: "127.0.0.1:0", Backend: BackendRedis,
			Redis: redismeta.Config{Addrs: []string{"127.0.0.1:6379"}}, Auth: AuthConfig{FailureWindow: time.Minute}}
	}
	tests := []struct {
		name    string
		change  func(c *Config)
		wantErr bool
	}{
		{"unset", func(c *Config) {}, false},
		{"days", func(c *Config) { c.POP3Default = keep3; c.POP3ReapInterval = time.Hour }, false},
		{"forever", func(c *Config) { c.POP3Default = keepForever }, false},
		{"delete", func(c *Config) { c.POP3Default = deleteAtOnce }, false},
		{"zero days", func(c *Config) { c.POP3Default = meta.POP3Policy{Mode: meta.POP3KeepDays} }, true},
		{"too many days", func(c *Config) { c.POP3Default = meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 36501} }, true},
		{"unknown mode", func(c *Config) { c.POP3Default = meta.POP3Policy{Mode: "weekly"} }, true},
		{"negative interval", func(c *Config) { c.POP3ReapInterval = -time.Second }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(&c)
			err := c.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// TestPOP3ReapHugeKeepDays: a day count beyond what ParsePOP3Keep allows
// (the admin API stores any positive one) keeps messages, without a
// warning or an overflow.
func TestPOP3ReapHugeKeepDays(t *testing.T) {
	s := openLocal(t)
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	ra := newPOP3Account(t, s, meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 1 << 30}, now)
	w := &warnings{}
	r := newReaper(s, deleteAtOnce, func() time.Time { return now }, "test", w)
	if n := r.reapAll(t.Context()); n != 0 {
		t.Errorf("reapAll expunged %d under keep 2^30 days", n)
	}
	if got := ra.remaining(t, s); !slices.Equal(got, allLabels) {
		t.Errorf("INBOX keeps %q", got)
	}
	w.none(t)
}

// TestRunStopsWithReaper: Run, with the blob sweeper and the POP3 reaper
// both enabled, returns once its context ends.
func TestRunStopsWithReaper(t *testing.T) {
	f := newFixture(t)
	cfg := f.svc.cfg
	cfg.POP3Default, cfg.POP3ReapInterval = keep3, time.Hour
	svc, err := New(cfg, Deps{Store: f.store, Blobs: f.blobs, Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	a := f.addAccount(t, "reap@example.com", "pw")
	if n, err := svc.ReapPOP3(t.Context(), a.ID); n != 0 || err != nil {
		t.Fatalf("ReapPOP3 of an empty account = %d, %v", n, err)
	}
}
