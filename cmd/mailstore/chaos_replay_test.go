package main

import (
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
)

// TestChaosReplay checks the history replay of the chaos checker on small
// histories: the expected range of copies per token.
func TestChaosReplay(t *testing.T) {
	const a = "hot@chaos.test"
	app := func(id, inst int, outcome string, temp bool, uid uint32) chaosOp {
		return chaosOp{ID: id, Kind: "append", Acct: a, Token: "t", Inst: inst, Mbox: "INBOX", UID: uid, Outcome: outcome, Temp: temp}
	}
	op := func(id int, kind string, inst int, outcome string, mut func(*chaosOp)) chaosOp {
		o := chaosOp{ID: id, Kind: kind, Acct: a, Token: "t", Inst: inst, Mbox: "INBOX", UID: 1, Outcome: outcome}
		if mut != nil {
			mut(&o)
		}
		return o
	}
	lmtp := func(id int, outcome string, temp bool) chaosOp {
		return chaosOp{ID: id, Kind: "lmtp", Acct: a, Token: "t", Outcome: outcome, Temp: temp}
	}
	pop := func(id int, outcome string) chaosOp {
		return chaosOp{ID: id, Kind: "pop3", Acct: a, Dele: []string{"t"}, Outcome: outcome}
	}
	tests := []struct {
		name   string
		ops    []chaosOp
		lo, hi int
	}{
		{"acked append", []chaosOp{app(1, 1, outcomeOK, false, 1)}, 1, 1},
		{"refused append", []chaosOp{app(1, 1, outcomeFailed, false, 0)}, 0, 0},
		{"unknown append", []chaosOp{app(1, 1, outcomeUnknown, false, 0)}, 0, 1},
		{"temporarily refused append", []chaosOp{app(1, 1, outcomeFailed, true, 0)}, 0, 1},
		{"acked copy", []chaosOp{app(1, 1, outcomeOK, false, 1), op(2, "copy", 1, outcomeOK, func(o *chaosOp) { o.NewInst, o.Dst, o.DstUID = 2, "Archive", 7 })}, 2, 2},
		{"copy without COPYUID", []chaosOp{app(1, 1, outcomeOK, false, 1), op(2, "copy", 1, outcomeOK, func(o *chaosOp) { o.NewInst, o.Noop = 2, true })}, 1, 1},
		{"unknown copy", []chaosOp{app(1, 1, outcomeOK, false, 1), op(2, "copy", 1, outcomeUnknown, func(o *chaosOp) { o.NewInst = 2 })}, 1, 2},
		{"unknown move", []chaosOp{app(1, 1, outcomeOK, false, 1), op(2, "move", 1, outcomeUnknown, nil)}, 1, 1},
		{"acked expunge", []chaosOp{app(1, 1, outcomeOK, false, 1), op(2, "expunge", 1, outcomeOK, nil)}, 0, 0},
		{"unknown expunge", []chaosOp{app(1, 1, outcomeOK, false, 1), op(2, "expunge", 1, outcomeUnknown, nil)}, 0, 1},
		{"refused expunge", []chaosOp{app(1, 1, outcomeOK, false, 1), op(2, "expunge", 1, outcomeFailed, nil)}, 1, 1},
		{"delivered", []chaosOp{lmtp(1, outcomeOK, false)}, 1, 1},
		{"delivered after an unknown attempt", []chaosOp{lmtp(1, outcomeUnknown, false), lmtp(2, outcomeOK, false)}, 1, 2},
		{"451 only", []chaosOp{lmtp(1, outcomeFailed, true)}, 0, 1},
		{"550", []chaosOp{lmtp(1, outcomeFailed, false)}, 0, 0},
		{"delivered and deleted", []chaosOp{lmtp(1, outcomeOK, false), pop(2, outcomeOK)}, 0, 0},
		{"delivered, QUIT unknown", []chaosOp{lmtp(1, outcomeOK, false), pop(2, outcomeUnknown)}, 0, 1},
		{"delivered, QUIT refused", []chaosOp{lmtp(1, outcomeOK, false), pop(2, outcomeFailed)}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, _ := chaosReplay(tt.ops)
			e := exp[chaosKey{a, "t"}]
			if e == nil {
				e = &chaosExpect{}
			}
			if e.lo != tt.lo || e.hi != tt.hi {
				t.Errorf("expected copies [%d, %d], want [%d, %d]", e.lo, e.hi, tt.lo, tt.hi)
			}
		})
	}
	t.Run("flags follow acknowledged STOREs only", func(t *testing.T) {
		ops := []chaosOp{
			{ID: 1, Kind: "append", Acct: a, Token: "t", Inst: 1, Mbox: "INBOX", UID: 3, Flags: []string{`\seen`}, Outcome: outcomeOK},
			op(2, "store", 1, outcomeOK, func(o *chaosOp) { o.Flags, o.FlagAdd = []string{`\Flagged`}, true }),
			op(3, "store", 1, outcomeOK, func(o *chaosOp) { o.Flags, o.Unchanged, o.Modified = []string{`$Chaos`}, 1, true }),
			op(4, "store", 1, outcomeFailed, func(o *chaosOp) { o.Flags, o.FlagAdd = []string{`\Seen`}, false }),
		}
		_, insts := chaosReplay(ops)
		in := insts[1]
		if !in.known || !in.flagsOK || in.uid != 3 || len(in.flags) != 2 || in.flags[0] != `\Flagged` || in.flags[1] != `\Seen` {
			t.Errorf("instance %+v, want at UID 3 with flags [\\Flagged \\Seen]", in)
		}
		_, insts = chaosReplay(append(ops, op(5, "store", 1, outcomeUnknown, func(o *chaosOp) { o.Flags = []string{`\Seen`} })))
		if insts[1].flagsOK {
			t.Error("flags still certain after a STORE with unknown outcome")
		}
	})
}

// TestChaosReplayTemp: only a temporary refusal, not an unknown outcome,
// makes a stored copy worth a warning.
func TestChaosReplayTemp(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   chaosOp
		want bool
	}{
		{"unknown", chaosOp{ID: 1, Kind: "append", Acct: "a", Token: "t", Inst: 1, Outcome: outcomeUnknown}, false},
		{"temporary refusal", chaosOp{ID: 1, Kind: "append", Acct: "a", Token: "t", Inst: 1, Outcome: outcomeFailed, Temp: true}, true},
		{"451", chaosOp{ID: 1, Kind: "lmtp", Acct: "a", Token: "t", Outcome: outcomeFailed, Temp: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp, _ := chaosReplay([]chaosOp{tt.op})
			if got := exp[chaosKey{"a", "t"}].maybeTemp; got != tt.want {
				t.Errorf("maybeTemp = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestChaosCheckFindsAnomalies runs the checker on an embedded store
// (bbolt and a directory) that disagrees with a history in known ways,
// and expects each disagreement to be reported under its kind.
func TestChaosCheckFindsAnomalies(t *testing.T) {
	dir := t.TempDir()
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil, localmeta.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ing, err := ingest.New(ingest.Config{MaxMessageSize: 1 << 20}, ingest.Deps{Meta: store, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	const login = "check@chaos.test"
	acct, mboxes := setupAccount(t, store, login)
	rng := rand.New(rand.NewPCG(1, 2))
	deliver := func(token string) mail.UID {
		msg := chaosMessage(rng, token, login)
		res, err := ing.Ingest(t.Context(), ingest.Request{Target: ingest.Target{Account: acct.ID, Mailbox: mboxes[0], MailboxName: mail.Inbox}, Body: strings.NewReader(msg), Size: int64(len(msg))})
		if err != nil {
			t.Fatal(err)
		}
		return res.Appended.UID
	}
	ok := func(id int, token string, uid mail.UID, flags ...string) chaosOp {
		return chaosOp{ID: id, Kind: "append", Acct: login, Token: token, Inst: id, Mbox: mail.Inbox, UID: uint32(uid), Flags: flags, Outcome: outcomeOK}
	}
	var ops []chaosOp
	// Fine: acknowledged and present.
	ops = append(ops, ok(1, "tok-A1-1", deliver("tok-A1-1")))
	// Lost: acknowledged, then expunged behind the history's back.
	lost := deliver("tok-A1-2")
	ops = append(ops, ok(2, "tok-A1-2", lost))
	if _, _, err := store.Expunge(t.Context(), acct.ID, mboxes[0], mail.NewUIDSet(lost)); err != nil {
		t.Fatal(err)
	}
	// Flags: acknowledged with \Seen, stored without.
	ops = append(ops, ok(3, "tok-A1-3", deliver("tok-A1-3"), `\Seen`))
	// Refused but stored.
	deliver("tok-A1-4")
	ops = append(ops, chaosOp{ID: 4, Kind: "append", Acct: login, Token: "tok-A1-4", Inst: 4, Mbox: mail.Inbox, Outcome: outcomeFailed, Reply: "NO [OVERQUOTA]"})
	// Phantom: stored, never sent.
	deliver("tok-A9-9")
	// A delivery stored twice without any retry.
	deliver("tok-L1-1")
	deliver("tok-L1-1")
	ops = append(ops, chaosOp{ID: 5, Kind: "lmtp", Acct: login, Token: "tok-L1-1", Outcome: outcomeOK})
	// An APPENDUID naming another UIDVALIDITY than the mailbox's.
	fine := ok(6, "tok-A1-6", deliver("tok-A1-6"))
	fine.UIDValidity = 1
	ops = append(ops, fine)

	res := chaosCheck(t, ops, store, blobs, map[string]mail.AccountID{login: acct.ID})
	got := map[string]int{}
	for _, a := range res.anomalies {
		got[a.Kind]++
	}
	want := map[string]int{"lost": 1, "misplaced": 1, "flags": 1, "extra-copies": 2, "phantom": 1, "uidvalidity": 1}
	if !maps.Equal(got, want) {
		for _, a := range res.anomalies {
			t.Logf("%s: %s", a.Kind, a.Text)
		}
		t.Errorf("anomalies by kind %v, want %v", got, want)
	}
}
