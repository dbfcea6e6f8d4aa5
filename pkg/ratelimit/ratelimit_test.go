package ratelimit

import (
	"testing"
	"time"
)

func TestBucketDelay(t *testing.T) {
	clock := time.Unix(1000, 0)
	b := New(10, 3) // 10/s after a burst of 3
	b.now = func() time.Time { return clock }
	for i := range 3 {
		if d := b.Delay(); d != 0 {
			t.Fatalf("command %d of the burst delayed %v", i+1, d)
		}
	}
	if d := b.Delay(); d != 100*time.Millisecond {
		t.Fatalf("4th command delayed %v, want 100ms", d)
	}
	if d := b.Delay(); d != 200*time.Millisecond {
		t.Fatalf("5th command delayed %v, want 200ms", d)
	}
	// After a quiet second the bucket is full again, never fuller.
	clock = clock.Add(10 * time.Second)
	for i := range 3 {
		if d := b.Delay(); d != 0 {
			t.Fatalf("command %d after a pause delayed %v", i+1, d)
		}
	}
	if d := b.Delay(); d == 0 {
		t.Fatal("bucket refilled beyond its burst")
	}
}

func TestUnlimited(t *testing.T) {
	for _, b := range []*Bucket{nil, New(0, 1), {}} {
		for range 1000 {
			if d := b.Delay(); d != 0 {
				t.Fatalf("unlimited bucket delayed %v", d)
			}
		}
	}
}
