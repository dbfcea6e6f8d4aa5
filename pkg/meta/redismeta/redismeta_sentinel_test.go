package redismeta

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

// TestConformanceSentinel runs the metatest suite through Sentinel: the
// store finds the master of a shared master, replica and three sentinels
// by asking the sentinels (Config.MasterName).
func TestConformanceSentinel(t *testing.T) {
	t.Parallel()
	metatest.Run(t, func(t *testing.T) meta.Store {
		return newSentinelStore(t, testenv.RedisSentinel(t), 5*time.Second)
	})
}

// newSentinelStore is newTestStore for Sentinel: a Store made by New with
// Addrs naming the sentinels, its own key prefix, and its keys removed at
// cleanup. timeout bounds dials, reads and writes.
func newSentinelStore(t testing.TB, setup testenv.SentinelSetup, timeout time.Duration) *Store {
	t.Helper()
	cfg := Config{
		Addrs:        setup.SentinelAddrs,
		MasterName:   setup.MasterName,
		KeyPrefix:    testenv.Prefix(t) + ":",
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		ChangeLogMax: DefaultChangeLogMax,
		PoolSize:     8,
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	if _, ok := s.c.(*redis.Client); !ok {
		t.Fatalf("New with MasterName made a %T, want the failover *redis.Client", s.c)
	}
	t.Cleanup(func() {
		removeKeys(t, s.c, cfg.KeyPrefix)
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// TestSentinelFailover kills the master of a dedicated Sentinel setup and
// checks that the store reports the outage as meta.ErrUnavailable and works
// again, on the promoted replica, once the sentinels have failed over.
//
// Replication is asynchronous: a write the master acknowledged just before
// it died may never have reached the replica and is then lost, and the UIDs
// it used may be handed out again. So only writes confirmed on the replica
// with WAIT are checked after the failover. The store issues no WAIT per
// write (and Redis 7.0 has no WAITAOF): the README asks for appendonly yes
// with appendfsync always, which keeps an acknowledged write across a crash
// of the master, not across a failover to a replica that lagged behind.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	g := testenv.NewRedisSentinel(t)
	s := newSentinelStore(t, g.SentinelSetup, time.Second)
	ctx := t.Context()

	a, err := s.CreateAccount(ctx, meta.NewAccount{Login: "failover-" + testenv.Prefix(t) + "@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, mail.Inbox)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	appendOne := func(ctx context.Context) (meta.Appended, error) {
		return s.AppendEntry(ctx, a.ID, inbox.ID, meta.NewEntry{
			InternalDate: time.Unix(1700000000, 0), Size: 100,
			Blob: blob.NewBlobID(time.Now()), Structure: []byte("structure"),
		})
	}

	// Entries confirmed on the replica survive the failover.
	var durable []mail.UID
	for range 3 {
		ap, err := appendOne(ctx)
		if err != nil {
			t.Fatalf("append before failover: %v", err)
		}
		durable = append(durable, ap.UID)
	}
	if n, err := s.c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v; want 1", n, err)
	}
	// Entries acknowledged but not waited for may or may not survive.
	for range 2 {
		if _, err := appendOne(ctx); err != nil {
			t.Fatalf("append before failover: %v", err)
		}
	}

	g.KillMaster()
	// The sentinels wait a full down-after period (1 s) before they even
	// agree that the master is down, so this append meets the dead master.
	probe, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = appendOne(probe)
	cancel()
	if !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("append with the master dead: err = %v, want %v", err, meta.ErrUnavailable)
	}

	g.WaitFailover(t)
	// The client may still hold broken connections to the old master; each
	// failure must read as unavailable until it has found the new one.
	var after meta.Appended
	deadline, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		after, err = appendOne(deadline)
		if err == nil {
			break
		}
		if !errors.Is(err, meta.ErrUnavailable) {
			t.Fatalf("append during failover: err = %v, want %v", err, meta.ErrUnavailable)
		}
		select {
		case <-deadline.Done():
			t.Fatalf("append after failover still fails: %v", err)
		case <-tick.C:
		}
	}
	if _, err := appendOne(ctx); err != nil {
		t.Fatalf("second append after failover: %v", err)
	}

	entries, err := s.ListEntries(ctx, a.ID, inbox.ID, mail.AllUIDs(), meta.FieldFlags, 0)
	if err != nil {
		t.Fatalf("list entries after failover: %v", err)
	}
	have := make(map[mail.UID]bool)
	for _, e := range entries {
		have[e.UID] = true
	}
	for _, uid := range durable {
		if !have[uid] {
			t.Errorf("entry %d, confirmed on the replica before the failover, is gone; have %d entries", uid, len(entries))
		}
		if after.UID <= uid {
			t.Errorf("append after failover got UID %d, not above %d appended before", after.UID, uid)
		}
	}
	if len(entries) < len(durable)+2 {
		t.Errorf("after failover: %d entries, want at least %d", len(entries), len(durable)+2)
	}
}
