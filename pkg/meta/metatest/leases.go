package metatest

import (
	"errors"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func leaseTests() []test {
	return []test{
		{"AcquireRenewRelease", testLeaseLifecycle},
		{"Expiry", testLeaseExpiry},
		{"Independent", testLeaseIndependent},
	}
}

// pollInterval paces polls for a condition that needs wall time to pass
// (an expiry); the bound is waitBound.
const pollInterval = 20 * time.Millisecond

// until calls cond every pollInterval until it returns true, and fails the
// test if that has not happened within waitBound.
func until(t testing.TB, desc string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitBound)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not within %v", desc, waitBound)
		}
	}
}

func testLeaseLifecycle(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	const name = "pop3"
	before := time.Now()
	l1, err := s.AcquireLease(ctx(t), acct, name, "pod-a/session-1", time.Minute)
	noErr(t, "acquire", err)
	if l1.Token == 0 {
		t.Errorf("lease token 0")
	}
	if l1.Expires.Before(before.Add(30*time.Second)) || l1.Expires.After(time.Now().Add(2*time.Minute)) {
		t.Errorf("lease for a minute expires at %v (now %v)", l1.Expires, time.Now())
	}

	_, err = s.AcquireLease(ctx(t), acct, name, "pod-b/session-2", time.Minute)
	wantErr(t, "second acquire", err, meta.ErrLeaseHeld)

	l1r, err := s.RenewLease(ctx(t), acct, name, l1.Token, 5*time.Minute)
	noErr(t, "renew", err)
	if l1r.Token != l1.Token {
		t.Errorf("renew changed the token from %d to %d", l1.Token, l1r.Token)
	}
	if !l1r.Expires.After(l1.Expires) {
		t.Errorf("renewed for 5 minutes, expires %v, before %v", l1r.Expires, l1.Expires)
	}
	_, err = s.RenewLease(ctx(t), acct, name, l1.Token+1000, time.Minute)
	wantErr(t, "renew with a wrong token", err, meta.ErrLeaseLost)

	// Releasing under a wrong token releases nothing.
	noErr(t, "release with a wrong token", s.ReleaseLease(ctx(t), acct, name, l1.Token+1000))
	_, err = s.AcquireLease(ctx(t), acct, name, "pod-b/session-2", time.Minute)
	wantErr(t, "acquire after a wrong release", err, meta.ErrLeaseHeld)

	noErr(t, "release", s.ReleaseLease(ctx(t), acct, name, l1.Token))
	l2, err := s.AcquireLease(ctx(t), acct, name, "pod-b/session-2", time.Minute)
	noErr(t, "acquire after release", err)
	if l2.Token <= l1.Token {
		t.Errorf("token after re-acquire %d, want > %d", l2.Token, l1.Token)
	}
	_, err = s.RenewLease(ctx(t), acct, name, l1.Token, time.Minute)
	wantErr(t, "renew with the old token", err, meta.ErrLeaseLost)
	noErr(t, "release a lost lease", s.ReleaseLease(ctx(t), acct, name, l1.Token))
	_, err = s.AcquireLease(ctx(t), acct, name, "pod-c", time.Minute)
	wantErr(t, "acquire after releasing the old token", err, meta.ErrLeaseHeld)
	_, err = s.RenewLease(ctx(t), acct, name, l2.Token, time.Minute)
	noErr(t, "renew the current lease", err)
	noErr(t, "release", s.ReleaseLease(ctx(t), acct, name, l2.Token))
	noErr(t, "release twice", s.ReleaseLease(ctx(t), acct, name, l2.Token))
	_, err = s.RenewLease(ctx(t), acct, name, l2.Token, time.Minute)
	wantErr(t, "renew a released lease", err, meta.ErrLeaseLost)
}

func testLeaseExpiry(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	const name = "pop3"
	l1, err := s.AcquireLease(ctx(t), acct, name, "short", 300*time.Millisecond)
	noErr(t, "acquire", err)
	var l2 meta.Lease
	until(t, "lease expires", func() bool {
		l, err := s.AcquireLease(ctx(t), acct, name, "next", time.Minute)
		if errors.Is(err, meta.ErrLeaseHeld) {
			return false
		}
		noErr(t, "acquire after expiry", err)
		l2 = l
		return true
	})
	if l2.Token <= l1.Token {
		t.Errorf("token after expiry %d, want > %d", l2.Token, l1.Token)
	}
	_, err = s.RenewLease(ctx(t), acct, name, l1.Token, time.Minute)
	wantErr(t, "renew the expired lease", err, meta.ErrLeaseLost)
	noErr(t, "release the expired lease", s.ReleaseLease(ctx(t), acct, name, l1.Token))
	_, err = s.RenewLease(ctx(t), acct, name, l2.Token, time.Minute)
	noErr(t, "renew the new lease", err)
}

func testLeaseIndependent(t *testing.T, s meta.Store) {
	a, b := NewAccount(t, s).ID, NewAccount(t, s).ID
	held := map[[2]string]meta.Lease{}
	for _, acct := range []mail.AccountID{a, b} {
		for _, name := range []string{"pop3", "reaper"} {
			l, err := s.AcquireLease(ctx(t), acct, name, "holder", time.Minute)
			noErr(t, "acquire "+name+" of "+string(acct), err)
			held[[2]string{string(acct), name}] = l
		}
	}
	for k, l := range held {
		_, err := s.AcquireLease(ctx(t), mail.AccountID(k[0]), k[1], "other", time.Minute)
		wantErr(t, "acquire "+k[1]+" again", err, meta.ErrLeaseHeld)
		_, err = s.RenewLease(ctx(t), mail.AccountID(k[0]), k[1], l.Token, time.Minute)
		noErr(t, "renew "+k[1], err)
	}
	noErr(t, "release", s.ReleaseLease(ctx(t), a, "pop3", held[[2]string{string(a), "pop3"}].Token))
	for k := range held {
		_, err := s.AcquireLease(ctx(t), mail.AccountID(k[0]), k[1], "other", time.Minute)
		if k == [2]string{string(a), "pop3"} {
			noErr(t, "acquire released lease", err)
		} else {
			wantErr(t, "acquire "+k[1]+" of "+k[0], err, meta.ErrLeaseHeld)
		}
	}
}

func counterTests() []test {
	return []test{
		{"Incr", testCounterIncr},
		{"WindowReset", testCounterWindow},
	}
}

func testCounterIncr(t *testing.T, s meta.Store) {
	key := "authfail/ip/192.0.2." + uniq()
	other := "authfail/account/" + uniq()
	if v, err := s.Counter(ctx(t), key); err != nil || v != 0 {
		t.Errorf("unset counter = %d, %v; want 0", v, err)
	}
	for _, step := range []struct{ delta, want int64 }{{1, 1}, {1, 2}, {5, 7}, {-3, 4}, {0, 4}} {
		v, err := s.IncrCounter(ctx(t), key, step.delta, time.Hour)
		noErr(t, "incr", err)
		if v != step.want {
			t.Errorf("incr by %d = %d, want %d", step.delta, v, step.want)
		}
	}
	if v, err := s.Counter(ctx(t), key); err != nil || v != 4 {
		t.Errorf("counter = %d, %v; want 4", v, err)
	}
	if v, err := s.IncrCounter(ctx(t), other, -2, time.Hour); err != nil || v != -2 {
		t.Errorf("negative first increment = %d, %v; want -2", v, err)
	}
	if v, err := s.Counter(ctx(t), key); err != nil || v != 4 {
		t.Errorf("counter after another key changed = %d, %v; want 4", v, err)
	}
}

func testCounterWindow(t *testing.T, s meta.Store) {
	key := "conn/ip/198.51.100." + uniq()
	v, err := s.IncrCounter(ctx(t), key, 1, 300*time.Millisecond)
	noErr(t, "incr", err)
	if v != 1 {
		t.Errorf("first increment = %d, want 1", v)
	}
	until(t, "counter window resets", func() bool {
		v, err := s.Counter(ctx(t), key)
		noErr(t, "counter", err)
		return v == 0
	})
	v, err = s.IncrCounter(ctx(t), key, 2, time.Hour)
	noErr(t, "incr after reset", err)
	if v != 2 {
		t.Errorf("first increment of a new window = %d, want 2", v)
	}
}
