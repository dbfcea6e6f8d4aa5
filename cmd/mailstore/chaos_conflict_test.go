package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The conflict scenario: a few messages in one mailbox of the hot
// account that several sessions, on different gateways, change and read
// at once: STORE +FLAGS, -FLAGS and FLAGS, with and without
// UNCHANGEDSINCE, and UID FETCH (FLAGS MODSEQ). Every message is a
// register whose value is its flags and MODSEQ; the history of each is
// checked for linearizability with porcupine: there must be one order of
// the operations, consistent with their real-time order, in which every
// read saw the latest write, every STORE's answer (its flags and a MODSEQ
// above the one before) follows from the state before it, and every
// UNCHANGEDSINCE was honoured (applied only when the MODSEQ was not
// above it, reported as MODIFIED only when it was).
//
// A STORE with an unknown outcome (the connection broke) or a temporary
// refusal may have been applied or not. A request the server had already
// read can still be applied after the client gave up, but not after the
// gateway's deadline for a command's work (-imap.command-timeout, 2
// minutes) plus the longest pause of a process in the run: the interval
// of an unknown outcome stays open that long (chaosUnknownWindow), which
// keeps porcupine's search small over a long run.

const chaosConflictBox = "Shared"

// chaosUnknownWindow is how long after its start an operation with an
// unknown outcome may still take effect.
const chaosUnknownWindow = 2*time.Minute + 30*time.Second

// chaosConflictMsgs is how many messages the scenario shares.
const chaosConflictMsgs = 4

var chaosConflictFlags = []string{`\Seen`, `\Flagged`, `\Answered`, `$A`, `$B`}

var chaosModSeqRe = regexp.MustCompile(`\bMODSEQ \((\d+)\)`)

// chaosConflictMsg is one shared message.
type chaosConflictMsg struct {
	inst  int
	token string
	uid   uint32
}

// setupConflict creates the shared mailbox and its messages, and reads
// their first state; the operations join the history like any other.
func (w *chaosWorld) setupConflict(t *testing.T, acct string) []chaosConflictMsg {
	t.Helper()
	gw := w.st.imapAddrs[0]
	c, err := chaosDialIMAP(gw, acct, w.password)
	if err != nil {
		t.Fatalf("conflict setup: %v", err)
	}
	defer c.close()
	if r, err := c.cmd("CREATE %s", chaosConflictBox); err != nil || r.status != "OK" {
		t.Fatalf("conflict setup: CREATE: %v %s", err, r)
	}
	var msgs []chaosConflictMsg
	rng := w.rng(0)
	for i := range chaosConflictMsgs {
		token := fmt.Sprintf("tok-S-%d", i)
		msg := chaosMessage(rng, token, acct)
		op := w.hist.begin("conflict-setup", "append", acct)
		op.Token, op.Mbox, op.Inst, op.Gateway = token, chaosConflictBox, int(w.insts.Add(1)), gw
		r, err := c.cmd("APPEND %s () {%d+}\r\n%s", chaosConflictBox, len(msg), msg)
		if err != nil || r.status != "OK" {
			t.Fatalf("conflict setup: APPEND: %v %s", err, r)
		}
		m := appendUIDRe.FindStringSubmatch(r.text)
		if m == nil {
			t.Fatalf("conflict setup: APPEND without APPENDUID: %s", r)
		}
		u, _ := strconv.ParseUint(m[2], 10, 32)
		op.UID, op.Outcome, op.Reply = uint32(u), outcomeOK, r.String()
		w.hist.end(op)
		msgs = append(msgs, chaosConflictMsg{inst: op.Inst, token: token, uid: uint32(u)})
	}
	if r, err := c.cmd("SELECT %s (CONDSTORE)", chaosConflictBox); err != nil || r.status != "OK" {
		t.Fatalf("conflict setup: SELECT: %v %s", err, r)
	}
	for _, m := range msgs {
		op := w.hist.begin("conflict-setup", "fread", acct)
		op.Token, op.Inst, op.Mbox, op.UID, op.Gateway = m.token, m.inst, chaosConflictBox, m.uid, gw
		r, err := c.cmd("UID FETCH %d (FLAGS MODSEQ)", m.uid)
		if err != nil || r.status != "OK" || !op.conflictResult(r) {
			t.Fatalf("conflict setup: FETCH: %v %s", err, r)
		}
		op.Outcome = outcomeOK
		w.hist.end(op)
	}
	return msgs
}

// conflictResult takes the flags and MODSEQ of op's message from the
// first FETCH response about it in r: the server writes a command's own
// responses before the updates it sends after them (newer states made by
// other sessions). It reports whether there was one.
func (op *chaosOp) conflictResult(r imapReply) bool {
	for _, l := range r.untagged {
		m := chaosFetchRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		u := chaosUIDRe.FindStringSubmatch(m[2])
		f := chaosFlagsRe.FindStringSubmatch(m[2])
		ms := chaosModSeqRe.FindStringSubmatch(m[2])
		if u == nil || f == nil || ms == nil || u[1] != strconv.FormatUint(uint64(op.UID), 10) {
			continue
		}
		op.ResFlags = viewFlags(f[1])
		op.ResModSeq, _ = strconv.ParseUint(ms[1], 10, 64)
		return true
	}
	return false
}

// conflictWorker changes and reads the shared messages.
func (w *chaosWorld) conflictWorker(ctx context.Context, n int, acct string, msgs []chaosConflictMsg) {
	rng := w.rng(n)
	name := "conflict-" + strconv.Itoa(n)
	var (
		c  *chaosIMAP
		gw string
	)
	seen := map[uint32]uint64{} // the MODSEQ this worker last saw per UID
	drop := func() {
		if c != nil {
			c.close()
			c = nil
		}
	}
	defer drop()
	for pause(ctx, jitter(rng, 10, 60)) {
		if c == nil {
			gw = w.st.imapAddrs[rng.IntN(len(w.st.imapAddrs))]
			op := w.hist.begin(name, "login", acct)
			op.Gateway = gw
			var err error
			c, err = chaosDialIMAP(gw, acct, w.password)
			if err == nil {
				var r imapReply
				r, err = c.cmd("SELECT %s (CONDSTORE)", chaosConflictBox)
				if err == nil && r.status != "OK" {
					err = fmt.Errorf("SELECT: %s: %w", r, errChaosBroken)
				}
				if err != nil {
					c.close()
				}
			}
			if err != nil {
				c = nil
				op.Outcome, op.Reply = classify(err), err.Error()
				w.hist.end(op)
				pause(ctx, jitter(rng, 100, 500))
				continue
			}
			op.Outcome = outcomeOK
			w.hist.end(op)
		}
		m := msgs[rng.IntN(len(msgs))]
		var op chaosOp
		var cmd string
		if rng.IntN(10) < 4 {
			op = w.hist.begin(name, "fread", acct)
			cmd = fmt.Sprintf("UID FETCH %d (FLAGS MODSEQ)", m.uid)
		} else {
			op = w.hist.begin(name, "fstore", acct)
			switch k := rng.IntN(10); {
			case k < 4:
				op.FlagMode = "+"
			case k < 8:
				op.FlagMode = "-"
			}
			if op.FlagMode == "" {
				for _, f := range chaosConflictFlags {
					if rng.IntN(3) == 0 {
						op.Flags = append(op.Flags, f)
					}
				}
			} else {
				op.Flags = []string{chaosConflictFlags[rng.IntN(len(chaosConflictFlags))]}
			}
			mod := ""
			if ms, ok := seen[m.uid]; ok && rng.IntN(2) == 0 {
				op.Unchanged = ms
				mod = fmt.Sprintf(" (UNCHANGEDSINCE %d)", ms)
			}
			cmd = fmt.Sprintf("UID STORE %d%s %sFLAGS (%s)", m.uid, mod, op.FlagMode, strings.Join(op.Flags, " "))
		}
		op.Token, op.Inst, op.Mbox, op.UID, op.Gateway = m.token, m.inst, chaosConflictBox, m.uid, gw
		r, err := c.cmd("%s", cmd)
		switch {
		case err != nil:
			op.Outcome, op.Reply = classify(err), err.Error()
			drop()
		case r.status != "OK":
			op.Outcome, op.Reply, op.Temp = outcomeFailed, r.String(), r.temp()
		default:
			op.Outcome, op.Reply = outcomeOK, r.String()
			op.Modified = modifiedRe.MatchString(r.text)
			if !op.Modified && !op.conflictResult(r) {
				w.anomaly("conflict-answer", "%s: %s answered OK without the message's FLAGS and MODSEQ: %q", name, cmd, r.untagged)
				op.Outcome = outcomeUnknown
			}
		}
		if op.Outcome == outcomeOK && !op.Modified {
			seen[m.uid] = op.ResModSeq
		}
		w.hist.end(op)
	}
}

// chaosRegister is a shared message's state in the model: its flags and
// MODSEQ. After a STORE with an unknown outcome that may have been
// applied, the MODSEQ is only known to be at least modSeq (exact false)
// until a read tells it.
type chaosRegister struct {
	flags  string // canonical, space-separated
	modSeq uint64
	exact  bool
	init   bool
}

// chaosRegInput is an operation on a register.
type chaosRegInput struct {
	read      bool
	mode      string // "+", "-" or "" (replace)
	flags     []string
	unchanged uint64
	maybe     bool // outcome unknown: may or may not have been applied
}

// chaosRegOutput is what the server answered.
type chaosRegOutput struct {
	modified bool
	flags    string
	modSeq   uint64
}

func (in chaosRegInput) apply(flags string) string {
	cur := strings.Fields(flags)
	switch in.mode {
	case "+":
		cur = append(cur, in.flags...)
	case "-":
		cur = slices.DeleteFunc(cur, func(f string) bool { return slices.Contains(in.flags, f) })
	default:
		cur = slices.Clone(in.flags)
	}
	return strings.Join(canonFlags(cur), " ")
}

// chaosRegisterModel is the sequential specification of a shared
// message under STORE (RFC 9051 6.4.6, RFC 7162 3.1.3) and FETCH.
var chaosRegisterModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[any][]porcupine.Operation{}
		var keys []any
		for _, op := range h {
			k := op.Metadata.(chaosRegMeta).uid
			if by[k] == nil {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []any { return []any{chaosRegister{}} },
	Step: func(state, input, output any) []any {
		s, in := state.(chaosRegister), input.(chaosRegInput)
		if in.read {
			out := output.(chaosRegOutput)
			if s.init && (out.flags != s.flags || out.modSeq < s.modSeq || s.exact && out.modSeq != s.modSeq) {
				return nil
			}
			return []any{chaosRegister{flags: out.flags, modSeq: out.modSeq, exact: true, init: true}}
		}
		if in.maybe {
			next := []any{s}
			if !s.init {
				return next // before the first read: not reached in practice
			}
			if in.unchanged != 0 && s.modSeq > in.unchanged {
				return next // could only have been refused
			}
			if f := in.apply(s.flags); f != s.flags {
				next = append(next, chaosRegister{flags: f, modSeq: s.modSeq + 1, init: true})
			}
			return next
		}
		out := output.(chaosRegOutput)
		if !s.init {
			return nil
		}
		if out.modified {
			// Refused: only if the MODSEQ was above UNCHANGEDSINCE.
			if in.unchanged == 0 || s.exact && s.modSeq <= in.unchanged {
				return nil
			}
			if !s.exact && s.modSeq <= in.unchanged {
				// Possible only if the unknown MODSEQ is above it.
				return []any{chaosRegister{flags: s.flags, modSeq: in.unchanged + 1, exact: false, init: true}}
			}
			return []any{s}
		}
		if in.unchanged != 0 && s.modSeq > in.unchanged {
			return nil // applied though the message had changed
		}
		f := in.apply(s.flags)
		if out.flags != f {
			return nil
		}
		if f == s.flags {
			// Nothing changed: no new MODSEQ; the answer reads it.
			if out.modSeq < s.modSeq || s.exact && out.modSeq != s.modSeq {
				return nil
			}
			if in.unchanged != 0 && out.modSeq > in.unchanged {
				return nil // then it was above UNCHANGEDSINCE all along
			}
		} else if out.modSeq <= s.modSeq {
			return nil // a change gets a MODSEQ above the one before
		}
		return []any{chaosRegister{flags: out.flags, modSeq: out.modSeq, exact: true, init: true}}
	},
	DescribeOperation: func(input, output any) string {
		in := input.(chaosRegInput)
		if in.read {
			o := output.(chaosRegOutput)
			return fmt.Sprintf("FETCH -> (%s) %d", o.flags, o.modSeq)
		}
		s := fmt.Sprintf("STORE %sFLAGS (%s)", in.mode, strings.Join(in.flags, " "))
		if in.unchanged != 0 {
			s += fmt.Sprintf(" UNCHANGEDSINCE %d", in.unchanged)
		}
		switch o := output.(type) {
		case chaosRegOutput:
			if o.modified {
				return s + " -> MODIFIED"
			}
			return fmt.Sprintf("%s -> (%s) %d", s, o.flags, o.modSeq)
		}
		return s + " -> ?"
	},
	DescribeState: func(state any) string {
		s := state.(chaosRegister)
		if !s.init {
			return "?"
		}
		if s.exact {
			return fmt.Sprintf("(%s) %d", s.flags, s.modSeq)
		}
		return fmt.Sprintf("(%s) >=%d", s.flags, s.modSeq)
	},
}

// chaosRegMeta labels an operation for partitioning and the report.
type chaosRegMeta struct {
	uid uint32
	op  int // the history's operation id
}

// chaosConflictHistory turns the conflict operations into porcupine's
// form. Definitive refusals took no effect and are left out; an
// operation whose outcome is not known stays open to the end.
func chaosConflictHistory(ops []chaosOp) (hist []porcupine.Operation, open int) {
	t0 := time.Time{}
	var last time.Time
	for _, op := range ops {
		if op.Kind == "fread" || op.Kind == "fstore" {
			if t0.IsZero() || op.Start.Before(t0) {
				t0 = op.Start
			}
			if op.End.After(last) {
				last = op.End
			}
		}
	}
	clients := map[string]int{}
	for _, op := range ops {
		if op.Kind != "fread" && op.Kind != "fstore" {
			continue
		}
		if _, ok := clients[op.Worker]; !ok {
			clients[op.Worker] = len(clients)
		}
		in := chaosRegInput{read: op.Kind == "fread", mode: op.FlagMode, flags: canonFlags(op.Flags), unchanged: op.Unchanged}
		call, ret := op.Start.Sub(t0).Nanoseconds(), op.End.Sub(t0).Nanoseconds()
		var out any
		switch {
		case op.Outcome == outcomeOK:
			out = chaosRegOutput{modified: op.Modified, flags: strings.Join(op.ResFlags, " "), modSeq: op.ResModSeq}
		case in.read:
			continue // a read that did not answer tells nothing
		case op.Outcome == outcomeFailed && !op.Temp:
			continue
		default:
			in.maybe = true
			out = nil
			if op.Outcome == outcomeUnknown {
				until := op.Start.Add(chaosUnknownWindow)
				if until.After(last) {
					until = last
				}
				ret = until.Sub(t0).Nanoseconds() + 1
				open++
			}
		}
		hist = append(hist, porcupine.Operation{
			ClientId: clients[op.Worker], Input: in, Output: out, Call: call, Return: ret,
			Metadata: chaosRegMeta{uid: op.UID, op: op.ID},
		})
	}
	return hist, open
}

// chaosCheckConflict checks the conflict operations for linearizability.
// When a history is not linearizable, porcupine's visualization is
// written to dir (if set).
func chaosCheckConflict(ops []chaosOp, dir string, timeout time.Duration, res *chaosResult) {
	hist, open := chaosConflictHistory(ops)
	if len(hist) == 0 {
		return
	}
	model := chaosRegisterModel.ToModel()
	result, info := porcupine.CheckOperationsVerbose(model, hist, timeout)
	stores, modified := 0, 0
	for _, op := range hist {
		if !op.Input.(chaosRegInput).read {
			stores++
			if o, ok := op.Output.(chaosRegOutput); ok && o.modified {
				modified++
			}
		}
	}
	summary := fmt.Sprintf("conflict registers: %d operations on %d messages (%d STOREs, %d answered MODIFIED, %d with an unknown outcome)",
		len(hist), chaosConflictMsgs, stores, modified, open)
	switch result {
	case porcupine.Ok:
		res.info = append(res.info, summary+": linearizable")
	case porcupine.Unknown:
		res.warn("linearizability-undecided", nil, "%s: porcupine did not decide within %s", summary, timeout)
	default:
		where := ""
		if dir != "" {
			p := filepath.Join(dir, "conflict-linearizability.html")
			if err := porcupine.VisualizePath(model, info, p); err == nil {
				where = " (visualization: " + p + ")"
			}
		}
		res.anomaly("not-linearizable", nil, "%s: no linear order explains the answers%s; the longest partial orders: %s",
			summary, where, chaosPartials(model, info))
	}
}

// chaosPartials describes the end of the longest partial linearization of
// each failing partition: the operations it could not place after.
func chaosPartials(model porcupine.Model, info porcupine.LinearizationInfo) string {
	var out []string
	for _, part := range info.PartialLinearizationsOperations() {
		var best []porcupine.Operation
		for _, l := range part {
			if len(l) > len(best) {
				best = l
			}
		}
		if len(best) == 0 {
			continue
		}
		tail := best[max(0, len(best)-3):]
		var s []string
		for _, op := range tail {
			s = append(s, fmt.Sprintf("#%d %s", op.Metadata.(chaosRegMeta).op, model.DescribeOperation(op.Input, op.Output)))
		}
		out = append(out, fmt.Sprintf("UID %d: ... %s", best[0].Metadata.(chaosRegMeta).uid, strings.Join(s, "; ")))
	}
	if len(out) > 4 {
		out = out[:4]
	}
	return strings.Join(out, " | ")
}

// TestChaosConflictModel shows that the register check accepts real
// histories and finds a lost update, an UNCHANGEDSINCE applied though the
// message had changed, a MODIFIED that was not, a stale read and a
// MODSEQ going back.
func TestChaosConflictModel(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	read := func(w string, s, e int, flags string, ms uint64) chaosOp {
		return chaosOp{Worker: w, Kind: "fread", UID: 1, Start: at(s), End: at(e), Outcome: outcomeOK, ResFlags: strings.Fields(flags), ResModSeq: ms}
	}
	store := func(w string, s, e int, mode, flag string, unch uint64, flags string, ms uint64) chaosOp {
		return chaosOp{Worker: w, Kind: "fstore", UID: 1, Start: at(s), End: at(e), Outcome: outcomeOK,
			FlagMode: mode, Flags: strings.Fields(flag), Unchanged: unch, ResFlags: strings.Fields(flags), ResModSeq: ms}
	}
	modified := func(w string, s, e int, mode, flag string, unch uint64) chaosOp {
		return chaosOp{Worker: w, Kind: "fstore", UID: 1, Start: at(s), End: at(e), Outcome: outcomeOK,
			FlagMode: mode, Flags: strings.Fields(flag), Unchanged: unch, Modified: true}
	}
	unknown := func(op chaosOp) chaosOp { op.Outcome, op.ResFlags, op.ResModSeq = outcomeUnknown, nil, 0; return op }
	cases := []struct {
		name string
		ops  []chaosOp
		ok   bool
	}{
		{"sequential", []chaosOp{
			read("a", 0, 1, "", 5),
			store("a", 2, 3, "+", `\Seen`, 0, `\Seen`, 6),
			store("b", 4, 5, "+", `$A`, 6, `$A \Seen`, 7),
			modified("a", 6, 7, "-", `\Seen`, 6),
			store("b", 8, 9, "+", `$A`, 0, `$A \Seen`, 7), // no change, no new MODSEQ
			read("b", 10, 11, `$A \Seen`, 7),
		}, true},
		{"concurrent adds both kept", []chaosOp{
			read("a", 0, 1, "", 5),
			store("a", 2, 10, "+", `\Seen`, 0, `$A \Seen`, 7),
			store("b", 2, 10, "+", `$A`, 0, `$A`, 6),
			read("c", 11, 12, `$A \Seen`, 7),
		}, true},
		{"unknown outcome applied later", []chaosOp{
			read("a", 0, 1, "", 5),
			unknown(store("a", 2, 3, "+", `$B`, 0, "", 0)),
			read("b", 4, 5, "", 5),
			read("b", 6, 7, "$B", 9),
		}, true},
		{"lost update", []chaosOp{
			read("a", 0, 1, "", 5),
			store("a", 2, 10, "+", `\Seen`, 0, `\Seen`, 6),
			store("b", 2, 10, "+", `$A`, 0, `$A`, 7),
			read("c", 11, 12, `$A`, 7),
		}, false},
		{"UNCHANGEDSINCE ignored", []chaosOp{
			read("a", 0, 1, "", 5),
			store("b", 2, 3, "+", `$A`, 0, `$A`, 6),
			store("a", 4, 5, "+", `\Seen`, 5, `$A \Seen`, 7),
		}, false},
		{"MODIFIED though unchanged", []chaosOp{
			read("a", 0, 1, "", 5),
			modified("a", 2, 3, "+", `\Seen`, 5),
		}, false},
		{"stale read", []chaosOp{
			read("a", 0, 1, "", 5),
			store("a", 2, 3, "+", `\Seen`, 0, `\Seen`, 6),
			read("b", 4, 5, "", 5),
		}, false},
		{"MODSEQ not raised", []chaosOp{
			read("a", 0, 1, "", 5),
			store("a", 2, 3, "+", `\Seen`, 0, `\Seen`, 5),
		}, false},
	}
	for _, c := range cases {
		res := &chaosResult{}
		chaosCheckConflict(c.ops, "", 10*time.Second, res)
		if ok := len(res.anomalies) == 0 && len(res.warnings) == 0; ok != c.ok {
			t.Errorf("%s: linearizable %v, want %v: %+v %v", c.name, ok, c.ok, res.anomalies, res.info)
		}
	}
}

// TestChaosConflictRecheck re-runs the linearizability check on a
// history written by a chaos run (MAILSTORE_CHAOS_HISTORY=file.jsonl);
// without it, it is skipped.
func TestChaosConflictRecheck(t *testing.T) {
	path := os.Getenv("MAILSTORE_CHAOS_HISTORY")
	if path == "" {
		t.Skip("MAILSTORE_CHAOS_HISTORY names a chaos run's history to check again")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ops []chaosOp
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var op chaosOp
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	res := &chaosResult{}
	chaosCheckConflict(ops, t.TempDir(), 10*time.Minute, res)
	for _, i := range res.info {
		t.Log(i)
	}
	for _, a := range append(res.anomalies, res.warnings...) {
		t.Errorf("%s: %s", a.Kind, a.Text)
	}
}
