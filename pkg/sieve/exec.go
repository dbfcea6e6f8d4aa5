package sieve

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// errStop ends a run early; Execute treats it as success.
var errStop = errors.New("stop")

const inbox = "INBOX"

// run is the state of one Execute.
type run struct {
	script       *Script
	env          Envelope
	msg          Message
	flags        []string // the imap4flags internal variable
	implicitKeep bool
	actions      []Action
	index        map[string]int // mailbox -> position in actions
	body         *bodyData      // read on first use
}

type command interface {
	exec(ctx context.Context, r *run) error
}

type test interface {
	eval(ctx context.Context, r *run) (bool, error)
}

func (r *run) block(ctx context.Context, cmds []command) error {
	for _, c := range cmds {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.exec(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// deliver records a store into mailbox. Deliveries to the same mailbox
// merge into one (RFC 5228 2.10.3), with the union of their flags.
// Only the implicit keep may go past MaxActions: it is the fallback.
func (r *run) deliver(mailbox string, create bool, flags []string, implicit bool) error {
	if i, ok := r.index[mailbox]; ok {
		a := &r.actions[i]
		a.Create = a.Create || create
		a.Flags = addFlags(a.Flags, flags)
		return nil
	}
	if !implicit && len(r.actions) >= r.script.opts.MaxActions {
		return fmt.Errorf("%w: more than %d deliveries", ErrLimit, r.script.opts.MaxActions)
	}
	r.index[mailbox] = len(r.actions)
	r.actions = append(r.actions, Action{Mailbox: mailbox, Create: create, Flags: addFlags(nil, flags)})
	return nil
}

type branch struct {
	test  test
	block []command
}

type ifCmd struct {
	branches  []branch
	elseBlock []command
}

func (c *ifCmd) exec(ctx context.Context, r *run) error {
	for _, b := range c.branches {
		ok, err := b.test.eval(ctx, r)
		if err != nil {
			return err
		}
		if ok {
			return r.block(ctx, b.block)
		}
	}
	return r.block(ctx, c.elseBlock)
}

type stopCmd struct{}

func (stopCmd) exec(context.Context, *run) error { return errStop }

// discardCmd cancels the implicit keep; deliveries already made stay.
type discardCmd struct{}

func (discardCmd) exec(_ context.Context, r *run) error {
	r.implicitKeep = false
	return nil
}

// keepCmd stores into INBOX with its :flags, or else with the internal
// variable's current flags (RFC 5232 section 3). Like any delivery it
// cancels the implicit keep, which would have done the same.
type keepCmd struct {
	flags []string // nil without :flags
}

func (c keepCmd) exec(_ context.Context, r *run) error {
	flags := c.flags
	if flags == nil {
		flags = r.flags
	}
	r.implicitKeep = false
	return r.deliver(inbox, false, flags, false)
}

type fileintoCmd struct {
	mailbox string
	copy    bool     // RFC 3894: keep the implicit keep
	create  bool     // RFC 5490
	flags   []string // nil without :flags
}

func (c fileintoCmd) exec(_ context.Context, r *run) error {
	flags := c.flags
	if flags == nil {
		flags = r.flags
	}
	if !c.copy {
		r.implicitKeep = false
	}
	return r.deliver(c.mailbox, c.create, flags, false)
}

type flagOp int

const (
	flagSet flagOp = iota
	flagAdd
	flagRemove
)

type flagCmd struct {
	op    flagOp
	flags []string
}

func (c flagCmd) exec(_ context.Context, r *run) error {
	switch c.op {
	case flagSet:
		r.flags = addFlags(nil, c.flags)
	case flagAdd:
		r.flags = addFlags(r.flags, c.flags)
	case flagRemove:
		r.flags = removeFlags(r.flags, c.flags)
	}
	return nil
}

// addFlags returns a new slice: have plus the flags of add it lacks, in
// order. Flags compare case-insensitively, as IMAP keywords do.
func addFlags(have, add []string) []string {
	out := make([]string, 0, len(have)+len(add))
	seen := make(map[string]bool, len(have)+len(add))
	for _, list := range [][]string{have, add} {
		for _, f := range list {
			if k := strings.ToLower(f); !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
	}
	return out
}

func removeFlags(have, remove []string) []string {
	drop := make(map[string]bool, len(remove))
	for _, f := range remove {
		drop[strings.ToLower(f)] = true
	}
	out := make([]string, 0, len(have))
	for _, h := range have {
		if !drop[strings.ToLower(h)] {
			out = append(out, h)
		}
	}
	return out
}

type constTest bool

func (t constTest) eval(context.Context, *run) (bool, error) { return bool(t), nil }

type notTest struct{ t test }

func (t notTest) eval(ctx context.Context, r *run) (bool, error) {
	ok, err := t.t.eval(ctx, r)
	return !ok, err
}

// listTest is allof (all) or anyof, evaluated with short-circuit.
type listTest struct {
	all   bool
	tests []test
}

func (t listTest) eval(ctx context.Context, r *run) (bool, error) {
	for _, sub := range t.tests {
		ok, err := sub.eval(ctx, r)
		if err != nil {
			return false, err
		}
		if ok != t.all {
			return ok, nil
		}
	}
	return t.all, nil
}

type existsTest struct{ names []string }

func (t existsTest) eval(_ context.Context, r *run) (bool, error) {
	for _, n := range t.names {
		if len(r.msg.Header(n)) == 0 {
			return false, nil
		}
	}
	return true, nil
}

type sizeTest struct {
	over  bool
	limit int64
}

func (t sizeTest) eval(_ context.Context, r *run) (bool, error) {
	if t.over {
		return r.msg.Size() > t.limit, nil
	}
	return r.msg.Size() < t.limit, nil
}

type headerTest struct {
	names []string
	m     *matcher
}

func (t headerTest) eval(ctx context.Context, r *run) (bool, error) {
	for _, n := range t.names {
		ok, err := t.m.matchAny(ctx, r.msg.Header(n))
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

type addressTest struct {
	headers []string
	part    addrPart
	m       *matcher
}

func (t addressTest) eval(ctx context.Context, r *run) (bool, error) {
	for _, h := range t.headers {
		for _, v := range r.msg.Header(h) {
			for _, a := range extractAddresses(v) {
				p, ok := addressPart(a, t.part)
				if !ok {
					continue
				}
				if ok, err := t.m.match(ctx, p); ok || err != nil {
					return ok, err
				}
			}
		}
	}
	return false, nil
}

type envelopeTest struct {
	parts []string // "from" or "to", any case
	part  addrPart
	m     *matcher
}

func (t envelopeTest) eval(ctx context.Context, r *run) (bool, error) {
	for _, p := range t.parts {
		a := r.env.To
		if strings.EqualFold(p, "from") {
			a = r.env.From
		}
		a = envelopeAddress(a)
		v, ok := a, true
		// RFC 5228 5.4: the null reverse-path is the empty string whatever
		// the address part.
		if a != "" {
			v, ok = addressPart(a, t.part)
		}
		if !ok {
			continue
		}
		if ok, err := t.m.match(ctx, v); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// hasflagTest matches the flags of the internal variable (RFC 5232 4).
type hasflagTest struct{ m *matcher }

func (t hasflagTest) eval(ctx context.Context, r *run) (bool, error) {
	return t.m.matchAny(ctx, r.flags)
}
