package metatest

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func feedTests() []test {
	return []test{
		{"Append", testFeedAppend},
		{"Flags", testFeedFlags},
		{"Expunge", testFeedExpunge},
		{"CopyMove", testFeedCopyMove},
		{"Mailbox", testFeedMailbox},
		{"ModSeqOrder", testFeedOrder},
		{"OtherAccount", testFeedOtherAccount},
		{"Close", testFeedClose},
		{"CommitTime", testFeedCommitTime},
	}
}

// clockSkew bounds how far an event's commit time, read from the
// backend's clock, may stray from the test's clock. The backing servers
// run on the test's host, so their clocks agree but for rounding (Redis
// stamps whole milliseconds).
const clockSkew = 5 * time.Second

// watcher reads a subscription in the test goroutine.
type watcher struct {
	t    testing.TB
	acct mail.AccountID
	sub  meta.Subscription
	seen []meta.Event

	start time.Time                    // just before Watch
	last  map[mail.MailboxID]time.Time // commit time of the last event per mailbox
}

// watch subscribes to acct's events for the rest of the test.
func watch(t testing.TB, s meta.Store, acct mail.AccountID) *watcher {
	t.Helper()
	start := time.Now()
	sub, err := s.Watch(ctx(t), acct)
	noErr(t, "watch", err)
	t.Cleanup(func() { _ = sub.Close() })
	return &watcher{t: t, acct: acct, sub: sub, start: start, last: map[mail.MailboxID]time.Time{}}
}

// checkTime checks an event's commit time: set, within clockSkew of the
// test's clock between Watch and now (only changes committed after Watch
// are delivered), and not before that of the mailbox's previous event.
func (w *watcher) checkTime(ev meta.Event) {
	w.t.Helper()
	if ev.Time.IsZero() {
		w.t.Errorf("event %s has no commit time", fmtEvent(ev))
		return
	}
	if now := time.Now(); ev.Time.Before(w.start.Add(-clockSkew)) || ev.Time.After(now.Add(clockSkew)) {
		w.t.Errorf("event %s committed at %v, want between %v and %v (±%v)", fmtEvent(ev), ev.Time, w.start, now, clockSkew)
	}
	if prev := w.last[ev.Mailbox]; ev.Time.Before(prev) {
		w.t.Errorf("event %s committed at %v, before the mailbox's previous event (%v): %s", fmtEvent(ev), ev.Time, prev, fmtEvents(w.seen))
	}
	w.last[ev.Mailbox] = ev.Time
}

// next waits for the first event that matches, failing the test if the
// subscription ends or none comes within waitBound. Every event read is
// checked to belong to the watched account and to carry a sound commit
// time (checkTime).
func (w *watcher) next(desc string, match func(meta.Event) bool) meta.Event {
	w.t.Helper()
	timeout := time.NewTimer(waitBound)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-w.sub.C():
			if !ok {
				w.t.Fatalf("subscription ended while waiting for %s: %v", desc, w.sub.Err())
			}
			w.seen = append(w.seen, ev)
			if ev.Account != w.acct {
				w.t.Errorf("watch of account %s delivered %s", w.acct, fmtEvent(ev))
			}
			w.checkTime(ev)
			if match(ev) {
				return ev
			}
		case <-timeout.C:
			w.t.Fatalf("no %s within %v; saw %v", desc, waitBound, fmtEvents(w.seen))
		}
	}
}

// kind waits for an event of kind k in mailbox mb.
func (w *watcher) kind(k meta.EventKind, mb mail.MailboxID, desc string) meta.Event {
	w.t.Helper()
	return w.next(fmt.Sprintf("%s event in mailbox %d (%s)", k, mb, desc), func(ev meta.Event) bool {
		return ev.Kind == k && ev.Mailbox == mb
	})
}

func fmtEvent(ev meta.Event) string {
	return fmt.Sprintf("{%s %s mbox=%d modseq=%d uids=%s at=%s}", ev.Account, ev.Kind, ev.Mailbox, ev.ModSeq, ev.UIDs, ev.Time.Format("15:04:05.000"))
}

func fmtEvents(evs []meta.Event) string {
	s := "["
	for i, ev := range evs {
		if i > 0 {
			s += " "
		}
		s += fmtEvent(ev)
	}
	return s + "]"
}

// wantUIDs checks that an event names the UIDs (events are hints, so
// they may name more, but not fewer).
func wantUIDs(t testing.TB, ev meta.Event, uids ...mail.UID) {
	t.Helper()
	for _, u := range uids {
		if !ev.UIDs.Contains(u) {
			t.Errorf("event %s lacks UID %d", fmtEvent(ev), u)
		}
	}
}

func testFeedAppend(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	w := watch(t, s, acct)
	ap := Append(t, s, acct, mb)
	ev := w.kind(meta.EventAppend, mb, "append")
	if ev.ModSeq != ap.ModSeq {
		t.Errorf("append event MODSEQ %d, want %d", ev.ModSeq, ap.ModSeq)
	}
	wantUIDs(t, ev, ap.UID)
}

func testFeedFlags(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	ap := Append(t, s, acct, mb)
	w := watch(t, s, acct)
	res, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: mail.NewUIDSet(ap.UID), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
	noErr(t, "store flags", err)
	if len(res.Updated) != 1 {
		t.Fatalf("updated %+v", res.Updated)
	}
	ev := w.kind(meta.EventFlags, mb, "flags")
	if ev.ModSeq != res.Updated[0].ModSeq {
		t.Errorf("flags event MODSEQ %d, want %d", ev.ModSeq, res.Updated[0].ModSeq)
	}
	wantUIDs(t, ev, ap.UID)
}

func testFeedExpunge(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	u := appendN(t, s, acct, mb, 2)
	w := watch(t, s, acct)
	_, m, err := s.Expunge(ctx(t), acct, mb, mail.NewUIDSet(u...))
	noErr(t, "expunge", err)
	ev := w.kind(meta.EventExpunge, mb, "expunge")
	if ev.ModSeq != m {
		t.Errorf("expunge event MODSEQ %d, want %d", ev.ModSeq, m)
	}
	wantUIDs(t, ev, u...)
}

func testFeedCopyMove(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	src := inbox(t, s, acct).ID
	dst := createMailbox(t, s, acct, "Dest").ID
	u := appendN(t, s, acct, src, 2)
	w := watch(t, s, acct)
	c, err := s.Copy(ctx(t), acct, src, mail.NewUIDSet(u[0]), dst)
	noErr(t, "copy", err)
	ev := w.kind(meta.EventAppend, dst, "copy")
	if ev.ModSeq != c.ModSeq {
		t.Errorf("copy event MODSEQ %d, want %d", ev.ModSeq, c.ModSeq)
	}
	wantUIDs(t, ev, c.Dest...)

	mv, err := s.Move(ctx(t), acct, src, mail.NewUIDSet(u[1]), dst)
	noErr(t, "move", err)
	// The two events are in different mailboxes, so in no fixed order.
	var in, out bool
	for !in || !out {
		ev := w.next("append in the destination and expunge in the source of a move", func(ev meta.Event) bool {
			return ev.Kind == meta.EventAppend && ev.Mailbox == dst && ev.UIDs.Contains(mv.Dest[0]) ||
				ev.Kind == meta.EventExpunge && ev.Mailbox == src
		})
		if ev.Kind == meta.EventAppend {
			in = true
		} else {
			out = true
			wantUIDs(t, ev, u[1])
		}
	}
}

func testFeedMailbox(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	w := watch(t, s, acct)
	mb := createMailbox(t, s, acct, "Fresh")
	w.kind(meta.EventMailbox, mb.ID, "create")
	noErr(t, "rename", s.RenameMailbox(ctx(t), acct, "Fresh", "Renamed"))
	w.kind(meta.EventMailbox, mb.ID, "rename")
	noErr(t, "delete", s.DeleteMailbox(ctx(t), acct, "Renamed"))
	w.kind(meta.EventMailbox, mb.ID, "delete")
}

func testFeedOrder(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	w := watch(t, s, acct)
	var last mail.ModSeq
	changes := 0
	for i := 0; i < 5; i++ {
		ap := Append(t, s, acct, mb)
		changes += 2
		res, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: mail.NewUIDSet(ap.UID), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagFlagged}})
		noErr(t, "store flags", err)
		if len(res.Updated) != 1 {
			t.Fatalf("updated %+v", res.Updated)
		}
		last = res.Updated[0].ModSeq
		if i%2 == 1 {
			changes++
			_, last, err = s.Expunge(ctx(t), acct, mb, mail.NewUIDSet(ap.UID))
			noErr(t, "expunge", err)
		}
	}
	w.next(fmt.Sprintf("event with MODSEQ %d", last), func(ev meta.Event) bool {
		return ev.Mailbox == mb && ev.Kind != meta.EventMailbox && ev.ModSeq >= last
	})
	var prev mail.ModSeq
	n := 0
	for _, ev := range w.seen {
		if ev.Mailbox != mb || ev.Kind == meta.EventMailbox {
			continue
		}
		n++
		if ev.ModSeq <= prev {
			t.Errorf("events out of MODSEQ order: %s", fmtEvents(w.seen))
			break
		}
		prev = ev.ModSeq
	}
	if n != changes {
		t.Errorf("%d events for %d changes: %s", n, changes, fmtEvents(w.seen))
	}
}

func testFeedOtherAccount(t *testing.T, s meta.Store) {
	mine := NewAccount(t, s).ID
	theirs := NewAccount(t, s).ID
	w := watch(t, s, mine)
	// Their changes come first, so a backend that leaked them on one
	// ordered stream would deliver them before ours.
	tb := inbox(t, s, theirs).ID
	tap := Append(t, s, theirs, tb)
	_, err := s.StoreFlags(ctx(t), theirs, tb, meta.FlagChange{UIDs: mail.NewUIDSet(tap.UID), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
	noErr(t, "store flags", err)
	createMailbox(t, s, theirs, "Theirs")
	mb := inbox(t, s, mine).ID
	Append(t, s, mine, mb)
	w.kind(meta.EventAppend, mb, "append to the watched account")
	// next checked every event read is of the watched account.
}

func testFeedClose(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	sub, err := s.Watch(ctx(t), acct)
	noErr(t, "watch", err)
	Append(t, s, acct, inbox(t, s, acct).ID)
	noErr(t, "close", sub.Close())
	timeout := time.NewTimer(waitBound)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-sub.C():
			if ok {
				continue // an event delivered before Close may still be buffered
			}
			if err := sub.Err(); err != nil {
				t.Errorf("Err after Close = %v, want nil", err)
			}
			return
		case <-timeout.C:
			t.Fatalf("C not closed within %v of Close", waitBound)
		}
	}
}

// testFeedCommitTime checks the commit times of a run of changes to one
// mailbox: next checks each (set, near the test's clock, non-decreasing);
// here the last one must not precede the first change's start.
func testFeedCommitTime(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	w := watch(t, s, acct)
	before := time.Now()
	ap := Append(t, s, acct, mb)
	res, err := s.StoreFlags(ctx(t), acct, mb, meta.FlagChange{UIDs: mail.NewUIDSet(ap.UID), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
	noErr(t, "store flags", err)
	_, last, err := s.Expunge(ctx(t), acct, mb, mail.NewUIDSet(ap.UID))
	noErr(t, "expunge", err)
	after := time.Now()
	if len(res.Updated) != 1 {
		t.Fatalf("updated %+v", res.Updated)
	}
	ev := w.next(fmt.Sprintf("expunge event with MODSEQ %d", last), func(ev meta.Event) bool {
		return ev.Mailbox == mb && ev.Kind == meta.EventExpunge && ev.ModSeq >= last
	})
	if ev.Time.Before(before.Add(-clockSkew)) || ev.Time.After(after.Add(clockSkew)) {
		t.Errorf("expunge committed at %v, want between %v and %v (±%v)", ev.Time, before, after, clockSkew)
	}
	if n := len(w.seen); n < 3 {
		t.Errorf("%d events for 3 changes: %s", n, fmtEvents(w.seen))
	}
}
