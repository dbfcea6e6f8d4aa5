package localmeta

import (
	"errors"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
)

// TestSlotsWithClock checks expiry to the millisecond with a fake clock,
// which the conformance suite cannot do, and that lapsed keys leave
// memory.
func TestSlotsWithClock(t *testing.T) {
	ctx := t.Context()
	clk := newFakeClock()
	s := openTemp(t, Config{}, WithClock(clk.Now))
	acq := func(holder string, ttl time.Duration, want int64, wantErr error) {
		t.Helper()
		n, err := s.AcquireSlot(ctx, "k", holder, 3, ttl)
		if !errors.Is(err, wantErr) || n != want {
			t.Fatalf("acquire for %s: %d, %v; want %d, %v", holder, n, err, want, wantErr)
		}
	}
	tot := func(want int64) {
		t.Helper()
		if n, err := s.SlotTotal(ctx, "k"); err != nil || n != want {
			t.Fatalf("total: %d, %v; want %d", n, err, want)
		}
	}
	acq("a", time.Minute, 1, nil)
	acq("b", 2*time.Minute, 2, nil)
	clk.Advance(30 * time.Second)
	acq("a", time.Minute, 3, nil) // a's two now lapse at 90s
	acq("b", time.Minute, 3, meta.ErrLimit)
	clk.Advance(59 * time.Second) // 89s
	tot(3)
	if err := s.RefreshSlots(ctx, "b", []string{"k", "other"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // 90s: a's lapse
	tot(1)
	clk.Advance(9*time.Second - time.Millisecond)
	tot(1)
	clk.Advance(time.Millisecond) // 99s: b's refreshed count lapses
	tot(0)
	s.smu.Lock()
	n := len(s.slots)
	s.smu.Unlock()
	if n != 0 {
		t.Errorf("%d keys left in memory after every count lapsed", n)
	}
	acq("a", time.Minute, 1, nil)
	if err := s.ReleaseSlot(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	s.smu.Lock()
	n = len(s.slots)
	s.smu.Unlock()
	if n != 0 {
		t.Errorf("%d keys left in memory after the last release", n)
	}
}
