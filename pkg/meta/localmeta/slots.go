package localmeta

import (
	"context"
	"fmt"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
)

// Slots live in memory like counters: one metadata process serves them,
// and a connection count is meant to vanish with it (the gateways'
// connections are counted again as they refresh or reconnect). Expiry goes
// by the store's clock (WithClock). A holder's count is a counterState:
// value is the count, expires when it lapses. Empty holder maps are
// dropped, and every sweepEvery operations every lapsed count is.

// liveSlots drops the lapsed counts of key and returns the live total.
// Called with smu held.
func (s *Store) liveSlots(key string, now time.Time) int64 {
	hs := s.slots[key]
	var n int64
	for h, c := range hs {
		if !now.Before(c.expires) {
			delete(hs, h)
			continue
		}
		n += c.value
	}
	if hs != nil && len(hs) == 0 {
		delete(s.slots, key)
	}
	return n
}

// sweepSlots bounds memory: keys nobody touches again still go. Called
// with smu held.
func (s *Store) sweepSlots(now time.Time) {
	s.slotOps++
	if s.slotOps%sweepEvery != 0 {
		return
	}
	for k := range s.slots {
		s.liveSlots(k, now)
	}
}

func checkSlot(op, key, holder string) error {
	if key == "" || holder == "" {
		return fmt.Errorf("%s %q for %q: %w: needs a key and a holder", op, key, holder, meta.ErrInvalidArgument)
	}
	return nil
}

func (s *Store) AcquireSlot(ctx context.Context, key, holder string, limit int64, ttl time.Duration) (int64, error) {
	if err := s.live(ctx); err != nil {
		return 0, fmt.Errorf("acquire slot %s: %w", key, err)
	}
	if err := checkSlot("acquire slot", key, holder); err != nil {
		return 0, err
	}
	if limit < 1 || ttl <= 0 {
		return 0, fmt.Errorf("acquire slot %s: %w: limit %d, ttl %v", key, meta.ErrInvalidArgument, limit, ttl)
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	s.sweepSlots(now)
	n := s.liveSlots(key, now)
	if n >= limit {
		return n, fmt.Errorf("acquire slot %s: %w (%d of %d)", key, meta.ErrLimit, n, limit)
	}
	hs := s.slots[key]
	if hs == nil {
		hs = make(map[string]counterState, 1)
		s.slots[key] = hs
	}
	c := hs[holder]
	c.value++
	c.expires = now.Add(ttl)
	hs[holder] = c
	return n + 1, nil
}

func (s *Store) ReleaseSlot(ctx context.Context, key, holder string) error {
	if err := s.live(ctx); err != nil {
		return fmt.Errorf("release slot %s: %w", key, err)
	}
	if err := checkSlot("release slot", key, holder); err != nil {
		return err
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	s.sweepSlots(now)
	s.liveSlots(key, now)
	hs := s.slots[key]
	c, ok := hs[holder]
	if !ok {
		return nil
	}
	if c.value--; c.value <= 0 {
		delete(hs, holder)
		if len(hs) == 0 {
			delete(s.slots, key)
		}
		return nil
	}
	hs[holder] = c
	return nil
}

func (s *Store) RefreshSlots(ctx context.Context, holder string, keys []string, ttl time.Duration) error {
	if err := s.live(ctx); err != nil {
		return fmt.Errorf("refresh slots of %s: %w", holder, err)
	}
	if holder == "" || ttl <= 0 {
		return fmt.Errorf("refresh slots of %q: %w: needs a holder and a positive ttl (%v)", holder, meta.ErrInvalidArgument, ttl)
	}
	for _, k := range keys {
		if err := checkSlot("refresh slot", k, holder); err != nil {
			return err
		}
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	s.sweepSlots(now)
	for _, k := range keys {
		s.liveSlots(k, now)
		hs := s.slots[k]
		if c, ok := hs[holder]; ok {
			c.expires = now.Add(ttl)
			hs[holder] = c
		}
	}
	return nil
}

func (s *Store) SlotTotal(ctx context.Context, key string) (int64, error) {
	if err := s.live(ctx); err != nil {
		return 0, fmt.Errorf("slot total %s: %w", key, err)
	}
	if key == "" {
		return 0, fmt.Errorf("slot total: %w: empty key", meta.ErrInvalidArgument)
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.liveSlots(key, s.now()), nil
}
