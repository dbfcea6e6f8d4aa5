package metasvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/password"
)

// AuthConfig tunes authentication.
type AuthConfig struct {
	// FailureWindow is the window over which failures are counted.
	FailureWindow time.Duration
	// MaxAccountFailures locks an account's password checks for the rest
	// of the window after that many failures (0: never). Failures per IP
	// are counted too, for the gateways' throttling.
	MaxAccountFailures int
}

// authenticator checks passwords against the store and counts failures in
// the shared counters, so every metadata replica sees the same totals.
type authenticator struct {
	store  meta.Store
	cfg    AuthConfig
	logger *slog.Logger
	// dummy is a valid hash verified for unknown logins, so that a wrong
	// login costs as much time as a wrong password.
	dummy string
}

var _ meta.Authenticator = (*authenticator)(nil)

func newAuthenticator(store meta.Store, cfg AuthConfig, params password.Params, logger *slog.Logger) (*authenticator, error) {
	dummy, err := password.Hash("mailstore-dummy-password", params)
	if err != nil {
		return nil, err
	}
	return &authenticator{store: store, cfg: cfg, logger: logger, dummy: dummy}, nil
}

// Counter keys for authentication failures; the gateways read the same keys
// to throttle.
func authFailIPKey(ip string) string           { return "authfail/ip/" + ip }
func authFailAccountKey(id string) string      { return "authfail/account/" + id }
func (a *authenticator) window() time.Duration { return max(a.cfg.FailureWindow, time.Second) }

func (a *authenticator) Authenticate(ctx context.Context, login, pw, remoteAddr string) (meta.Account, error) {
	login = strings.ToLower(strings.TrimSpace(login))
	acct, err := a.store.LookupLogin(ctx, login)
	switch {
	case errors.Is(err, meta.ErrNoSuchAccount):
		_ = password.Verify(pw, a.dummy)
		a.fail(ctx, remoteAddr, "")
		return meta.Account{}, fmt.Errorf("authenticate: %w", meta.ErrAuthFailed)
	case err != nil:
		return meta.Account{}, fmt.Errorf("authenticate: %w", err)
	}
	if a.cfg.MaxAccountFailures > 0 {
		n, err := a.store.Counter(ctx, authFailAccountKey(string(acct.ID)))
		if err != nil {
			return meta.Account{}, fmt.Errorf("authenticate: %w", err)
		}
		if n >= int64(a.cfg.MaxAccountFailures) {
			a.fail(ctx, remoteAddr, "")
			return meta.Account{}, fmt.Errorf("authenticate: too many failures: %w", meta.ErrAuthFailed)
		}
	}
	if err := password.Verify(pw, acct.PasswordHash); err != nil {
		if errors.Is(err, password.ErrMalformed) {
			a.logger.Warn("malformed password hash", "account", acct.ID)
		}
		a.fail(ctx, remoteAddr, string(acct.ID))
		return meta.Account{}, fmt.Errorf("authenticate: %w", meta.ErrAuthFailed)
	}
	if acct.Disabled {
		return meta.Account{}, fmt.Errorf("authenticate: %w", meta.ErrAuthFailed)
	}
	acct.PasswordHash = ""
	return acct, nil
}

// fail counts a failure; counting is best effort and never turns a failed
// login into a temporary error.
func (a *authenticator) fail(ctx context.Context, remoteAddr, acct string) {
	if ip := hostOnly(remoteAddr); ip != "" {
		if _, err := a.store.IncrCounter(ctx, authFailIPKey(ip), 1, a.window()); err != nil {
			a.logger.Warn("count auth failure", "err", err)
		}
	}
	if acct != "" {
		if _, err := a.store.IncrCounter(ctx, authFailAccountKey(acct), 1, a.window()); err != nil {
			a.logger.Warn("count auth failure", "err", err)
		}
	}
}

// hostOnly strips a port from "ip:port" or "[v6]:port".
func hostOnly(addr string) string {
	if addr == "" {
		return ""
	}
	if strings.HasPrefix(addr, "[") {
		if i := strings.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
	}
	if strings.Count(addr, ":") == 1 {
		host, _, _ := strings.Cut(addr, ":")
		return host
	}
	return addr
}
