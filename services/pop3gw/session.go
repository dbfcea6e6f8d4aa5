package pop3gw

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/ratelimit"
)

// Session states (RFC 1939 section 3). UPDATE is entered by QUIT and
// ends the session, so it is not a state a command can run in.
type state uint8

const (
	stateAuthorization state = iota
	stateTransaction
	stateDone
)

// session is one client connection. Its goroutine reads a command,
// executes it and writes the answer; the lease keeper only renews the lease
// and, when the lease is lost, cuts the connection's read.
type session struct {
	gw     *Gateway
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    context.Context
	cancel context.CancelFunc
	logger *slog.Logger
	remote string

	state state
	tls   bool
	pace  *ratelimit.Bucket

	// AUTHORIZATION: the name given by USER, and failures so far.
	user         string
	authFailures int

	// TRANSACTION: the account, its effective leave-on-server policy, its
	// lease and the maildrop snapshot.
	policy    meta.POP3Policy
	drop      *maildrop
	lease     meta.Lease
	leaseStop context.CancelFunc
	leaseDone chan struct{}
	leaseLost atomic.Bool

	closeOnce sync.Once
}

func newSession(parent context.Context, g *Gateway, c net.Conn, implicitTLS bool) *session {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	s := &session{gw: g, ctx: ctx, cancel: cancel, tls: implicitTLS, remote: c.RemoteAddr().String(),
		pace: ratelimit.New(g.cfg.CommandRate, g.cfg.CommandBurst)}
	s.logger = g.logger.With("remote", s.remote)
	s.setConn(c)
	return s
}

// setConn (re)wraps the buffered reader and writer, at start and after STLS.
func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.br = bufio.NewReaderSize(c, 4096)
	s.bw = bufio.NewWriterSize(deadlineWriter{c, s.gw.cfg.WriteTimeout}, 16<<10)
}

// Shutdown ends the session from another goroutine: a session blocked
// reading a command is cut, and ends without entering UPDATE.
func (s *session) Shutdown() {
	s.cancel()
	_ = s.conn.SetReadDeadline(time.Now())
}

// Lingers asks a draining gateway to let the session run until the end
// of the drain window: a POP3 client downloads and QUITs quickly, and only
// QUIT applies its deletions.
func (s *session) Lingers() bool { return true }

// close releases the lease, then closes the connection: a client that sees
// the connection end may log in again at once.
func (s *session) close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.releaseLease()
		_ = s.conn.Close()
	})
}

// isLoopback reports whether the client connects from the machine itself.
func (s *session) isLoopback() bool {
	host, _, err := net.SplitHostPort(s.remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plaintextAllowed reports whether USER/PASS and AUTH may be used.
func (s *session) plaintextAllowed() bool {
	return s.tls || s.gw.cfg.AllowPlaintextAuth || (s.gw.cfg.AllowPlaintextLoopback && s.isLoopback())
}

func (s *session) Serve() {
	defer s.gw.deps.Metrics.SessionStarted()()
	defer s.close()
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("session panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.reply("-ERR [SYS/TEMP] Internal server error")
			_ = s.bw.Flush()
		}
	}()
	if tc, ok := s.conn.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			return
		}
		_ = tc.SetDeadline(time.Time{})
	}
	s.reply("+OK mailstore POP3 ready")
	if s.bw.Flush() != nil {
		return
	}
	for s.state != stateDone {
		if !s.readCommand() {
			return
		}
	}
}

// errLineTooLong: a command line longer than MaxLineLength, skipped;
// errLineWayTooLong: one too long even to skip.
var (
	errLineTooLong    = errors.New("line too long")
	errLineWayTooLong = errors.New("line far too long")
)

// maxDiscard bounds how much of an over-long line is skipped before the
// connection is closed instead.
const maxDiscard = 64 << 10

// readLine reads one line without its line end (CRLF or LF).
func (s *session) readLine() (string, error) {
	var line []byte
	tooLong := false
	discarded := 0
	for {
		frag, err := s.br.ReadSlice('\n')
		if !tooLong && len(line)+len(frag) <= s.gw.cfg.MaxLineLength+2 {
			line = append(line, frag...)
		} else {
			tooLong = true
			discarded += len(frag)
			if discarded > maxDiscard {
				return "", errLineWayTooLong
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return "", errLineTooLong
			}
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", err
		}
	}
}

// readCommand reads and runs one command; false ends the session.
func (s *session) readCommand() bool {
	// Answers are flushed only when the client has nothing more pipelined
	// (RFC 2449 PIPELINING), which batches the answers of a pipeline.
	if s.br.Buffered() == 0 && s.bw.Flush() != nil {
		return false
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(s.gw.cfg.IdleTimeout))
	line, err := s.readLine()
	if err != nil {
		return s.readFailed(err)
	}
	if d := s.pace.Delay(); d > 0 {
		// Over the command rate: answer what is done, then wait.
		if s.bw.Flush() != nil {
			return false
		}
		t := time.NewTimer(d)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return s.readFailed(s.ctx.Err())
		case <-t.C:
		}
	}
	if s.ctx.Err() != nil {
		return s.readFailed(s.ctx.Err())
	}
	name, args, _ := strings.Cut(line, " ")
	name = strings.ToUpper(name)
	h, ok := commands[name]
	switch {
	case name == "":
		s.reply("-ERR Empty command")
	case !ok:
		s.reply("-ERR Unknown command")
	case h.states&(1<<s.state) == 0:
		s.reply("-ERR Command not valid in this state")
	default:
		s.run(h, name, args)
	}
	if s.state == stateDone {
		// Unlocked before the last answer goes out, so a client may log
		// in again as soon as it has read it.
		s.releaseLease()
		return s.bw.Flush() == nil
	}
	return true
}

// readFailed handles a failed read of a command line.
func (s *session) readFailed(err error) bool {
	switch {
	case errors.Is(err, errLineTooLong):
		s.reply("-ERR Command line too long")
		return true
	case errors.Is(err, errLineWayTooLong):
		s.reply("-ERR Command line too long; closing")
	case s.leaseLost.Load():
		s.reply("-ERR [IN-USE] Maildrop lock lost; no messages deleted")
	case s.ctx.Err() != nil:
		s.reply("-ERR [SYS/TEMP] Server shutting down; no messages deleted")
	case isTimeout(err):
		s.reply("-ERR Autologout; idle for too long")
	default:
		return false // the client went away: nothing to say
	}
	s.releaseLease()
	_ = s.bw.Flush()
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// run executes a command under its deadline and writes a failure's answer.
func (s *session) run(h handler, name, args string) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, s.gw.cfg.CommandTimeout)
	defer cancel()
	ctx, span := tracer.Start(ctx, "pop3 "+name, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	err := h.fn(s, ctx, args)
	result := "ok"
	defer func() {
		s.gw.deps.Metrics.Command(name, result, time.Since(start))
		span.SetAttributes(attribute.String("pop3.result", result))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}()
	if err == nil {
		return
	}
	result = "err"
	var pe *protoError
	switch {
	case errors.As(err, &pe):
		s.reply("-ERR " + pe.text)
		if pe.closeConn {
			s.state = stateDone
			result = "bye"
		}
	case errors.Is(err, errConnLost):
		s.state = stateDone
		result = "bye"
	case errors.Is(err, meta.ErrUnavailable), errors.Is(err, blob.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.logger.Warn("command failed", "command", name, "err", err)
		s.reply("-ERR [SYS/TEMP] Temporary failure; try again")
	case errors.Is(err, meta.ErrNoSuchAccount), errors.Is(err, meta.ErrNoSuchMailbox):
		s.reply("-ERR [SYS/PERM] Maildrop no longer exists")
		s.state = stateDone
	default:
		s.logger.Error("command failed", "command", name, "err", err)
		s.reply("-ERR [SYS/TEMP] Internal error")
	}
}

// tracer starts a span per command; the gRPC calls a command makes
// continue its trace.
var tracer = otel.Tracer("github.com/mailstore/mailstore/services/pop3gw")

// errConnLost: the connection failed mid-answer; the session ends silently.
var errConnLost = errors.New("connection lost")

// protoError is a command's -ERR answer.
type protoError struct {
	text      string
	closeConn bool
}

func (e *protoError) Error() string { return e.text }

func errf(format string, args ...any) error {
	return &protoError{text: fmt.Sprintf(format, args...)}
}

// reply writes one response line.
func (s *session) reply(line string) {
	_, _ = s.bw.WriteString(line)
	_, _ = s.bw.WriteString("\r\n")
}

// handler is one command's implementation and where it is allowed.
type handler struct {
	fn     func(s *session, ctx context.Context, args string) error
	states uint8 // bit set of states
}

const (
	authorization = 1 << stateAuthorization
	transaction   = 1 << stateTransaction
	anyState      = authorization | transaction
)

// commands is filled by the init of each command family's file.
var commands = map[string]handler{}

func register(name string, h handler) {
	if _, dup := commands[name]; dup {
		panic("pop3gw: command registered twice: " + name)
	}
	commands[name] = h
}

// deadlineWriter sets a write deadline before every write, so a client
// that stops reading cannot hold a session (and its lease) forever.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.c.Write(p)
}

// ---- the maildrop lock ----

// keepLease renews the lease every TTL/3 until stopped. When the lease is
// lost (taken over after it lapsed) or cannot be renewed before it
// expires, the session must stop acting on the maildrop: it is cut.
func (s *session) keepLease(ctx context.Context) {
	defer close(s.leaseDone)
	ttl := s.gw.cfg.LeaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	expires := s.lease.Expires
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, ttl/3)
		l, err := s.gw.deps.Meta.RenewLease(rctx, s.drop.acct, leaseName, s.lease.Token, ttl)
		cancel()
		switch {
		case err == nil:
			expires = l.Expires
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, meta.ErrLeaseLost):
		case time.Now().Before(expires):
			s.logger.Warn("renew maildrop lock", "err", err)
			continue
		default:
			s.logger.Warn("renew maildrop lock; lease expired", "err", err)
		}
		s.logger.Warn("maildrop lock lost")
		s.leaseLost.Store(true)
		_ = s.conn.SetReadDeadline(time.Now())
		return
	}
}

// releaseLease stops the renewal and releases the lease, if held.
func (s *session) releaseLease() {
	if s.leaseStop == nil {
		return
	}
	s.leaseStop()
	<-s.leaseDone
	s.leaseStop = nil
	s.gw.deps.Metrics.LockHeld(-1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
	defer cancel()
	if err := s.gw.deps.Meta.ReleaseLease(ctx, s.drop.acct, leaseName, s.lease.Token); err != nil {
		// The lease lapses by itself after its TTL.
		s.logger.Warn("release maildrop lock", "err", err)
	}
}

// checkLease confirms, just before UPDATE, that the lease is still ours
// (the fencing token is still current) and extends it for the expunge.
func (s *session) checkLease(ctx context.Context) error {
	if s.leaseLost.Load() {
		return meta.ErrLeaseLost
	}
	_, err := s.gw.deps.Meta.RenewLease(ctx, s.drop.acct, leaseName, s.lease.Token, s.gw.cfg.LeaseTTL)
	return err
}
