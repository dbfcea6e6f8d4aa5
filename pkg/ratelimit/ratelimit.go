// Package ratelimit paces a session's commands with a token bucket: a
// client may send Burst commands at once, then Rate per second. Going
// faster is not an error: the session waits (tarpitting), so a client
// that floods the server only slows itself down, while a normal client
// that pipelines a burst never notices.
//
// A Bucket belongs to one session goroutine and is not safe for
// concurrent use; it needs no lock for that reason.
package ratelimit

import "time"

// Bucket is a token bucket. The zero value (or Rate <= 0) never waits.
type Bucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// New returns a bucket that allows burst commands at once and rate per
// second after that; rate <= 0 means unlimited. It starts full.
func New(rate float64, burst int) *Bucket {
	if burst < 1 {
		burst = 1
	}
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), now: time.Now}
}

// Delay takes one token and returns how long the caller must wait before
// acting on it (0 when a token was available). A caller that must wait
// should first send the answers it owes, then sleep.
func (b *Bucket) Delay() time.Duration {
	if b == nil || b.rate <= 0 {
		return 0
	}
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}
