// Package redismeta is the Redis backend of the metadata store (meta.Store).
//
// It runs unchanged on standalone Redis, Sentinel and Redis Cluster through
// go-redis' UniversalClient: every key of one account carries the hash tag
// {a:<id>} (see keys.go), so each mutation is one Lua script that changes
// one account atomically in one cluster slot and publishes its change event
// with SPUBLISH on the account's sharded pub/sub channel. Reads that can be
// big (ListEntries, ChangesSince) page through sorted sets and fetch hashes
// in pipelined chunks instead of one long blocking command.
//
// MODSEQ: one STORE, EXPUNGE, APPEND, COPY or MOVE allocates exactly one new
// MODSEQ per mailbox it changes; every entry updated by one STORE gets that
// same MODSEQ (RFC 7162 allows it). A fresh mailbox has HIGHESTMODSEQ 1.
//
// Cluster mode is explicit: Config.Cluster selects a ClusterClient (any
// number of seed addresses); MasterName selects Sentinel; otherwise Addrs
// must name one standalone server.
package redismeta

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/meta"
)

// Config configures the Redis connection.
type Config struct {
	Addrs    []string
	Username string
	Password string
	// PasswordFile, when set, is read by the wiring (LoadPasswordFile) and
	// overrides Password.
	PasswordFile string
	// MasterName selects Sentinel: Addrs are then the sentinels.
	MasterName string
	// Cluster selects Redis Cluster: Addrs are seed nodes.
	Cluster      bool
	DB           int
	KeyPrefix    string
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolSize     int
	// ChangeLogMax bounds the expunge log of each mailbox (entries).
	ChangeLogMax int
	TLS          bool
}

// RegisterFlags registers the flags with their defaults under
// -metadata.redis.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("metadata.redis.", f)
}

// RegisterFlagsWithPrefix registers the flags under prefix (e.g.
// "metadata.redis.").
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.Addrs = []string{"127.0.0.1:6379"}
	f.Func(prefix+"addrs", "comma-separated Redis addresses (seed nodes for a cluster, sentinels with -"+prefix+"master-name) (default 127.0.0.1:6379)", func(s string) error {
		c.Addrs = nil
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.Addrs = append(c.Addrs, a)
			}
		}
		return nil
	})
	f.StringVar(&c.Username, prefix+"username", "", "Redis ACL user name")
	f.StringVar(&c.Password, prefix+"password", "", "Redis password (prefer -"+prefix+"password-file)")
	f.StringVar(&c.PasswordFile, prefix+"password-file", "", "file holding the Redis password")
	f.StringVar(&c.MasterName, prefix+"master-name", "", "Sentinel master name; enables Sentinel mode")
	f.BoolVar(&c.Cluster, prefix+"cluster", false, "connect to a Redis Cluster")
	f.IntVar(&c.DB, prefix+"db", 0, "Redis database number (standalone and Sentinel only)")
	f.StringVar(&c.KeyPrefix, prefix+"key-prefix", "", "prefix of every Redis key")
	f.DurationVar(&c.DialTimeout, prefix+"dial-timeout", 5*time.Second, "Redis dial timeout")
	f.DurationVar(&c.ReadTimeout, prefix+"read-timeout", 3*time.Second, "Redis read timeout")
	f.DurationVar(&c.WriteTimeout, prefix+"write-timeout", 3*time.Second, "Redis write timeout")
	f.IntVar(&c.PoolSize, prefix+"pool-size", 0, "connections per Redis node (0: go-redis default)")
	f.IntVar(&c.ChangeLogMax, prefix+"change-log-max", DefaultChangeLogMax, "expunged UIDs kept per mailbox for QRESYNC")
	f.BoolVar(&c.TLS, prefix+"tls", false, "connect to Redis over TLS")
}

// DefaultChangeLogMax is the default length of the expunge log.
const DefaultChangeLogMax = 10000

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("metadata.redis.addrs: no address")
	case c.Cluster && c.MasterName != "":
		return errors.New("metadata.redis: cluster and master-name are exclusive")
	case !c.Cluster && c.MasterName == "" && len(c.Addrs) > 1:
		return errors.New("metadata.redis.addrs: several addresses need -metadata.redis.cluster or -metadata.redis.master-name")
	case c.Cluster && c.DB != 0:
		return errors.New("metadata.redis.db: must be 0 on a cluster")
	case c.ChangeLogMax < 0:
		return errors.New("metadata.redis.change-log-max: negative")
	case strings.ContainsAny(c.KeyPrefix, "{}"):
		return errors.New("metadata.redis.key-prefix: must not contain braces")
	}
	return nil
}

// LoadPasswordFile reads PasswordFile into Password, for the wiring.
func (c *Config) LoadPasswordFile() error {
	if c.PasswordFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return fmt.Errorf("read redis password file: %w", err)
	}
	c.Password = strings.TrimRight(string(b), "\r\n")
	return nil
}

// Store is a meta.Store over Redis.
type Store struct {
	c       redis.UniversalClient
	sc      noRetryScripter // runs the scripts (noretry.go)
	k       keys
	logMax  int
	page    int // UIDs per ZRANGE page in ListEntries (listPage; tests lower it)
	logger  *slog.Logger
	ownsCli bool
}

var _ meta.Store = (*Store)(nil)

// New connects (lazily: no command is sent) per cfg. It starts no
// goroutine of its own.
func New(cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &redis.UniversalOptions{
		Addrs:         cfg.Addrs,
		Username:      cfg.Username,
		Password:      cfg.Password,
		MasterName:    cfg.MasterName,
		IsClusterMode: cfg.Cluster,
		DB:            cfg.DB,
		DialTimeout:   cfg.DialTimeout,
		ReadTimeout:   cfg.ReadTimeout,
		WriteTimeout:  cfg.WriteTimeout,
		PoolSize:      cfg.PoolSize,
		// No retries by the client: go-redis retries a command whose
		// connection broke after it was sent, and most of our scripts are
		// not idempotent (a COPY run twice copies twice: the chaos run's
		// connection resets did that). A broken call is ErrUnavailable,
		// which callers treat as an unknown outcome.
		MaxRetries: -1,
	}
	if cfg.TLS {
		opts.TLSConfig = tlsConfig()
	}
	s := NewFromClient(redis.NewUniversalClient(opts), cfg, logger)
	s.ownsCli = true
	return s, nil
}

// NewFromClient returns a Store over an existing client (tests, or wiring
// that shares a client). Close does not close c.
func NewFromClient(c redis.UniversalClient, cfg Config, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logMax := cfg.ChangeLogMax
	if logMax <= 0 {
		logMax = DefaultChangeLogMax
	}
	return &Store{c: c, sc: noRetryScripter{c}, k: keys{prefix: cfg.KeyPrefix}, logMax: logMax, page: listPage, logger: logger}
}

// Close closes the client if New made it.
func (s *Store) Close() error {
	if !s.ownsCli {
		return nil
	}
	if err := s.c.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// Script error codes: the first word of an error raised by a script with
// error({err = CODE}).
var scriptErrors = map[string]error{
	"MSNOACCOUNT": meta.ErrNoSuchAccount,
	"MSNOMAILBOX": meta.ErrNoSuchMailbox,
	"MSEXISTS":    meta.ErrExists,
	"MSOVERQUOTA": meta.ErrOverQuota,
	"MSLEASEHELD": meta.ErrLeaseHeld,
	"MSLEASELOST": meta.ErrLeaseLost,
	"MSINVALID":   meta.ErrInvalidArgument,
	"MSPERM":      meta.ErrPermission,
	"MSCONFLICT":  meta.ErrConflict,
}

// Redis error prefixes that mean "temporarily unavailable".
var unavailablePrefixes = []string{
	"LOADING", "BUSY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY",
	"NOREPLICAS", "OOM", "MOVED", "ASK", "NOTBUSY", "UNBLOCKED",
}

// wrap maps a go-redis error to the meta sentinels, wrapped with what was
// being attempted (format like fmt.Sprintf). Raw Redis text is kept only
// after the sentinel, never as the only message.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		word, _, _ := strings.Cut(strings.TrimPrefix(msg, "ERR "), " ")
		if sentinel, ok := scriptErrors[word]; ok {
			return fmt.Errorf("%s: %w", what, sentinel)
		}
		for _, p := range unavailablePrefixes {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("%s: %w (redis: %s)", what, meta.ErrUnavailable, msg)
			}
		}
		return fmt.Errorf("%s: redis error: %w", what, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, meta.ErrUnavailable, err)
	}
	// io.EOF, connection resets and the like: the connection broke.
	return fmt.Errorf("%s: %w: %w", what, meta.ErrUnavailable, err)
}

func tlsConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
