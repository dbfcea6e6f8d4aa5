package imapgw

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// Session states (RFC 9051 section 3).
type state uint8

const (
	stateNotAuth state = iota
	stateAuth
	stateSelected
	stateLogout
)

// session is one client connection. Its goroutine reads a command,
// executes it and writes every response; nothing else writes to the
// connection, except that IDLE reads "DONE" on a goroutine of its own.
type session struct {
	gw     *Gateway
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	dec    *wire.Decoder
	enc    *wire.Encoder
	ctx    context.Context
	cancel context.CancelFunc
	logger *slog.Logger

	state      state
	tls        bool
	compressed bool
	remote     string

	acct meta.Account
	sel  *view
	// saved is the SEARCHRES result ($), as UIDs (RFC 5182).
	saved mail.UIDSet
	watch *hubSub
	// releaseAcct gives back the session's slot of the per-account limit.
	releaseAcct func()
	// notify is the NOTIFY (RFC 5465) state; nil without NOTIFY SET.
	notify *notifier

	authFailures int

	// Enabled extensions (RFC 5161 ENABLE).
	rev2, utf8, condstore, qresync bool

	closeOnce sync.Once
}

func newSession(parent context.Context, g *Gateway, c net.Conn, implicitTLS bool) *session {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	s := &session{gw: g, conn: c, ctx: ctx, cancel: cancel, tls: implicitTLS, remote: c.RemoteAddr().String()}
	s.logger = g.logger.With("remote", s.remote)
	s.setConn(c)
	return s
}

// setConn (re)wraps the buffered reader and writer, at start and after
// STARTTLS.
func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.br = bufio.NewReaderSize(c, 4096)
	s.bw = bufio.NewWriterSize(deadlineWriter{c, s.gw.cfg.WriteTimeout}, 4096)
	s.dec = wire.NewDecoder(s.br)
	s.dec.MaxLine = s.gw.cfg.MaxLineLength
	s.dec.MaxLiteral = s.gw.cfg.MaxLiteral
	s.dec.Continue = func() error {
		s.enc.Raw("+ Ready for literal data").CRLF()
		return s.enc.Flush()
	}
	utf8 := s.enc != nil && s.enc.UTF8
	s.enc = wire.NewEncoder(s.bw)
	s.enc.UTF8 = utf8
}

// Shutdown ends the session from another goroutine: an idle session gets
// BYE from its IDLE loop; a session blocked reading a command is cut.
func (s *session) Shutdown() {
	s.cancel()
	_ = s.conn.SetReadDeadline(time.Now())
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		s.cancel()
		if s.watch != nil {
			s.gw.hub.unsubscribe(s.watch)
		}
		if s.releaseAcct != nil {
			s.releaseAcct()
		}
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

// plaintextAllowed reports whether LOGIN and AUTHENTICATE may be used.
func (s *session) plaintextAllowed() bool {
	return s.tls || s.gw.cfg.AllowPlaintextAuth || (s.gw.cfg.AllowPlaintextLoopback && s.isLoopback())
}

func (s *session) Serve() {
	defer s.gw.deps.Metrics.SessionStarted()()
	defer s.close()
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("session panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.enc.Raw("* BYE Internal server error").CRLF()
			_ = s.enc.Flush()
		}
	}()
	if tc, ok := s.conn.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			return
		}
		_ = tc.SetDeadline(time.Time{})
	}
	s.enc.Raw("* OK [CAPABILITY ").Raw(s.capabilities()).Raw("] mailstore ready").CRLF()
	if s.enc.Flush() != nil {
		return
	}
	for s.state != stateLogout {
		if !s.readCommand() {
			return
		}
	}
}

// command is one parsed command line head.
type command struct {
	tag  string
	name string // upper case, without the UID prefix
	uid  bool
}

// readCommand reads and runs one command; false ends the session.
func (s *session) readCommand() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.gw.cfg.IdleTimeout))
	s.dec.Reset()
	tag, err := s.dec.Tag()
	if err != nil {
		return s.readFailed(err, "*")
	}
	cmd := &command{tag: tag}
	if err := s.dec.SP(); err != nil {
		return s.readFailed(err, tag)
	}
	name, err := s.dec.Atom()
	if err != nil {
		return s.readFailed(err, tag)
	}
	cmd.name = strings.ToUpper(name)
	if cmd.name == "UID" {
		cmd.uid = true
		if err := s.dec.SP(); err != nil {
			return s.readFailed(err, tag)
		}
		if name, err = s.dec.Atom(); err != nil {
			return s.readFailed(err, tag)
		}
		cmd.name = strings.ToUpper(name)
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(s.gw.cfg.IdleTimeout))
	h, ok := commands[cmd.name]
	switch {
	case !ok || (cmd.uid && !h.uid):
		// A failed skip (the autologout timer, a gone client) ends the
		// session, so a trickled line gets no second idle period.
		if err := s.dec.SkipLine(); err != nil {
			return s.readFailed(err, tag)
		}
		s.tagged(tag, "BAD", "", "Unknown command")
	case h.states&(1<<s.state) == 0:
		if err := s.dec.SkipLine(); err != nil {
			return s.readFailed(err, tag)
		}
		s.tagged(tag, "BAD", "", "Command not allowed in this state")
	default:
		s.run(cmd, h)
	}
	if s.enc.Flush() != nil {
		return false
	}
	if s.ctx.Err() != nil && s.state != stateLogout {
		s.enc.Raw("* BYE Server shutting down").CRLF()
		_ = s.enc.Flush()
		return false
	}
	return true
}

// readFailed answers a command that could not even be read.
func (s *session) readFailed(err error, tag string) bool {
	var se *wire.SyntaxError
	switch {
	case errors.As(err, &se):
		if s.dec.SkipLine() != nil {
			return false
		}
		s.tagged(tag, "BAD", "", se.Msg)
		return s.enc.Flush() == nil
	case errors.Is(err, wire.ErrLineTooLong):
		s.enc.Raw("* BYE Command line too long").CRLF()
		_ = s.enc.Flush()
		return false
	case isTimeout(err) && s.ctx.Err() == nil:
		s.enc.Raw("* BYE Autologout; idle for too long").CRLF()
		_ = s.enc.Flush()
		return false
	case s.ctx.Err() != nil && !errors.Is(err, io.EOF):
		s.enc.Raw("* BYE Server shutting down").CRLF()
		_ = s.enc.Flush()
		return false
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// run executes a command under its deadline and writes the tagged answer,
// with the pending mailbox updates the command allows before it.
func (s *session) run(cmd *command, h handler) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, s.gw.cfg.CommandTimeout)
	defer cancel()
	ctx, span := tracer.Start(ctx, "imap "+cmd.name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Bool("imap.uid", cmd.uid)))
	defer span.End()
	err := h.fn(s, ctx, cmd)
	if err == errAnswered {
		s.gw.deps.Metrics.Command(cmd.name, "ok", time.Since(start))
		return
	}
	var st *statusError
	if err != nil && !errors.As(err, &st) {
		st = s.mapError(cmd, err)
	}
	defer func() {
		result := commandResult(st)
		s.gw.deps.Metrics.Command(cmd.name, result, time.Since(start))
		span.SetAttributes(attribute.String("imap.result", result))
		if err != nil && st == nil || result == "bye" {
			span.SetStatus(codes.Error, fmt.Sprint(err))
		}
	}()
	if st != nil && st.syntax {
		if s.dec.SkipLine() != nil {
			st.closeConn = true
		}
	}
	if st != nil && st.closeConn {
		s.enc.Raw("* BYE ").Raw(st.text).CRLF()
		s.state = stateLogout
		return
	}
	if s.state == stateSelected && s.sel != nil && h.updates {
		// Expunges may not be sent during FETCH, STORE and SEARCH by
		// sequence number (RFC 9051 section 7.5.1).
		s.sendUpdates(ctx, cmd.uid || !h.seqSensitive)
		if s.qresync && s.sel != nil && len(s.sel.pendingExpunge) > 0 {
			// Expunges are withheld; FETCH responses may have carried
			// MODSEQs above theirs (RFC 7162 3.2).
			s.enc.Raw("* OK [HIGHESTMODSEQ ").Number(uint64(s.sel.withheldBelow)).Raw("] Expunges pending").CRLF()
		}
	}
	if h.updates && s.state != stateLogout {
		s.notifyAfter(ctx, cmd)
	}
	switch {
	case st == nil:
		s.tagged(cmd.tag, "OK", "", cmd.name+" completed")
	default:
		s.tagged(cmd.tag, st.status, st.code, st.text)
	}
}

// tracer starts a span per command; the gRPC calls a command makes
// continue its trace.
var tracer = otel.Tracer("github.com/mailstore/mailstore/services/imapgw")

// commandResult names a command's outcome for the metrics.
func commandResult(st *statusError) string {
	switch {
	case st == nil || st.status == "OK":
		return "ok"
	case st.closeConn:
		return "bye"
	case st.status == "NO":
		return "no"
	default:
		return "bad"
	}
}

// tagged writes a tagged status response.
func (s *session) tagged(tag, status, code, text string) {
	s.enc.Raw(tag).SP().Raw(status).SP()
	if code != "" {
		s.enc.Byte('[').Raw(code).Raw("] ")
	}
	s.enc.Raw(text).CRLF()
}

// statusError is a command's non-default answer: NO or BAD with an
// optional response code, or OK with a code.
type statusError struct {
	status, code, text string
	closeConn          bool
	// syntax: the rest of the line must be skipped.
	syntax bool
}

func (e *statusError) Error() string { return e.status + " " + e.text }

func no(code, text string) error { return &statusError{status: "NO", code: code, text: text} }
func bad(text string) error      { return &statusError{status: "BAD", text: text, syntax: true} }
func okCode(code, text string) error {
	return &statusError{status: "OK", code: code, text: text}
}

// mapError turns an error of a command into its answer: protocol errors to
// BAD, store errors to NO with the RFC 5530 response code. Raw store text
// never reaches the client.
func (s *session) mapError(cmd *command, err error) *statusError {
	var se *wire.SyntaxError
	var lt *wire.LiteralTooLargeError
	switch {
	case errors.As(err, &se):
		return &statusError{status: "BAD", text: se.Msg, syntax: true}
	case errors.As(err, &lt):
		if lt.NonSync {
			if lt.Size > 16*s.gw.cfg.MaxLiteral || s.dec.DiscardLiteral(lt.Size) != nil {
				return &statusError{text: "Literal too large", closeConn: true}
			}
		}
		if s.dec.SkipLine() != nil {
			return &statusError{text: "Literal too large", closeConn: true}
		}
		return &statusError{status: "NO", code: "TOOBIG", text: "Literal too large"}
	case errors.Is(err, wire.ErrLineTooLong):
		return &statusError{text: "Command line too long", closeConn: true}
	case isTimeout(err), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return &statusError{text: "Connection lost", closeConn: true}
	case errors.Is(err, meta.ErrNoSuchMailbox):
		if cmd.name == "APPEND" || cmd.name == "COPY" || cmd.name == "MOVE" {
			return &statusError{status: "NO", code: "TRYCREATE", text: "No such mailbox"}
		}
		return &statusError{status: "NO", code: "NONEXISTENT", text: "No such mailbox"}
	case errors.Is(err, meta.ErrExists):
		return &statusError{status: "NO", code: "ALREADYEXISTS", text: "Mailbox already exists"}
	case errors.Is(err, meta.ErrOverQuota):
		return &statusError{status: "NO", code: "OVERQUOTA", text: "Quota exceeded"}
	case errors.Is(err, blob.ErrTooLarge):
		return &statusError{status: "NO", code: "TOOBIG", text: "Message too large"}
	case errors.Is(err, mail.ErrInvalidMailboxName), errors.Is(err, mail.ErrInvalidFlag), errors.Is(err, meta.ErrInvalidArgument):
		return &statusError{status: "NO", code: "CANNOT", text: "Invalid argument"}
	case errors.Is(err, meta.ErrPermission):
		return &statusError{status: "NO", code: "CANNOT", text: "Operation not permitted"}
	case errors.Is(err, meta.ErrNoSuchAccount):
		return &statusError{text: "Account no longer exists", closeConn: true}
	case errors.Is(err, meta.ErrUnavailable), errors.Is(err, blob.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.logger.Warn("command failed", "command", cmd.name, "err", err)
		return &statusError{status: "NO", code: "UNAVAILABLE", text: "Temporary failure; try again"}
	case errors.Is(err, blob.ErrNotFound):
		return &statusError{status: "NO", code: "EXPUNGEISSUED", text: "Message is gone"}
	}
	s.logger.Error("command failed", "command", cmd.name, "err", err)
	return &statusError{status: "NO", code: "SERVERBUG", text: "Internal error"}
}

// endCommand reads the end of the line after the last argument.
func (s *session) endCommand() error { return s.dec.CRLF() }

// handler is one command's implementation and where it is allowed.
type handler struct {
	fn     func(s *session, ctx context.Context, cmd *command) error
	states uint8 // bit set of states
	uid    bool  // may follow "UID"
	// updates: pending mailbox changes are sent before the tagged answer;
	// seqSensitive: not EXPUNGE, unless the command is a UID command.
	updates, seqSensitive bool
}

const (
	anyState   = 1<<stateNotAuth | 1<<stateAuth | 1<<stateSelected
	notAuth    = 1 << stateNotAuth
	authed     = 1<<stateAuth | 1<<stateSelected
	selectedSt = 1 << stateSelected
)

// commands is filled by the init of each command family's file.
var commands = map[string]handler{}

func register(name string, h handler) {
	if _, dup := commands[name]; dup {
		panic("imapgw: command registered twice: " + name)
	}
	commands[name] = h
}

// deadlineWriter sets a write deadline before every write.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.c.Write(p)
}
