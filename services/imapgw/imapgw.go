// Package imapgw is the IMAP gateway: IMAP4rev2 (RFC 9051) and IMAP4rev1
// (RFC 3501) with the extensions real clients use, over the metadata and
// blob services. It is stateless: a session holds only its view of the
// selected mailbox (the sequence-number map and the changes it has yet to
// announce), and any session of any account may land on any pod.
//
// The protocol layer is ours (go-imap's server lacks CONDSTORE, QRESYNC,
// NOTIFY and a way to add commands): the wire package reads and writes the
// syntax; one file per command family implements the commands; view.go
// keeps a session's sequence map; hub.go holds one metadata Watch per
// account with sessions on this pod and signals those sessions, which then
// catch up from the change log (so a lost event is never a lost change).
package imapgw

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/certreload"
	"github.com/mailstore/mailstore/pkg/connlimit"
	"github.com/mailstore/mailstore/pkg/connserve"
	"github.com/mailstore/mailstore/pkg/gwmetrics"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/meta"
)

// Config configures the gateway.
type Config struct {
	ListenAddress    string
	TLSListenAddress string
	CertFile         string
	KeyFile          string
	// AllowPlaintextAuth allows LOGIN and AUTHENTICATE without TLS from
	// any client; loopback clients are always allowed.
	AllowPlaintextAuth bool
	// AllowPlaintextLoopback allows it from loopback clients (the
	// default: a local client's traffic does not cross a network).
	AllowPlaintextLoopback bool
	MaxLineLength          int
	// MaxLiteral bounds a literal that is not a message (APPEND literals
	// are bounded by the ingest limit, announced as APPENDLIMIT).
	MaxLiteral     int64
	IdleTimeout    time.Duration // autologout (RFC 9051: at least 30 min)
	CommandTimeout time.Duration
	// MaxAuthFailures closes a connection after that many failed
	// authentications; AuthFailureDelay is the first failure's delay,
	// doubling with each further one (at most 5s).
	MaxAuthFailures  int
	AuthFailureDelay time.Duration
	// WriteTimeout bounds each write to a client, so a client that stops
	// reading cannot hold a session (and its goroutine) forever.
	WriteTimeout time.Duration
	// MaxConnsPerIP bounds the connections from one client address,
	// across every pod sharing the metadata store.
	MaxConnsPerIP int
	// MaxConnsPerAccount bounds the sessions logged in to one account,
	// across pods.
	MaxConnsPerAccount int
	// DrainWindow spreads the sessions' shutdown when the gateway stops
	// (set from -server.drain-window).
	DrainWindow time.Duration
}

// RegisterFlags registers the gateway's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.ListenAddress, "imap.listen-address", "127.0.0.1:1143", "IMAP listen address (plain, with STARTTLS when a certificate is set).")
	f.StringVar(&c.TLSListenAddress, "imap.tls-listen-address", "127.0.0.1:1993", "IMAP implicit-TLS listen address; used only when -imap.tls.cert-file is set.")
	f.StringVar(&c.CertFile, "imap.tls.cert-file", "", "PEM certificate chain for STARTTLS and implicit TLS; reloaded when the file changes.")
	f.StringVar(&c.KeyFile, "imap.tls.key-file", "", "PEM private key of the certificate.")
	f.BoolVar(&c.AllowPlaintextAuth, "imap.allow-plaintext-auth", false, "Allow authentication without TLS from any client.")
	f.BoolVar(&c.AllowPlaintextLoopback, "imap.allow-plaintext-loopback", true, "Allow authentication without TLS from loopback clients.")
	f.IntVar(&c.MaxLineLength, "imap.max-line-length", 64<<10, "Longest command line, in bytes, outside literals.")
	f.Int64Var(&c.MaxLiteral, "imap.max-literal", 1<<20, "Largest literal that is not a message body (e.g. a SEARCH string).")
	f.DurationVar(&c.IdleTimeout, "imap.idle-timeout", 30*time.Minute, "Autologout timer: how long a session may stay silent (IDLE included).")
	f.DurationVar(&c.CommandTimeout, "imap.command-timeout", 2*time.Minute, "Deadline of one command's work against the metadata and blob services.")
	f.IntVar(&c.MaxAuthFailures, "imap.auth.max-failures", 5, "Failed authentications after which a connection is closed.")
	f.DurationVar(&c.AuthFailureDelay, "imap.auth.failure-delay", 250*time.Millisecond, "Delay of the answer to a failed authentication, doubling with each failure on the connection (at most 5s).")
	f.DurationVar(&c.WriteTimeout, "imap.write-timeout", 2*time.Minute, "How long a write to a client may block before the session is dropped.")
	f.IntVar(&c.MaxConnsPerIP, "imap.max-connections-per-ip", 25, "Most IMAP connections from one client IP address, across every IMAP pod (0: no bound).")
	f.IntVar(&c.MaxConnsPerAccount, "imap.max-connections-per-account", 100, "Most IMAP sessions logged in to one account, across every IMAP pod (0: no bound).")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ListenAddress == "" {
		return errors.New("-imap.listen-address: must not be empty")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("-imap.tls.cert-file and -imap.tls.key-file: set both or neither")
	}
	if c.MaxLineLength < 1024 {
		return errors.New("-imap.max-line-length: must be at least 1024")
	}
	if c.IdleTimeout < time.Minute {
		return errors.New("-imap.idle-timeout: must be at least 1m")
	}
	if c.CommandTimeout <= 0 {
		return errors.New("-imap.command-timeout: must be positive")
	}
	if c.MaxAuthFailures < 1 {
		return errors.New("-imap.auth.max-failures: must be at least 1")
	}
	if c.AuthFailureDelay < 0 {
		return errors.New("-imap.auth.failure-delay: must not be negative")
	}
	if c.WriteTimeout <= 0 {
		return errors.New("-imap.write-timeout: must be positive")
	}
	if c.MaxConnsPerIP < 0 {
		return errors.New("-imap.max-connections-per-ip: must not be negative")
	}
	if c.MaxConnsPerAccount < 0 {
		return errors.New("-imap.max-connections-per-account: must not be negative")
	}
	return nil
}

// Deps are the gateway's collaborators.
type Deps struct {
	Meta   meta.Store
	Auth   meta.Authenticator
	Blobs  blob.Store
	Ingest *ingest.Ingester
	Logger *slog.Logger
	// Metrics, when set, records sessions, commands, logins and bytes.
	Metrics *gwmetrics.Gateway
}

// Gateway serves IMAP.
type Gateway struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger
	tls    *tls.Config
	hub    *hub

	conns connserve.Server
	// limits holds this pod's share of the limits kept in the metadata
	// store (connections per IP and per account across pods).
	limits     *connlimit.Keeper
	stopLimits func()
}

// New builds a gateway; Serve and Run start it.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, deps: deps, logger: deps.Logger}
	g.conns.DrainWindow = cfg.DrainWindow
	g.conns.WrapConn = deps.Metrics.Conn
	g.limits, g.stopLimits = connlimit.Limit(&g.conns, deps.Meta, "imap", cfg.MaxConnsPerIP, deps.Logger)
	g.conns.Refuse = func(c net.Conn) {
		deps.Metrics.Refused()
		_, _ = io.WriteString(c, "* BYE [UNAVAILABLE] Too many connections from your address\r\n")
	}
	if cfg.CertFile != "" {
		// Reloaded when the files change (certificate rotation).
		tc, err := certreload.Load("imap", cfg.CertFile, cfg.KeyFile, deps.Logger)
		if err != nil {
			return nil, err
		}
		g.tls = tc
	}
	g.hub = newHub(deps.Meta, deps.Logger, deps.Metrics)
	return g, nil
}

// TLSEnabled reports whether a certificate is configured.
func (g *Gateway) TLSEnabled() bool { return g.tls != nil }

// Serve accepts connections on ln until ctx ends; implicit makes every
// connection start with a TLS handshake. When ctx ends, every session of
// the gateway is told to end and Serve waits for them.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, implicit bool) error {
	var tlsConfig *tls.Config
	if implicit {
		tlsConfig = g.tls
	}
	err := g.conns.Serve(ctx, ln, tlsConfig, func(c net.Conn, implicitTLS bool) connserve.Session {
		return newSession(ctx, g, c, implicitTLS)
	})
	if ctx.Err() != nil {
		g.shutdown()
	}
	return err
}

// shutdown tells every session to end and waits for them.
func (g *Gateway) shutdown() {
	g.conns.Shutdown()
	g.hub.close()
	g.stopLimits()
}
