package metasvc

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/mailstore/mailstore/proto/mailstore/admin/v1"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
	"github.com/mailstore/mailstore/pkg/password"
)

// clock is a settable clock shared by the store and the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	svc   *Service
	store meta.Store
	blobs blob.Store
	ing   *ingest.Ingester
	clock *clock
}

// newFixture runs the service over the real embedded backends.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := &clock{t: time.Now()}
	dir := t.TempDir()
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil, localmeta.WithClock(c.now), localmeta.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Auth:  AuthConfig{FailureWindow: time.Minute, MaxAccountFailures: 3},
		Sweep: SweepConfig{Interval: time.Minute, Grace: time.Hour, OrphanInterval: time.Hour, OrphanAge: 24 * time.Hour},
	}
	svc, err := New(cfg, Deps{Store: store, Blobs: blobs, PasswordParams: &password.Fast, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	ing, err := ingest.New(ingest.Config{MaxMessageSize: 1 << 20}, ingest.Deps{Meta: store, Blobs: blobs, Clock: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, store: store, blobs: blobs, ing: ing, clock: c}
}

func (f *fixture) addAccount(t *testing.T, login, pw string) meta.Account {
	t.Helper()
	if _, err := f.svc.admin.AddAccount(t.Context(), &adminv1.AddAccountRequest{Login: login, Password: pw}); err != nil {
		t.Fatal(err)
	}
	a, err := f.store.LookupLogin(t.Context(), login)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) deliver(t *testing.T, acct mail.AccountID, mbox string, flags ...mail.Flag) (mail.MailboxID, ingest.Result) {
	t.Helper()
	m, err := f.store.Mailbox(t.Context(), acct, mbox)
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: test\r\n\r\nbody\r\n"
	res, err := f.ing.Ingest(t.Context(), ingest.Request{
		Target: ingest.Target{Account: acct, Mailbox: m.ID, MailboxName: mbox, Flags: flags},
		Size:   int64(len(body)), Body: strings.NewReader(body),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID, res
}

func (f *fixture) exists(t *testing.T, acct mail.AccountID, id mail.BlobID) bool {
	t.Helper()
	_, err := f.blobs.Stat(t.Context(), acct, id)
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestSweepReleasedBlobs(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.addAccount(t, "sweep@example.com", "pw")
	inbox, res := f.deliver(t, a.ID, mail.Inbox)
	archive, err := f.store.Mailbox(ctx, a.ID, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := f.store.Copy(ctx, a.ID, inbox, mail.NewUIDSet(res.Appended.UID), archive.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.Expunge(ctx, a.ID, inbox, mail.AllUIDs()); err != nil {
		t.Fatal(err)
	}
	f.clock.add(2 * time.Hour)
	if n, err := f.svc.SweepAccount(ctx, a.ID, false); err != nil || n != 0 {
		t.Fatalf("sweep while a copy refers to the blob: deleted %d, err %v", n, err)
	}
	if !f.exists(t, a.ID, res.Blob) {
		t.Fatal("a blob still referenced by a copy was deleted")
	}

	if _, _, err := f.store.Expunge(ctx, a.ID, archive.ID, mail.NewUIDSet(cp.Dest...)); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.SweepAccount(ctx, a.ID, false); err != nil || n != 0 {
		t.Fatalf("sweep within the grace period: deleted %d, err %v", n, err)
	}
	if !f.exists(t, a.ID, res.Blob) {
		t.Fatal("blob deleted within the grace period")
	}
	f.clock.add(2 * time.Hour)
	if n, err := f.svc.SweepAccount(ctx, a.ID, false); err != nil || n != 1 {
		t.Fatalf("sweep after the grace period: deleted %d, err %v", n, err)
	}
	if f.exists(t, a.ID, res.Blob) {
		t.Fatal("released blob not deleted after the grace period")
	}
	if p, err := f.store.PendingBlobs(ctx, a.ID, f.clock.now(), 10); err != nil || len(p) != 0 {
		t.Fatalf("pending after sweep: %v %v", p, err)
	}
	metatest.CheckAccount(t, f.store, a.ID)
}

func TestSweepOrphans(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.addAccount(t, "orphans@example.com", "pw")
	_, kept := f.deliver(t, a.ID, mail.Inbox)
	// A blob stored without an entry: a crash between upload and commit.
	orphan := blob.NewBlobID(f.clock.now())
	if _, err := f.blobs.Put(ctx, a.ID, orphan, strings.NewReader("lost"), blob.Meta{Account: a.ID, Mailbox: mail.Inbox}, blob.PutOptions{Size: 4}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.SweepAccount(ctx, a.ID, true); err != nil || n != 0 {
		t.Fatalf("orphan sweep before the orphan age: deleted %d, err %v", n, err)
	}
	f.clock.add(25 * time.Hour)
	if n, err := f.svc.SweepAccount(ctx, a.ID, true); err != nil || n != 1 {
		t.Fatalf("orphan sweep: deleted %d, err %v", n, err)
	}
	if f.exists(t, a.ID, orphan) {
		t.Fatal("orphan not deleted")
	}
	if !f.exists(t, a.ID, kept.Blob) {
		t.Fatal("a referenced blob was deleted by the orphan sweep")
	}
}

// TestSweepWaitsForRecovery: a sweep never runs while a recovery holds
// the account (its index is empty then, and every blob looks orphaned).
func TestSweepWaitsForRecovery(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.addAccount(t, "busy@example.com", "pw")
	lease, err := f.store.AcquireLease(ctx, a.ID, maintenanceLease, "recovery", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SweepAccount(ctx, a.ID, true); !errors.Is(err, meta.ErrLeaseHeld) {
		t.Fatalf("sweep during recovery: %v, want ErrLeaseHeld", err)
	}
	if err := f.store.ReleaseLease(ctx, a.ID, maintenanceLease, lease.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SweepAccount(ctx, a.ID, true); err != nil {
		t.Fatalf("sweep after recovery: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.addAccount(t, "Auth@Example.com", "right")
	auth := f.svc.Authenticator()
	got, err := auth.Authenticate(ctx, "auth@example.com", "right", "192.0.2.1:5000")
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if got.ID != a.ID || got.PasswordHash != "" {
		t.Fatalf("Authenticate returned %+v; want the account without its hash", got)
	}
	for _, tc := range []struct{ login, pw string }{
		{"auth@example.com", "wrong"},
		{"nobody@example.com", "right"},
		{"auth@example.com", ""},
	} {
		if _, err := auth.Authenticate(ctx, tc.login, tc.pw, "192.0.2.1:5000"); !errors.Is(err, meta.ErrAuthFailed) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrAuthFailed", tc.login, tc.pw, err)
		}
	}
	if n, _ := f.store.Counter(ctx, authFailIPKey("192.0.2.1")); n != 3 {
		t.Errorf("failures counted for the IP: %d, want 3", n)
	}
	if n, _ := f.store.Counter(ctx, authFailAccountKey(string(a.ID))); n != 2 {
		t.Errorf("failures counted for the account: %d, want 2", n)
	}
	// The third failure reaches MaxAccountFailures: even the right password
	// is refused for the rest of the window.
	_, _ = auth.Authenticate(ctx, "auth@example.com", "wrong", "[2001:db8::1]:1")
	if _, err := auth.Authenticate(ctx, "auth@example.com", "right", ""); !errors.Is(err, meta.ErrAuthFailed) {
		t.Fatalf("right password after too many failures: %v, want ErrAuthFailed", err)
	}
	if n, _ := f.store.Counter(ctx, authFailIPKey("2001:db8::1")); n != 1 {
		t.Errorf("failures counted for the IPv6 address: %d, want 1", n)
	}
	f.clock.add(2 * time.Minute)
	if _, err := auth.Authenticate(ctx, "auth@example.com", "right", ""); err != nil {
		t.Fatalf("right password after the window: %v", err)
	}
	disabled := true
	if _, err := f.store.UpdateAccount(ctx, a.ID, meta.AccountUpdate{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, "auth@example.com", "right", ""); !errors.Is(err, meta.ErrAuthFailed) {
		t.Fatalf("disabled account: %v, want ErrAuthFailed", err)
	}
}

func TestAdminValidation(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.addAccount(t, "admin@example.com", "pw")
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"empty password", func() error {
			_, err := f.svc.admin.AddAccount(ctx, &adminv1.AddAccountRequest{Login: "x@example.com"})
			return err
		}, codes.InvalidArgument},
		{"bad login", func() error {
			_, err := f.svc.admin.AddAccount(ctx, &adminv1.AddAccountRequest{Login: "", Password: "pw"})
			return err
		}, codes.InvalidArgument},
		{"duplicate", func() error {
			_, err := f.svc.admin.AddAccount(ctx, &adminv1.AddAccountRequest{Login: "ADMIN@example.com", Password: "pw"})
			return err
		}, codes.AlreadyExists},
		{"negative quota", func() error {
			_, err := f.svc.admin.SetQuota(ctx, &adminv1.SetQuotaRequest{Login: "admin@example.com", LimitBytes: -1})
			return err
		}, codes.InvalidArgument},
		{"unknown account", func() error {
			_, err := f.svc.admin.GetAccount(ctx, &adminv1.AccountRef{Login: "who@example.com"})
			return err
		}, codes.NotFound},
		{"bad pop3 mode", func() error {
			_, err := f.svc.admin.SetPOP3Policy(ctx, &adminv1.SetPOP3PolicyRequest{Login: "admin@example.com", Policy: &adminv1.POP3Policy{Mode: "sometimes"}})
			return err
		}, codes.InvalidArgument},
		{"days without count", func() error {
			_, err := f.svc.admin.SetPOP3Policy(ctx, &adminv1.SetPOP3PolicyRequest{Login: "admin@example.com", Policy: &adminv1.POP3Policy{Mode: "days"}})
			return err
		}, codes.InvalidArgument},
		{"sieve syntax error", func() error {
			_, err := f.svc.admin.SetSieveScript(ctx, &adminv1.SetSieveScriptRequest{Login: "admin@example.com", Script: "if true {\n  keep\n}"})
			if err != nil && !strings.Contains(err.Error(), "line 3, column 1") {
				return fmt.Errorf("error without the position: %w", err)
			}
			return err
		}, codes.InvalidArgument},
		{"sieve redirect", func() error {
			_, err := f.svc.admin.SetSieveScript(ctx, &adminv1.SetSieveScriptRequest{Login: "admin@example.com", Script: `redirect "a@example.org";`})
			if err != nil && !strings.Contains(err.Error(), "does not send mail") {
				return fmt.Errorf("error without the reason: %w", err)
			}
			return err
		}, codes.InvalidArgument},
		{"huge sieve script", func() error {
			_, err := f.svc.admin.SetSieveScript(ctx, &adminv1.SetSieveScriptRequest{Login: "admin@example.com", Script: strings.Repeat("#", MaxSieveScript+1)})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call()); got != tt.want {
				t.Fatalf("code %v, want %v", got, tt.want)
			}
		})
	}
	acct, err := f.svc.admin.SetPOP3Policy(ctx, &adminv1.SetPOP3PolicyRequest{Login: "admin@example.com", Policy: &adminv1.POP3Policy{Mode: "days", KeepDays: 14}})
	if err != nil || acct.Pop3.GetKeepDays() != 14 {
		t.Fatalf("valid POP3 policy: %v %v", acct, err)
	}
	if _, err := f.svc.admin.SetSieveScript(ctx, &adminv1.SetSieveScriptRequest{Login: "admin@example.com", Script: "keep;"}); err != nil {
		t.Fatal(err)
	}
	if s, err := f.svc.admin.GetSieveScript(ctx, &adminv1.AccountRef{Login: "admin@example.com"}); err != nil || s.Script != "keep;" {
		t.Fatalf("sieve script round trip: %q %v", s.GetScript(), err)
	}
}

func TestAdminDeleteAccountDeletesBlobs(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.addAccount(t, "gone@example.com", "pw")
	_, r1 := f.deliver(t, a.ID, mail.Inbox)
	_, r2 := f.deliver(t, a.ID, "Sent", mail.FlagSeen)
	if _, err := f.svc.admin.DeleteAccount(ctx, &adminv1.AccountRef{Login: "gone@example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []mail.BlobID{r1.Blob, r2.Blob} {
		if f.exists(t, a.ID, id) {
			t.Errorf("blob %s of a deleted account is still stored", id)
		}
	}
	if _, err := f.store.LookupLogin(ctx, "gone@example.com"); !errors.Is(err, meta.ErrNoSuchAccount) {
		t.Fatalf("deleted account still found: %v", err)
	}
}

func TestRecoverInProcess(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.addAccount(t, "rec@example.com", "pw")
	if _, err := f.store.CreateMailbox(ctx, a.ID, "Projects/Ünïcode", ""); err != nil {
		t.Fatal(err)
	}
	_, r1 := f.deliver(t, a.ID, mail.Inbox, mail.FlagSeen)
	_, r2 := f.deliver(t, a.ID, "Projects/Ünïcode", "$Label1")
	if _, err := f.store.UpdateAccount(ctx, a.ID, meta.AccountUpdate{LimitMsgs: ptr(int64(2))}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.ResetIndex(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.admin.Recover(ctx, &adminv1.AccountRef{Login: "rec@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Messages != 2 || len(resp.FailedBlobs) != 0 {
		t.Fatalf("recover: %+v", resp)
	}
	for _, w := range []struct {
		mbox string
		blob mail.BlobID
		flag mail.Flag
	}{{mail.Inbox, r1.Blob, mail.FlagSeen}, {"Projects/Ünïcode", r2.Blob, "$Label1"}} {
		m, err := f.store.Mailbox(ctx, a.ID, w.mbox)
		if err != nil {
			t.Fatal(err)
		}
		es, err := f.store.ListEntries(ctx, a.ID, m.ID, mail.AllUIDs(), meta.FieldAll, 0)
		if err != nil || len(es) != 1 || es[0].Blob != w.blob || len(es[0].Flags) != 1 || es[0].Flags[0] != w.flag {
			t.Fatalf("%s after recovery: %+v %v", w.mbox, es, err)
		}
	}
	got, err := f.store.Account(ctx, a.ID)
	if err != nil || got.Quota.LimitMessages != 2 || got.Quota.UsedMessages != 2 {
		t.Fatalf("quota after recovery: %+v %v", got.Quota, err)
	}
	for _, d := range mail.DefaultMailboxes {
		if _, err := f.store.Mailbox(ctx, a.ID, d.Name); err != nil {
			t.Errorf("default mailbox %s after recovery: %v", d.Name, err)
		}
	}
	metatest.CheckAccount(t, f.store, a.ID)
}

func ptr[T any](v T) *T { return &v }

func TestAdminAliases(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.addAccount(t, "owner@example.com", "pw")
	f.addAccount(t, "other@example.com", "pw")

	acct, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "Owner@example.com", Alias: "Sales@Example.com"})
	if err != nil {
		t.Fatalf("add alias: %v", err)
	}
	if got := acct.Aliases; len(got) != 1 || got[0] != "sales@example.com" {
		t.Errorf("aliases after add = %q, want [sales@example.com]", got)
	}
	if _, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "owner@example.com", Alias: "info@example.com"}); err != nil {
		t.Fatalf("add second alias: %v", err)
	}
	shown, err := f.svc.admin.GetAccount(ctx, &adminv1.AccountRef{Login: "owner@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got := shown.Aliases; len(got) != 2 || got[0] != "info@example.com" || got[1] != "sales@example.com" {
		t.Errorf("GetAccount aliases = %q, want sorted [info@ sales@]", got)
	}
	if got, err := f.store.LookupAddress(ctx, "SALES@example.com"); err != nil || got.ID != a.ID {
		t.Errorf("look up the alias: %v, %v; want account %s", got.ID, err, a.ID)
	}

	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"alias of another account", func() error {
			_, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "other@example.com", Alias: "sales@example.com"})
			return err
		}, codes.AlreadyExists},
		{"another account's login", func() error {
			_, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "owner@example.com", Alias: "other@example.com"})
			return err
		}, codes.AlreadyExists},
		{"login taken by an alias", func() error {
			_, err := f.svc.admin.AddAccount(ctx, &adminv1.AddAccountRequest{Login: "Sales@example.com", Password: "pw"})
			return err
		}, codes.AlreadyExists},
		{"malformed alias", func() error {
			_, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "owner@example.com", Alias: "no-domain"})
			return err
		}, codes.InvalidArgument},
		{"empty alias", func() error {
			_, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "owner@example.com", Alias: " "})
			return err
		}, codes.InvalidArgument},
		{"empty login", func() error {
			_, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Alias: "x@example.com"})
			return err
		}, codes.InvalidArgument},
		{"unknown account", func() error {
			_, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "who@example.com", Alias: "x@example.com"})
			return err
		}, codes.NotFound},
		{"remove another account's alias", func() error {
			_, err := f.svc.admin.RemoveAlias(ctx, &adminv1.AliasRequest{Login: "other@example.com", Alias: "sales@example.com"})
			return err
		}, codes.InvalidArgument},
		{"remove from unknown account", func() error {
			_, err := f.svc.admin.RemoveAlias(ctx, &adminv1.AliasRequest{Login: "who@example.com", Alias: "sales@example.com"})
			return err
		}, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call()); got != tt.want {
				t.Fatalf("code %v, want %v", got, tt.want)
			}
		})
	}

	acct, err = f.svc.admin.RemoveAlias(ctx, &adminv1.AliasRequest{Login: "owner@example.com", Alias: "SALES@example.com"})
	if err != nil {
		t.Fatalf("remove alias: %v", err)
	}
	if got := acct.Aliases; len(got) != 1 || got[0] != "info@example.com" {
		t.Errorf("aliases after remove = %q, want [info@example.com]", got)
	}
	if _, err := f.store.LookupAddress(ctx, "sales@example.com"); !errors.Is(err, meta.ErrNoSuchAccount) {
		t.Errorf("look up the removed alias: %v, want ErrNoSuchAccount", err)
	}
	if _, err := f.svc.admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "other@example.com", Alias: "sales@example.com"}); err != nil {
		t.Errorf("add the freed alias to another account: %v", err)
	}
}
