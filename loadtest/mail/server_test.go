package mail

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests run against a real mailstore: the root module's cmd/mailstore
// and cmd/mailctl, built once per test binary from the repository root
// (this module cannot import the root's internal packages) and started
// once, as -target=all on the embedded backends with every listener on a
// free loopback port.

// server is the mailstore under test.
type server struct {
	imap, pop3, lmtp, meta, http string
	bin                          string // directory holding mailstore and mailctl
	cmd                          *exec.Cmd
	out                          *lockedBuffer
	done                         chan struct{}
}

var shared struct {
	once sync.Once
	srv  *server
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if s := shared.srv; s != nil {
		s.stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// repoRoot is the mailstore repository, two levels above this package.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "mailstore")); err != nil {
		return "", fmt.Errorf("no cmd/mailstore in the repository root: %w", err)
	}
	return root, nil
}

// mailstore returns the shared server, building and starting it on first
// use.
func mailstore(t testing.TB) *server {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "loadtest-mailstore-")
		if shared.err != nil {
			return
		}
		var root string
		if root, shared.err = repoRoot(); shared.err == nil {
			shared.srv, shared.err = startServer(root, shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

func startServer(root, dir string) (*server, error) {
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/mailstore", "./cmd/mailctl")
	build.Dir = root
	// The root's own go.work, whatever this module's test run set.
	build.Env = append(os.Environ(), "GOWORK=")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/mailstore ./cmd/mailctl in %s: %v\n%s", root, err, out)
	}
	s := &server{bin: bin, out: &lockedBuffer{}, done: make(chan struct{})}
	addrs := make([]string, 7)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	s.imap, s.pop3, s.lmtp, s.meta, s.http = addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	blob := addrs[5]
	s.cmd = exec.Command(filepath.Join(bin, "mailstore"),
		"-target=all", "-data-dir="+filepath.Join(dir, "data"),
		"-metadata.listen-address="+s.meta, "-metadata.address="+s.meta,
		"-blob.listen-address="+blob, "-blob.address="+blob,
		"-imap.listen-address="+s.imap, "-pop3.listen-address="+s.pop3, "-lmtp.listen-address="+s.lmtp,
		"-server.http-listen-address="+s.http, "-server.drain-window=500ms",
		"-log.format=text", "-log.level=warn")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mailstore: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(90 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200 or the process exits.
func (s *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("mailstore exited before it was ready:\n%s", s.out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mailstore not ready after %v:\n%s", limit, s.out.String())
		}
	}
}

func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

var userSeq atomic.Int64

// testPassword is every test account's password.
const testPassword = "load-test-pw-1"

// newUser adds a fresh account with mailctl and returns its login.
func (s *server) newUser(t testing.TB) string {
	t.Helper()
	login := fmt.Sprintf("lt%d-%d@example.org", os.Getpid(), userSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "mailctl"), "-addr", s.meta, "account", "add", login, "--password-stdin")
	cmd.Stdin = strings.NewReader(testPassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mailctl account add %s: %v\n%s", login, err, out)
	}
	return login
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
