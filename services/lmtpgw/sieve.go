package lmtpgw

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/sieve"
)

// target is one mailbox a recipient's copy goes to.
type target struct {
	mailbox mail.MailboxID
	name    string
	flags   []mail.Flag
}

// plan runs the account's Sieve script and resolves its actions to
// mailboxes. No targets means the script discarded the message. A script
// that does not compile or fails to run files into INBOX (RFC 5228
// section 2.10.6: an error means implicit keep). The error is for what
// may be transient (the metadata store).
func (g *Gateway) plan(ctx context.Context, acct meta.Account, env sieve.Envelope, msg sieve.Message) ([]target, error) {
	actions := []sieve.Action{{Mailbox: mail.Inbox}}
	if acct.SieveScript != "" {
		res, err := g.runSieve(ctx, acct, env, msg)
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("run sieve script: %w", ctx.Err())
		case err != nil:
			g.logger.Warn("sieve script failed: keeping in INBOX", "account", acct.ID, "err", err)
		case res.Discarded:
			g.logger.Info("discarded by sieve", "account", acct.ID)
			return nil, nil
		default:
			actions = res.Actions
		}
	}
	var out []target
	for _, a := range actions {
		t, err := g.resolve(ctx, acct.ID, a)
		if err != nil {
			return nil, err
		}
		// Two actions can land in the same mailbox (a fileinto that fell
		// back to INBOX, and keep): one copy with both flag sets.
		if i := slices.IndexFunc(out, func(o target) bool { return o.mailbox == t.mailbox }); i >= 0 {
			out[i].flags = unionFlags(out[i].flags, t.flags)
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func (g *Gateway) runSieve(ctx context.Context, acct meta.Account, env sieve.Envelope, msg sieve.Message) (sieve.Result, error) {
	script, err := g.scripts.get(acct.ID, acct.SieveScript)
	if err != nil {
		return sieve.Result{}, fmt.Errorf("compile sieve script: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.SieveDeadline)
	defer cancel()
	return script.Execute(ctx, env, msg)
}

// resolve maps an action to a mailbox: fileinto :create creates a missing
// mailbox and its missing parents (as IMAP CREATE does); a plain fileinto
// to a missing or unusable mailbox files into INBOX instead. Flags that
// cannot be stored are dropped.
func (g *Gateway) resolve(ctx context.Context, acct mail.AccountID, a sieve.Action) (target, error) {
	var flags []mail.Flag
	for _, f := range a.Flags {
		cf, err := mail.CanonicalFlag(f)
		if err != nil {
			g.logger.Info("sieve flag dropped", "account", acct, "err", err)
			continue
		}
		flags = unionFlags(flags, []mail.Flag{cf})
	}
	name, err := mail.CanonicalMailboxName(a.Mailbox)
	if err != nil {
		g.logger.Info("sieve fileinto: bad mailbox name, keeping in INBOX", "account", acct, "err", err)
		name = mail.Inbox
	}
	mb, err := g.deps.Meta.Mailbox(ctx, acct, name)
	if errors.Is(err, meta.ErrNoSuchMailbox) && name != mail.Inbox {
		if a.Create {
			mb, err = g.createMailbox(ctx, acct, name)
		}
		if err != nil && ingest.Refused(err) {
			g.logger.Info("sieve fileinto: no such mailbox, keeping in INBOX", "account", acct, "mailbox", name, "err", err)
			name = mail.Inbox
			mb, err = g.deps.Meta.Mailbox(ctx, acct, name)
		}
	}
	if err != nil {
		return target{}, fmt.Errorf("resolve mailbox %q: %w", name, err)
	}
	return target{mailbox: mb.ID, name: mb.Name, flags: flags}, nil
}

// createMailbox creates name and its missing parents; a mailbox created
// meanwhile by someone else is fine.
func (g *Gateway) createMailbox(ctx context.Context, acct mail.AccountID, name string) (meta.Mailbox, error) {
	levels := strings.Split(name, string(mail.Delimiter))
	for i := 1; i < len(levels); i++ {
		parent := strings.Join(levels[:i], string(mail.Delimiter))
		if _, err := g.deps.Meta.CreateMailbox(ctx, acct, parent, ""); err != nil && !errors.Is(err, meta.ErrExists) {
			return meta.Mailbox{}, fmt.Errorf("create parent %q: %w", parent, err)
		}
	}
	mb, err := g.deps.Meta.CreateMailbox(ctx, acct, name, "")
	if errors.Is(err, meta.ErrExists) {
		return g.deps.Meta.Mailbox(ctx, acct, name)
	}
	if err == nil {
		g.logger.Info("sieve fileinto :create", "account", acct, "mailbox", name)
	}
	return mb, err
}

func unionFlags(a, b []mail.Flag) []mail.Flag {
	for _, f := range b {
		if !slices.Contains(a, f) {
			a = append(a, f)
		}
	}
	slices.Sort(a)
	return a
}

// scriptCache keeps compiled scripts (and compile errors, so a broken
// script is not recompiled for every message) by account and script
// hash: an edited script gets a new entry, the old one ages out. It is
// bounded; when full it starts over, which costs only recompilation.
type scriptCache struct {
	mu  sync.Mutex
	max int
	m   map[scriptKey]compiled
}

type scriptKey struct {
	acct mail.AccountID
	sum  [sha256.Size]byte
}

type compiled struct {
	script *sieve.Script
	err    error
}

func newScriptCache(max int) *scriptCache {
	return &scriptCache{max: max, m: map[scriptKey]compiled{}}
}

func (c *scriptCache) get(acct mail.AccountID, src string) (*sieve.Script, error) {
	k := scriptKey{acct, sha256.Sum256([]byte(src))}
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return v.script, v.err
	}
	// Compiling outside the lock: two sessions may compile the same
	// script at once, which is harmless.
	v.script, v.err = sieve.Compile([]byte(src), sieve.Options{})
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v.script, v.err
}
