package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/mailstore/mailstore/proto/mailstore/admin/v1"

	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
)

// TestInternalToken: with -grpc.token-file, the components reach each
// other with the token (an IMAP login crosses gateway → metadata), mailctl
// works with it, and calls without it are refused.
func TestInternalToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("a-long-shared-internal-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metaAddr, blobAddr, imapAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startProc(t, "all", nil, "-target=all", "-data-dir="+t.TempDir(), "-grpc.token-file="+tokenFile,
		"-metadata.listen-address="+metaAddr, "-metadata.address="+metaAddr,
		"-blob.listen-address="+blobAddr, "-blob.address="+blobAddr,
		"-imap.listen-address="+imapAddr, "-pop3.listen-address="+freeAddr(t))

	mailctl(t, metaAddr, "pw\n", false, "-token-file", tokenFile, "account", "add", "token@example.com", "--password-stdin")
	if msg := mailctl(t, metaAddr, "", true, "account", "list"); !strings.Contains(msg, "token") && !strings.Contains(strings.ToLower(msg), "unauthenticated") {
		t.Fatalf("mailctl without the token: %q", msg)
	}
	im := dialIMAP(t, imapAddr, "token@example.com", "pw")
	im.ok("SELECT INBOX")

	cc := dial(t, metaAddr)
	if _, err := grpcmeta.New(cc).LookupLogin(context.Background(), "token@example.com"); status.Code(err) != codes.Unauthenticated && !strings.Contains(err.Error(), "token") {
		t.Fatalf("metadata call without the token: %v", err)
	}
	if _, err := adminv1.NewAdminServiceClient(cc).ListAccounts(context.Background(), &adminv1.ListAccountsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("admin call without the token: %v", err)
	}
}
