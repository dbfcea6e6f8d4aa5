package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// A watcher is an IMAP session on the hot account's INBOX that keeps its
// own view of the mailbox (UIDs in sequence order, and their flags) from
// nothing but what the server tells it, as a client that caches the
// mailbox does: EXISTS followed by a UID FETCH of the new messages,
// EXPUNGE, and the FETCH FLAGS sent while it IDLEs or on NOOP. When its
// connection breaks (a gateway killed, a link cut) a plain watcher
// reconnects and resynchronises from scratch, like a client without
// QRESYNC. A QRESYNC watcher keeps its view, the MODSEQ of each message
// and a checkpoint (the highest MODSEQ seen in FETCH, lowered by a
// HIGHESTMODSEQ response code, RFC 7162 3.2), sees VANISHED instead of
// EXPUNGE, and resynchronises with SELECT (QRESYNC ...); it also drops
// its connection now and then on purpose, sometimes right after a FETCH
// by sequence number (during which the server withholds expunges).
//
// Every FETCH with a MODSEQ is checked against one history: for a
// message, a session never sees its MODSEQ go back, and no two sessions
// see different flags under one MODSEQ (chaosVersions).
//
// After the run, with every process healthy, each watcher whose session
// is still the one it had, does a NOOP and compares its view with the
// store: a difference means the server failed to tell a connected
// session about a change (an append, an expunge or a flag change made by
// another session, pod or protocol).

// chaosWatcher is one watcher session.
type chaosWatcher struct {
	w    *chaosWorld
	name string
	acct string
	rng  *rand.Rand

	c      *chaosIMAP // the session; nil while disconnected
	exists int        // the last EXISTS count
	uids   []uint32   // sequence number - 1 -> UID
	flags  map[uint32][]string
	synced time.Time // when the current session synchronised

	reconnects int
	updates    int // untagged EXISTS, EXPUNGE and FETCH applied

	qresync     bool
	uidValidity uint32
	checkpoint  uint64            // the MODSEQ to resynchronise from
	modseqs     map[uint32]uint64 // per UID, the last MODSEQ seen (QRESYNC watchers)
	versions    *chaosVersions
	resyncs     int // reconnections with SELECT (QRESYNC ...)
	dropped     int // connections dropped on purpose

	trace []string // the last commands and responses, for the report
}

// note keeps a line of the session's recent traffic.
func (v *chaosWatcher) note(format string, args ...any) {
	if len(v.trace) >= 80 {
		v.trace = slices.Delete(v.trace, 0, 20)
	}
	v.trace = append(v.trace, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// chaosVersions is what every session was told about each message
// version: (UID, MODSEQ) -> flags.
type chaosVersions struct {
	mu sync.Mutex
	m  map[[2]uint64]string
	by map[[2]uint64]string // who saw it first
}

// record adds one observation and reports a conflicting earlier one.
func (cv *chaosVersions) record(who string, uid uint32, ms uint64, flags []string) error {
	if cv == nil {
		return nil
	}
	k, f := [2]uint64{uint64(uid), ms}, strings.Join(flags, " ")
	cv.mu.Lock()
	defer cv.mu.Unlock()
	if cv.m == nil {
		cv.m, cv.by = map[[2]uint64]string{}, map[[2]uint64]string{}
	}
	if old, ok := cv.m[k]; ok && old != f {
		return fmt.Errorf("UID %d MODSEQ %d has flags (%s), %s saw (%s): %w", uid, ms, f, cv.by[k], old, errChaosView)
	} else if !ok {
		cv.m[k], cv.by[k] = f, who
	}
	return nil
}

var (
	chaosExistsRe  = regexp.MustCompile(`^\* (\d+) EXISTS$`)
	chaosExpungeRe = regexp.MustCompile(`^\* (\d+) EXPUNGE$`)
	chaosFetchRe   = regexp.MustCompile(`^\* (\d+) FETCH \((.*)\)$`)
	chaosUIDRe     = regexp.MustCompile(`\bUID (\d+)`)
	chaosFlagsRe   = regexp.MustCompile(`\bFLAGS \(([^)]*)\)`)
	chaosVanishRe  = regexp.MustCompile(`^\* VANISHED (\(EARLIER\) )?([0-9:,]+)$`)
	chaosHighestRe = regexp.MustCompile(`^\* OK \[HIGHESTMODSEQ (\d+)\]`)
	chaosUIDValRe  = regexp.MustCompile(`^\* OK \[UIDVALIDITY (\d+)\]`)
)

// apply updates the view with one untagged response. A FETCH of the
// message just past the known ones (the answer to fetchNew) appends it.
func (v *chaosWatcher) apply(line string) error {
	v.note("S: %s", line)
	if m := chaosVanishRe.FindStringSubmatch(line); m != nil {
		return v.vanished(m[2], m[1] != "")
	}
	if m := chaosHighestRe.FindStringSubmatch(line); m != nil {
		v.checkpoint, _ = strconv.ParseUint(m[1], 10, 64)
		return nil
	}
	if m := chaosUIDValRe.FindStringSubmatch(line); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 32)
		if v.uidValidity != 0 && uint32(n) != v.uidValidity {
			return fmt.Errorf("UIDVALIDITY %d, was %d, of a mailbox never recreated: %w", n, v.uidValidity, errChaosView)
		}
		v.uidValidity = uint32(n)
		return nil
	}
	if m := chaosExistsRe.FindStringSubmatch(line); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < len(v.uids) {
			return fmt.Errorf("EXISTS %d below the %d messages known: %w", n, len(v.uids), errChaosView)
		}
		v.exists = n
		v.updates++
		return nil
	}
	if m := chaosExpungeRe.FindStringSubmatch(line); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n > v.exists {
			return fmt.Errorf("EXPUNGE %d of %d messages: %w", n, v.exists, errChaosView)
		}
		if n <= len(v.uids) {
			delete(v.flags, v.uids[n-1])
			v.uids = slices.Delete(v.uids, n-1, n)
		} // else a message announced by EXISTS and not fetched yet
		v.exists--
		v.updates++
		return nil
	}
	m := chaosFetchRe.FindStringSubmatch(line)
	if m == nil {
		return nil
	}
	seq, _ := strconv.Atoi(m[1])
	var uid uint32
	if u := chaosUIDRe.FindStringSubmatch(m[2]); u != nil {
		n, _ := strconv.ParseUint(u[1], 10, 32)
		uid = uint32(n)
	}
	switch {
	case seq >= 1 && seq <= len(v.uids):
		if uid != 0 && uid != v.uids[seq-1] {
			return fmt.Errorf("FETCH %d says UID %d, the view has %d: %w", seq, uid, v.uids[seq-1], errChaosView)
		}
		uid = v.uids[seq-1]
	case seq == len(v.uids)+1 && uid != 0 && seq <= v.exists:
		if len(v.uids) > 0 && uid <= v.uids[len(v.uids)-1] {
			return fmt.Errorf("new message %d has UID %d, not above %d: %w", seq, uid, v.uids[len(v.uids)-1], errChaosView)
		}
		v.uids = append(v.uids, uid)
	case seq > len(v.uids) && seq <= v.exists:
		// A flags update of a message announced by EXISTS and not fetched
		// yet: fetchNew brings it with its flags.
		v.updates++
		return nil
	default:
		return fmt.Errorf("FETCH %d (UID %d) with %d messages known: %w", seq, uid, len(v.uids), errChaosView)
	}
	f := chaosFlagsRe.FindStringSubmatch(m[2])
	if f != nil {
		v.flags[uid] = viewFlags(f[1])
	}
	if ms := chaosModSeqRe.FindStringSubmatch(m[2]); ms != nil && v.modseqs != nil {
		n, _ := strconv.ParseUint(ms[1], 10, 64)
		if n < v.modseqs[uid] {
			return fmt.Errorf("UID %d MODSEQ %d after %d: %w", uid, n, v.modseqs[uid], errChaosView)
		}
		v.modseqs[uid] = n
		v.checkpoint = max(v.checkpoint, n)
		if f != nil {
			if err := v.versions.record(v.name, uid, n, v.flags[uid]); err != nil {
				return err
			}
		}
	}
	v.updates++
	return nil
}

// vanished applies VANISHED: without EARLIER, the UIDs were in the
// mailbox (in the view, or announced by EXISTS and not fetched yet); with
// EARLIER (a resync), they may be any the client could know.
func (v *chaosWatcher) vanished(set string, earlier bool) error {
	uids, err := mail.ParseUIDSet(set)
	if err != nil || uids.Count() > 1<<20 {
		return fmt.Errorf("VANISHED %q: %w", set, errChaosView)
	}
	for _, u32 := range uids.UIDs() {
		u := uint32(u32)
		i, ok := slices.BinarySearch(v.uids, u)
		switch {
		case ok:
			v.uids = slices.Delete(v.uids, i, i+1)
			delete(v.flags, u)
			delete(v.modseqs, u)
			if !earlier {
				v.exists--
			}
		case earlier:
		case (len(v.uids) == 0 || u > v.uids[len(v.uids)-1]) && v.exists > len(v.uids):
			v.exists-- // announced by EXISTS, not fetched yet
		default:
			return fmt.Errorf("VANISHED %d, which the session was never told of: %w", u, errChaosView)
		}
	}
	v.updates++
	return nil
}

// errChaosView marks a response the view cannot follow: a protocol
// anomaly, reported as such.
var errChaosView = errors.New("inconsistent with the session's view")

// viewFlags canonicalises a FLAGS list for comparison; \Recent is a
// session property, not the store's.
func viewFlags(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		if strings.EqualFold(f, `\Recent`) {
			continue
		}
		out = append(out, f)
	}
	return canonFlags(out)
}

// applyAll applies a reply's untagged responses.
func (v *chaosWatcher) applyAll(r imapReply) error {
	for _, l := range r.untagged {
		if err := v.apply(l); err != nil {
			return err
		}
	}
	return nil
}

// fetchNew asks for the messages past the known ones once EXISTS says
// there are some.
func (v *chaosWatcher) fetchNew() error {
	if v.exists <= len(v.uids) {
		return nil
	}
	from := uint32(1)
	if len(v.uids) > 0 {
		from = v.uids[len(v.uids)-1] + 1
	}
	items := "UID FLAGS"
	if v.qresync {
		items += " MODSEQ"
	}
	r, err := v.cmd("UID FETCH %d:* (%s)", from, items)
	if err != nil {
		return err
	}
	if r.status != "OK" {
		return fmt.Errorf("UID FETCH: %s: %w", r, errChaosBroken)
	}
	// "n:*" also names the last message when none is above n; its FETCH
	// is then a flags update of a known message.
	return v.applyAll(r)
}

// connect opens a session, selects INBOX and loads the whole view.
func (v *chaosWatcher) connect() error {
	gw := v.w.st.imapAddrs[v.rng.IntN(len(v.w.st.imapAddrs))]
	c, err := chaosDialIMAP(gw, v.acct, v.w.password)
	if err != nil {
		return err
	}
	v.c = c
	v.note("connected to %s", gw)
	var r imapReply
	if v.qresync {
		r, err = c.cmd("ENABLE QRESYNC")
		if err == nil && r.status != "OK" {
			err = fmt.Errorf("ENABLE QRESYNC: %s: %w", r, errChaosView)
		}
	}
	resync := v.qresync && v.uidValidity != 0 && err == nil
	switch {
	case err != nil:
	case resync:
		// Resynchronise the kept view: VANISHED (EARLIER) first, since
		// the EXISTS of the answer already counts without them.
		var known mail.UIDSet
		for _, u := range v.uids {
			known = known.Add(mail.UID(u))
		}
		q := fmt.Sprintf("%d %d", v.uidValidity, v.checkpoint)
		if !known.Empty() {
			q += " " + known.String()
		}
		r, err = v.cmd("SELECT %s (QRESYNC (%s))", mail.Inbox, q)
		if err == nil && r.status != "OK" {
			err = fmt.Errorf("SELECT (QRESYNC): %s: %w", r, errChaosBroken)
		}
		if err == nil {
			v.exists = len(v.uids)
			var rest []string
			for _, l := range r.untagged {
				if chaosVanishRe.MatchString(l) {
					err = cmp.Or(err, v.apply(l))
				} else {
					rest = append(rest, l)
				}
			}
			r.untagged = rest
			v.resyncs++
		}
	default:
		v.exists, v.uids, v.flags, v.uidValidity, v.checkpoint = 0, nil, map[uint32][]string{}, 0, 0
		if v.qresync {
			v.modseqs = map[uint32]uint64{}
		}
		r, err = c.selectBox(mail.Inbox)
		if err == nil && r.status != "OK" {
			err = fmt.Errorf("SELECT: %s: %w", r, errChaosBroken)
		}
	}
	if err == nil {
		err = v.applyAll(r)
	}
	if err == nil {
		err = v.fetchNew()
	}
	if err != nil {
		v.disconnect()
		return err
	}
	v.synced = time.Now()
	return nil
}

// cmd sends a command on the session, noting it.
func (v *chaosWatcher) cmd(format string, args ...any) (imapReply, error) {
	v.note("C: "+format, args...)
	r, err := v.c.cmd(format, args...)
	if err != nil {
		v.note("error: %v", err)
	}
	return r, err
}

func (v *chaosWatcher) disconnect() {
	if v.c != nil {
		v.note("disconnect")
		v.c.close()
		v.c = nil
	}
}

// idle IDLEs for a few seconds, applying what comes, then catches up.
func (v *chaosWatcher) idle(ctx context.Context) error {
	c := v.c
	c.n++
	tag := "w" + strconv.Itoa(c.n)
	c.deadline(chaosOpTimeout)
	v.note("C: IDLE")
	if err := c.write(tag + " IDLE\r\n"); err != nil {
		return err
	}
	if l, err := c.line(); err != nil {
		return err
	} else if !strings.HasPrefix(l, "+") {
		return fmt.Errorf("IDLE: %q: %w", l, errChaosBroken)
	}
	until := time.Now().Add(jitter(v.rng, 2000, 6000))
	for ctx.Err() == nil && time.Now().Before(until) {
		c.deadline(500 * time.Millisecond)
		l, err := c.line()
		if err != nil {
			if errors.Is(err, errChaosBroken) && strings.Contains(err.Error(), "timeout") {
				continue
			}
			return err
		}
		if strings.HasPrefix(l, "* BYE") {
			return fmt.Errorf("%s: %w", l, errChaosBroken)
		}
		if err := v.apply(l); err != nil {
			return err
		}
	}
	c.deadline(chaosOpTimeout)
	v.note("C: DONE")
	if err := c.write("DONE\r\n"); err != nil {
		return err
	}
	r, err := c.readTagged(tag)
	if err != nil {
		return err
	}
	if err := v.applyAll(r); err != nil {
		return err
	}
	return v.fetchNew()
}

// run watches until ctx ends, leaving the last session open.
func (v *chaosWatcher) run(ctx context.Context) error {
	for ctx.Err() == nil {
		if v.c == nil {
			if err := v.connect(); err != nil {
				if errors.Is(err, errChaosView) {
					return err
				}
				v.reconnects++
				pause(ctx, jitter(v.rng, 200, 800))
				continue
			}
		}
		if err := v.idle(ctx); err != nil {
			if errors.Is(err, errChaosView) {
				v.disconnect()
				return err
			}
			v.disconnect()
			v.reconnects++
			continue
		}
		if v.qresync && ctx.Err() == nil && v.rng.IntN(3) == 0 {
			if err := v.dropOnPurpose(); errors.Is(err, errChaosView) {
				v.disconnect()
				return err
			}
		}
	}
	return nil
}

// dropOnPurpose loses the connection as a mobile client does, half the
// time right after a FETCH by sequence number, during which the server
// withholds expunges but may send FETCHes with higher MODSEQs.
func (v *chaosWatcher) dropOnPurpose() error {
	if n := len(v.uids); n > 0 && v.rng.IntN(2) == 0 {
		r, err := v.cmd("FETCH %d (FLAGS)", n)
		if err == nil && r.status != "OK" {
			err = fmt.Errorf("FETCH: %s: %w", r, errChaosBroken)
		}
		if err == nil {
			err = v.applyAll(r)
		}
		if err != nil {
			v.disconnect()
			v.reconnects++
			return err
		}
	}
	v.disconnect()
	v.dropped++
	return nil
}

// check compares the view of a session that lived through the run's end
// with the store, after a NOOP.
func (v *chaosWatcher) check(t *testing.T, store meta.Store, acct mail.AccountID, res *chaosResult) {
	t.Helper()
	if v.c == nil {
		res.info = append(res.info, fmt.Sprintf("%s: disconnected at the end; not compared (%d reconnects, %d updates)", v.name, v.reconnects, v.updates))
		return
	}
	defer v.disconnect()
	r, err := v.c.cmd("NOOP")
	if err == nil && r.status != "OK" {
		err = fmt.Errorf("NOOP: %s", r)
	}
	if err == nil {
		err = v.applyAll(r)
	}
	if err == nil {
		err = v.fetchNew()
	}
	if errors.Is(err, errChaosView) {
		res.anomaly("session-stream", nil, "%s: %v", v.name, err)
		return
	}
	if err != nil {
		res.info = append(res.info, fmt.Sprintf("%s: final NOOP failed (%v); not compared", v.name, err))
		return
	}
	mb, err := store.Mailbox(t.Context(), acct, mail.Inbox)
	if err != nil {
		t.Fatalf("watcher check: %v", err)
	}
	es, err := store.ListEntries(t.Context(), acct, mb.ID, mail.AllUIDs(), meta.FieldFlags, 0)
	if err != nil {
		t.Fatalf("watcher check: %v", err)
	}
	var diffs []string
	seen := map[uint32]bool{}
	for _, e := range es {
		u := uint32(e.UID)
		seen[u] = true
		want := make([]string, len(e.Flags))
		for i, f := range e.Flags {
			want[i] = string(f)
		}
		want = viewFlags(strings.Join(want, " "))
		got, ok := v.flags[u]
		switch {
		case !slices.Contains(v.uids, u):
			diffs = append(diffs, fmt.Sprintf("UID %d missing", u))
		case !ok || !slices.Equal(got, want):
			diffs = append(diffs, fmt.Sprintf("UID %d flags %v, store %v", u, got, want))
		case v.modseqs != nil && v.modseqs[u] != uint64(e.ModSeq):
			diffs = append(diffs, fmt.Sprintf("UID %d MODSEQ %d, store %d", u, v.modseqs[u], e.ModSeq))
		}
	}
	for _, u := range v.uids {
		if !seen[u] {
			diffs = append(diffs, fmt.Sprintf("UID %d expunged in the store", u))
		}
	}
	if len(diffs) > 0 {
		res.anomaly("session-missed-change", nil, "%s (connected since %s, %d updates): %d differences from the store, first: %s",
			v.name, v.synced.Format("15:04:05.000"), v.updates, len(diffs), strings.Join(diffs[:min(5, len(diffs))], "; "))
		return
	}
	mode := "plain"
	if v.qresync {
		mode = fmt.Sprintf("QRESYNC, %d resyncs, %d dropped on purpose", v.resyncs, v.dropped)
	}
	res.info = append(res.info, fmt.Sprintf("%s (%s): view equals the store (%d messages; connected since %s, %d updates, %d reconnects)",
		v.name, mode, len(v.uids), v.synced.Format("15:04:05.000"), v.updates, v.reconnects))
}

// chaosWatchers runs n watchers on acct until ctx ends.
type chaosWatchers struct {
	list []*chaosWatcher
	wg   sync.WaitGroup
	errs []error
	mu   sync.Mutex
}

func (w *chaosWorld) startWatchers(ctx context.Context, n int, acct string) *chaosWatchers {
	ws := &chaosWatchers{}
	for i := range n {
		v := &chaosWatcher{w: w, name: "watch-" + strconv.Itoa(i), acct: acct, rng: w.rng(1000 + i), flags: map[uint32][]string{}, versions: &w.versions}
		if i%2 == 1 {
			v.qresync, v.modseqs = true, map[uint32]uint64{}
		}
		ws.list = append(ws.list, v)
		ws.wg.Go(func() {
			if err := v.run(ctx); err != nil {
				ws.mu.Lock()
				ws.errs = append(ws.errs, fmt.Errorf("%s: %w; its last traffic:\n      %s", v.name, err, strings.Join(v.trace, "\n      ")))
				ws.mu.Unlock()
			}
		})
	}
	return ws
}

// check waits for the watchers and checks each.
func (ws *chaosWatchers) check(t *testing.T, store meta.Store, acct mail.AccountID, res *chaosResult) {
	t.Helper()
	ws.wg.Wait()
	for _, err := range ws.errs {
		res.anomaly("session-stream", nil, "%v", err)
	}
	for _, v := range ws.list {
		v.check(t, store, acct, res)
	}
}

// TestChaosWatcherView: the view follows EXISTS + FETCH, EXPUNGE and FLAGS
// updates, and a response it cannot follow is an error, never silently
// absorbed.
func TestChaosWatcherView(t *testing.T) {
	newView := func(t *testing.T, lines ...string) *chaosWatcher {
		t.Helper()
		v := &chaosWatcher{flags: map[uint32][]string{}}
		for _, l := range lines {
			if err := v.apply(l); err != nil {
				t.Fatalf("apply %q: %v", l, err)
			}
		}
		return v
	}
	v := newView(t,
		`* 2 EXISTS`,
		`* 1 FETCH (UID 5 FLAGS (\Seen \Recent))`,
		`* 2 FETCH (FLAGS () UID 7 MODSEQ (12))`,
		`* 3 EXISTS`,
		`* 1 EXPUNGE`,
		`* 2 FETCH (UID 9 FLAGS ($Label1))`, // the answer to fetchNew, after the expunge
	)
	if v.exists != 2 || !slices.Equal(v.uids, []uint32{7, 9}) || !slices.Equal(v.flags[9], []string{"$Label1"}) {
		t.Errorf("view %v flags %v exists %d; want [7 9], 2 messages", v.uids, v.flags, v.exists)
	}
	v = newView(t, `* 2 EXISTS`, `* 1 FETCH (UID 5 FLAGS (\Seen))`, `* 2 FETCH (UID 7 FLAGS ())`,
		`* 1 FETCH (FLAGS (\Flagged \Seen))`, `* 1 EXPUNGE`, `* 1 FETCH (UID 7 FLAGS (\Answered))`)
	if !slices.Equal(v.uids, []uint32{7}) || !slices.Equal(v.flags[7], []string{`\Answered`}) || v.flags[5] != nil || v.exists != 1 {
		t.Errorf("view %v flags %v exists %d; want [7] with \\Answered, 1 message", v.uids, v.flags, v.exists)
	}
	// Updates of messages announced but not fetched yet.
	v = newView(t, `* 1 EXISTS`, `* 1 FETCH (UID 3 FLAGS ())`, `* 4 EXISTS`, `* 3 FETCH (UID 8 FLAGS (\Seen))`,
		`* 2 EXPUNGE`, `* 2 FETCH (UID 8 FLAGS (\Seen))`, `* 3 FETCH (UID 9 FLAGS ())`)
	if !slices.Equal(v.uids, []uint32{3, 8, 9}) || v.exists != 3 {
		t.Errorf("view %v exists %d; want [3 8 9], 3 messages", v.uids, v.exists)
	}
	// A QRESYNC session: VANISHED, MODSEQs and the checkpoint.
	q := &chaosWatcher{name: "q", flags: map[uint32][]string{}, modseqs: map[uint32]uint64{}, versions: &chaosVersions{}}
	for _, l := range []string{`* 3 EXISTS`, `* OK [UIDVALIDITY 7] x`, `* OK [HIGHESTMODSEQ 9] x`,
		`* 1 FETCH (UID 1 FLAGS () MODSEQ (3))`, `* 2 FETCH (UID 2 FLAGS () MODSEQ (4))`, `* 3 FETCH (UID 3 FLAGS () MODSEQ (5))`,
		`* VANISHED 2`, `* 3 EXISTS`, `* VANISHED 9`, `* 2 FETCH (FLAGS (\Seen) UID 3 MODSEQ (12))`, `* OK [HIGHESTMODSEQ 10] x`} {
		if err := q.apply(l); err != nil {
			t.Fatalf("apply %q: %v", l, err)
		}
	}
	if !slices.Equal(q.uids, []uint32{1, 3}) || q.exists != 2 || q.modseqs[3] != 12 || q.checkpoint != 10 || q.uidValidity != 7 {
		t.Errorf("QRESYNC view %v exists %d modseqs %v checkpoint %d uidvalidity %d; want [1 3], 2, UID 3 at 12, checkpoint 10, 7",
			q.uids, q.exists, q.modseqs, q.checkpoint, q.uidValidity)
	}
	// Another session told other flags under the same MODSEQ.
	q2 := &chaosWatcher{name: "q2", flags: map[uint32][]string{}, modseqs: map[uint32]uint64{}, versions: q.versions}
	for _, l := range []string{`* 1 EXISTS`, `* 1 FETCH (UID 3 FLAGS (\Flagged) MODSEQ (12))`} {
		if err := q2.apply(l); l != `* 1 EXISTS` && !errors.Is(err, errChaosView) {
			t.Errorf("conflicting version: got %v, want errChaosView", err)
		}
	}
	for name, lines := range map[string][]string{
		"ModSeqBack":         {`* 1 EXISTS`, `* 1 FETCH (UID 1 FLAGS () MODSEQ (5))`, `* 1 FETCH (UID 1 FLAGS (\Seen) MODSEQ (4))`},
		"VanishedUnknown":    {`* 2 EXISTS`, `* 1 FETCH (UID 1 FLAGS ())`, `* 2 FETCH (UID 5 FLAGS ())`, `* VANISHED 3`},
		"VanishedPastExists": {`* 1 EXISTS`, `* 1 FETCH (UID 1 FLAGS ())`, `* VANISHED 4`},
		"UIDValidityChanged": {`* OK [UIDVALIDITY 7] x`, `* OK [UIDVALIDITY 8] x`},
		"ExpungeUnknown":     {`* 1 EXISTS`, `* 1 FETCH (UID 3 FLAGS ())`, `* 2 EXPUNGE`},
		"UIDChanged":         {`* 1 EXISTS`, `* 1 FETCH (UID 3 FLAGS ())`, `* 1 FETCH (UID 4 FLAGS ())`},
		"UIDNotAbove":        {`* 2 EXISTS`, `* 1 FETCH (UID 3 FLAGS ())`, `* 2 FETCH (UID 3 FLAGS ())`},
		"ExistsShrinks":      {`* 2 EXISTS`, `* 1 FETCH (UID 3 FLAGS ())`, `* 2 FETCH (UID 4 FLAGS ())`, `* 1 EXISTS`},
		"FetchPastExists":    {`* 2 EXISTS`, `* 3 FETCH (UID 3 FLAGS ())`},
		"ExpungePastExists":  {`* 1 EXISTS`, `* 2 EXPUNGE`},
	} {
		t.Run(name, func(t *testing.T) {
			v := &chaosWatcher{flags: map[uint32][]string{}, modseqs: map[uint32]uint64{}}
			var err error
			for _, l := range lines {
				if err = v.apply(l); err != nil {
					break
				}
			}
			if !errors.Is(err, errChaosView) {
				t.Errorf("%v: got %v, want errChaosView", lines, err)
			}
		})
	}
}
