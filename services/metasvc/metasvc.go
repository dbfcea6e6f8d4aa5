// Package metasvc is the metadata service: the mailstore.metadata.v1 and
// mailstore.admin.v1 gRPC APIs over a chosen metadata backend (local bbolt
// or Redis), with password authentication, account recovery from the blob
// store, and the blob sweeper. It is stateless: every replica serves every
// account.
package metasvc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	adminv1 "github.com/mailstore/mailstore/proto/mailstore/admin/v1"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/meta/redismeta"
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/pkg/password"
	"github.com/mailstore/mailstore/pkg/storemetrics"
)

// Backends.
const (
	BackendLocal = "local"
	BackendRedis = "redis"
)

// Config is the metadata service's configuration.
type Config struct {
	ListenAddress string
	Backend       string
	Local         localmeta.Config
	Redis         redismeta.Config
	Auth          AuthConfig
	Sweep         SweepConfig
	// POP3Default is the server-wide POP3 leave-on-server policy, for
	// accounts whose own Mode is meta.POP3Default; the reaper expunges
	// retrieved INBOX messages of accounts whose effective policy is
	// meta.POP3KeepDays. Its Mode must not itself be POP3Default. The
	// root config sets it from the same flag as the POP3 gateway's
	// (-pop3.keep), so both agree on it.
	POP3Default meta.POP3Policy
	// POP3ReapInterval is the interval between runs of the POP3 reaper; 0
	// disables it.
	POP3ReapInterval time.Duration
}

// RegisterFlags registers the flags of the service and its backends.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.ListenAddress, "metadata.listen-address", "127.0.0.1:9201", "gRPC listen address of the metadata service.")
	f.StringVar(&c.Backend, "metadata.backend", BackendLocal, "Metadata backend: local (a bbolt file under the data dir; one metadata process only) or redis.")
	c.Local.RegisterFlags(f)
	c.Redis.RegisterFlags(f)
	f.DurationVar(&c.Auth.FailureWindow, "metadata.auth.failure-window", 15*time.Minute, "Window over which authentication failures are counted.")
	f.IntVar(&c.Auth.MaxAccountFailures, "metadata.auth.max-account-failures", 20, "Failures within the window after which an account's password checks are refused until the window ends (0: never).")
	f.DurationVar(&c.Sweep.Interval, "metadata.sweep.interval", time.Minute, "Interval between sweeps of blobs whose last message is gone (0: off).")
	f.DurationVar(&c.Sweep.Grace, "metadata.sweep.grace", time.Hour, "How long a released blob is kept before deletion.")
	f.DurationVar(&c.Sweep.OrphanInterval, "metadata.sweep.orphan-interval", 6*time.Hour, "Interval between sweeps for blobs that no message refers to (0: off).")
	f.DurationVar(&c.Sweep.OrphanAge, "metadata.sweep.orphan-age", 24*time.Hour, "Age after which an unreferenced blob is an orphan.")
	f.DurationVar(&c.POP3ReapInterval, "metadata.pop3.reap-interval", time.Hour, "Interval between runs of the POP3 reaper, which expunges INBOX messages retrieved by POP3 longer ago than the account's keep days (0: off).")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ListenAddress == "" {
		return errors.New("-metadata.listen-address: must not be empty")
	}
	switch c.Backend {
	case BackendLocal:
		if err := c.Local.Validate(); err != nil {
			return err
		}
	case BackendRedis:
		if err := c.Redis.Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-metadata.backend: unknown backend %q (want local or redis)", c.Backend)
	}
	if c.Auth.FailureWindow <= 0 {
		return errors.New("-metadata.auth.failure-window: must be positive")
	}
	if c.Sweep.Interval < 0 || c.Sweep.Grace < 0 || c.Sweep.OrphanInterval < 0 {
		return errors.New("-metadata.sweep.*: durations must not be negative")
	}
	if c.Sweep.OrphanInterval > 0 && c.Sweep.OrphanAge < time.Minute {
		return errors.New("-metadata.sweep.orphan-age: must be at least 1m")
	}
	if c.POP3ReapInterval < 0 {
		return errors.New("-metadata.pop3.reap-interval: must not be negative")
	}
	switch p := c.POP3Default; p.Mode {
	case meta.POP3Default, meta.POP3Delete, meta.POP3KeepForever:
		// An unset default (the zero Config) means delete: nothing to reap.
	case meta.POP3KeepDays:
		if p.KeepDays < 1 || p.KeepDays > meta.MaxPOP3KeepDays {
			return fmt.Errorf("POP3 default policy: keep days %d, want 1 to %d", p.KeepDays, meta.MaxPOP3KeepDays)
		}
	default:
		return fmt.Errorf("POP3 default policy: unknown mode %q", p.Mode)
	}
	return nil
}

// OpenStore opens the configured backend. dataDir holds the local file
// when -metadata.local.path is not set.
func OpenStore(cfg Config, dataDir string, logger *slog.Logger, reg prometheus.Registerer) (meta.Store, error) {
	switch cfg.Backend {
	case BackendRedis:
		rc := cfg.Redis
		if err := rc.LoadPasswordFile(); err != nil {
			return nil, err
		}
		s, err := redismeta.New(rc, logger)
		if err != nil {
			return nil, err
		}
		// Every Redis call is timed (mailstore_redis_*) and traced.
		s.AddHook(storemetrics.NewRedisHook(reg))
		if err := s.InstrumentTracing(); err != nil {
			s.Close()
			return nil, fmt.Errorf("trace redis: %w", err)
		}
		return s, nil
	default:
		lc := cfg.Local
		if lc.Path == "" {
			if err := os.MkdirAll(dataDir, 0o750); err != nil {
				return nil, fmt.Errorf("create data dir: %w", err)
			}
			lc.Path = filepath.Join(dataDir, "meta.db")
		}
		return localmeta.Open(lc, logger)
	}
}

// Deps are the service's collaborators.
type Deps struct {
	Store meta.Store
	// Blobs is the blob store, for recovery and sweeps; nil disables both.
	Blobs  blob.Store
	Logger *slog.Logger
	// PasswordParams default to password.Default.
	PasswordParams *password.Params
	// Now defaults to time.Now.
	Now func() time.Time
}

// Service is the metadata service.
type Service struct {
	grpc    *grpcmeta.Server
	cfg     Config
	deps    Deps
	auth    *authenticator
	admin   *admin
	sweeper *sweeper
	reaper  *reaper
}

// New builds the service; Run starts its background work.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	params := password.Default
	if deps.PasswordParams != nil {
		params = *deps.PasswordParams
	}
	auth, err := newAuthenticator(deps.Store, cfg.Auth, params, deps.Logger)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s/%d", host, os.Getpid())
	rec := &recoverer{store: deps.Store, blobs: deps.Blobs, limits: mime.Limits{}, logger: deps.Logger, holder: holder}
	return &Service{
		grpc:  grpcmeta.NewServer(deps.Store, auth, deps.Logger),
		cfg:   cfg,
		deps:  deps,
		auth:  auth,
		admin: &admin{store: deps.Store, blobs: deps.Blobs, params: params, recoverer: rec, logger: deps.Logger},
		sweeper: &sweeper{store: deps.Store, blobs: deps.Blobs, cfg: cfg.Sweep, logger: deps.Logger,
			holder: holder, now: deps.Now},
		reaper: &reaper{store: deps.Store, def: cfg.POP3Default, interval: cfg.POP3ReapInterval,
			logger: deps.Logger, holder: holder, now: deps.Now},
	}, nil
}

// Register adds the metadata and admin APIs to a gRPC server.
func (s *Service) Register(g *grpc.Server) {
	s.grpc.Register(g)
	adminv1.RegisterAdminServiceServer(g, s.admin)
}

// Drain ends the open Watch streams (their clients resubscribe elsewhere),
// so that a graceful stop of the gRPC server does not wait on them.
func (s *Service) Drain() { s.grpc.Drain() }

// Authenticator returns the password checker of the service.
func (s *Service) Authenticator() meta.Authenticator { return s.auth }

// Run runs the blob sweeper (when there is a blob store) and the POP3
// reaper until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	reaped := make(chan error, 1)
	go func() { reaped <- s.reaper.run(ctx) }()
	var err error
	if s.deps.Blobs == nil {
		<-ctx.Done()
	} else {
		err = s.sweeper.run(ctx)
	}
	return errors.Join(err, <-reaped)
}

// ReapPOP3 runs the POP3 reaper on one account now (for tests and
// mailctl) and returns how many messages it expunged.
func (s *Service) ReapPOP3(ctx context.Context, acct mail.AccountID) (int, error) {
	return s.reaper.ReapAccount(ctx, acct)
}

// SweepAccount runs one sweep of an account now (for tests and mailctl).
func (s *Service) SweepAccount(ctx context.Context, acct mail.AccountID, orphans bool) (int, error) {
	if s.deps.Blobs == nil {
		return 0, errors.New("sweep: no blob store")
	}
	return s.sweeper.SweepAccount(ctx, acct, orphans)
}
