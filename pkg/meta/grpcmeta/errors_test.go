package grpcmeta_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
)

var sentinels = []struct {
	err  error
	code codes.Code
}{
	{meta.ErrNoSuchAccount, codes.NotFound},
	{meta.ErrNoSuchMailbox, codes.NotFound},
	{meta.ErrNoSuchMessage, codes.NotFound},
	{meta.ErrExists, codes.AlreadyExists},
	{meta.ErrInvalidArgument, codes.InvalidArgument},
	{mail.ErrInvalidMailboxName, codes.InvalidArgument},
	{mail.ErrInvalidFlag, codes.InvalidArgument},
	{meta.ErrOverQuota, codes.ResourceExhausted},
	{meta.ErrLimit, codes.ResourceExhausted},
	{meta.ErrConflict, codes.FailedPrecondition},
	{meta.ErrLeaseHeld, codes.FailedPrecondition},
	{meta.ErrLeaseLost, codes.FailedPrecondition},
	{meta.ErrAuthFailed, codes.Unauthenticated},
	{meta.ErrDisabled, codes.PermissionDenied},
	{meta.ErrPermission, codes.PermissionDenied},
	{meta.ErrUnavailable, codes.Unavailable},
}

// TestErrorRoundTrip checks that every sentinel, wrapped on the server,
// still matches errors.Is on the client, and no other sentinel does.
func TestErrorRoundTrip(t *testing.T) {
	for _, tc := range sentinels {
		t.Run(tc.err.Error(), func(t *testing.T) {
			store := &stubStore{err: fmt.Errorf("get account a1: %w", tc.err)}
			ts := startServer(t, store, nil)
			_, err := ts.client.Account(testCtx(t), "a1")
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.err)
			}
			for _, other := range sentinels {
				if other.err != tc.err && errors.Is(err, other.err) {
					t.Errorf("err = %v also matches %v", err, other.err)
				}
			}
			if got := status.Code(err); got != tc.code {
				t.Errorf("code = %v, want %v", got, tc.code)
			}
			if want := "get account a1: " + tc.err.Error(); err.Error() != want {
				t.Errorf("message = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     []error
		notWant  []error
		code     codes.Code
		message  string // exact when set
		contains string
	}{
		{
			name: "two sentinels",
			err:  fmt.Errorf("create mailbox: %w: %w", meta.ErrInvalidArgument, mail.ErrInvalidMailboxName),
			want: []error{meta.ErrInvalidArgument, mail.ErrInvalidMailboxName},
			code: codes.InvalidArgument,
		},
		{
			name:    "auth failed wins over disabled",
			err:     fmt.Errorf("authenticate: %w: %w", meta.ErrDisabled, meta.ErrAuthFailed),
			want:    []error{meta.ErrAuthFailed, meta.ErrDisabled},
			notWant: []error{meta.ErrUnavailable},
			code:    codes.Unauthenticated,
		},
		{
			name:    "deadline",
			err:     fmt.Errorf("redis: %w", context.DeadlineExceeded),
			want:    []error{context.DeadlineExceeded},
			notWant: []error{meta.ErrUnavailable},
			code:    codes.DeadlineExceeded,
		},
		{
			name: "canceled",
			err:  fmt.Errorf("redis: %w", context.Canceled),
			want: []error{context.Canceled},
			code: codes.Canceled,
		},
		{
			name: "unavailable and deadline",
			err:  fmt.Errorf("redis: %w: %w", meta.ErrUnavailable, context.DeadlineExceeded),
			want: []error{meta.ErrUnavailable},
			code: codes.Unavailable,
		},
		{
			name:    "internal hides details",
			err:     errors.New("dial tcp 10.0.0.7:6379: secret topology"),
			notWant: []error{meta.ErrUnavailable, meta.ErrInvalidArgument},
			code:    codes.Internal,
			message: "GetAccount: rpc error: code = Internal desc = internal error",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, &stubStore{err: tc.err}, nil)
			_, err := ts.client.Account(testCtx(t), "a1")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want errors.Is %v", err, w)
				}
			}
			for _, w := range tc.notWant {
				if errors.Is(err, w) {
					t.Errorf("err = %v, must not match %v", err, w)
				}
			}
			if got := status.Code(err); got != tc.code {
				t.Errorf("code = %v, want %v", got, tc.code)
			}
			if tc.message != "" && err.Error() != tc.message {
				t.Errorf("message = %q, want %q", err.Error(), tc.message)
			}
		})
	}
}

// TestErrorDetail checks the wire format other clients rely on: the code
// and the ErrorInfo reason and domain.
func TestErrorDetail(t *testing.T) {
	ts := startServer(t, &stubStore{err: fmt.Errorf("lease pop3: %w", meta.ErrLeaseHeld)}, nil)
	_, err := ts.client.Account(testCtx(t), "a1")
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("err %v carries no status", err)
	}
	if st.Code() != codes.FailedPrecondition {
		t.Errorf("code = %v, want FailedPrecondition", st.Code())
	}
	var reasons []string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == grpcmeta.ErrorDomain {
			reasons = append(reasons, info.GetReason())
		}
	}
	if len(reasons) != 1 || reasons[0] != "LEASE_HELD" {
		t.Errorf("reasons = %v, want [LEASE_HELD]", reasons)
	}
}

func TestTransportFailure(t *testing.T) {
	// A port nobody listens on: connection refused.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c := grpcmeta.New(dial(t, addr))
	_, err = c.Account(testCtx(t), "a1")
	if !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.HasPrefix(err.Error(), meta.ErrUnavailable.Error()+": GetAccount: ") {
		t.Errorf("message = %q, want it to say unavailable and the method", err.Error())
	}
}

func TestClientDeadline(t *testing.T) {
	ts := startServer(t, &stubStore{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ts.client.Account(ctx, "a1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestAuthenticate(t *testing.T) {
	ts := startServer(t, &stubStore{}, stubAuth{})
	tests := []struct {
		name, login, password string
		wantErr               error
	}{
		{"ok", "user", "secret", nil},
		{"latin-1 password", "user", "s\xe9cret", nil},
		{"latin-1 login", "us\xe9r", "secret", meta.ErrAuthFailed},
		{"wrong password", "user", "wrong", meta.ErrAuthFailed},
		{"unknown login", "nobody", "secret", meta.ErrAuthFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ts.client.Authenticate(testCtx(t), tc.login, tc.password, "192.0.2.1:1234")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (a.ID != "a1" || a.Login != "user" || a.PasswordHash != "") {
				t.Errorf("account = %+v, want a1/user without a hash", a)
			}
		})
	}
	t.Run("no authenticator", func(t *testing.T) {
		ts := startServer(t, &stubStore{}, nil)
		_, err := ts.client.Authenticate(testCtx(t), "user", "secret", "")
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("err = %v, want Unimplemented", err)
		}
	})
}

// TestNoPasswordHash checks that account records cross the wire without
// the hash the store holds.
func TestNoPasswordHash(t *testing.T) {
	ts := startServer(t, &stubStore{}, nil)
	a, err := ts.client.Account(testCtx(t), "a1")
	if err != nil {
		t.Fatal(err)
	}
	if a.PasswordHash != "" || a.Login != "user@example.com" {
		t.Errorf("account = %+v, want login without hash", a)
	}
}

// TestNotUTF8 checks that arguments proto3 cannot carry get the store's
// answer, not a marshaling failure.
func TestNotUTF8(t *testing.T) {
	c := startServer(t, &stubStore{}, nil).client
	ctx := testCtx(t)
	const bad = "a\xffb"
	tests := []struct {
		name string
		call func() error
		want []error
	}{
		{"mailbox name", func() error { _, err := c.CreateMailbox(ctx, "a1", bad, ""); return err },
			[]error{meta.ErrInvalidArgument, mail.ErrInvalidMailboxName}},
		{"rename target", func() error { return c.RenameMailbox(ctx, "a1", "x", bad) },
			[]error{meta.ErrInvalidArgument, mail.ErrInvalidMailboxName}},
		{"flag", func() error {
			_, err := c.StoreFlags(ctx, "a1", 1, meta.FlagChange{UIDs: mail.AllUIDs(), Op: meta.FlagsAdd, Flags: []mail.Flag{bad}})
			return err
		}, []error{meta.ErrInvalidArgument, mail.ErrInvalidFlag}},
		{"login lookup", func() error { _, err := c.LookupLogin(ctx, bad); return err }, []error{meta.ErrNoSuchAccount}},
		{"account id", func() error { _, err := c.Account(ctx, bad); return err }, []error{meta.ErrNoSuchAccount}},
		{"address lookup", func() error { _, err := c.LookupAddress(ctx, bad); return err }, []error{meta.ErrNoSuchAccount}},
		{"alias to add", func() error { _, err := c.AddAlias(ctx, "a1", bad+"@example.com"); return err }, []error{meta.ErrInvalidArgument}},
		{"alias to remove", func() error { _, err := c.RemoveAlias(ctx, "a1", bad+"@example.com"); return err }, []error{meta.ErrInvalidArgument}},
		{"counter key", func() error { _, err := c.Counter(ctx, bad); return err }, []error{meta.ErrInvalidArgument}},
		{"slot key", func() error { _, err := c.AcquireSlot(ctx, bad, "pod", 1, time.Minute); return err }, []error{meta.ErrInvalidArgument}},
		{"slot holder", func() error { return c.ReleaseSlot(ctx, "k", bad) }, []error{meta.ErrInvalidArgument}},
		{"slot keys to refresh", func() error { return c.RefreshSlots(ctx, "pod", []string{"k", bad}, time.Minute) }, []error{meta.ErrInvalidArgument}},
		{"slot total key", func() error { _, err := c.SlotTotal(ctx, bad); return err }, []error{meta.ErrInvalidArgument}},
		{"sieve script", func() error {
			s := bad
			_, err := c.UpdateAccount(ctx, "a1", meta.AccountUpdate{SieveScript: &s})
			return err
		}, []error{meta.ErrInvalidArgument}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want errors.Is %v", err, w)
				}
			}
		})
	}
}
