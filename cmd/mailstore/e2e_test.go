package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/grpcblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

// TestEmbedded runs what `make run` runs: every component in one process
// on the embedded backends, with the demo account; then drives it with
// mailctl, the metadata API and HTTP, and checks that a restart keeps the
// data.
func TestEmbedded(t *testing.T) {
	dataDir := t.TempDir()
	metaAddr, blobAddr := freeAddr(t), freeAddr(t)
	args := []string{
		"-target=all", "-data-dir=" + dataDir, "-demo-account=demo@example.com",
		"-metadata.listen-address=" + metaAddr, "-metadata.address=" + metaAddr,
		"-blob.listen-address=" + blobAddr, "-blob.address=" + blobAddr,
		"-imap.listen-address=" + freeAddr(t), "-pop3.listen-address=" + freeAddr(t),
	}
	p := startProc(t, "all", nil, args...)

	m := regexp.MustCompile(`demo account: demo@example.com  password: (\S+)`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no demo password in the output:\n%s", p.out.String())
	}
	demoPW := m[1]
	ctx := t.Context()
	client := grpcmeta.New(dial(t, metaAddr))
	if _, err := client.Authenticate(ctx, "DEMO@example.com", demoPW, "127.0.0.1:1"); err != nil {
		t.Fatalf("demo login: %v", err)
	}
	if _, err := client.Authenticate(ctx, "demo@example.com", demoPW+"x", "127.0.0.1:1"); !errors.Is(err, meta.ErrAuthFailed) {
		t.Fatalf("wrong password: got %v, want ErrAuthFailed", err)
	}

	out := mailctl(t, metaAddr, "s3cret-pass\n", false, "account", "add", "alice@example.org", "--password-stdin")
	if !strings.Contains(out, "alice@example.org added") {
		t.Fatalf("account add said %q", out)
	}
	if msg := mailctl(t, metaAddr, "x\n", true, "account", "add", "alice@example.org", "--password-stdin"); !strings.Contains(msg, "already exists") {
		t.Fatalf("duplicate add said %q", msg)
	}
	if msg := mailctl(t, metaAddr, "", true, "account", "show", "nobody@example.org"); !strings.Contains(msg, "not found") {
		t.Fatalf("show of unknown account said %q", msg)
	}
	if msg := mailctl(t, metaAddr, "", true, "account", "frobnicate", "x"); !strings.Contains(msg, "unknown command") {
		t.Fatalf("unknown command said %q", msg)
	}
	mailctl(t, metaAddr, "", false, "account", "quota", "alice@example.org", "--bytes", "1000000", "--messages", "10")
	mailctl(t, metaAddr, "", false, "account", "pop3", "alice@example.org", "--keep=30d")
	show := mailctl(t, metaAddr, "", false, "account", "show", "alice@example.org")
	for _, want := range []string{"messages:  0 of 10", "bytes:     0 of 1000000", "keep 30 days"} {
		if !strings.Contains(show, want) {
			t.Errorf("account show lacks %q:\n%s", want, show)
		}
	}
	list := mailctl(t, metaAddr, "", false, "account", "list")
	if !strings.Contains(list, "alice@example.org") || !strings.Contains(list, "demo@example.com") {
		t.Errorf("account list:\n%s", list)
	}
	mboxes := mailctl(t, metaAddr, "", false, "mailbox", "list", "alice@example.org")
	for _, want := range []string{"INBOX", "Drafts", `\Drafts`, "Sent", "Trash", "Junk", "Archive"} {
		if !strings.Contains(mboxes, want) {
			t.Errorf("mailbox list lacks %q:\n%s", want, mboxes)
		}
	}
	mailctl(t, metaAddr, "n3w-pass\n", false, "account", "passwd", "alice@example.org", "--password-stdin")
	if _, err := client.Authenticate(ctx, "alice@example.org", "n3w-pass", ""); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	mailctl(t, metaAddr, "", false, "account", "disable", "alice@example.org")
	if _, err := client.Authenticate(ctx, "alice@example.org", "n3w-pass", ""); !errors.Is(err, meta.ErrAuthFailed) {
		t.Fatalf("login to a disabled account: %v", err)
	}
	mailctl(t, metaAddr, "", false, "account", "enable", "alice@example.org")

	// A message through the real ingest path, then HTTP endpoints.
	alice, err := client.LookupLogin(ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	ing := newIngester(t, client, blobAddr)
	inbox, err := client.Mailbox(ctx, alice.ID, mail.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	body := "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
	if _, err := ing.Ingest(ctx, ingest.Request{Target: ingest.Target{Account: alice.ID, Mailbox: inbox.ID, MailboxName: mail.Inbox}, Body: strings.NewReader(body), Size: int64(len(body))}); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	for path, want := range map[string]string{
		"/healthz": "ok", "/readyz": "ready",
		"/metrics":             "mailstore_grpc_server_requests_total",
		"/debug/pprof/cmdline": "mailstore",
	} {
		resp, err := http.Get("http://" + p.http + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}

	// A restart on the same data dir keeps accounts, messages and the
	// demo password.
	p.stop()
	p2 := startProc(t, "all-again", nil, args...)
	if !strings.Contains(p2.out.String(), "password: "+demoPW) {
		t.Fatalf("the demo password changed across restarts:\n%s", p2.out.String())
	}
	client = grpcmeta.New(dial(t, metaAddr))
	entries, err := client.ListEntries(ctx, alice.ID, inbox.ID, mail.AllUIDs(), meta.FieldAll, 0)
	if err != nil || len(entries) != 1 {
		t.Fatalf("after restart: %d entries, err %v", len(entries), err)
	}
	rc, err := grpcblob.New(dial(t, blobAddr)).Get(ctx, alice.ID, entries[0].Blob, blob.Whole)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != body {
		t.Fatalf("body after restart = %q, want %q", got, body)
	}
	mailctl(t, metaAddr, "", false, "account", "del", "alice@example.org")
	if _, err := client.LookupLogin(ctx, "alice@example.org"); !errors.Is(err, meta.ErrNoSuchAccount) {
		t.Fatalf("after delete: %v", err)
	}
}

// TestBadConfig: a bad setting fails fast with a message naming it.
func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown target", []string{"-target=frob"}, "-target"},
		{"unknown metadata backend", []string{"-metadata.backend=etcd"}, "-metadata.backend"},
		{"unknown blob backend", []string{"-blob.backend=tape"}, "-blob.backend"},
		{"s3 without bucket", []string{"-blob.backend=s3", "-blob.s3.endpoint=127.0.0.1:1"}, "-blob.s3.bucket"},
		{"unknown log level", []string{"-log.level=loud"}, "-log.level"},
		{"unknown flag", []string{"-no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := execMailstore(t, tt.args...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("mailstore %v started; want a configuration error", tt.args)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("error output %q does not name %q", out, tt.want)
			}
		})
	}
	t.Run("config file", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "c.yaml")
		writeFile(t, file, "metadata:\n  backend: nonsense\n")
		out, err := execMailstore(t, "-config="+file).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "-metadata.backend") {
			t.Fatalf("config file with a bad backend: err %v, output %q", err, out)
		}
		writeFile(t, file, "no:\n  such: setting\n")
		out, err = execMailstore(t, "-config="+file).CombinedOutput()
		if err == nil || !strings.Contains(string(out), `unknown setting "no.such"`) {
			t.Fatalf("config file with an unknown key: err %v, output %q", err, out)
		}
	})
	t.Run("help lists flags", func(t *testing.T) {
		out, err := execMailstore(t, "-help").CombinedOutput()
		if err != nil {
			t.Fatalf("-help: %v", err)
		}
		for _, f := range []string{"-metadata.redis.addrs", "-blob.s3.endpoint", "-metadata.backend", "-data-dir", "-config"} {
			if !strings.Contains(string(out), f) {
				t.Errorf("-help does not list %s", f)
			}
		}
	})
}

// newIngester returns the ingest path over a metadata client and a blob
// service at blobAddr.
func newIngester(t *testing.T, m meta.Messages, blobAddr string) *ingest.Ingester {
	t.Helper()
	ing, err := ingest.New(ingest.Config{MaxMessageSize: 8 << 20}, ingest.Deps{Meta: m, Blobs: grpcblob.New(dial(t, blobAddr))})
	if err != nil {
		t.Fatal(err)
	}
	return ing
}

// message returns a small distinct RFC 5322 message.
func message(tag string, i int) string {
	return fmt.Sprintf("From: sender%d@example.org\r\nTo: rcpt@example.com\r\nSubject: %s %d\r\nMessage-ID: <%s.%d@example.org>\r\n\r\nbody of %s %d\r\n%s\r\n",
		i, tag, i, tag, i, tag, i, strings.Repeat("x", rand.IntN(2000)))
}

// ack is an acknowledged (or, when unknown, possibly applied) append.
type ack struct {
	blob    mail.BlobID
	mbox    mail.MailboxID
	unknown bool
}

// appendLoad runs workers that append through the ingest path, each over
// clients[w % len(clients)] and on failure over the next, until stop is
// closed or each has appended perWorker messages. It returns every
// outcome.
func appendLoad(t *testing.T, workers, perWorker int, clients []meta.Store, blobAddr string, acct mail.AccountID, mboxes []mail.MailboxID, stop <-chan struct{}) []ack {
	t.Helper()
	ings := make([]*ingest.Ingester, len(clients))
	for i, c := range clients {
		ings[i] = newIngester(t, c, blobAddr)
	}
	var (
		mu   sync.Mutex
		acks []ack
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			ci := w % len(clients)
			for i := range perWorker {
				select {
				case <-stop:
					return
				default:
				}
				mbox := mboxes[(w+i)%len(mboxes)]
				body := message(fmt.Sprintf("w%d", w), i)
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				res, err := ings[ci].Ingest(ctx, ingest.Request{Target: ingest.Target{Account: acct, Mailbox: mbox, MailboxName: "x", Flags: []mail.Flag{mail.FlagFlagged}}, Body: strings.NewReader(body), Size: int64(len(body))})
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					acks = append(acks, ack{blob: res.Blob, mbox: mbox})
				case res.Blob != "":
					acks = append(acks, ack{blob: res.Blob, mbox: mbox, unknown: true})
				}
				mu.Unlock()
				if err != nil {
					ci = (ci + 1) % len(clients)
				}
			}
		})
	}
	wg.Wait()
	return acks
}

// checkAcks verifies that every acknowledged append is present exactly
// once, an unknown one at most once, and nothing else is there.
func checkAcks(t *testing.T, s meta.Store, acct mail.AccountID, mboxes []mail.MailboxID, acks []ack) {
	t.Helper()
	ctx := t.Context()
	count := map[mail.BlobID]int{}
	where := map[mail.BlobID]mail.MailboxID{}
	for _, m := range mboxes {
		entries, err := s.ListEntries(ctx, acct, m, mail.AllUIDs(), meta.FieldAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			count[e.Blob]++
			where[e.Blob] = m
		}
	}
	known, unknown := 0, 0
	for _, a := range acks {
		n := count[a.blob]
		switch {
		case !a.unknown && n != 1:
			t.Errorf("acknowledged append of blob %s is present %d times", a.blob, n)
		case a.unknown && n > 1:
			t.Errorf("append of blob %s with unknown outcome is present %d times", a.blob, n)
		case n == 1 && where[a.blob] != a.mbox:
			t.Errorf("blob %s is in mailbox %d, appended to %d", a.blob, where[a.blob], a.mbox)
		}
		if a.unknown {
			unknown++
		} else {
			known++
		}
		delete(count, a.blob)
	}
	for b, n := range count {
		t.Errorf("blob %s is present %d times but was never appended", b, n)
	}
	t.Logf("%d acknowledged appends, %d with unknown outcome", known, unknown)
	metatest.CheckAccount(t, s, acct)
}

// setupAccount creates an account and returns it with the ids of INBOX and
// two more mailboxes.
func setupAccount(t *testing.T, s meta.Store, login string) (meta.Account, []mail.MailboxID) {
	t.Helper()
	ctx := t.Context()
	acct, err := s.CreateAccount(ctx, meta.NewAccount{Login: login, PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []mail.MailboxID
	for _, name := range []string{mail.Inbox, "Work", "Lists/Go"} {
		m, err := s.Mailbox(ctx, acct.ID, name)
		if errors.Is(err, meta.ErrNoSuchMailbox) {
			m, err = s.CreateMailbox(ctx, acct.ID, name, "")
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	return acct, ids
}

// clientsFor returns a metadata client per address.
func clientsFor(t *testing.T, addrs []string) []meta.Store {
	var out []meta.Store
	for _, a := range addrs {
		out = append(out, grpcmeta.New(dial(t, a)))
	}
	return out
}

var _ = testenv.Prefix
