package grpcmeta_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

// TestConformance runs the metadata contract's suite through the client,
// over real gRPC on loopback TCP, against localmeta behind the server.
func TestConformance(t *testing.T) {
	metatest.Run(t, newStore)
}

// openLocal opens a fresh embedded store, closed at cleanup.
func openLocal(t *testing.T) *localmeta.Store {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := localmeta.Open(localmeta.Config{Path: filepath.Join(t.TempDir(), "meta.db")}, logger)
	if err != nil {
		t.Fatalf("open localmeta: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore is the conformance suite's factory: a client over real gRPC on
// loopback TCP, served by a fresh localmeta store.
func newStore(t *testing.T) meta.Store {
	t.Helper()
	backend := openLocal(t)
	ts := startServer(t, backend, nil)
	return &hashReader{Client: ts.client, backend: backend}
}

// hashReader is the client as the suite needs it. Password hashes are
// write-only on the wire by design, so the suite's checks that a hash was
// stored read it back from the backend behind the server: that still
// proves CreateAccount and UpdateAccount carried it across, and every
// other field of the record comes over gRPC.
type hashReader struct {
	*grpcmeta.Client
	backend meta.Store
}

func (h *hashReader) withHash(ctx context.Context, a meta.Account, err error) (meta.Account, error) {
	if err != nil {
		return a, err
	}
	if a.PasswordHash != "" {
		return a, errors.New("password hash came over the wire")
	}
	b, err := h.backend.Account(ctx, a.ID)
	if err != nil {
		return meta.Account{}, err
	}
	a.PasswordHash = b.PasswordHash
	return a, nil
}

func (h *hashReader) CreateAccount(ctx context.Context, na meta.NewAccount) (meta.Account, error) {
	a, err := h.Client.CreateAccount(ctx, na)
	return h.withHash(ctx, a, err)
}

func (h *hashReader) Account(ctx context.Context, id mail.AccountID) (meta.Account, error) {
	a, err := h.Client.Account(ctx, id)
	return h.withHash(ctx, a, err)
}

func (h *hashReader) LookupLogin(ctx context.Context, login string) (meta.Account, error) {
	a, err := h.Client.LookupLogin(ctx, login)
	return h.withHash(ctx, a, err)
}

func (h *hashReader) UpdateAccount(ctx context.Context, id mail.AccountID, u meta.AccountUpdate) (meta.Account, error) {
	a, err := h.Client.UpdateAccount(ctx, id, u)
	return h.withHash(ctx, a, err)
}

func (h *hashReader) AddAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	a, err := h.Client.AddAlias(ctx, id, alias)
	return h.withHash(ctx, a, err)
}

func (h *hashReader) RemoveAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	a, err := h.Client.RemoveAlias(ctx, id, alias)
	return h.withHash(ctx, a, err)
}

func (h *hashReader) LookupAddress(ctx context.Context, addr string) (meta.Account, error) {
	a, err := h.Client.LookupAddress(ctx, addr)
	return h.withHash(ctx, a, err)
}

func (h *hashReader) ListAccounts(ctx context.Context) ([]meta.Account, error) {
	as, err := h.Client.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	for i := range as {
		if as[i], err = h.withHash(ctx, as[i], nil); err != nil {
			return nil, err
		}
	}
	return as, nil
}

// TestLocalRoundTrip drives a localmeta store through the client: the
// paths the conformance suite covers in depth, here as a smoke test that
// runs even while the suite is incomplete.
func TestLocalRoundTrip(t *testing.T) {
	backend := openLocal(t)
	ts := startServer(t, backend, nil)
	c := ts.client
	ctx := testCtx(t)

	a, err := c.CreateAccount(ctx, meta.NewAccount{Login: "User@Example.com", PasswordHash: "$argon2id$x"})
	if err != nil {
		t.Fatal(err)
	}
	if a.PasswordHash != "" {
		t.Errorf("hash came over the wire")
	}
	if b, err := backend.Account(ctx, a.ID); err != nil || b.PasswordHash != "$argon2id$x" {
		t.Errorf("backend account %+v, %v: want the hash stored", b, err)
	}
	if _, err := c.CreateAccount(ctx, meta.NewAccount{Login: "user@example.com"}); !errors.Is(err, meta.ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	inbox, err := c.Mailbox(ctx, a.ID, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mailbox(ctx, a.ID, "nope"); !errors.Is(err, meta.ErrNoSuchMailbox) {
		t.Errorf("missing mailbox: %v, want ErrNoSuchMailbox", err)
	}

	sub, err := c.Watch(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	app, err := c.AppendEntry(ctx, a.ID, inbox.ID, meta.NewEntry{Flags: []mail.Flag{mail.FlagSeen}, Size: 10, Blob: "b1", Structure: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, sub)
	if ev.Kind != meta.EventAppend || ev.Mailbox != inbox.ID || !ev.UIDs.Contains(app.UID) {
		t.Errorf("event = %+v, want append of UID %d", ev, app.UID)
	}
	es, err := c.ListEntries(ctx, a.ID, inbox.ID, mail.AllUIDs(), meta.FieldAll, 0)
	if err != nil || len(es) != 1 || es[0].UID != app.UID || es[0].Blob != "b1" || string(es[0].Structure) != "x" {
		t.Errorf("entries = %+v, %v", es, err)
	}
	if err := c.DeleteMailbox(ctx, a.ID, "INBOX"); !errors.Is(err, meta.ErrPermission) {
		t.Errorf("delete INBOX: %v, want ErrPermission", err)
	}
	l, err := c.AcquireLease(ctx, a.ID, "pop3", "test", waitBound)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireLease(ctx, a.ID, "pop3", "other", waitBound); !errors.Is(err, meta.ErrLeaseHeld) {
		t.Errorf("second acquire: %v, want ErrLeaseHeld", err)
	}
	if _, err := c.RenewLease(ctx, a.ID, "pop3", l.Token+1, waitBound); !errors.Is(err, meta.ErrLeaseLost) {
		t.Errorf("renew with wrong token: %v, want ErrLeaseLost", err)
	}

	ts.grpc.Stop()
	if err := waitEnd(t, sub); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("after server stop, Err = %v, want ErrUnavailable", err)
	}
	if _, err := c.Account(ctx, a.ID); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("after server stop: %v, want ErrUnavailable", err)
	}
}
