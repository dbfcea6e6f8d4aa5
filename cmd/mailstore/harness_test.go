package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mailstore/mailstore/internal/testenv"
)

// The end-to-end tests run the real binaries, built once per test binary
// with -race, as separate processes on loopback.

var build struct {
	once sync.Once
	dir  string
	err  error
}

// binaries builds mailstore and mailctl and returns the directory holding
// them.
func binaries(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "mailstore-e2e-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		cmd := exec.Command("go", "build", "-race", "-o", dir+"/", "github.com/mailstore/mailstore/cmd/mailstore", "github.com/mailstore/mailstore/cmd/mailctl")
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.dir
}

func TestMain(m *testing.M) {
	defer func() {
		if build.dir != "" {
			os.RemoveAll(build.dir)
		}
	}()
	testenv.Main(m)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	return testenv.FreeAddr(t)
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

// proc is one mailstore process.
type proc struct {
	t    *testing.T
	name string
	args []string
	env  []string
	http string
	out  *lockedBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

// startProc starts mailstore with args (plus its own HTTP port) and waits
// until /readyz answers 200. It is stopped with SIGTERM at cleanup.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, env: env, http: freeAddr(t)}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.out = &lockedBuffer{}
	args := append([]string{"-server.http-listen-address=" + p.http, "-log.format=text", "-log.level=warn",
		// Short drains keep stops quick; a test may set its own (the last wins).
		"-server.drain-window=500ms",
		// No fixed port (target=all runs an LMTP gateway); a test may set its own.
		"-lmtp.listen-address=" + freeAddr(p.t)}, p.args...)
	p.cmd = exec.Command(filepath.Join(binaries(p.t), "mailstore"), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before it was ready:\n%s", p.name, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after 90s:\n%s", p.name, p.out.String())
		}
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// stop sends SIGTERM and waits (SIGKILL after 20s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		p.kill()
	}
	if out := p.out.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
		p.t.Errorf("%s output shows a race or panic:\n%s", p.name, out)
	}
}

// dial connects a gRPC client to addr.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// mailctl runs the admin CLI against addr with stdin and returns its
// standard output; a non-zero exit fails the test unless wantFail.
func mailctl(t *testing.T, addr, stdin string, wantFail bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "mailctl"), append([]string{"-addr", addr}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if wantFail {
		if err == nil {
			t.Fatalf("mailctl %v succeeded, want failure; output:\n%s", args, stdout.String())
		}
		return stderr.String()
	}
	if err != nil {
		t.Fatalf("mailctl %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// stack is a set of mailstore processes on shared backends.
type stack struct {
	metaAddrs []string
	blobAddr  string
	metas     []*proc
	blob      *proc
}

// s3Env returns the environment and flags for an S3 blob backend on srv
// with a fresh bucket.
func s3Flags(t *testing.T, srv testenv.S3Server) ([]string, []string) {
	t.Helper()
	env := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey}
	flags := []string{
		"-blob.backend=s3", "-blob.s3.endpoint=" + srv.Endpoint, "-blob.s3.bucket=" + srv.NewBucket(t),
		"-blob.s3.region=" + srv.Region, "-blob.s3.insecure=true", "-blob.s3.path-style=true",
	}
	return env, flags
}

// startRedisStack starts one blob process on S3 and n metadata processes
// on the Redis at redisAddr with key prefix prefix.
func startRedisStack(t *testing.T, n int, redisAddrs, prefix string, s3 testenv.S3Server, extra ...string) *stack {
	t.Helper()
	st := &stack{blobAddr: freeAddr(t)}
	env, flags := s3Flags(t, s3)
	st.blob = startProc(t, "blob", env, append([]string{"-target=blob", "-blob.listen-address=" + st.blobAddr}, flags...)...)
	for i := range n {
		addr := freeAddr(t)
		st.metaAddrs = append(st.metaAddrs, addr)
		args := append([]string{
			"-target=metadata", "-metadata.listen-address=" + addr, "-blob.address=" + st.blobAddr,
			"-metadata.backend=redis", "-metadata.redis.addrs=" + redisAddrs, "-metadata.redis.key-prefix=" + prefix,
		}, extra...)
		st.metas = append(st.metas, startProc(t, "metadata-"+strconv.Itoa(i), nil, args...))
	}
	return st
}
