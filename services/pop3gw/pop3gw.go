// Package pop3gw is the POP3 gateway: RFC 1939 with CAPA and response
// codes (RFC 2449, RFC 3206), SASL AUTH (RFC 5034), STLS (RFC 2595) and an
// implicit-TLS listener, over the metadata and blob services.
//
// It is stateless like the IMAP gateway. The maildrop is INBOX; a login
// takes the account's "pop3" lease in the metadata store (a fenced lease,
// renewed while the session lives), so only one POP3 session per account
// runs at a time whatever pod it lands on, and a dead pod's lock lapses
// after the lease TTL. The message list is a snapshot taken at login, so
// message numbers never move during a session; DELE marks are applied at
// QUIT as one Expunge, which IMAP sessions then see like any other.
//
// Octet counts are those of the wire form: the stored bytes with bare LF
// line ends sent as CRLF, dot-stuffed, and ended by a CRLF when the stored
// message lacks one. One transformer (wire.go) produces both the bytes RETR
// sends and the counts LIST and STAT announce, so they cannot disagree.
package pop3gw

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/certreload"
	"github.com/mailstore/mailstore/pkg/connlimit"
	"github.com/mailstore/mailstore/pkg/connserve"
	"github.com/mailstore/mailstore/pkg/gwmetrics"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// leaseName is the maildrop lock's lease name (RFC 1939 section 8: the
// server locks the maildrop for the session).
const leaseName = "pop3"

// Config configures the gateway.
type Config struct {
	ListenAddress    string
	TLSListenAddress string
	CertFile         string
	KeyFile          string
	// AllowPlaintextAuth allows USER/PASS and AUTH without TLS from any
	// client.
	AllowPlaintextAuth bool
	// AllowPlaintextLoopback allows it from loopback clients (the default:
	// a local client's traffic does not cross a network).
	AllowPlaintextLoopback bool
	// MaxLineLength bounds a command line. RFC 2449 allows 255 octets; we
	// accept more, as many clients send longer AUTH lines.
	MaxLineLength int
	// LeaseTTL is how long the maildrop lock outlives a pod that died
	// holding it; the session renews it every LeaseTTL/3.
	LeaseTTL       time.Duration
	IdleTimeout    time.Duration // RFC 1939: at least 10 minutes
	CommandTimeout time.Duration
	WriteTimeout   time.Duration
	// MaxAuthFailures closes a connection after that many failed
	// authentications; AuthFailureDelay is the first failure's delay,
	// doubling with each further one (at most 5s).
	MaxAuthFailures  int
	AuthFailureDelay time.Duration
	// MaxConnsPerIP bounds the connections from one client address,
	// across every pod sharing the metadata store.
	MaxConnsPerIP int
	// DrainWindow spreads the sessions' shutdown when the gateway stops
	// (set from -server.drain-window).
	DrainWindow time.Duration
	// CommandRate paces each session to that many commands per second
	// after a burst of CommandBurst (0: unpaced); a faster client waits.
	CommandRate  float64
	CommandBurst int
	// Keep is the server-wide leave-on-server policy ("none", "forever" or
	// "Nd") for accounts that have none of their own; LoginDelay the
	// server-wide minimum time between logins (RFC 2449 LOGIN-DELAY).
	// Validate fills in Default from them.
	Keep       string
	LoginDelay time.Duration
	Default    meta.POP3Policy
}

// RegisterFlags registers the gateway's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.ListenAddress, "pop3.listen-address", "127.0.0.1:1110", "POP3 listen address (plain, with STLS when a certificate is set).")
	f.StringVar(&c.TLSListenAddress, "pop3.tls-listen-address", "127.0.0.1:1995", "POP3 implicit-TLS listen address; used only when -pop3.tls.cert-file is set.")
	f.StringVar(&c.CertFile, "pop3.tls.cert-file", "", "PEM certificate chain for STLS and implicit TLS; reloaded when the file changes.")
	f.StringVar(&c.KeyFile, "pop3.tls.key-file", "", "PEM private key of the certificate.")
	f.BoolVar(&c.AllowPlaintextAuth, "pop3.allow-plaintext-auth", false, "Allow authentication without TLS from any client.")
	f.BoolVar(&c.AllowPlaintextLoopback, "pop3.allow-plaintext-loopback", true, "Allow authentication without TLS from loopback clients.")
	f.IntVar(&c.MaxLineLength, "pop3.max-line-length", 1024, "Longest command line, in bytes.")
	f.DurationVar(&c.LeaseTTL, "pop3.lease-ttl", 60*time.Second, "Lifetime of the maildrop lock, renewed every third of it while the session lives: how long a crashed pod's lock blocks the account.")
	f.DurationVar(&c.IdleTimeout, "pop3.idle-timeout", 10*time.Minute, "Autologout timer: how long a session may stay silent.")
	f.DurationVar(&c.CommandTimeout, "pop3.command-timeout", 2*time.Minute, "Deadline of one command's work against the metadata service.")
	f.DurationVar(&c.WriteTimeout, "pop3.write-timeout", 2*time.Minute, "How long a write to a client may block before the session is dropped.")
	f.IntVar(&c.MaxAuthFailures, "pop3.auth.max-failures", 5, "Failed authentications after which a connection is closed.")
	f.DurationVar(&c.AuthFailureDelay, "pop3.auth.failure-delay", 250*time.Millisecond, "Delay of the answer to a failed authentication, doubling with each failure on the connection (at most 5s).")
	f.IntVar(&c.MaxConnsPerIP, "pop3.max-connections-per-ip", 25, "Most POP3 connections from one client IP address, across every POP3 pod (0: no bound).")
	f.Float64Var(&c.CommandRate, "pop3.command-rate", 1000, "Commands per second a session may send after a burst; a faster client is slowed down, not refused (0: unpaced).")
	f.IntVar(&c.CommandBurst, "pop3.command-burst", 20000, "Commands a session may send at once before -pop3.command-rate paces it (20,000 lets a client RETR and DELE 10,000 messages in one go).")
	f.StringVar(&c.Keep, "pop3.keep", "none", "Server-wide leave-on-server policy for accounts without their own: none (DELE removes, RFC 1939), forever (DELE only hides the message from POP3), or Nd (kept N days after first retrieval, then removed by the metadata service's reaper). Set it the same on metadata and POP3 pods.")
	f.DurationVar(&c.LoginDelay, "pop3.login-delay", 0, "Server-wide minimum time between POP3 logins of one account (RFC 2449 LOGIN-DELAY), for accounts without their own; 0 for none.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.ListenAddress == "":
		return errors.New("-pop3.listen-address: must not be empty")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("-pop3.tls.cert-file and -pop3.tls.key-file: set both or neither")
	case c.MaxLineLength < 255:
		return errors.New("-pop3.max-line-length: must be at least 255 (RFC 2449)")
	case c.LeaseTTL < 3*time.Millisecond:
		return errors.New("-pop3.lease-ttl: must be at least 3ms")
	case c.IdleTimeout <= 0:
		return errors.New("-pop3.idle-timeout: must be positive")
	case c.CommandTimeout <= 0:
		return errors.New("-pop3.command-timeout: must be positive")
	case c.WriteTimeout <= 0:
		return errors.New("-pop3.write-timeout: must be positive")
	case c.MaxAuthFailures < 1:
		return errors.New("-pop3.auth.max-failures: must be at least 1")
	case c.AuthFailureDelay < 0:
		return errors.New("-pop3.auth.failure-delay: must not be negative")
	case c.MaxConnsPerIP < 0:
		return errors.New("-pop3.max-connections-per-ip: must not be negative")
	case c.CommandRate < 0:
		return errors.New("-pop3.command-rate: must not be negative")
	case c.CommandRate > 0 && c.CommandBurst < 1:
		return errors.New("-pop3.command-burst: must be at least 1")
	}
	return c.ParseDefault()
}

// ParseDefault fills in Default from Keep and LoginDelay. The metadata
// service's reaper needs the same server-wide default, so the wiring
// calls it for metadata pods too.
func (c *Config) ParseDefault() error {
	if c.LoginDelay < 0 || c.LoginDelay%time.Second != 0 {
		return errors.New("-pop3.login-delay: must be whole seconds, not negative")
	}
	keep := c.Keep
	if keep == "" {
		keep = "none"
	}
	p, err := meta.ParsePOP3Keep(keep)
	if err != nil {
		return fmt.Errorf("-pop3.keep: %w", err)
	}
	if p.Mode == meta.POP3Default {
		return errors.New("-pop3.keep: the server-wide policy must be none, forever or Nd")
	}
	p.LoginDelay = int(c.LoginDelay / time.Second)
	c.Default = p
	return nil
}

// Store is what the gateway asks of the metadata store.
type Store interface {
	meta.Leases
	meta.Counters
	Mailbox(ctx context.Context, acct mail.AccountID, name string) (meta.Mailbox, error)
	ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, changedSince mail.ModSeq) ([]meta.Entry, error)
	StoreFlags(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, c meta.FlagChange) (meta.FlagResult, error)
	Expunge(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet) ([]mail.UID, mail.ModSeq, error)
	MarkRetrieved(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, at time.Time) error
}

// Blobs is what the gateway asks of the blob store.
type Blobs interface {
	Get(ctx context.Context, acct mail.AccountID, id mail.BlobID, rg blob.Range) (io.ReadCloser, error)
}

// Deps are the gateway's collaborators.
type Deps struct {
	Meta   Store
	Auth   meta.Authenticator
	Blobs  Blobs
	Logger *slog.Logger
	// Metrics, when set, records sessions, commands, logins and bytes.
	Metrics *gwmetrics.Gateway
	// Pod names this process in lease holders (default: the host name).
	Pod string
}

// Gateway serves POP3.
type Gateway struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger
	tls    *tls.Config
	sizes  *sizeCache

	conns connserve.Server
	// stopLimits stops this pod's share of the connections-per-IP limit
	// kept in the metadata store.
	stopLimits func()
}

// New builds a gateway; Serve starts it.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Meta == nil || deps.Auth == nil || deps.Blobs == nil {
		return nil, errors.New("pop3gw: Meta, Auth and Blobs are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Pod == "" {
		deps.Pod, _ = os.Hostname()
	}
	g := &Gateway{cfg: cfg, deps: deps, logger: deps.Logger, sizes: newSizeCache(1 << 16)}
	g.conns.DrainWindow = cfg.DrainWindow
	g.conns.WrapConn = deps.Metrics.Conn
	_, g.stopLimits = connlimit.Limit(&g.conns, deps.Meta, "pop3", cfg.MaxConnsPerIP, deps.Logger)
	g.conns.Refuse = func(c net.Conn) {
		deps.Metrics.Refused()
		_, _ = io.WriteString(c, "-ERR [SYS/TEMP] Too many connections from your address\r\n")
	}
	if cfg.CertFile != "" {
		// Reloaded when the files change (certificate rotation).
		tc, err := certreload.Load("pop3", cfg.CertFile, cfg.KeyFile, deps.Logger)
		if err != nil {
			return nil, err
		}
		g.tls = tc
	}
	return g, nil
}

// TLSEnabled reports whether a certificate is configured.
func (g *Gateway) TLSEnabled() bool { return g.tls != nil }

// Serve accepts connections on ln until ctx ends; implicit makes every
// connection start with a TLS handshake. When ctx ends, every session of
// the gateway is told to end and Serve waits for them.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, implicit bool) error {
	if implicit && g.tls == nil {
		return errors.New("pop3gw: implicit TLS without a certificate")
	}
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
	g.stopLimits()
}

// sizeCache remembers wire sizes by blob: blobs are immutable, so a size
// once computed holds for every session on this pod. It is bounded; when
// full it starts over, which costs only recomputation.
type sizeCache struct {
	mu  sync.Mutex
	max int
	m   map[sizeKey]int64
}

type sizeKey struct {
	acct mail.AccountID
	blob mail.BlobID
}

func newSizeCache(max int) *sizeCache { return &sizeCache{max: max, m: map[sizeKey]int64{}} }

func (c *sizeCache) get(acct mail.AccountID, id mail.BlobID) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[sizeKey{acct, id}]
	return n, ok
}

func (c *sizeCache) put(acct mail.AccountID, id mail.BlobID, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[sizeKey{acct, id}] = n
}
