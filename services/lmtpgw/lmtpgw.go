// Package lmtpgw is the LMTP delivery gateway (RFC 2033): an MTA hands it
// mail over TCP or a Unix socket, and it stores a copy per recipient
// through pkg/ingest, filed by the account's Sieve script, answering one
// reply per recipient after DATA or BDAT.
//
// The protocol layer is github.com/emersion/go-smtp in LMTP mode; this
// package is its Backend and Session (session.go), and does the delivery
// itself (deliver.go): the body is spooled once while its SHA-256 is
// computed and its header kept for Sieve, parsed once by ingest.IngestMany
// for every recipient, and each recipient's copy gets its own
// Return-Path, Delivered-To and Received fields through ingest.Target's
// Prefix, so nothing but those fields is added to the stored bytes.
//
// Answers follow the write order of the architecture: 250 for a recipient
// only after every entry Sieve asked for is committed; unknown recipient
// 550 5.1.1; over quota 552 5.2.2 (or 452 4.2.2 with
// -lmtp.over-quota-temporary); too large 552 5.3.4; anything that may be
// transient (the metadata or blob service down, a deadline) 451 4.3.0, so
// the MTA retries.
//
// Retries are made idempotent by a marker in the shared counters, set
// after each entry commits and checked before storing (dedup.go). The
// gateway holds no state beyond its connections and a cache of compiled
// Sieve scripts, so any number of replicas can serve the same accounts.
package lmtpgw

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailstore/mailstore/pkg/certreload"
	"github.com/mailstore/mailstore/pkg/connlimit"
	"github.com/mailstore/mailstore/pkg/connserve"
	"github.com/mailstore/mailstore/pkg/gwmetrics"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// Config configures the gateway.
type Config struct {
	ListenAddress string
	// UnixSocket, when set, is a path where the gateway also listens (the
	// usual way for an MTA on the same host or pod).
	UnixSocket string
	// Hostname names this host in the Received field and the greeting;
	// Validate fills it from the system host name when empty.
	Hostname string
	// MaxRecipients bounds the recipients of one transaction; more get
	// 452 4.5.3 (RFC 5321 section 4.5.3.1.8: the client sends the rest
	// in another transaction).
	MaxRecipients int
	// OverQuotaTemporary answers over quota with 452 4.2.2 instead of
	// 552 5.2.2, so the MTA keeps the message queued until the user makes
	// room (Dovecot's lmtp_rcpt_check_quota with quota_full_tempfail).
	OverQuotaTemporary bool
	// DedupWindow is how long the marker of a committed delivery lives,
	// i.e. how late a retry of the same transaction is still recognised;
	// 0 turns deduplication off.
	DedupWindow time.Duration
	// IdleTimeout is how long a client may stay silent, between commands
	// or in the middle of DATA.
	IdleTimeout time.Duration
	// CommandTimeout bounds the metadata work of one command (RCPT).
	CommandTimeout time.Duration
	// DataTimeout bounds a whole DATA or BDAT transfer and its storage.
	DataTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxConnsPerIP bounds the TCP connections from one client address (0:
	// no bound). Unix socket connections are not bounded by it.
	MaxConnsPerIP int
	// SieveDeadline bounds one run of a Sieve script.
	SieveDeadline time.Duration
	// MaxLineLength bounds a command line and a line of the message.
	MaxLineLength int
	// DrainWindow spreads the closing of connections when the gateway
	// stops (set from -server.drain-window).
	DrainWindow time.Duration
	// CertFile and KeyFile, when set, offer STARTTLS (RFC 3207) to the MTA;
	// the files are read again when they change.
	CertFile, KeyFile string
}

// RegisterFlags registers the gateway's flags under -lmtp.; the defaults
// live here.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.ListenAddress, "lmtp.listen-address", "127.0.0.1:1024", "LMTP listen address (TCP).")
	f.StringVar(&c.UnixSocket, "lmtp.unix-socket", "", "Path of a Unix socket to listen on as well (a stale socket file is replaced).")
	f.StringVar(&c.Hostname, "lmtp.hostname", "", "Host name in the greeting and in the Received field (default: the system host name).")
	f.IntVar(&c.MaxRecipients, "lmtp.max-recipients", 100, "Most recipients per transaction; more get 452 4.5.3.")
	f.BoolVar(&c.OverQuotaTemporary, "lmtp.over-quota-temporary", false, "Answer over quota with 452 4.2.2 (the MTA retries) instead of 552 5.2.2 (it bounces).")
	f.DurationVar(&c.DedupWindow, "lmtp.dedup-window", time.Hour, "How long a committed delivery is remembered, so that a retry of a transaction whose answer was lost stores nothing new (0: off).")
	f.DurationVar(&c.IdleTimeout, "lmtp.idle-timeout", 5*time.Minute, "How long a client may stay silent, between commands or within DATA.")
	f.DurationVar(&c.CommandTimeout, "lmtp.command-timeout", time.Minute, "Deadline of one command's work against the metadata service.")
	f.DurationVar(&c.DataTimeout, "lmtp.data-timeout", 10*time.Minute, "Deadline of a whole DATA or BDAT transfer and the storage of its copies.")
	f.DurationVar(&c.WriteTimeout, "lmtp.write-timeout", time.Minute, "How long a write to a client may block before the connection is dropped.")
	f.IntVar(&c.MaxConnsPerIP, "lmtp.max-connections-per-ip", 25, "Most LMTP connections from one client IP address, across every LMTP pod (0: no bound; Unix socket connections are not counted). An MTA's concurrency per destination must stay below it (Postfix: 20 by default).")
	f.DurationVar(&c.SieveDeadline, "lmtp.sieve-deadline", 2*time.Second, "Deadline of one Sieve run; a script that takes longer files into INBOX.")
	f.IntVar(&c.MaxLineLength, "lmtp.max-line-length", 4096, "Longest command line or message line, in bytes (RFC 5321 requires 1000).")
	f.StringVar(&c.CertFile, "lmtp.tls.cert-file", "", "PEM certificate chain offered with STARTTLS (optional: LMTP usually stays inside the cluster); reloaded when the file changes.")
	f.StringVar(&c.KeyFile, "lmtp.tls.key-file", "", "PEM private key of -lmtp.tls.cert-file.")
}

// Validate checks the configuration and fills in Hostname.
func (c *Config) Validate() error {
	switch {
	case c.ListenAddress == "" && c.UnixSocket == "":
		return errors.New("-lmtp.listen-address: must not be empty unless -lmtp.unix-socket is set")
	case c.MaxRecipients < 1:
		return errors.New("-lmtp.max-recipients: must be at least 1")
	case c.DedupWindow < 0:
		return errors.New("-lmtp.dedup-window: must not be negative")
	case c.DedupWindow > 0 && c.DedupWindow < time.Second:
		return errors.New("-lmtp.dedup-window: must be 0 or at least 1s")
	case c.IdleTimeout <= 0:
		return errors.New("-lmtp.idle-timeout: must be positive")
	case c.CommandTimeout <= 0:
		return errors.New("-lmtp.command-timeout: must be positive")
	case c.DataTimeout <= 0:
		return errors.New("-lmtp.data-timeout: must be positive")
	case c.WriteTimeout <= 0:
		return errors.New("-lmtp.write-timeout: must be positive")
	case c.MaxConnsPerIP < 0:
		return errors.New("-lmtp.max-connections-per-ip: must not be negative")
	case c.SieveDeadline <= 0:
		return errors.New("-lmtp.sieve-deadline: must be positive")
	case c.MaxLineLength < 1000:
		return errors.New("-lmtp.max-line-length: must be at least 1000 (RFC 5321)")
	case c.DrainWindow < 0:
		return errors.New("-server.drain-window: must not be negative")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("-lmtp.tls.cert-file and -lmtp.tls.key-file: set both or neither")
	}
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Hostname = h
	}
	if !validHostname(c.Hostname) {
		return fmt.Errorf("-lmtp.hostname: %q: not a host name", c.Hostname)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return h != ""
}

// Store is what the gateway asks of the metadata store.
type Store interface {
	// LookupAddress maps a RCPT TO address (login or alias) to its account.
	LookupAddress(ctx context.Context, addr string) (meta.Account, error)
	Mailbox(ctx context.Context, acct mail.AccountID, name string) (meta.Mailbox, error)
	CreateMailbox(ctx context.Context, acct mail.AccountID, name, specialUse string) (meta.Mailbox, error)
	// Counters hold the delivery markers that make retries idempotent.
	meta.Counters
}

// Ingester stores deliveries; *ingest.Ingester is one.
type Ingester interface {
	IngestMany(ctx context.Context, d ingest.Delivery) ([]ingest.TargetResult, error)
	NewSpool() *ingest.Spool
	MaxMessageSize() int64
}

var _ Ingester = (*ingest.Ingester)(nil)

// Deps are the gateway's collaborators. The blob store is reached only
// through the Ingester.
type Deps struct {
	Meta   Store
	Ingest Ingester
	Logger *slog.Logger
	// Clock defaults to time.Now (the date of the Received field).
	Clock func() time.Time
	// Metrics, when set, records sessions, bytes and deliveries by outcome.
	Metrics *gwmetrics.Gateway
}

// Gateway serves LMTP.
type Gateway struct {
	cfg     Config
	deps    Deps
	logger  *slog.Logger
	now     func() time.Time
	scripts *scriptCache

	tcpConns  connserve.Server // bounded per IP
	unixConns connserve.Server // one local peer: not bounded per IP
	tls       *tls.Config      // STARTTLS, when configured
	// stopLimits stops this pod's share of the connections-per-IP limit
	// kept in the metadata store.
	stopLimits func()
}

// New builds a gateway; Serve or Run starts it.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Meta == nil || deps.Ingest == nil {
		return nil, errors.New("lmtpgw: Meta and Ingest are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	g := &Gateway{cfg: cfg, deps: deps, logger: deps.Logger, now: deps.Clock, scripts: newScriptCache(1024)}
	g.tcpConns.DrainWindow = cfg.DrainWindow
	g.tcpConns.WrapConn = deps.Metrics.Conn
	g.unixConns.WrapConn = deps.Metrics.Conn
	g.tcpConns.Refuse = func(c net.Conn) {
		deps.Metrics.Refused()
		_, _ = fmt.Fprintf(c, "421 4.7.0 %s Too many connections from your address\r\n", cfg.Hostname)
	}
	g.unixConns.DrainWindow = cfg.DrainWindow
	if cfg.CertFile != "" {
		tc, err := certreload.Load("lmtp", cfg.CertFile, cfg.KeyFile, deps.Logger)
		if err != nil {
			return nil, err
		}
		g.tls = tc
	}
	_, g.stopLimits = connlimit.Limit(&g.tcpConns, deps.Meta, "lmtp", cfg.MaxConnsPerIP, deps.Logger)
	return g, nil
}

// MaxMessageSize is the SIZE the gateway announces.
func (g *Gateway) MaxMessageSize() int64 { return g.deps.Ingest.MaxMessageSize() }

// Serve accepts connections on ln (TCP or Unix) until ctx ends; then it
// closes every connection of that kind of listener and waits for their
// sessions. A delivery cut short this way is answered by no one, and the
// MTA retries it.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	conns := &g.tcpConns
	if ln.Addr().Network() == "unix" {
		conns = &g.unixConns
	}
	// go-smtp runs its own accept loop over a listener; it is fed the
	// connections that connserve admitted (per-IP bound, drain), one
	// session each (conn.go).
	feed := newFeed(ln.Addr())
	srv := g.smtpServer()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(feed)
	}()
	base := context.WithoutCancel(ctx)
	err := conns.Serve(ctx, ln, nil, func(c net.Conn, _ bool) connserve.Session {
		return newConnSession(base, g, feed, c)
	})
	_ = srv.Close()
	<-served
	if ctx.Err() != nil {
		g.stopLimits()
	}
	return err
}

// Run listens on the configured TCP address and Unix socket and serves
// both until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if g.cfg.ListenAddress != "" {
		ln, err := net.Listen("tcp", g.cfg.ListenAddress)
		if err != nil {
			return fmt.Errorf("lmtp: listen on %s: %w", g.cfg.ListenAddress, err)
		}
		lns = append(lns, ln)
	}
	if g.cfg.UnixSocket != "" {
		ln, err := ListenUnix(g.cfg.UnixSocket)
		if err != nil {
			closeAll()
			return err
		}
		lns = append(lns, ln)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(lns))
	for i, ln := range lns {
		g.logger.Info("listening", "addr", ln.Addr().String(), "network", ln.Addr().Network())
		wg.Go(func() { errs[i] = g.Serve(ctx, ln) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ListenUnix listens on a Unix socket at path, replacing a stale socket
// file left by a previous process (but nothing else), and makes it
// writable by the group, as MTAs usually run as their own user.
func ListenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("lmtp: listen on %s: exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("lmtp: listen on %s: another process is listening", path)
		}
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("lmtp: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("lmtp: chmod %s: %w", path, err)
	}
	return ln, nil
}

// smtpServer configures go-smtp for LMTP. Its ReadTimeout is left at zero:
// the connection wrapper enforces an idle timeout on every read instead
// (conn.go), because go-smtp sets a read deadline only per command line,
// which would let that one deadline cut a long DATA transfer short.
func (g *Gateway) smtpServer() *smtp.Server {
	s := smtp.NewServer(&backend{g: g})
	s.LMTP = true
	s.Network = "tcp"
	s.Domain = g.cfg.Hostname
	s.MaxRecipients = g.cfg.MaxRecipients
	s.MaxMessageBytes = g.deps.Ingest.MaxMessageSize()
	s.MaxLineLength = g.cfg.MaxLineLength
	s.WriteTimeout = g.cfg.WriteTimeout
	s.EnableSMTPUTF8 = true
	s.TLSConfig = g.tls // STARTTLS is offered when set
	s.ErrorLog = slogPrinter{g.logger}
	return s
}

// slogPrinter adapts go-smtp's Printf logger to slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.l.Warn("smtp server", "detail", fmt.Sprintf(format, v...))
}

func (p slogPrinter) Println(v ...any) {
	p.l.Warn("smtp server", "detail", fmt.Sprint(v...))
}
