package metatest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func concurrencyTests() []test {
	return []test{
		{"OneAccount", testConcurrency},
		{"QuotaRace", testQuotaRace},
		{"MoveRace", testMoveRace},
		{"UnchangedSinceRace", testUnchangedSinceRace},
		{"LeaseRace", testLeaseRace},
		{"CounterRace", testCounterRace},
	}
}

// entryKey names an entry: a mailbox and a UID in it.
type entryKey struct {
	mb  mail.MailboxID
	uid mail.UID
}

// ledger records what acknowledged operations said, from every worker.
// Acknowledgements of different workers arrive in any order, so it keeps
// additions and removals apart and settles them at the end.
type ledger struct {
	mu      sync.Mutex
	added   map[entryKey]bool
	blob    map[entryKey]mail.BlobID // for appends
	origin  map[entryKey]entryKey    // for copies and moves: the source
	removed map[entryKey]bool
	errs    []string
}

func (l *ledger) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 50 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

func (l *ledger) add(k entryKey, b mail.BlobID, from *entryKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.added[k] {
		l.errs = append(l.errs, fmt.Sprintf("UID %d of mailbox %d acknowledged twice", k.uid, k.mb))
	}
	l.added[k] = true
	if from != nil {
		l.origin[k] = *from
	} else {
		l.blob[k] = b
	}
}

func (l *ledger) remove(k entryKey, by string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed[k] {
		l.errs = append(l.errs, fmt.Sprintf("UID %d of mailbox %d removed twice (second by %s)", k.uid, k.mb, by))
	}
	l.removed[k] = true
}

// blobOf follows copies back to the append that brought the body.
func (l *ledger) blobOf(k entryKey) (mail.BlobID, bool) {
	for i := 0; i < 10000; i++ {
		if b, ok := l.blob[k]; ok {
			return b, true
		}
		from, ok := l.origin[k]
		if !ok {
			return "", false
		}
		k = from
	}
	return "", false
}

// modseqWatch is one worker's view of one mailbox: what it observed must
// never go backwards.
type modseqWatch struct {
	modseq  mail.ModSeq
	uidNext mail.UID // the highest UID it saw, plus one
}

func testConcurrency(t *testing.T, s meta.Store) {
	workers, ops := 32, 25
	if testing.Short() {
		ops = 8
	}
	acct := NewAccount(t, s).ID
	boxes := []mail.MailboxID{
		inbox(t, s, acct).ID,
		createMailbox(t, s, acct, "Work").ID,
		createMailbox(t, s, acct, "Work/Archive").ID,
	}
	var maxUID [3]atomic.Uint32 // highest UID acknowledged per mailbox, to aim operations
	l := &ledger{
		added: map[entryKey]bool{}, blob: map[entryKey]mail.BlobID{},
		origin: map[entryKey]entryKey{}, removed: map[entryKey]bool{},
	}
	flags := []mail.Flag{mail.FlagSeen, mail.FlagFlagged, "$Label1", mail.FlagDeleted}

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 0x6d657461))
			seen := map[mail.MailboxID]*modseqWatch{}
			for _, mb := range boxes {
				seen[mb] = &modseqWatch{}
			}
			// observe records a MODSEQ the worker saw in mb; changed says
			// the operation changed mb, so the MODSEQ is a new one.
			observe := func(op string, mb mail.MailboxID, m mail.ModSeq, changed bool) {
				v := seen[mb]
				if m < v.modseq || changed && m == v.modseq {
					l.fail("worker %d: %s in mailbox %d reported MODSEQ %d after it saw %d", w, op, mb, m, v.modseq)
				}
				v.modseq = max(v.modseq, m)
			}
			observeUID := func(op string, mb mail.MailboxID, u mail.UID) {
				v := seen[mb]
				if u < v.uidNext {
					l.fail("worker %d: %s in mailbox %d got UID %d after it saw UIDs up to %d", w, op, mb, u, v.uidNext-1)
				}
				v.uidNext = max(v.uidNext, u+1)
			}
			pick := func() (int, mail.UIDSet) {
				i := rng.IntN(len(boxes))
				hi := mail.UID(maxUID[i].Load())
				if hi == 0 {
					hi = 1
				}
				lo := 1 + mail.UID(rng.Uint32N(uint32(hi)))
				return i, mail.UIDSet{}.AddRange(lo, lo+mail.UID(rng.IntN(3)))
			}
			for n := 0; n < ops; n++ {
				c := t.Context()
				switch r := rng.IntN(100); {
				case r < 40: // append
					i := rng.IntN(len(boxes))
					var fl []mail.Flag
					if rng.IntN(2) == 0 {
						fl = append(fl, flags[rng.IntN(len(flags))])
					}
					e := NewEntry(fl...)
					ap, err := s.AppendEntry(c, acct, boxes[i], e)
					if err != nil {
						l.fail("worker %d: append: %v", w, err)
						continue
					}
					l.add(entryKey{boxes[i], ap.UID}, e.Blob, nil)
					observe("append", boxes[i], ap.ModSeq, true)
					observeUID("append", boxes[i], ap.UID)
					for {
						cur := maxUID[i].Load()
						if uint32(ap.UID) <= cur || maxUID[i].CompareAndSwap(cur, uint32(ap.UID)) {
							break
						}
					}
				case r < 60: // flags
					i, set := pick()
					res, err := s.StoreFlags(c, acct, boxes[i], meta.FlagChange{
						UIDs: set, Op: meta.FlagOp(rng.IntN(3)), Flags: []mail.Flag{flags[rng.IntN(len(flags))]},
					})
					if err != nil {
						l.fail("worker %d: store flags: %v", w, err)
						continue
					}
					var hi mail.ModSeq
					for _, e := range res.Updated {
						if !set.Contains(e.UID) {
							l.fail("worker %d: store on %s updated UID %d", w, set, e.UID)
						}
						if e.ModSeq <= seen[boxes[i]].modseq {
							l.fail("worker %d: store flags gave MODSEQ %d after it saw %d", w, e.ModSeq, seen[boxes[i]].modseq)
						}
						hi = max(hi, e.ModSeq)
					}
					if len(res.Updated) > 0 {
						observe("store flags", boxes[i], hi, true)
					}
				case r < 70: // copy
					i, set := pick()
					j := rng.IntN(len(boxes))
					cp, err := s.Copy(c, acct, boxes[i], set, boxes[j])
					if err != nil {
						l.fail("worker %d: copy: %v", w, err)
						continue
					}
					if len(cp.Source) != len(cp.Dest) {
						l.fail("worker %d: copy %v -> %v", w, cp.Source, cp.Dest)
						continue
					}
					for k := range cp.Dest {
						from := entryKey{boxes[i], cp.Source[k]}
						l.add(entryKey{boxes[j], cp.Dest[k]}, "", &from)
						observeUID("copy", boxes[j], cp.Dest[k])
					}
					if len(cp.Dest) > 0 {
						observe("copy", boxes[j], cp.ModSeq, true)
					}
				case r < 80: // move
					i, set := pick()
					j := (i + 1 + rng.IntN(len(boxes)-1)) % len(boxes)
					mv, err := s.Move(c, acct, boxes[i], set, boxes[j])
					if err != nil {
						l.fail("worker %d: move: %v", w, err)
						continue
					}
					if len(mv.Source) != len(mv.Dest) {
						l.fail("worker %d: move %v -> %v", w, mv.Source, mv.Dest)
						continue
					}
					for k := range mv.Dest {
						from := entryKey{boxes[i], mv.Source[k]}
						l.remove(from, "move")
						l.add(entryKey{boxes[j], mv.Dest[k]}, "", &from)
						observeUID("move", boxes[j], mv.Dest[k])
					}
				case r < 90: // expunge
					i, set := pick()
					gone, m, err := s.Expunge(c, acct, boxes[i], set)
					if err != nil {
						l.fail("worker %d: expunge: %v", w, err)
						continue
					}
					for _, u := range gone {
						if !set.Contains(u) {
							l.fail("worker %d: expunge of %s removed UID %d", w, set, u)
						}
						l.remove(entryKey{boxes[i], u}, "expunge")
					}
					if len(gone) > 0 {
						observe("expunge", boxes[i], m, true)
					}
				default: // status
					i := rng.IntN(len(boxes))
					mb, err := s.MailboxByID(c, acct, boxes[i])
					if err != nil {
						l.fail("worker %d: status: %v", w, err)
						continue
					}
					observe("status", boxes[i], mb.HighestModSeq, false)
					if mb.UIDNext < seen[boxes[i]].uidNext {
						l.fail("worker %d: UIDNEXT %d after it saw UID %d", w, mb.UIDNext, seen[boxes[i]].uidNext-1)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range l.errs {
		t.Error(e)
	}

	// Settle the ledger against the store.
	want := map[entryKey]mail.BlobID{}
	for k := range l.added {
		if l.removed[k] {
			continue
		}
		b, ok := l.blobOf(k)
		if !ok {
			t.Errorf("UID %d of mailbox %d: copied from an entry nobody acknowledged", k.uid, k.mb)
		}
		want[k] = b
	}
	for k := range l.removed {
		if !l.added[k] {
			t.Errorf("UID %d of mailbox %d removed but never acknowledged", k.uid, k.mb)
		}
	}
	got := map[entryKey]bool{}
	for _, mb := range boxes {
		for _, e := range entries(t, s, acct, mb) {
			k := entryKey{mb, e.UID}
			got[k] = true
			b, ok := want[k]
			switch {
			case !ok:
				t.Errorf("UID %d of mailbox %d present, but no acknowledged operation put it there (or one removed it)", e.UID, mb)
			case b != "" && e.Blob != b:
				t.Errorf("UID %d of mailbox %d has blob %s, want %s", e.UID, mb, e.Blob, b)
			}
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("acknowledged UID %d of mailbox %d is missing", k.uid, k.mb)
		}
	}
	CheckAccount(t, s, acct)
	t.Logf("%d workers x %d operations: %d entries added, %d removed, %d left",
		workers, ops, len(l.added), len(l.removed), len(want))
}

// race runs fn(i) for i in [0, n) in n goroutines started together and
// waits for them.
func race(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// testQuotaRace: appends racing for the last places under a message limit
// must not overshoot it: the quota check and the append are one step.
func testQuotaRace(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	boxes := []mail.MailboxID{inbox(t, s, acct).ID, createMailbox(t, s, acct, "Other").ID}
	const limit, tries = 10, 32
	_, err := s.UpdateAccount(ctx(t), acct, meta.AccountUpdate{LimitMsgs: ptr(int64(limit))})
	noErr(t, "set limit", err)
	var ok, over atomic.Int32
	race(tries, func(i int) {
		_, err := s.AppendEntry(t.Context(), acct, boxes[i%2], NewEntry())
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, meta.ErrOverQuota):
			over.Add(1)
		default:
			t.Errorf("append: %v", err)
		}
	})
	if ok.Load() != limit || over.Load() != tries-limit {
		t.Errorf("%d appends succeeded and %d were over quota, want %d and %d", ok.Load(), over.Load(), limit, tries-limit)
	}
	if q := account(t, s, acct).Quota; q.UsedMessages != limit {
		t.Errorf("usage %+v, want %d messages", q, limit)
	}
	CheckAccount(t, s, acct)
}

// testMoveRace: concurrent moves and expunges of one message remove it
// from its mailbox exactly once, and it ends up in at most one place.
func testMoveRace(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	src := inbox(t, s, acct).ID
	dsts := []mail.MailboxID{createMailbox(t, s, acct, "D1").ID, createMailbox(t, s, acct, "D2").ID, createMailbox(t, s, acct, "D3").ID}
	for round := 0; round < 8; round++ {
		e := NewEntry()
		ap := appendEntry(t, s, acct, src, e)
		set := mail.NewUIDSet(ap.UID)
		var moved, expunged atomic.Int32
		var where atomic.Value
		race(4, func(i int) {
			if i == 3 {
				gone, _, err := s.Expunge(t.Context(), acct, src, set)
				if err != nil {
					t.Errorf("expunge: %v", err)
				}
				expunged.Add(int32(len(gone)))
				return
			}
			c, err := s.Move(t.Context(), acct, src, set, dsts[i])
			if err != nil {
				t.Errorf("move: %v", err)
				return
			}
			if len(c.Dest) > 0 {
				moved.Add(1)
				where.Store(entryKey{dsts[i], c.Dest[0]})
			}
		})
		if moved.Load()+expunged.Load() != 1 {
			t.Fatalf("round %d: %d moves and %d expunges took the message, want exactly one", round, moved.Load(), expunged.Load())
		}
		var found []entryKey
		for _, mb := range append([]mail.MailboxID{src}, dsts...) {
			for _, x := range entries(t, s, acct, mb) {
				if x.Blob == e.Blob {
					found = append(found, entryKey{mb, x.UID})
				}
			}
		}
		switch {
		case expunged.Load() == 1 && len(found) != 0:
			t.Errorf("round %d: expunged message still at %v", round, found)
		case moved.Load() == 1 && (len(found) != 1 || found[0] != where.Load().(entryKey)):
			t.Errorf("round %d: moved message found at %v, move reported %v", round, found, where.Load())
		}
		if want := moved.Load() == 1; referenced(t, s, acct, e.Blob) != want {
			t.Errorf("round %d: blob referenced = %v, want %v", round, !want, want)
		}
	}
	CheckAccount(t, s, acct)
}

// testUnchangedSinceRace: of STOREs racing with the same UNCHANGEDSINCE on
// one message, exactly one applies; the others see it modified.
func testUnchangedSinceRace(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	mb := inbox(t, s, acct).ID
	for round := 0; round < 8; round++ {
		ap := Append(t, s, acct, mb)
		var applied, refused atomic.Int32
		race(4, func(i int) {
			res, err := s.StoreFlags(t.Context(), acct, mb, meta.FlagChange{
				UIDs: mail.NewUIDSet(ap.UID), Op: meta.FlagsAdd,
				Flags: []mail.Flag{mail.Flag(fmt.Sprintf("$Writer%d", i))}, UnchangedSince: ap.ModSeq,
			})
			if err != nil {
				t.Errorf("store flags: %v", err)
				return
			}
			applied.Add(int32(len(res.Updated)))
			refused.Add(int32(res.Modified.Count()))
		})
		if applied.Load() != 1 || refused.Load() != 3 {
			t.Errorf("round %d: %d STOREs applied and %d refused, want 1 and 3", round, applied.Load(), refused.Load())
		}
		es, err := s.ListEntries(ctx(t), acct, mb, mail.NewUIDSet(ap.UID), meta.FieldFlags, 0)
		noErr(t, "list entries", err)
		if len(es) != 1 || len(es[0].Flags) != 1 {
			t.Errorf("round %d: flags after the race %+v, want exactly one writer's keyword", round, es)
		}
	}
}

// testLeaseRace: of acquirers racing for a free lease exactly one wins.
func testLeaseRace(t *testing.T, s meta.Store) {
	acct := NewAccount(t, s).ID
	var won atomic.Int32
	race(16, func(i int) {
		_, err := s.AcquireLease(t.Context(), acct, "pop3", fmt.Sprintf("racer-%d", i), time.Minute)
		switch {
		case err == nil:
			won.Add(1)
		case errors.Is(err, meta.ErrLeaseHeld):
		default:
			t.Errorf("acquire: %v", err)
		}
	})
	if won.Load() != 1 {
		t.Errorf("%d racers acquired the lease, want 1", won.Load())
	}
}

// testCounterRace: concurrent increments are never lost.
func testCounterRace(t *testing.T, s meta.Store) {
	key := "race/" + uniq()
	const n, each = 16, 10
	race(n, func(i int) {
		for j := 0; j < each; j++ {
			if _, err := s.IncrCounter(t.Context(), key, 1, time.Hour); err != nil {
				t.Errorf("incr: %v", err)
				return
			}
		}
	})
	if v, err := s.Counter(ctx(t), key); err != nil || v != n*each {
		t.Errorf("counter after %d concurrent increments = %d, %v", n*each, v, err)
	}
}
