package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"

	adminv1 "github.com/mailstore/mailstore/proto/mailstore/admin/v1"

	"github.com/mailstore/mailstore/pkg/password"
)

// stubAdmin records alias requests; methods it does not override panic.
type stubAdmin struct {
	adminv1.AdminServiceClient
	calls   []string
	aliases []string
}

func (s *stubAdmin) AddAlias(_ context.Context, r *adminv1.AliasRequest, _ ...grpc.CallOption) (*adminv1.Account, error) {
	s.calls = append(s.calls, "add "+r.Login+" "+r.Alias)
	s.aliases = append(s.aliases, r.Alias)
	return &adminv1.Account{Login: r.Login, Aliases: s.aliases}, nil
}

func (s *stubAdmin) RemoveAlias(_ context.Context, r *adminv1.AliasRequest, _ ...grpc.CallOption) (*adminv1.Account, error) {
	s.calls = append(s.calls, "del "+r.Login+" "+r.Alias)
	s.aliases = nil
	return &adminv1.Account{Login: r.Login}, nil
}

func (s *stubAdmin) GetAccount(_ context.Context, r *adminv1.AccountRef, _ ...grpc.CallOption) (*adminv1.Account, error) {
	return &adminv1.Account{Login: r.Login, Id: "1", Aliases: s.aliases, Quota: &adminv1.Quota{}, Pop3: &adminv1.POP3Policy{}}, nil
}

func TestAccountAlias(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCall  string
		wantOut   string
		wantUsage bool
	}{
		{"Add", []string{"account", "alias", "add", "u@example.com", "Info@example.com"}, "add u@example.com Info@example.com", "aliases of u@example.com: Info@example.com\n", false},
		{"Del", []string{"account", "alias", "del", "u@example.com", "info@example.com"}, "del u@example.com info@example.com", "aliases of u@example.com: none\n", false},
		{"UnknownVerb", []string{"account", "alias", "list", "u@example.com", "x@example.com"}, "", "", true},
		{"MissingAlias", []string{"account", "alias", "add", "u@example.com"}, "", "", true},
		{"EmptyUser", []string{"account", "alias", "add", "", "x@example.com"}, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub := &stubAdmin{}
			var out bytes.Buffer
			c := &cli{client: stub, stdout: &out}
			err := c.dispatch(t.Context(), tc.args)
			var ue usageError
			if got := errors.As(err, &ue); got != tc.wantUsage {
				t.Fatalf("err = %v, usage error %t, want %t", err, got, tc.wantUsage)
			}
			if tc.wantUsage {
				if len(stub.calls) != 0 {
					t.Errorf("calls = %q, want none", stub.calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(stub.calls) != 1 || stub.calls[0] != tc.wantCall {
				t.Errorf("calls = %q, want [%q]", stub.calls, tc.wantCall)
			}
			if out.String() != tc.wantOut {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestAccountShowAliases(t *testing.T) {
	stub := &stubAdmin{aliases: []string{"info@example.com", "sales@example.com"}}
	var out bytes.Buffer
	c := &cli{client: stub, stdout: &out}
	if err := c.dispatch(t.Context(), []string{"account", "show", "u@example.com"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\naliases: ") || !strings.Contains(out.String(), "info@example.com, sales@example.com\n") {
		t.Errorf("account show output lacks the aliases:\n%s", out.String())
	}
}

// TestPasswordHash: `password hash` prints a PHC string that verifies
// against the password, without calling the server (the stub panics on
// any call).
func TestPasswordHash(t *testing.T) {
	var out bytes.Buffer
	c := &cli{client: &stubAdmin{}, stdin: strings.NewReader("s3cret pass\n"), stdout: &out}
	if err := c.dispatch(t.Context(), []string{"password", "hash", "--password-stdin"}); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSuffix(out.String(), "\n")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "\n") {
		t.Fatalf("printed %q, want one argon2id PHC string with the default parameters", out.String())
	}
	for pw, want := range map[string]bool{"s3cret pass": true, "s3cret": false} {
		if err := password.Verify(pw, h); (err == nil) != want {
			t.Errorf("Verify(%q) = %v, want success %v", pw, err, want)
		}
	}
	var ue usageError
	if err := c.dispatch(t.Context(), []string{"password", "hash", "extra"}); !errors.As(err, &ue) {
		t.Errorf("password hash extra: %v, want a usage error", err)
	}
}
