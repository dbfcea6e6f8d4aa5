package mailstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/password"
)

// ensureDemo creates the demo account of `make run` when it does not exist,
// with a random password kept in <data-dir>/demo-password so that later
// runs can show it again.
func (a *App) ensureDemo(ctx context.Context) error {
	login := a.cfg.DemoAccount
	pwFile := filepath.Join(a.cfg.DataDir, "demo-password")
	_, err := a.metaStore.LookupLogin(ctx, login)
	switch {
	case err == nil:
		data, rerr := os.ReadFile(pwFile)
		if rerr != nil {
			a.DemoLogin, a.DemoPassword = login, "(set before; see mailctl account passwd)"
			return nil
		}
		a.DemoLogin, a.DemoPassword = login, strings.TrimSpace(string(data))
		return nil
	case !errors.Is(err, meta.ErrNoSuchAccount):
		return fmt.Errorf("look up demo account: %w", err)
	}
	pw := rand.Text()[:16]
	h, err := password.Hash(pw, password.Default)
	if err != nil {
		return err
	}
	if _, err := a.metaStore.CreateAccount(ctx, meta.NewAccount{Login: login, PasswordHash: h}); err != nil {
		return fmt.Errorf("create demo account: %w", err)
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("save demo password: %w", err)
	}
	a.DemoLogin, a.DemoPassword = login, pw
	return nil
}

func (a *App) initDemo() error {
	if a.cfg.DemoAccount == "" || a.metaStore == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.ensureDemo(ctx)
}
