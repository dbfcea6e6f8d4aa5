package lmtpgw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/sieve"
)

// maxHeaderBytes bounds the header kept for Sieve and the Message-ID; the
// MIME parse of ingest has its own bound.
const maxHeaderBytes = 256 << 10

// transaction is the envelope of one delivery.
type transaction struct {
	id       string
	from     string
	helo     string
	remoteIP string
	proto    string
	utf8     bool
	rcpts    []recipient
}

// message is a received body, spooled once and read again by Sieve and
// by ingest.
type message struct {
	spool  *ingest.Spool
	size   int64
	sum    [sha256.Size]byte // of the body as received
	header []byte            // the header block, up to maxHeaderBytes
	lf     bool              // the header uses bare LF line ends
}

// receive spools the body while hashing it and keeping its header.
func (g *Gateway) receive(r io.Reader) (*message, error) {
	sp := g.deps.Ingest.NewSpool()
	h := sha256.New()
	hc := &headerCapture{max: maxHeaderBytes}
	if _, err := io.Copy(io.MultiWriter(sp, h, hc), r); err != nil {
		sp.Close()
		return nil, err
	}
	m := &message{spool: sp, size: sp.Size(), header: hc.header()}
	h.Sum(m.sum[:0])
	if i := bytes.IndexByte(m.header, '\n'); i >= 0 {
		m.lf = i == 0 || m.header[i-1] != '\r'
	}
	return m, nil
}

// receiveError is the reply to every recipient when the body could not
// be received.
func (g *Gateway) receiveError(id string, err error) error {
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		return errTooLarge
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLongLine
	}
	// The client went away, reset the transfer, or the spool failed:
	// nothing was stored.
	g.logger.Info("message not received", "session", id, "err", err)
	return errTemp
}

// plan is what one recipient gets.
type plan struct {
	targets []target
	err     error // the reply when nothing is stored
	// duplicate: every target was stored by an earlier attempt.
	duplicate bool
}

// deliver receives the body and stores it for every recipient, setting
// each recipient's reply in status.
func (g *Gateway) deliver(ctx context.Context, tx *transaction, r io.Reader, status smtp.StatusCollector) error {
	msg, err := g.receive(r)
	if err != nil {
		return g.receiveError(tx.id, err)
	}
	defer msg.spool.Close()

	sm := sieve.MessageFromHeader(msg.header, msg.size, func() (io.Reader, error) { return msg.spool.Reader(), nil })
	key := dedupHash(sm, msg.sum)
	now := g.now()

	// Decide each recipient's targets (Sieve), and drop those already
	// stored by an earlier attempt of the same transaction.
	plans := make([]plan, len(tx.rcpts))
	var targets []ingest.Target
	var owner []int // recipient of each target
	var tgts []target
	for i, rc := range tx.rcpts {
		env := sieve.Envelope{From: tx.from, To: rc.given}
		ts, err := g.plan(ctx, rc.account, env, sm)
		if err != nil {
			g.logger.Warn("plan delivery", "session", tx.id, "rcpt", rc.addr, "account", rc.account.ID, "err", err)
			plans[i].err = errTemp
			continue
		}
		planned := len(ts)
		ts, err = g.notYetDelivered(ctx, rc.account.ID, key, ts)
		plans[i].duplicate = planned > 0 && len(ts) == 0
		if err != nil {
			g.logger.Warn("check delivery marker", "session", tx.id, "rcpt", rc.addr, "account", rc.account.ID, "err", err)
			plans[i].err = errTemp
			continue
		}
		prefix := g.prefix(tx, rc.given, msg.lf, now)
		for _, t := range ts {
			targets = append(targets, ingest.Target{
				Account: rc.account.ID, Mailbox: t.mailbox, MailboxName: t.name, Flags: t.flags, Prefix: prefix,
			})
			owner = append(owner, i)
			tgts = append(tgts, t)
		}
		plans[i].targets = ts
	}

	results := make([]ingest.TargetResult, len(targets))
	if len(targets) > 0 {
		res, err := g.deps.Ingest.IngestMany(ctx, ingest.Delivery{Targets: targets, Size: msg.size, Body: msg.spool.Reader()})
		if err != nil {
			for i := range results {
				results[i].Err = err
			}
		} else {
			results = res
		}
	}

	// A recipient's reply is the worst of its targets'.
	failed := make([]error, len(tx.rcpts))
	for j, res := range results {
		i := owner[j]
		if res.Err == nil {
			g.markDelivered(ctx, targets[j].Account, key, tgts[j].mailbox)
			continue
		}
		g.logger.Warn("store message", "session", tx.id, "rcpt", tx.rcpts[i].addr, "account", targets[j].Account, "mailbox", targets[j].MailboxName, "err", res.Err)
		failed[i] = worse(failed[i], g.storeError(res.Err))
	}
	for i, rc := range tx.rcpts {
		reply := delivered
		switch {
		case plans[i].err != nil:
			reply = plans[i].err.(*smtp.SMTPError)
		case failed[i] != nil:
			reply = failed[i].(*smtp.SMTPError)
		}
		if reply == delivered {
			g.logger.Info("delivered", "session", tx.id, "rcpt", rc.addr, "account", rc.account.ID, "copies", len(plans[i].targets), "size", msg.size)
		}
		g.deps.Metrics.Delivery(outcome(reply, plans[i]))
		status.SetStatus(rc.addr, reply)
	}
	return nil
}

// outcome names a recipient's delivery outcome for the metrics.
func outcome(reply *smtp.SMTPError, p plan) string {
	switch {
	case reply == delivered && p.duplicate:
		return "duplicate"
	case reply == delivered && len(p.targets) == 0:
		return "discarded"
	case reply == delivered:
		return "stored"
	case reply == errTooLarge:
		return "too_large"
	case reply.EnhancedCode == smtp.EnhancedCode{5, 2, 2} || reply.EnhancedCode == smtp.EnhancedCode{4, 2, 2}:
		return "over_quota"
	case reply.Temporary():
		return "temp_failure"
	}
	return "refused"
}

// storeError maps an ingest failure to a reply.
func (g *Gateway) storeError(err error) error {
	switch {
	case errors.Is(err, meta.ErrOverQuota):
		return g.quotaError()
	case errors.Is(err, blob.ErrTooLarge):
		return errTooLarge
	}
	// The metadata or blob service is unavailable, a deadline passed, a
	// mailbox vanished between Sieve and the commit: retry.
	return errTemp
}

// worse picks the reply that loses least: a temporary failure (the MTA
// retries; copies already committed are skipped by their markers) over a
// permanent one.
func worse(a, b error) error {
	if a == nil {
		return b
	}
	if b.(*smtp.SMTPError).Temporary() && !a.(*smtp.SMTPError).Temporary() {
		return b
	}
	return a
}

// prefix returns the header fields added before the message for one
// recipient: Return-Path (RFC 5321 section 4.4), Delivered-To (the
// recipient as given, as Postfix and Dovecot write it) and Received
// (RFC 5321 section 4.4), with the message's own line ends.
func (g *Gateway) prefix(tx *transaction, rcpt string, lf bool, now time.Time) []byte {
	eol := "\r\n"
	if lf {
		eol = "\n"
	}
	from := headerSafe(tx.helo) + " (local)" // a Unix socket
	if tx.remoteIP != "" {
		from = headerSafe(tx.helo) + " ([" + tx.remoteIP + "])"
	}
	with := tx.proto
	if tx.utf8 {
		with = "UTF8" + with // RFC 6531 section 4.3
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <%s>%s", headerSafe(tx.from), eol)
	fmt.Fprintf(&b, "Delivered-To: %s%s", headerSafe(rcpt), eol)
	fmt.Fprintf(&b, "Received: from %s%s\tby %s with %s id %s%s\tfor <%s>; %s%s",
		from, eol, g.cfg.Hostname, with, tx.id, eol, headerSafe(rcpt), now.Format(time.RFC1123Z), eol)
	return []byte(b.String())
}

// headerSafe keeps client-supplied text (the LHLO name, addresses) from
// breaking the header: control characters become '?'.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// headerCapture keeps the header block of a message written through it:
// up to and including the blank line that ends it, at most max bytes.
type headerCapture struct {
	max  int
	buf  []byte
	done bool
}

func (h *headerCapture) Write(p []byte) (int, error) {
	if h.done {
		return len(p), nil
	}
	start := max(len(h.buf)-2, 0)
	h.buf = append(h.buf, p[:min(len(p), h.max-len(h.buf))]...)
	if end := headerEnd(h.buf, start); end >= 0 {
		h.buf, h.done = h.buf[:end], true
	} else if len(h.buf) >= h.max {
		h.done = true
	}
	return len(p), nil
}

func (h *headerCapture) header() []byte { return h.buf }

// headerEnd returns the offset just past the blank line ending the header
// in b, looking from start, or -1.
func headerEnd(b []byte, start int) int {
	if start == 0 {
		// An empty header: the message starts with the blank line.
		if bytes.HasPrefix(b, []byte("\n")) {
			return 1
		}
		if bytes.HasPrefix(b, []byte("\r\n")) {
			return 2
		}
	}
	for i := start; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return -1
}
