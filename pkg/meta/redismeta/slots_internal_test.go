package redismeta

// Tests of slots that the conformance suite cannot see: the hash layout,
// the key's expiry following the longest live count, lapsed fields being
// dropped, and RefreshSlots' pipelines (chunks, cluster slots, a server
// that lost its script cache).

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/meta"
)

// slotField parses a slot hash field value.
func slotField(t *testing.T, v string) (count int64, expires time.Time) {
	t.Helper()
	c, e, ok := strings.Cut(v, " ")
	n, err1 := strconv.ParseInt(c, 10, 64)
	ms, err2 := strconv.ParseInt(e, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("slot field %q, want \"<count> <expiry ms>\"", v)
	}
	return n, time.UnixMilli(ms)
}

func TestSlotLayout(t *testing.T) {
	s := newTestStore(t, false)
	ctx := t.Context()
	const key = "conn/imap/ip/203.0.113.7"
	k := s.k.slot(key)
	if want := s.k.prefix + "slot:" + key; k != want {
		t.Fatalf("slot key %q, want %q", k, want)
	}
	pttl := func() time.Duration {
		t.Helper()
		d, err := s.c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, h := range []string{"pod-a", "pod-a"} {
		if _, err := s.AcquireSlot(ctx, key, h, 10, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AcquireSlot(ctx, key, "pod-b", 10, time.Hour); err != nil {
		t.Fatal(err)
	}
	fields, err := s.c.HGetAll(ctx, k).Result()
	if err != nil || len(fields) != 2 {
		t.Fatalf("slot hash %v (%v), want two holders", fields, err)
	}
	if n, exp := slotField(t, fields["pod-a"]); n != 2 || time.Until(exp) < 25*time.Second || time.Until(exp) > 31*time.Second {
		t.Errorf("pod-a: count %d, expires in %v; want 2, about 30s", n, time.Until(exp))
	}
	if d := pttl(); d < 59*time.Minute || d > time.Hour {
		t.Errorf("PTTL %v, want the longest expiry, about an hour", d)
	}
	// When the longest count goes, the key's expiry follows the next.
	if err := s.ReleaseSlot(ctx, key, "pod-b"); err != nil {
		t.Fatal(err)
	}
	if d := pttl(); d < 25*time.Second || d > 30*time.Second {
		t.Errorf("PTTL after pod-b left %v, want about 30s", d)
	}
	// Lapsed and malformed fields (a pod that died, or junk) do not count
	// and are dropped by the next write.
	if err := s.c.HSet(ctx, k, "dead", "5 1000", "junk", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SlotTotal(ctx, key); err != nil || n != 2 {
		t.Errorf("total %d (%v), want 2", n, err)
	}
	if n, err := s.AcquireSlot(ctx, key, "pod-b", 3, time.Minute); err != nil || n != 3 {
		t.Errorf("acquire beside lapsed fields: %d, %v; want 3", n, err)
	}
	if n, err := s.c.HLen(ctx, k).Result(); err != nil || n != 2 {
		t.Errorf("%d fields (%v) after the acquire, want 2", n, err)
	}
	if _, err := s.AcquireSlot(ctx, key, "pod-b", 3, time.Minute); !errors.Is(err, meta.ErrLimit) {
		t.Errorf("acquire at the limit: %v", err)
	}
	// The last release removes the key.
	for _, h := range []string{"pod-a", "pod-a", "pod-b"} {
		if err := s.ReleaseSlot(ctx, key, h); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.c.Exists(ctx, k).Result(); err != nil || n != 0 {
		t.Errorf("key exists (%d, %v) after the last release", n, err)
	}
	// A refresh that finds nothing creates nothing.
	if err := s.RefreshSlots(ctx, "pod-a", []string{key}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := s.c.Exists(ctx, k).Result(); err != nil || n != 0 {
		t.Errorf("key exists (%d, %v) after refreshing nothing", n, err)
	}
}

// TestRefreshSlotsMany refreshes more keys than one pipeline chunk, spread
// over every master of the cluster.
func TestRefreshSlotsMany(t *testing.T) {
	s := newTestStore(t, true)
	ctx := t.Context()
	keys := make([]string, refreshChunk+refreshChunk/2)
	for i := range keys {
		keys[i] = fmt.Sprintf("conn/imap/acct/%d", i)
		if _, err := s.AcquireSlot(ctx, keys[i], "pod-a", 5, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RefreshSlots(ctx, "pod-a", keys, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, refreshChunk - 1, refreshChunk, len(keys) - 1} {
		d, err := s.c.PTTL(ctx, s.k.slot(keys[i])).Result()
		if err != nil || d < 59*time.Minute {
			t.Errorf("key %d: PTTL %v (%v) after refreshing for an hour", i, d, err)
		}
	}
}

// TestRefreshSlotsNoScript refreshes on a server whose script cache was
// flushed: the pipeline of EVALSHAs fails with NOSCRIPT and is sent again
// as EVALs.
func TestRefreshSlotsNoScript(t *testing.T) {
	srv := testenv.NewRedis(t, testenv.RedisOptions{})
	s, err := New(Config{Addrs: []string{srv.Addr()}, KeyPrefix: testenv.Prefix(t) + ":"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		if _, err := s.AcquireSlot(ctx, k, "pod-a", 5, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.RefreshSlots(ctx, "pod-a", keys, time.Hour); err != nil {
		t.Fatalf("refresh after SCRIPT FLUSH: %v", err)
	}
	for _, k := range keys {
		if d, err := s.c.PTTL(ctx, s.k.slot(k)).Result(); err != nil || d < 59*time.Minute {
			t.Errorf("key %s: PTTL %v (%v) after refreshing for an hour", k, d, err)
		}
	}
}
