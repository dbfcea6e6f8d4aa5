// Package ingest is the one path by which a message enters the store, for
// IMAP APPEND and LMTP delivery alike. It keeps the write order that makes
// an acknowledged message impossible to lose: the body streams to the blob
// store (parsed on the way by pkg/mime, never held whole in memory), the
// entry is committed to the metadata store only after the blob store has
// acknowledged the body, and Ingest returns only after both. A failure
// after the upload deletes the blob again (best effort: the sweep of
// unreferenced blobs catches what is left).
package ingest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/mime"
)

// Appender is the part of the metadata store ingest uses.
type Appender interface {
	AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) (meta.Appended, error)
}

var _ Appender = (meta.Messages)(nil)

// Deps are the collaborators of an Ingester.
type Deps struct {
	Meta  Appender
	Blobs blob.Store
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Config configures ingest.
type Config struct {
	// MaxMessageSize bounds a message in bytes (APPENDLIMIT, LMTP SIZE).
	MaxMessageSize int64
	// SpoolMemory is how much of a multi-recipient delivery IngestMany
	// keeps in memory before spooling the rest to a temporary file.
	SpoolMemory int64
	// SpoolDir holds those temporary files; empty means os.TempDir().
	SpoolDir string
	// Limits bound the MIME parse.
	Limits mime.Limits
	// AppendRetry is how long the commit of an entry whose outcome is
	// unknown (the metadata store unreachable, a deadline, a connection
	// broken after the request) is retried with the same blob before
	// Ingest gives up with that error. The store answers a repeat with
	// the first result (meta.AppendReplayWindow), so a retry never stores
	// the message twice. 0: no retry.
	AppendRetry time.Duration
}

// Defaults of Config.
const (
	DefaultMaxMessageSize = 64 << 20
	DefaultSpoolMemory    = 1 << 20
	DefaultAppendRetry    = 20 * time.Second
)

// RegisterFlags registers the flags of Config under -ingest.; the
// defaults live here.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.Int64Var(&c.MaxMessageSize, "ingest.max-message-size", DefaultMaxMessageSize, "Largest message accepted, in bytes (APPENDLIMIT, LMTP SIZE).")
	f.Int64Var(&c.SpoolMemory, "ingest.spool-memory", DefaultSpoolMemory, "Bytes of a multi-recipient delivery kept in memory before spooling to a temporary file.")
	f.StringVar(&c.SpoolDir, "ingest.spool-dir", "", "Directory for spooled multi-recipient deliveries (default: the system temporary directory).")
	f.DurationVar(&c.AppendRetry, "ingest.append-retry", DefaultAppendRetry, "How long the commit of a message whose outcome is unknown (metadata service unreachable or too slow) is retried before the client gets a temporary failure; a retry never stores the message twice (0: no retry).")
	c.Limits.RegisterFlagsWithPrefix("ingest.mime.", f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxMessageSize <= 0 {
		return fmt.Errorf("ingest.max-message-size: %d: must be positive", c.MaxMessageSize)
	}
	if c.SpoolMemory < 0 {
		return fmt.Errorf("ingest.spool-memory: %d: must not be negative", c.SpoolMemory)
	}
	if c.AppendRetry < 0 || c.AppendRetry >= meta.AppendReplayWindow {
		return fmt.Errorf("ingest.append-retry: %v: must be at least 0 and below %v", c.AppendRetry, meta.AppendReplayWindow)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("ingest.mime: %w", err)
	}
	return nil
}

// Ingester stores messages. It is safe for concurrent use.
type Ingester struct {
	cfg    Config
	meta   Appender
	blobs  blob.Store
	now    func() time.Time
	logger *slog.Logger
}

// New returns an Ingester. It starts nothing.
func New(cfg Config, deps Deps) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Meta == nil || deps.Blobs == nil {
		return nil, errors.New("ingest: Meta and Blobs are required")
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ingester{cfg: cfg, meta: deps.Meta, blobs: deps.Blobs, now: deps.Clock, logger: deps.Logger}, nil
}

// MaxMessageSize is the configured limit, for APPENDLIMIT and LMTP SIZE.
func (g *Ingester) MaxMessageSize() int64 { return g.cfg.MaxMessageSize }

// Target is where one copy of a message goes.
type Target struct {
	Account mail.AccountID
	Mailbox mail.MailboxID
	// MailboxName is recorded in the blob's recovery metadata.
	MailboxName string
	Flags       []mail.Flag
	// Prefix is stored before the body for this target only: header
	// fields a delivery agent adds, complete lines each ending with a line
	// break (Delivered-To differs per LMTP recipient). The entry's
	// structure covers it (mime.Structure.WithPrefix), so the body is
	// still parsed once per delivery. MaxMessageSize bounds the body as
	// received; the prefix comes on top.
	Prefix []byte
}

// Request is one message for one mailbox.
type Request struct {
	Target
	// InternalDate; zero means now.
	InternalDate time.Time
	// Size is the exact size when known (an APPEND literal), or -1.
	Size int64
	Body io.Reader
}

// Result reports a stored message.
type Result struct {
	Appended  meta.Appended
	Blob      mail.BlobID
	Size      int64
	Structure *mime.Structure
}

// ErrSizeMismatch: the body was not as long as Request.Size said.
var ErrSizeMismatch = errors.New("message size differs from the announced size")

// Ingest streams req.Body to the blob store while parsing it, then commits
// the entry, and returns only when both are durable. Errors wrap
// blob.ErrTooLarge (nothing stored), the blob store's errors (nothing
// stored) or the metadata store's (meta.ErrOverQuota, ErrNoSuchMailbox,
// ErrUnavailable, ...), or the reader's error. When the metadata store
// certainly refused the entry, the blob is deleted again and Result is
// zero; when the outcome is unknown (ErrUnavailable, a deadline), the blob
// is kept and Result.Blob names it, so the caller can tell a retry from a
// first attempt.
func (g *Ingester) Ingest(ctx context.Context, req Request) (Result, error) {
	if req.Body == nil {
		return Result{}, fmt.Errorf("ingest: %w: no body", blob.ErrInvalidArgument)
	}
	if err := g.checkSize(req.Size); err != nil {
		return Result{}, err
	}
	now := g.now()
	date := req.InternalDate
	if date.IsZero() {
		date = now
	}
	sc := mime.NewScanner(g.cfg.Limits)
	body, size := req.Body, req.Size
	if p := len(req.Prefix); p > 0 {
		body = io.MultiReader(bytes.NewReader(req.Prefix), body)
		if size >= 0 {
			size += int64(p)
		}
	}
	r := &meteredReader{r: body, w: sc, max: g.maxStored(req.Target)}
	id, n, err := g.put(ctx, req.Target, date, now, r, size)
	if err != nil {
		return Result{}, err
	}
	st, _ := sc.Close() // cannot fail: the scanner is open
	if st.Limited {
		g.logger.Info("mime limits reached", "account", req.Account, "blob", id)
	}
	enc, err := mime.MarshalStructure(st)
	if err != nil {
		g.deleteBlob(ctx, req.Account, id)
		return Result{}, fmt.Errorf("encode message structure: %w", err)
	}
	app, err := g.append(ctx, req.Target, date, n, id, enc)
	if err != nil {
		if Refused(err) {
			return Result{}, err
		}
		// Unknown outcome: the caller learns which blob may be stored.
		return Result{Blob: id, Size: n}, err
	}
	return Result{Appended: app, Blob: id, Size: n, Structure: st}, nil
}

// maxStored is the largest blob stored for t: the message limit plus the
// target's prefix.
func (g *Ingester) maxStored(t Target) int64 {
	return g.cfg.MaxMessageSize + int64(len(t.Prefix))
}

func (g *Ingester) checkSize(size int64) error {
	if size > g.cfg.MaxMessageSize {
		return fmt.Errorf("ingest message of %d bytes, limit %d: %w", size, g.cfg.MaxMessageSize, blob.ErrTooLarge)
	}
	return nil
}

// put uploads r as a new blob of t.Account and returns its id and size
// once the blob store has acknowledged it. On error nothing is stored.
func (g *Ingester) put(ctx context.Context, t Target, date, now time.Time, r *meteredReader, size int64) (mail.BlobID, int64, error) {
	id := blob.NewBlobID(now)
	m := blob.Meta{Account: t.Account, InternalDate: date, Mailbox: t.MailboxName, Flags: t.Flags}
	info, err := g.blobs.Put(ctx, t.Account, id, r, m, blob.PutOptions{Size: size, MaxSize: r.max})
	switch {
	case r.tooLarge && err == nil:
		g.deleteBlob(ctx, t.Account, id) // the store ignored our error
		err = fmt.Errorf("message over %d bytes: %w", r.max, blob.ErrTooLarge)
	case r.tooLarge && !errors.Is(err, blob.ErrTooLarge):
		// Our own limit tripped: make sure the error says so.
		err = fmt.Errorf("%w (%v)", blob.ErrTooLarge, err)
	case err == nil && r.readErr != nil:
		// The store must not accept a body whose reader failed; if it did,
		// take it back.
		g.deleteBlob(ctx, t.Account, id)
		err = r.readErr
	case err == nil && !r.eof:
		// Put stopped early (it trusted Size): make sure nothing is left.
		if extra, _ := r.Read(make([]byte, 1)); extra > 0 || r.readErr != nil {
			g.deleteBlob(ctx, t.Account, id)
			err = fmt.Errorf("%w: more than %d bytes", ErrSizeMismatch, size)
		}
	}
	if err == nil && (info.Size != r.n || (size >= 0 && r.n != size)) {
		g.deleteBlob(ctx, t.Account, id)
		err = fmt.Errorf("%w: got %d bytes, announced %d, stored %d", ErrSizeMismatch, r.n, size, info.Size)
	}
	if err != nil {
		return "", 0, fmt.Errorf("store message body for account %s: %w", t.Account, err)
	}
	return id, r.n, nil
}

// append commits the entry. When the metadata store certainly refused it
// (over quota, no such mailbox or account, a bad argument), the blob is
// deleted again. When the outcome is unknown (the store was unavailable,
// the call timed out or the connection broke after the request was sent),
// the entry may have been committed, so the blob is kept: deleting it
// could leave an entry pointing at nothing. If no entry refers to it, the
// orphan sweep removes it later.
func (g *Ingester) append(ctx context.Context, t Target, date time.Time, size int64, id mail.BlobID, structure []byte) (meta.Appended, error) {
	e := meta.NewEntry{
		Flags:        t.Flags,
		InternalDate: date,
		Size:         size,
		Blob:         id,
		Structure:    structure,
	}
	app, err := g.meta.AppendEntry(ctx, t.Account, t.Mailbox, e)
	if err != nil && !Refused(err) && g.cfg.AppendRetry > 0 {
		app, err = g.retryAppend(ctx, t, e, err)
	}
	if err != nil {
		if Refused(err) {
			g.deleteBlob(ctx, t.Account, id)
		}
		return meta.Appended{}, fmt.Errorf("append to mailbox %d: %w", t.Mailbox, err)
	}
	return app, nil
}

// Bounds of the pauses between retries of an append, and of one retry.
const (
	retryFirstPause = 50 * time.Millisecond
	retryMaxPause   = 2 * time.Second
	retryAttempt    = 5 * time.Second
)

// retryAppend repeats an append whose outcome is unknown (err) with the
// same blob until the store answers for certain or Config.AppendRetry has
// passed. Each attempt has its own deadline, so one lost in a stopped
// process does not use up the whole time.
func (g *Ingester) retryAppend(ctx context.Context, t Target, e meta.NewEntry, err error) (meta.Appended, error) {
	deadline := time.Now().Add(g.cfg.AppendRetry)
	pause := retryFirstPause
	for attempt := 1; ; attempt++ {
		// Half to all of pause, so that gateways do not retry in step.
		wait := pause/2 + time.Duration(rand.Int64N(int64(pause/2)+1))
		if left := time.Until(deadline); wait >= left {
			return meta.Appended{}, err
		}
		select {
		case <-ctx.Done():
			return meta.Appended{}, err
		case <-time.After(wait):
		}
		actx, cancel := context.WithTimeout(ctx, min(retryAttempt, time.Until(deadline)))
		app, aerr := g.meta.AppendEntry(actx, t.Account, t.Mailbox, e)
		cancel()
		if aerr == nil || Refused(aerr) {
			g.logger.Info("append outcome settled by a retry", "account", t.Account, "blob", e.Blob, "attempts", attempt+1, "err", aerr)
			return app, aerr
		}
		err = aerr
		pause = min(2*pause, retryMaxPause)
	}
}

// Refused reports whether err from the metadata store means the entry was
// certainly not committed.
func Refused(err error) bool {
	for _, sentinel := range []error{
		meta.ErrOverQuota, meta.ErrNoSuchMailbox, meta.ErrNoSuchAccount, meta.ErrInvalidArgument,
		meta.ErrPermission, meta.ErrDisabled, meta.ErrExists, mail.ErrInvalidFlag, mail.ErrInvalidMailboxName,
	} {
		if errors.Is(err, sentinel) {
			return true
		}
	}
	return false
}

// deleteTimeout bounds the clean-up of a blob after a failed append; it
// runs even when the request's context is done (that may be why the append
// failed).
const deleteTimeout = 30 * time.Second

func (g *Ingester) deleteBlob(ctx context.Context, acct mail.AccountID, id mail.BlobID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	if err := g.blobs.Delete(ctx, acct, id); err != nil {
		g.logger.Warn("delete unreferenced blob", "account", acct, "blob", id, "err", err)
	}
}

// meteredReader passes the body to the blob store while feeding the MIME
// scanner, counting bytes and enforcing the size limit.
type meteredReader struct {
	r        io.Reader
	w        io.Writer // nil: no scanner
	max      int64
	n        int64
	eof      bool
	tooLarge bool
	readErr  error // a read error other than EOF
}

func (m *meteredReader) Read(p []byte) (int, error) {
	if m.tooLarge {
		return 0, blob.ErrTooLarge
	}
	if m.readErr != nil {
		return 0, m.readErr
	}
	n, err := m.r.Read(p)
	if n > 0 {
		m.n += int64(n)
		if m.max > 0 && m.n > m.max {
			m.tooLarge = true
			return 0, fmt.Errorf("message over %d bytes: %w", m.max, blob.ErrTooLarge)
		}
		if m.w != nil {
			_, _ = m.w.Write(p[:n]) // the scanner never fails while open
		}
	}
	switch {
	case err == io.EOF:
		m.eof = true
	case err != nil:
		m.readErr = fmt.Errorf("read message body: %w", err)
		return n, m.readErr
	}
	return n, err
}
