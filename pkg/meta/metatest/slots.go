package metatest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
)

// Slots expire by the backend's clock, which the suite cannot fake (Redis
// server time), so the expiry tests use short TTLs (shortTTL) and poll
// until they lapse (until), and the tests that must see a count outlive
// its first TTL watch it for a while (stays) instead of sleeping.

// shortTTL is a TTL the suite waits out.
const shortTTL = 300 * time.Millisecond

func slotTests() []test {
	return []test{
		{"AcquireToLimit", testSlotAcquireToLimit},
		{"TwoHolders", testSlotTwoHolders},
		{"Release", testSlotRelease},
		{"ReleaseBelowZero", testSlotReleaseBelowZero},
		{"Lapse", testSlotLapse},
		{"RefreshKeepsAlive", testSlotRefreshKeepsAlive},
		{"RefreshSetsTTL", testSlotRefreshSetsTTL},
		{"Race", testSlotRace},
		{"InvalidArguments", testSlotInvalid},
	}
}

// slotKey returns a fresh key shaped like the gateways' keys.
func slotKey(kind string) string { return "conn/imap/" + kind + "/" + uniq() }

// acquire takes a slot and fails the test unless it succeeds with total
// want.
func acquire(t testing.TB, s meta.Store, key, holder string, limit int64, ttl time.Duration, want int64) {
	t.Helper()
	n, err := s.AcquireSlot(ctx(t), key, holder, limit, ttl)
	if err != nil {
		t.Fatalf("acquire slot %s for %s (limit %d): %v", key, holder, limit, err)
	}
	if n != want {
		t.Errorf("acquire slot %s for %s: total %d, want %d", key, holder, n, want)
	}
}

// refused fails the test unless acquiring is refused with ErrLimit and the
// total want.
func refused(t testing.TB, s meta.Store, key, holder string, limit int64, want int64) {
	t.Helper()
	n, err := s.AcquireSlot(ctx(t), key, holder, limit, time.Minute)
	if !errors.Is(err, meta.ErrLimit) {
		t.Fatalf("acquire slot %s for %s over limit %d: got %d, %v; want ErrLimit", key, holder, limit, n, err)
	}
	if n != want {
		t.Errorf("acquire slot %s for %s over limit %d: total %d with ErrLimit, want %d", key, holder, limit, n, want)
	}
}

// total returns SlotTotal and fails the test on an error.
func total(t testing.TB, s meta.Store, key string) int64 {
	t.Helper()
	n, err := s.SlotTotal(ctx(t), key)
	if err != nil {
		t.Fatalf("slot total %s: %v", key, err)
	}
	return n
}

// wantTotal fails the test unless the total of key is want.
func wantTotal(t testing.TB, s meta.Store, key string, want int64) {
	t.Helper()
	if n := total(t, s, key); n != want {
		t.Errorf("slot total %s = %d, want %d", key, n, want)
	}
}

// stays polls cond until d has passed since start and fails the test if it
// is ever false: it checks that something lasts, where until waits for
// something to happen.
func stays(t testing.TB, desc string, start time.Time, d time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if !cond() {
			t.Fatalf("%s: no longer after %v", desc, time.Since(start))
		}
		if time.Since(start) > d {
			return
		}
		<-tick.C
	}
}

func testSlotAcquireToLimit(t *testing.T, s meta.Store) {
	key, other := slotKey("ip"), slotKey("ip")
	wantTotal(t, s, key, 0)
	for i := int64(1); i <= 3; i++ {
		acquire(t, s, key, "pod-a", 3, time.Minute, i)
	}
	refused(t, s, key, "pod-a", 3, 3)
	refused(t, s, key, "pod-a", 3, 3)
	wantTotal(t, s, key, 3)
	// A higher limit (the operator raised it) admits more at once.
	acquire(t, s, key, "pod-a", 4, time.Minute, 4)
	refused(t, s, key, "pod-a", 2, 4)
	wantTotal(t, s, key, 4)
	// Keys are independent.
	wantTotal(t, s, other, 0)
	acquire(t, s, other, "pod-a", 1, time.Minute, 1)
	refused(t, s, other, "pod-a", 1, 1)
	wantTotal(t, s, key, 4)
}

func testSlotTwoHolders(t *testing.T, s meta.Store) {
	key := slotKey("acct")
	acquire(t, s, key, "pod-a", 3, time.Minute, 1)
	acquire(t, s, key, "pod-b", 3, time.Minute, 2)
	acquire(t, s, key, "pod-a", 3, time.Minute, 3)
	refused(t, s, key, "pod-a", 3, 3)
	refused(t, s, key, "pod-b", 3, 3)
	refused(t, s, key, "pod-c", 3, 3)
	wantTotal(t, s, key, 3)
	// One holder's release frees a slot for any holder.
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	wantTotal(t, s, key, 2)
	acquire(t, s, key, "pod-c", 3, time.Minute, 3)
	refused(t, s, key, "pod-a", 3, 3)
	// Each holder's count is its own: b holds one, a one, c one.
	for _, h := range []string{"pod-b", "pod-b", "pod-a", "pod-a"} {
		noErr(t, "release "+h, s.ReleaseSlot(ctx(t), key, h))
	}
	wantTotal(t, s, key, 1)
	acquire(t, s, key, "pod-a", 3, time.Minute, 2)
}

func testSlotRelease(t *testing.T, s meta.Store) {
	key := slotKey("ip")
	for i := int64(1); i <= 2; i++ {
		acquire(t, s, key, "pod-a", 2, time.Minute, i)
	}
	refused(t, s, key, "pod-a", 2, 2)
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	wantTotal(t, s, key, 1)
	acquire(t, s, key, "pod-a", 2, time.Minute, 2)
	refused(t, s, key, "pod-a", 2, 2)
	// Releasing a key never acquired, or by a holder with no count,
	// changes nothing and is no error.
	noErr(t, "release an unknown key", s.ReleaseSlot(ctx(t), slotKey("ip"), "pod-a"))
	noErr(t, "release by a holder without a count", s.ReleaseSlot(ctx(t), key, "pod-b"))
	wantTotal(t, s, key, 2)
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	wantTotal(t, s, key, 0)
}

func testSlotReleaseBelowZero(t *testing.T, s meta.Store) {
	key := slotKey("acct")
	acquire(t, s, key, "pod-a", 5, time.Minute, 1)
	acquire(t, s, key, "pod-b", 5, time.Minute, 2)
	for range 4 {
		noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	}
	wantTotal(t, s, key, 1)
	// a's count stayed at 0, not below: one acquire gives it one again.
	acquire(t, s, key, "pod-a", 5, time.Minute, 2)
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-b"))
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-b"))
	wantTotal(t, s, key, 1)
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	wantTotal(t, s, key, 0)
	for i := int64(1); i <= 5; i++ {
		acquire(t, s, key, "pod-b", 5, time.Minute, i)
	}
	refused(t, s, key, "pod-a", 5, 5)
}

func testSlotLapse(t *testing.T, s meta.Store) {
	key := slotKey("ip")
	// b's count is refreshed to last; a's (a dead pod) is left to lapse.
	acquire(t, s, key, "pod-b", 3, 10*time.Second, 1)
	noErr(t, "refresh", s.RefreshSlots(ctx(t), "pod-b", []string{key}, time.Minute))
	acquire(t, s, key, "pod-a", 3, shortTTL, 2)
	acquire(t, s, key, "pod-a", 3, shortTTL, 3)
	refused(t, s, key, "pod-b", 3, 3)
	until(t, "a's slots lapse", func() bool { return total(t, s, key) == 1 })
	// The lapsed count is gone as a whole: a starts again from one, and
	// releasing what lapsed takes nothing from b.
	noErr(t, "release a lapsed slot", s.ReleaseSlot(ctx(t), key, "pod-a"))
	wantTotal(t, s, key, 1)
	acquire(t, s, key, "pod-a", 3, time.Minute, 2)
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	wantTotal(t, s, key, 1)
	noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-b"))
	wantTotal(t, s, key, 0)
}

func testSlotRefreshKeepsAlive(t *testing.T, s meta.Store) {
	k1, k2, unknown := slotKey("ip"), slotKey("acct"), slotKey("ip")
	// Read every key first, so that connecting (to each node of a
	// cluster) does not eat into firstTTL before the refresh.
	for _, k := range []string{k1, k2, unknown} {
		wantTotal(t, s, k, 0)
	}
	const firstTTL = 2 * time.Second
	start := time.Now()
	acquire(t, s, k1, "pod-a", 5, firstTTL, 1)
	acquire(t, s, k2, "pod-a", 5, firstTTL, 1)
	acquire(t, s, k2, "pod-b", 5, shortTTL, 2)
	// Refreshing many keys at once, one of them never held.
	noErr(t, "refresh", s.RefreshSlots(ctx(t), "pod-a", []string{k1, unknown, k2}, time.Minute))
	wantTotal(t, s, unknown, 0)
	until(t, "b's unrefreshed slot lapses", func() bool { return total(t, s, k2) == 1 })
	stays(t, "a's refreshed slots outlive their first ttl", start, firstTTL+firstTTL/2, func() bool {
		return total(t, s, k1) == 1 && total(t, s, k2) == 1
	})
	wantTotal(t, s, unknown, 0)
	noErr(t, "refresh without keys", s.RefreshSlots(ctx(t), "pod-a", nil, time.Minute))
}

func testSlotRefreshSetsTTL(t *testing.T, s meta.Store) {
	key := slotKey("acct")
	acquire(t, s, key, "pod-a", 5, time.Hour, 1)
	acquire(t, s, key, "pod-a", 5, time.Hour, 2)
	acquire(t, s, key, "pod-b", 5, time.Hour, 3)
	// A refresh sets the life to ttl from now, even a shorter one.
	noErr(t, "refresh", s.RefreshSlots(ctx(t), "pod-a", []string{key}, shortTTL))
	until(t, "a's shortened slots lapse", func() bool { return total(t, s, key) == 1 })
	// Refreshing a lapsed count does not bring it back.
	noErr(t, "refresh", s.RefreshSlots(ctx(t), "pod-a", []string{key}, time.Hour))
	wantTotal(t, s, key, 1)
	acquire(t, s, key, "pod-a", 5, time.Hour, 2)
}

// testSlotRace has 16 goroutines of each of two holders race for 10
// slots: first filling them, where exactly 10 acquires succeed, each with
// a different total; then churning (acquire, release), where the slots
// held at any moment, counted in this process, never exceed the limit.
func testSlotRace(t *testing.T, s meta.Store) {
	const (
		limit   = 10
		workers = 16
		tries   = 4
		churn   = 6
	)
	key := slotKey("ip")
	holders := []string{"pod-a", "pod-b"}

	var mu sync.Mutex
	seen := map[int64]int{}
	won := map[string]int64{}
	var wg sync.WaitGroup
	for _, h := range holders {
		for range workers {
			wg.Go(func() {
				for range tries {
					n, err := s.AcquireSlot(ctx(t), key, h, limit, time.Minute)
					if errors.Is(err, meta.ErrLimit) {
						if n != limit {
							t.Errorf("refused with total %d, want %d", n, limit)
						}
						continue
					}
					if err != nil {
						t.Errorf("acquire: %v", err)
						return
					}
					mu.Lock()
					seen[n]++
					won[h]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := int64(1); i <= limit; i++ {
		if seen[i] != 1 {
			t.Errorf("total %d returned by %d acquires, want 1 (all: %v)", i, seen[i], seen)
		}
	}
	if len(seen) != limit {
		t.Errorf("totals returned: %v, want 1..%d once each", seen, limit)
	}
	wantTotal(t, s, key, limit)
	for range won["pod-a"] {
		noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-a"))
	}
	wantTotal(t, s, key, won["pod-b"])
	for range won["pod-b"] {
		noErr(t, "release", s.ReleaseSlot(ctx(t), key, "pod-b"))
	}
	wantTotal(t, s, key, 0)

	// Churn. held goes up after the store admits and down before the
	// release, so it never exceeds what the store counts.
	var held, most atomic.Int64
	for _, h := range holders {
		for range workers {
			wg.Go(func() {
				for range churn {
					n, err := s.AcquireSlot(ctx(t), key, h, limit, time.Minute)
					if errors.Is(err, meta.ErrLimit) {
						continue
					}
					if err != nil {
						t.Errorf("acquire: %v", err)
						return
					}
					if n < 1 || n > limit {
						t.Errorf("acquire: total %d outside 1..%d", n, limit)
					}
					cur := held.Add(1)
					for m := most.Load(); cur > m && !most.CompareAndSwap(m, cur); m = most.Load() {
					}
					held.Add(-1)
					if err := s.ReleaseSlot(ctx(t), key, h); err != nil {
						t.Errorf("release: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if m := most.Load(); m > limit || m < 1 {
		t.Errorf("at most %d slots held at once, want 1..%d", m, limit)
	}
	wantTotal(t, s, key, 0)
}

func testSlotInvalid(t *testing.T, s meta.Store) {
	key := slotKey("ip")
	acquire(t, s, key, "pod-a", 5, time.Minute, 1)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"AcquireEmptyKey", func() error {
			_, err := s.AcquireSlot(ctx(t), "", "pod-a", 5, time.Minute)
			return err
		}},
		{"AcquireEmptyHolder", func() error {
			_, err := s.AcquireSlot(ctx(t), key, "", 5, time.Minute)
			return err
		}},
		{"AcquireZeroLimit", func() error {
			_, err := s.AcquireSlot(ctx(t), key, "pod-a", 0, time.Minute)
			return err
		}},
		{"AcquireNegativeLimit", func() error {
			_, err := s.AcquireSlot(ctx(t), key, "pod-a", -1, time.Minute)
			return err
		}},
		{"AcquireZeroTTL", func() error {
			_, err := s.AcquireSlot(ctx(t), key, "pod-a", 5, 0)
			return err
		}},
		{"AcquireNegativeTTL", func() error {
			_, err := s.AcquireSlot(ctx(t), key, "pod-a", 5, -time.Second)
			return err
		}},
		{"ReleaseEmptyKey", func() error { return s.ReleaseSlot(ctx(t), "", "pod-a") }},
		{"ReleaseEmptyHolder", func() error { return s.ReleaseSlot(ctx(t), key, "") }},
		{"RefreshEmptyHolder", func() error { return s.RefreshSlots(ctx(t), "", []string{key}, time.Minute) }},
		{"RefreshEmptyKey", func() error { return s.RefreshSlots(ctx(t), "pod-a", []string{key, ""}, time.Minute) }},
		{"RefreshZeroTTL", func() error { return s.RefreshSlots(ctx(t), "pod-a", []string{key}, 0) }},
		{"RefreshNegativeTTL", func() error { return s.RefreshSlots(ctx(t), "pod-a", []string{key}, -time.Second) }},
		{"TotalEmptyKey", func() error {
			_, err := s.SlotTotal(ctx(t), "")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), meta.ErrInvalidArgument)
		})
	}
	// Nothing was changed by the refused calls.
	wantTotal(t, s, key, 1)
	acquire(t, s, key, "pod-a", 5, time.Minute, 2)
}
