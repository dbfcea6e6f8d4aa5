package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

// The history checker. It replays the history into an expected range
// [lo, hi] of copies per (account, token), plus exact places and flags
// where the outcomes pin them down, and compares them with what the
// metadata service and the blob store hold once the system is whole again.
//
// The rules:
//   - an acknowledged APPEND or delivery is present exactly once, unless an
//     acknowledged expunge or POP3 DELE+QUIT removed it; an acknowledged
//     COPY adds one; an acknowledged MOVE moves it (to the UID of COPYUID);
//   - an operation with an unknown outcome (connection broken, timeout) or
//     a temporary refusal ("try again": NO [UNAVAILABLE], 451, -ERR
//     [SYS/TEMP]) may or may not have taken effect, but at most once; a
//     temporary refusal that took effect is reported as a warning;
//   - a definitive refusal took no effect;
//   - the LMTP gateway's retry dedup may, by design (lmtpgw/dedup.go),
//     store a second copy when an earlier attempt's outcome was unknown;
//     that is a warning, never a loss.

// chaosAnomaly is one finding.
type chaosAnomaly struct {
	Kind   string
	Text   string
	Tokens []string // for the history excerpt
}

// chaosInstState is the replayed state of one IMAP instance.
type chaosInstState struct {
	acct, token string
	lo, hi      int
	known       bool // mbox and uid are certain
	mbox        string
	uid         uint32
	flags       []string
	flagsOK     bool
	ops         []int
}

type chaosKey struct{ acct, token string }

// chaosExpect is the expected number of copies of one token in one
// account.
type chaosExpect struct {
	lo, hi int
	// maybeTemp: a temporarily refused operation may have added a copy.
	maybeTemp bool
	lmtp      bool
}

// chaosEntry is one entry as stored.
type chaosEntry struct {
	mbox  string
	uid   mail.UID
	flags []mail.Flag
	token string
}

// chaosResult is the checker's output.
type chaosResult struct {
	anomalies, warnings []chaosAnomaly
	info                []string
}

func (r *chaosResult) anomaly(kind string, tokens []string, format string, args ...any) {
	r.anomalies = append(r.anomalies, chaosAnomaly{Kind: kind, Text: fmt.Sprintf(format, args...), Tokens: tokens})
}

func (r *chaosResult) warn(kind string, tokens []string, format string, args ...any) {
	r.warnings = append(r.warnings, chaosAnomaly{Kind: kind, Text: fmt.Sprintf(format, args...), Tokens: tokens})
}

// chaosReplay turns the history into expectations.
func chaosReplay(ops []chaosOp) (map[chaosKey]*chaosExpect, map[int]*chaosInstState) {
	insts := map[int]*chaosInstState{}
	maybe := func(op chaosOp) bool { return op.Outcome == outcomeUnknown || (op.Outcome == outcomeFailed && op.Temp) }
	type lmtpCount struct{ aOK, aMaybe, dOK, dMaybe int }
	lm := map[chaosKey]*lmtpCount{}
	lmGet := func(k chaosKey) *lmtpCount {
		if lm[k] == nil {
			lm[k] = &lmtpCount{}
		}
		return lm[k]
	}
	temp := map[chaosKey]bool{}
	for _, op := range ops {
		in := insts[op.Inst]
		switch op.Kind {
		case "append":
			in = &chaosInstState{acct: op.Acct, token: op.Token, mbox: op.Mbox, ops: []int{op.ID}}
			insts[op.Inst] = in
			switch {
			case op.Outcome == outcomeOK:
				in.lo, in.hi = 1, 1
				in.known, in.uid = op.UID != 0, op.UID
				in.flags, in.flagsOK = canonFlags(op.Flags), true
			case maybe(op):
				in.hi = 1
				temp[chaosKey{op.Acct, op.Token}] = temp[chaosKey{op.Acct, op.Token}] || op.Temp
			}
			continue
		case "store", "copy", "move", "expunge", "fstore":
			if in == nil {
				continue
			}
			in.ops = append(in.ops, op.ID)
		case "lmtp":
			c := lmGet(chaosKey{op.Acct, op.Token})
			switch {
			case op.Outcome == outcomeOK:
				c.aOK++
			case maybe(op):
				c.aMaybe++
				temp[chaosKey{op.Acct, op.Token}] = temp[chaosKey{op.Acct, op.Token}] || op.Temp
			}
			continue
		case "pop3":
			for _, tok := range op.Dele {
				c := lmGet(chaosKey{op.Acct, tok})
				switch {
				case op.Outcome == outcomeOK:
					c.dOK++
				case maybe(op):
					c.dMaybe++
				}
			}
			continue
		default:
			continue
		}
		switch op.Kind {
		case "fstore":
			// The conflict scenario's flags are checked by porcupine
			// (chaos_conflict_test.go).
			in.flagsOK = false
		case "store":
			switch {
			case op.Outcome == outcomeOK && !op.Modified:
				f := canonFlags(op.Flags)[0]
				in.flags = slices.DeleteFunc(in.flags, func(x string) bool { return x == f })
				if op.FlagAdd {
					in.flags = canonFlags(append(in.flags, f))
				}
			case maybe(op):
				in.flagsOK = false
			}
		case "copy":
			n := &chaosInstState{acct: op.Acct, token: op.Token, mbox: op.Dst, ops: []int{op.ID}}
			switch {
			case op.Outcome == outcomeOK && !op.Noop:
				n.lo, n.hi, n.known, n.uid = 1, 1, op.DstUID != 0, op.DstUID
				n.flags, n.flagsOK = slices.Clone(in.flags), in.flagsOK
			case maybe(op):
				n.hi = 1
			}
			insts[op.NewInst] = n
		case "move":
			switch {
			case op.Outcome == outcomeOK && !op.Noop:
				in.mbox, in.uid, in.known = op.Dst, op.DstUID, in.known && op.DstUID != 0
			case maybe(op):
				in.known = false
			}
		case "expunge":
			switch {
			case op.Outcome == outcomeOK:
				in.lo, in.hi, in.known = 0, 0, false
			case maybe(op):
				in.lo, in.known = 0, false
			}
		}
	}
	exp := map[chaosKey]*chaosExpect{}
	get := func(k chaosKey) *chaosExpect {
		if exp[k] == nil {
			exp[k] = &chaosExpect{}
		}
		return exp[k]
	}
	for _, in := range insts {
		e := get(chaosKey{in.acct, in.token})
		e.lo += in.lo
		e.hi += in.hi
	}
	for k, c := range lm {
		e := get(k)
		e.lmtp = true
		if c.aOK > 0 {
			e.lo = max(0, 1-c.dOK-c.dMaybe)
		}
		e.hi = max(0, c.aOK+c.aMaybe-c.dOK)
	}
	for k, v := range temp {
		if v {
			get(k).maybeTemp = true
		}
	}
	return exp, insts
}

func canonFlags(fs []string) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		if c, err := mail.CanonicalFlag(f); err == nil {
			out = append(out, string(c))
		} else {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// chaosTB records what metatest.CheckAccount reports instead of failing
// the test, so its findings join the report.
type chaosTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *chaosTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *chaosTB) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprint(args...))
}

// chaosCheck compares the history with the stored state of every
// account (logins to ids in accts).
func chaosCheck(t *testing.T, ops []chaosOp, store meta.Store, blobs blob.Store, accts map[string]mail.AccountID) *chaosResult {
	t.Helper()
	res := &chaosResult{}
	ctx := t.Context()
	exp, insts := chaosReplay(ops)

	actual := map[chaosKey][]chaosEntry{}
	type loc struct {
		acct, mbox string
		uid        mail.UID
	}
	byLoc := map[loc]chaosEntry{}
	logins := slices.Sorted(func(yield func(string) bool) {
		for l := range accts {
			if !yield(l) {
				return
			}
		}
	})
	referenced := map[mail.BlobID]bool{}
	// UIDVALIDITY: no mailbox is recreated in the run, so every APPENDUID
	// and COPYUID must name the one the mailbox has now.
	told := map[[2]string]map[uint32]int{} // (login, mailbox) -> UIDVALIDITY -> first op
	for _, op := range ops {
		mbox := op.Mbox
		if op.Kind == "copy" || op.Kind == "move" {
			mbox = op.Dst
		}
		if op.UIDValidity != 0 {
			k := [2]string{op.Acct, mbox}
			if told[k] == nil {
				told[k] = map[uint32]int{}
			}
			if _, ok := told[k][op.UIDValidity]; !ok {
				told[k][op.UIDValidity] = op.ID
			}
		}
	}
	for _, login := range logins {
		id := accts[login]
		boxes, err := store.ListMailboxes(ctx, id)
		if err != nil {
			res.anomaly("read", nil, "list mailboxes of %s: %v", login, err)
			continue
		}
		entries := 0
		for _, mb := range boxes {
			for uv, id := range told[[2]string{login, mb.Name}] {
				if uv != mb.UIDValidity {
					res.anomaly("uidvalidity", nil, "%s %s: operation %d was told UIDVALIDITY %d, the mailbox has %d and was never recreated", login, mb.Name, id, uv, mb.UIDValidity)
				}
			}
			es, err := store.ListEntries(ctx, id, mb.ID, mail.AllUIDs(), meta.FieldFlags|meta.FieldInfo, 0)
			if err != nil {
				res.anomaly("read", nil, "list entries of %s %s: %v", login, mb.Name, err)
				continue
			}
			entries += len(es)
			var prev mail.UID
			for _, e := range es {
				where := fmt.Sprintf("%s %s UID %d", login, mb.Name, e.UID)
				if e.UID <= prev {
					res.anomaly("uid-order", nil, "%s after UID %d: duplicated or out of order", where, prev)
				}
				prev = e.UID
				if e.UID >= mb.UIDNext {
					res.anomaly("uid-next", nil, "%s not below UIDNEXT %d", where, mb.UIDNext)
				}
				if e.ModSeq == 0 || e.ModSeq > mb.HighestModSeq {
					res.anomaly("modseq", nil, "%s MODSEQ %d, HIGHESTMODSEQ %d", where, e.ModSeq, mb.HighestModSeq)
				}
				referenced[e.Blob] = true
				ce := chaosEntry{mbox: mb.Name, uid: e.UID, flags: e.Flags}
				body, err := readBlob(ctx, blobs, id, e.Blob)
				if err != nil {
					res.anomaly("blob-missing", nil, "%s: blob %s: %v", where, e.Blob, err)
				} else if m := chaosTokenRe.FindSubmatch(body); m == nil {
					res.anomaly("phantom", nil, "%s: blob %s carries no chaos token (%d bytes)", where, e.Blob, len(body))
				} else {
					ce.token = string(m[1])
					if !bytes.Contains(body, []byte("\r\ntoken "+ce.token+"\r\n")) {
						res.anomaly("blob-content", []string{ce.token}, "%s: blob %s lacks the body line of token %s", where, e.Blob, ce.token)
					}
					if int64(len(body)) != e.Size {
						res.anomaly("blob-content", []string{ce.token}, "%s: blob %s is %d bytes, the entry says %d", where, e.Blob, len(body), e.Size)
					}
				}
				k := chaosKey{login, ce.token}
				actual[k] = append(actual[k], ce)
				byLoc[loc{login, mb.Name, e.UID}] = ce
			}
		}
		res.info = append(res.info, fmt.Sprintf("%s: %d mailboxes, %d entries", login, len(boxes), entries))
		rec := &chaosTB{TB: t}
		metatest.CheckAccount(rec, store, id)
		for _, e := range rec.errs {
			res.anomaly("counters", nil, "%s (metatest.CheckAccount): %s", login, e)
		}
		// Blobs nothing refers to: released ones awaiting the sweeper,
		// and orphans of interrupted ingests (the orphan sweep only
		// takes them after -metadata.sweep.orphan-age).
		pending, err := store.PendingBlobs(ctx, id, time.Now().Add(time.Hour), 100000)
		if err != nil {
			res.info = append(res.info, fmt.Sprintf("%s: pending blobs: %v", login, err))
		}
		released := map[mail.BlobID]bool{}
		for _, b := range pending {
			released[b] = true
		}
		orphans, waiting := 0, 0
		if err := blobs.List(ctx, id, func(i blob.Info) error {
			switch {
			case referenced[i.ID]:
			case released[i.ID]:
				waiting++
			default:
				orphans++
			}
			return nil
		}); err != nil {
			res.info = append(res.info, fmt.Sprintf("%s: list blobs: %v", login, err))
		} else {
			res.info = append(res.info, fmt.Sprintf("%s: unreferenced blobs in the store: %d released awaiting the sweeper, %d orphans of interrupted ingests", login, waiting, orphans))
		}
	}

	keys := map[chaosKey]bool{}
	for k := range exp {
		keys[k] = true
	}
	for k := range actual {
		if k.token != "" {
			keys[k] = true
		}
	}
	sorted := slices.SortedFunc(func(yield func(chaosKey) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}, func(a, b chaosKey) int { return strings.Compare(a.acct+" "+a.token, b.acct+" "+b.token) })
	for _, k := range sorted {
		e, n := exp[k], len(actual[k])
		places := func() string {
			var s []string
			for _, ce := range actual[k] {
				s = append(s, fmt.Sprintf("%s/%d", ce.mbox, ce.uid))
			}
			return "[" + strings.Join(s, " ") + "]"
		}
		switch {
		case e == nil:
			res.anomaly("phantom", []string{k.token}, "%s: token %s stored %d times %s, but no operation of the history made it", k.acct, k.token, n, places())
			continue
		case n < e.lo:
			res.anomaly("lost", []string{k.token}, "%s: token %s stored %d times %s, want at least %d (at most %d)", k.acct, k.token, n, places(), e.lo, e.hi)
		case n > e.hi:
			res.anomaly("extra-copies", []string{k.token}, "%s: token %s stored %d times %s, want at most %d (at least %d)", k.acct, k.token, n, places(), e.hi, e.lo)
		case e.lmtp && n > 1:
			res.warn("lmtp-retry-duplicate", []string{k.token}, "%s: token %s stored %d times %s after a retry of a delivery with unknown outcome (the documented trade-off of lmtpgw/dedup.go)", k.acct, k.token, n, places())
		case e.maybeTemp && n > e.lo:
			res.warn("temp-refusal-applied", []string{k.token}, "%s: token %s stored %d times %s; an operation on it answered a temporary failure, and may be the one that took effect", k.acct, k.token, n, places())
		}
		if e.lmtp {
			for _, ce := range actual[k] {
				if ce.mbox != mail.Inbox {
					res.anomaly("misplaced", []string{k.token}, "%s: delivered token %s is in %s/%d, want INBOX", k.acct, k.token, ce.mbox, ce.uid)
				}
			}
		}
	}
	ids := slices.Sorted(func(yield func(int) bool) {
		for id := range insts {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		in := insts[id]
		if !in.known || in.lo != 1 {
			continue
		}
		ce, ok := byLoc[loc{in.acct, in.mbox, mail.UID(in.uid)}]
		switch {
		case !ok:
			res.anomaly("misplaced", []string{in.token}, "%s: token %s should be at %s/%d (instance %d), which holds nothing", in.acct, in.token, in.mbox, in.uid, id)
		case ce.token != in.token:
			res.anomaly("misplaced", []string{in.token, ce.token}, "%s: token %s should be at %s/%d (instance %d), which holds token %q", in.acct, in.token, in.mbox, in.uid, id, ce.token)
		case in.flagsOK:
			got := make([]string, 0, len(ce.flags))
			for _, f := range ce.flags {
				got = append(got, string(f))
			}
			if !slices.Equal(canonFlags(got), in.flags) {
				res.anomaly("flags", []string{in.token}, "%s: token %s at %s/%d (instance %d) has flags %q, the acknowledged STOREs give %q", in.acct, in.token, in.mbox, in.uid, id, canonFlags(got), in.flags)
			}
		}
	}
	chaosCheckPOP3(ops, res)
	return res
}

// chaosCheckPOP3 checks the maildrop lock from the clients' side: two
// sessions of one account whose QUIT applied changes (and so found their
// lock still held) must not both have certainly held it at one moment:
// from the +OK to PASS until QUIT was sent.
func chaosCheckPOP3(ops []chaosOp, res *chaosResult) {
	by := map[string][]chaosOp{}
	for _, op := range ops {
		if op.Kind == "pop3" && op.Outcome == outcomeOK && (op.Retr > 0 || len(op.Dele) > 0) {
			by[op.Acct] = append(by[op.Acct], op)
		}
		if op.Kind == "pop3" && op.Outcome == outcomeOK && op.Deleted != len(op.Dele) {
			res.warn("pop3-delete-count", op.Dele, "%s: session %d marked %d messages, QUIT says %q", op.Acct, op.ID, len(op.Dele), op.Reply)
		}
	}
	for acct, ss := range by {
		sort.Slice(ss, func(i, j int) bool { return ss[i].PassOK.Before(ss[j].PassOK) })
		for i := 1; i < len(ss); i++ {
			a, b := ss[i-1], ss[i]
			if b.PassOK.Before(a.QuitAt) {
				res.anomaly("pop3-lock-overlap", append(slices.Clone(a.Dele), b.Dele...),
					"%s: POP3 sessions %d (%s, lock held %s..%s) and %d (%s, from %s) both applied their changes while holding the maildrop lock at once",
					acct, a.ID, a.Gateway, a.PassOK.Format("15:04:05.000"), a.QuitAt.Format("15:04:05.000"), b.ID, b.Gateway, b.PassOK.Format("15:04:05.000"))
			}
		}
	}
}

func readBlob(ctx context.Context, s blob.Store, acct mail.AccountID, id mail.BlobID) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := s.Get(ctx, acct, id, blob.Whole)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
