// Package sieve compiles and runs the Sieve mail filtering language
// (RFC 5228) for the LMTP delivery gateway, which files each delivered
// message per recipient according to the account's one active script.
//
// Supported: require, if/elsif/else, keep, discard, stop, fileinto with
// :copy (RFC 3894) and :create (RFC 5490 "mailbox"); the tests address,
// header, envelope, exists, size, allof, anyof, not, true, false; match
// types :is, :contains, :matches; comparators i;ascii-casemap and i;octet;
// address parts :all, :localpart, :domain, and :user, :detail (RFC 5233
// "subaddress"); imap4flags (RFC 5232: setflag, addflag, removeflag,
// hasflag, :flags on keep and fileinto); body (RFC 5173: :raw, :text,
// :content) over at most Options.MaxBodyBytes of the body.
//
// This service never sends mail, so redirect, vacation, reject, ereject and
// notify (enotify) are refused at compile time with ErrSendsMail, and the
// admin API can tell the user why. Everything else that is not listed is
// refused with ErrUnsupported (variables, relational, regex, date, ...).
//
// # Why not a library
//
// github.com/migadu/go-sieve (v1.1.2, the maintained fork of
// foxcpp/go-sieve) was read and rejected. Its command registry is
// unexported, so its behaviour cannot be fixed from outside, and it gets
// what this store needs most wrong: it keeps one flag set per run instead
// of the flags of each action (RFC 5232 section 3: each keep and fileinto
// takes the internal variable's value at that moment, and :flags applies to
// that action only, while go-sieve's fileinto :flags overwrites the
// variable), and it lowercases every flag, so "\Seen" and keywords lose
// their case. Its errors are an unexported type whose position is only in
// the message text, it limits redirects but not deliveries, it takes the
// body as one []byte, and it brings a forked go-message through a replace
// directive and a regexp engine we do not want. The RFC 5228 grammar is
// small, Sieve has no loops, and the subset above is a few hundred lines,
// so the package has its own lexer, parser and tree-walking interpreter,
// written to never panic on any input (see FuzzCompile).
//
// A compiled *Script is immutable and safe for concurrent use.
package sieve

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Defaults used where Options leaves a field at zero.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxActions   = 32
	DefaultMaxNesting   = 16
)

var (
	// ErrSendsMail marks a command or extension refused because it would
	// send mail (redirect, vacation, reject, ereject, notify).
	ErrSendsMail = errors.New("sieve: sending mail is not supported")
	// ErrUnsupported marks a command, test, tag, comparator or extension
	// this implementation does not have.
	ErrUnsupported = errors.New("sieve: not supported")
	// ErrLimit marks a limit exceeded, at compile time (nesting) or at run
	// time (actions).
	ErrLimit = errors.New("sieve: limit exceeded")
)

// SyntaxError is a compile error at a position in the script. Line and
// Column are 1-based; columns count characters. Err is nil for a plain
// syntax or semantic error, or one of ErrSendsMail, ErrUnsupported and
// ErrLimit, so that errors.Is tells them apart.
type SyntaxError struct {
	Line, Column int
	Msg          string
	Err          error
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// Options bound what a script may do. Zero fields take the defaults above.
type Options struct {
	// MaxBodyBytes is how much of the message body the body test reads.
	MaxBodyBytes int64
	// MaxActions bounds the distinct deliveries (keep, fileinto) of a run;
	// exceeding it is a run-time error.
	MaxActions int
	// MaxNesting bounds the nesting of blocks and of tests.
	MaxNesting int
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxActions <= 0 {
		o.MaxActions = DefaultMaxActions
	}
	if o.MaxNesting <= 0 {
		o.MaxNesting = DefaultMaxNesting
	}
	return o
}

// Envelope is the SMTP envelope of the delivery.
type Envelope struct {
	From string // MAIL FROM, "" for the null reverse path
	To   string // the RCPT TO address as given, possibly with +detail
}

// Message is the message being delivered.
type Message interface {
	// Header returns the values of the named header field in order,
	// unfolded and decoded per RFC 2047; nil when absent.
	Header(name string) []string
	// Size is the message size in octets.
	Size() int64
	// Body returns the raw message from its start (header included). The
	// body test reads at most Options.MaxBodyBytes of the body from it.
	Body() (io.Reader, error)
}

// Action is one place to store the message.
type Action struct {
	Mailbox string   // canonical name, "INBOX" for keep
	Create  bool     // create the mailbox if missing (fileinto :create)
	Flags   []string // flags to set on the stored message
}

// Result is the outcome of a run. Actions are deduplicated by mailbox
// (RFC 5228 section 2.10.3). Actions is empty only when Discarded is set.
type Result struct {
	Actions   []Action
	Discarded bool
}

// Script is a compiled Sieve script.
type Script struct {
	cmds []command
	opts Options
}

// Compile parses and checks a script. Syntax and semantic errors are
// *SyntaxError; refused and unsupported features wrap ErrSendsMail and
// ErrUnsupported. The caller bounds the script size.
func Compile(src []byte, opts Options) (*Script, error) {
	opts = opts.withDefaults()
	if err := checkUTF8(src); err != nil {
		return nil, err
	}
	nodes, err := parse(src, opts.MaxNesting)
	if err != nil {
		return nil, err
	}
	c := &compiler{caps: map[string]bool{}}
	cmds, err := c.block(nodes, true)
	if err != nil {
		return nil, err
	}
	return &Script{cmds: cmds, opts: opts}, nil
}

// Execute runs the script against one message for one recipient. An error
// (a limit exceeded, the body unreadable, ctx done) means the script could
// not decide; the caller should keep the message in INBOX. Sieve has no
// loops, but :matches over a large body costs up to body size times key
// length, so give ctx a deadline: the matcher checks it as it goes.
func (s *Script) Execute(ctx context.Context, env Envelope, msg Message) (Result, error) {
	r := &run{
		script:       s,
		env:          env,
		msg:          msg,
		implicitKeep: true,
		index:        map[string]int{},
	}
	if err := r.block(ctx, s.cmds); err != nil && !errors.Is(err, errStop) {
		return Result{}, fmt.Errorf("run sieve script: %w", err)
	}
	if r.implicitKeep {
		_ = r.deliver(inbox, false, r.flags, true) // the implicit keep is never refused
	}
	for i := range r.actions {
		if len(r.actions[i].Flags) == 0 {
			r.actions[i].Flags = nil
		}
	}
	return Result{Actions: r.actions, Discarded: len(r.actions) == 0}, nil
}
