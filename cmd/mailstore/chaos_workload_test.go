package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
)

// The chaos workload. Every worker is one client session (reconnecting
// when cut) with its own seeded RNG. IMAP workers only change messages
// they appended themselves (tracked as instances: one message in one
// mailbox, identified by a token written into the message), so that
// every instance has one sequential history and the expected end state
// follows from the outcomes alone; they share the mailboxes, so UID and
// MODSEQ allocation, counters, quota and events are contended. LMTP
// deliveries land in INBOX and only POP3 sessions delete them.

// Outcomes of an operation.
const (
	outcomeOK      = "ok"
	outcomeFailed  = "failed"  // a clear refusal: NO, 4xx/5xx, -ERR
	outcomeUnknown = "unknown" // the connection broke or timed out
)

// chaosOp is one operation in the history.
type chaosOp struct {
	ID      int       `json:"id"`
	Worker  string    `json:"worker"`
	Kind    string    `json:"kind"` // lmtp, append, store, copy, move, expunge, pop3, idle, login, select, fstore, fread
	Acct    string    `json:"acct"`
	Gateway string    `json:"gw,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Outcome string    `json:"outcome"`
	// Temp marks a refusal that says "try again" (NO [UNAVAILABLE], 451,
	// -ERR [SYS/TEMP]): the server may have applied it anyway.
	Temp  bool   `json:"temp,omitempty"`
	Reply string `json:"reply,omitempty"`

	Token   string `json:"token,omitempty"`
	Inst    int    `json:"inst,omitempty"`     // the instance the op works on (or creates, for append)
	NewInst int    `json:"new_inst,omitempty"` // the instance a copy creates
	Mbox    string `json:"mbox,omitempty"`
	UID     uint32 `json:"uid,omitempty"`
	Dst     string `json:"dst,omitempty"`
	DstUID  uint32 `json:"dst_uid,omitempty"`
	// UIDValidity is the one APPENDUID or COPYUID named (of Mbox for an
	// append, of Dst for a copy or move).
	UIDValidity uint32   `json:"uidvalidity,omitempty"`
	Flags       []string `json:"flags,omitempty"` // append: initial flags; store: the flag changed
	FlagAdd     bool     `json:"flag_add,omitempty"`
	// Unchanged is the UNCHANGEDSINCE of a STORE (0: none); Modified is
	// set when the server answered [MODIFIED] (the STORE did nothing).
	Unchanged uint64 `json:"unchanged,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	// FlagMode is a conflict STORE's "+", "-" or "" (FLAGS, replace);
	// ResFlags and ResModSeq are the message's flags and MODSEQ as the
	// answer of a conflict STORE or FETCH gave them
	// (chaos_conflict_test.go).
	FlagMode  string   `json:"flag_mode,omitempty"`
	ResFlags  []string `json:"res_flags,omitempty"`
	ResModSeq uint64   `json:"res_modseq,omitempty"`
	// Noop: an OK COPY/MOVE without COPYUID, which copied nothing.
	Noop bool `json:"noop,omitempty"`

	// POP3 sessions: the tokens marked with DELE and the moments that
	// bound the session's certain hold of the maildrop lock.
	Dele    []string  `json:"dele,omitempty"`
	Retr    int       `json:"retr,omitempty"`
	PassOK  time.Time `json:"pass_ok,omitzero"`
	QuitAt  time.Time `json:"quit_at,omitzero"`
	Deleted int       `json:"deleted,omitempty"` // as the QUIT answer says
	Keep    bool      `json:"keep,omitempty"`    // a leave-on-server session
}

// chaosHistory collects operations from every worker.
type chaosHistory struct {
	mu  sync.Mutex
	ops []chaosOp
	ids atomic.Int64
}

// begin starts an operation.
func (h *chaosHistory) begin(worker, kind, acct string) chaosOp {
	return chaosOp{ID: int(h.ids.Add(1)), Worker: worker, Kind: kind, Acct: acct, Start: time.Now()}
}

// end records a finished operation.
func (h *chaosHistory) end(op chaosOp) chaosOp {
	op.End = time.Now()
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
	return op
}

func (h *chaosHistory) all() []chaosOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.ops)
	slices.SortFunc(out, func(a, b chaosOp) int { return a.ID - b.ID })
	return out
}

// chaosWorld is what the workers share.
type chaosWorld struct {
	st       *chaosStack
	hist     *chaosHistory
	seed     uint64
	accounts []string // logins; accounts[0] is the hot one
	password string
	insts    atomic.Int64
	anomMu   sync.Mutex
	anoms    []chaosAnomaly // seen by workers while running
	uidls    sync.Map       // acct + " " + uidl -> token ("" if none)
	versions chaosVersions  // what the watchers were told of each message version
}

func (w *chaosWorld) anomaly(kind, format string, args ...any) {
	w.anomMu.Lock()
	defer w.anomMu.Unlock()
	w.anoms = append(w.anoms, chaosAnomaly{Kind: kind, Text: fmt.Sprintf(format, args...)})
}

func (w *chaosWorld) rng(worker int) *rand.Rand {
	return rand.New(rand.NewPCG(w.seed, uint64(1000+worker)))
}

// pause waits d or until ctx ends; it reports whether to go on.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func jitter(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond
}

// chaosMessage is a message carrying token in a header and in the body.
func chaosMessage(rng *rand.Rand, token, to string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: chaos@example.org\r\nTo: %s\r\nSubject: chaos %s\r\nMessage-ID: <%s@chaos.test>\r\nX-Chaos-Token: %s\r\nDate: %s\r\n\r\n",
		to, token, token, token, time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "token %s\r\n", token)
	for range rng.IntN(20) {
		b.WriteString(strings.Repeat("chaos filler ", 5+rng.IntN(5)) + "\r\n")
	}
	return b.String()
}

var chaosTokenRe = regexp.MustCompile(`X-Chaos-Token: (tok-[A-Za-z0-9-]+)`)

// classify turns an error into an outcome.
func classify(err error) string {
	if errors.Is(err, errChaosBroken) {
		return outcomeUnknown
	}
	return outcomeFailed
}

// ---------------------------------------------------------------- IMAP

// chaosInst is an IMAP worker's view of one of its messages.
type chaosInst struct {
	id    int
	token string
	mbox  string
	uid   uint32
	at    int // the worker's clock when it got to mbox/uid
}

var chaosMailboxes = []string{mail.Inbox, "Archive"}

// imapWorker appends, flags, copies, moves and expunges its own messages.
func (w *chaosWorld) imapWorker(ctx context.Context, n int, acct string) {
	rng := w.rng(n)
	name := "imap-" + strconv.Itoa(n)
	var (
		c          *chaosIMAP
		gw         string
		owned      []*chaosInst
		clock      int
		selectedAt int
		seq        int
	)
	drop := func() {
		if c != nil {
			c.close()
			c = nil
		}
	}
	defer drop()
	remove := func(in *chaosInst) {
		owned = slices.DeleteFunc(owned, func(x *chaosInst) bool { return x == in })
	}
	// finish records op from a reply or error; it returns the reply and
	// whether the command got an OK.
	finish := func(op chaosOp, r imapReply, err error) (chaosOp, bool) {
		op.Gateway = gw
		switch {
		case err != nil:
			op.Outcome, op.Reply = classify(err), err.Error()
			drop()
		case r.status == "OK":
			op.Outcome, op.Reply = outcomeOK, r.String()
		default:
			op.Outcome, op.Reply, op.Temp = outcomeFailed, r.String(), r.temp()
		}
		return w.hist.end(op), op.Outcome == outcomeOK
	}
	// ensure selects mbox so that the session's view holds every message
	// that got there before now.
	ensure := func(mbox string, at int) bool {
		if c.selected == mbox && selectedAt > at {
			return true
		}
		op := w.hist.begin(name, "select", acct)
		op.Mbox = mbox
		r, err := c.selectBox(mbox)
		_, ok := finish(op, r, err)
		clock++
		selectedAt = clock
		return ok
	}
	for pause(ctx, jitter(rng, 20, 120)) {
		if c == nil {
			gw = w.st.imapAddrs[rng.IntN(len(w.st.imapAddrs))]
			op := w.hist.begin(name, "login", acct)
			var err error
			c, err = chaosDialIMAP(gw, acct, w.password)
			if err != nil {
				c = nil
				op.Gateway, op.Outcome, op.Reply = gw, classify(err), err.Error()
				w.hist.end(op)
				pause(ctx, jitter(rng, 100, 500))
				continue
			}
			op.Gateway, op.Outcome = gw, outcomeOK
			w.hist.end(op)
		}
		clock++
		r := rng.IntN(100)
		if len(owned) > 25 {
			r = 90 + rng.IntN(10)
		}
		if len(owned) == 0 || r < 30 {
			seq++
			mbox := chaosMailboxes[rng.IntN(2)]
			token := fmt.Sprintf("tok-A%d-%d", n, seq)
			var flags []string
			for _, f := range []string{`\Seen`, `\Flagged`} {
				if rng.IntN(3) == 0 {
					flags = append(flags, f)
				}
			}
			msg := chaosMessage(rng, token, acct)
			op := w.hist.begin(name, "append", acct)
			op.Token, op.Mbox, op.Flags, op.Inst = token, mbox, flags, int(w.insts.Add(1))
			rep, err := c.cmd("APPEND %s (%s) {%d+}\r\n%s", mbox, strings.Join(flags, " "), len(msg), msg)
			if err == nil && rep.status == "OK" {
				if m := appendUIDRe.FindStringSubmatch(rep.text); m != nil {
					u, _ := strconv.ParseUint(m[2], 10, 32)
					v, _ := strconv.ParseUint(m[1], 10, 32)
					op.UID, op.UIDValidity = uint32(u), uint32(v)
				}
			}
			op, ok := finish(op, rep, err)
			if ok && op.UID != 0 {
				owned = append(owned, &chaosInst{id: op.Inst, token: token, mbox: mbox, uid: op.UID, at: clock})
			}
			continue
		}
		in := owned[rng.IntN(len(owned))]
		if !ensure(in.mbox, in.at) || c == nil {
			continue
		}
		switch {
		case r < 55: // STORE
			f := []string{`\Seen`, `\Flagged`, `$Chaos`}[rng.IntN(3)]
			add := rng.IntN(2) == 0
			sign := map[bool]string{true: "+", false: "-"}[add]
			op := w.hist.begin(name, "store", acct)
			op.Token, op.Inst, op.Mbox, op.UID, op.Flags, op.FlagAdd = in.token, in.id, in.mbox, in.uid, []string{f}, add
			mod := ""
			if rng.IntN(3) == 0 {
				op.Unchanged = []uint64{1, 1 << 40}[rng.IntN(2)]
				mod = fmt.Sprintf(" (UNCHANGEDSINCE %d)", op.Unchanged)
			}
			rep, err := c.cmd("UID STORE %d%s %sFLAGS (%s)", in.uid, mod, sign, f)
			op.Modified = err == nil && modifiedRe.MatchString(rep.text)
			finish(op, rep, err)
		case r < 65, r < 80: // COPY or MOVE
			kind := "copy"
			dst := chaosMailboxes[rng.IntN(2)]
			if r >= 65 {
				kind = "move"
				dst = chaosMailboxes[0]
				if in.mbox == dst {
					dst = chaosMailboxes[1]
				}
			}
			op := w.hist.begin(name, kind, acct)
			op.Token, op.Inst, op.Mbox, op.UID, op.Dst = in.token, in.id, in.mbox, in.uid, dst
			if kind == "copy" {
				op.NewInst = int(w.insts.Add(1))
			}
			rep, err := c.cmd("UID %s %d %s", strings.ToUpper(kind), in.uid, dst)
			if err == nil && rep.status == "OK" {
				var m []string
				for _, l := range append(slices.Clone(rep.untagged), rep.text) {
					if m = copyUIDRe.FindStringSubmatch(l); m != nil {
						break
					}
				}
				if m == nil {
					op.Noop = true
				} else if u, perr := strconv.ParseUint(m[3], 10, 32); perr == nil {
					v, _ := strconv.ParseUint(m[1], 10, 32)
					op.DstUID, op.UIDValidity = uint32(u), uint32(v)
				}
			}
			op, ok := finish(op, rep, err)
			switch {
			case ok && op.Noop:
				w.anomaly("imap-noop", "%s: %s of UID %d (%s) in %s answered OK without COPYUID though the session selected the mailbox after the message got there: %s",
					name, kind, in.uid, in.token, in.mbox, op.Reply)
			case ok && kind == "copy" && op.DstUID != 0:
				owned = append(owned, &chaosInst{id: op.NewInst, token: in.token, mbox: dst, uid: op.DstUID, at: clock})
			case ok && kind == "move":
				in.mbox, in.uid, in.at = dst, op.DstUID, clock
				if in.uid == 0 {
					remove(in)
				}
			case op.Outcome != outcomeOK && kind == "move" && (op.Temp || op.Outcome == outcomeUnknown):
				remove(in) // where it is now is not known
			}
		default: // EXPUNGE: \Deleted, then UID EXPUNGE of that UID only
			op := w.hist.begin(name, "store", acct)
			op.Token, op.Inst, op.Mbox, op.UID, op.Flags, op.FlagAdd = in.token, in.id, in.mbox, in.uid, []string{`\Deleted`}, true
			rep, err := c.cmd(`UID STORE %d +FLAGS.SILENT (\Deleted)`, in.uid)
			if _, ok := finish(op, rep, err); !ok {
				continue
			}
			op = w.hist.begin(name, "expunge", acct)
			op.Token, op.Inst, op.Mbox, op.UID = in.token, in.id, in.mbox, in.uid
			rep, err = c.cmd("UID EXPUNGE %d", in.uid)
			op, ok := finish(op, rep, err)
			if ok || op.Temp || op.Outcome == outcomeUnknown {
				remove(in)
			}
		}
	}
}

// idleWorker keeps an IDLE session on INBOX, reconnecting when cut.
func (w *chaosWorld) idleWorker(ctx context.Context, n int, acct string) {
	rng := w.rng(n)
	name := "idle-" + strconv.Itoa(n)
	for ctx.Err() == nil {
		gw := w.st.imapAddrs[rng.IntN(len(w.st.imapAddrs))]
		op := w.hist.begin(name, "idle", acct)
		op.Gateway = gw
		c, err := chaosDialIMAP(gw, acct, w.password)
		if err == nil {
			var r imapReply
			if r, err = c.selectBox(mail.Inbox); err == nil && r.status != "OK" {
				err = fmt.Errorf("SELECT: %s", r)
			}
		}
		exists := 0
		if err == nil {
			err = func() error {
				c.n++
				tag := "x" + strconv.Itoa(c.n)
				c.deadline(chaosOpTimeout)
				if err := c.write(tag + " IDLE\r\n"); err != nil {
					return err
				}
				if l, err := c.line(); err != nil {
					return err
				} else if !strings.HasPrefix(l, "+") {
					return fmt.Errorf("IDLE: %q", l)
				}
				until := time.Now().Add(jitter(rng, 5000, 15000))
				for ctx.Err() == nil && time.Now().Before(until) {
					c.deadline(time.Second)
					l, err := c.line()
					if err != nil {
						if errors.Is(err, errChaosBroken) && strings.Contains(err.Error(), "timeout") {
							continue
						}
						return err
					}
					if strings.HasSuffix(l, " EXISTS") {
						exists++
					}
					if strings.HasPrefix(l, "* BYE") {
						return fmt.Errorf("%s: %w", l, errChaosBroken)
					}
				}
				c.deadline(chaosOpTimeout)
				if err := c.write("DONE\r\n"); err != nil {
					return err
				}
				r, err := c.readTagged(tag)
				if err == nil && r.status != "OK" {
					return fmt.Errorf("IDLE: %s", r)
				}
				return err
			}()
		}
		if c != nil {
			_, _ = c.cmd("LOGOUT")
			c.close()
		}
		op.Reply = fmt.Sprintf("%d EXISTS seen", exists)
		if err != nil {
			op.Outcome, op.Reply = classify(err), op.Reply+"; "+err.Error()
		} else {
			op.Outcome = outcomeOK
		}
		w.hist.end(op)
		pause(ctx, jitter(rng, 100, 500))
	}
}

// ---------------------------------------------------------------- LMTP

// lmtpWorker delivers messages with a unique token each, to one or two
// recipients, retrying like an MTA the recipients that got a temporary
// failure or no answer (the same message, so the gateway's retry dedup
// applies).
func (w *chaosWorld) lmtpWorker(ctx context.Context, n int) {
	rng := w.rng(n)
	name := "lmtp-" + strconv.Itoa(n)
	for seq := 1; pause(ctx, jitter(rng, 100, 400)); seq++ {
		token := fmt.Sprintf("tok-L%d-%d", n, seq)
		rcpts := []string{w.pickAccount(rng)}
		if rng.IntN(4) == 0 {
			if other := w.pickAccount(rng); other != rcpts[0] {
				rcpts = append(rcpts, other)
			}
		}
		msg := chaosMessage(rng, token, strings.Join(rcpts, ", "))
		for attempt := 0; attempt < 4 && len(rcpts) > 0; attempt++ {
			if attempt > 0 && !pause(ctx, jitter(rng, 300, 1500)) {
				break
			}
			gw := w.st.lmtpAddrs[rng.IntN(len(w.st.lmtpAddrs))]
			start := time.Now()
			var res []lmtpRcptResult
			c, err := chaosDialLMTP(gw)
			if err != nil {
				res = make([]lmtpRcptResult, len(rcpts))
				for i := range res {
					// Nothing was sent: a refused or broken connect
					// stores nothing.
					res[i] = lmtpRcptResult{line: err.Error(), rcpt: true}
				}
			} else {
				res = c.deliver("sender@example.org", msg, rcpts)
				_, _, _ = c.cmd("QUIT")
				c.close()
			}
			var retry []string
			for i, r := range res {
				op := w.hist.begin(name, "lmtp", rcpts[i])
				op.Start, op.Token, op.Gateway, op.Reply, op.Mbox = start, token, gw, r.line, mail.Inbox
				switch {
				case r.code == 250:
					op.Outcome = outcomeOK
				case r.err != nil:
					op.Outcome = outcomeUnknown
					retry = append(retry, rcpts[i])
				case r.rcpt:
					// Refused before DATA: nothing can have been stored.
					op.Outcome = outcomeFailed
					if r.code < 500 {
						retry = append(retry, rcpts[i])
					}
				default:
					op.Outcome, op.Temp = outcomeFailed, r.code < 500
					if op.Temp {
						retry = append(retry, rcpts[i])
					}
				}
				w.hist.end(op)
			}
			rcpts = retry
		}
	}
}

func (w *chaosWorld) pickAccount(rng *rand.Rand) string {
	if rng.IntN(10) < 6 {
		return w.accounts[0]
	}
	return w.accounts[rng.IntN(len(w.accounts))]
}

// ---------------------------------------------------------------- POP3

// pop3Worker downloads and deletes LMTP-delivered messages (it leaves the
// IMAP workers' messages alone); one session in three is a
// leave-on-server client's, which downloads and deletes nothing, and
// relies on UIDL naming the same message from session to session.
func (w *chaosWorld) pop3Worker(ctx context.Context, n int, acct string) {
	rng := w.rng(n)
	name := "pop3-" + strconv.Itoa(n)
	for pause(ctx, jitter(rng, 300, 1500)) {
		gw := w.st.popAddrs[rng.IntN(len(w.st.popAddrs))]
		op := w.hist.begin(name, "pop3", acct)
		op.Gateway = gw
		w.hist.end(w.pop3Session(rng, op, acct, gw))
	}
}

func (w *chaosWorld) pop3Session(rng *rand.Rand, op chaosOp, acct, gw string) chaosOp {
	p, err := chaosDialPOP3(gw)
	if err != nil {
		op.Outcome, op.Reply = outcomeFailed, "before QUIT, nothing changes: "+err.Error()
		return op
	}
	defer p.close()
	// Until QUIT is sent, a session that ends changes nothing (RFC 1939),
	// whatever happened to the connection.
	abort := func(what string, err error) chaosOp {
		op.Outcome, op.Reply = outcomeFailed, "before QUIT, nothing changes: "+what
		if err != nil {
			op.Reply += ": " + err.Error()
		}
		return op
	}
	if l, err := p.cmd("USER %s", acct); err != nil || !strings.HasPrefix(l, "+OK") {
		return abort("USER "+l, err)
	}
	l, err := p.cmd("PASS %s", w.password)
	if err != nil || !strings.HasPrefix(l, "+OK") {
		return abort("PASS "+l, err)
	}
	op.PassOK = time.Now()
	if l, err := p.cmd("UIDL"); err != nil || !strings.HasPrefix(l, "+OK") {
		return abort("UIDL "+l, err)
	}
	lines, err := p.multi()
	if err != nil {
		return abort("UIDL", err)
	}
	budget := 15
	op.Keep = rng.IntN(3) == 0
	for _, ln := range lines {
		num, uidl, ok := strings.Cut(ln, " ")
		if !ok || budget == 0 {
			continue
		}
		key := acct + " " + uidl
		v, known := w.uidls.Load(key)
		if !known {
			if l, err := p.cmd("TOP %s 0", num); err != nil {
				return abort("TOP", err)
			} else if !strings.HasPrefix(l, "+OK") {
				continue // e.g. a temporary failure: look again next time
			}
			hdr, err := p.multi()
			if err != nil {
				return abort("TOP", err)
			}
			tok := ""
			if m := chaosTokenRe.FindStringSubmatch(strings.Join(hdr, "\n")); m != nil {
				tok = m[1]
			}
			w.uidls.Store(key, tok)
			v = tok
		}
		tok := v.(string)
		if !strings.HasPrefix(tok, "tok-L") {
			continue
		}
		budget--
		if l, err := p.cmd("RETR %s", num); err != nil {
			return abort("RETR", err)
		} else if !strings.HasPrefix(l, "+OK") {
			continue
		}
		body, err := p.multi()
		if err != nil {
			return abort("RETR", err)
		}
		op.Retr++
		if !slices.Contains(body, "token "+tok) {
			w.anomaly("pop3-retr-body", "%s: RETR %s (UIDL %s, token %s) lacks its token line", op.Worker, num, uidl, tok)
		}
		if op.Keep || rng.IntN(10) == 0 {
			continue // leave it this time
		}
		if l, err := p.cmd("DELE %s", num); err != nil {
			return abort("DELE", err)
		} else if strings.HasPrefix(l, "+OK") {
			op.Dele = append(op.Dele, tok)
		}
	}
	op.QuitAt = time.Now()
	l, err = p.cmd("QUIT")
	switch {
	case err != nil:
		op.Outcome, op.Reply = outcomeUnknown, "QUIT: "+err.Error()
	case strings.HasPrefix(l, "+OK"):
		op.Outcome, op.Reply = outcomeOK, l
		if i := strings.Index(l, "("); i >= 0 {
			fmt.Sscanf(l[i:], "(%d messages deleted)", &op.Deleted)
		}
	default:
		op.Outcome, op.Reply, op.Temp = outcomeFailed, l, strings.Contains(l, "[SYS/TEMP]")
	}
	return op
}
