// Package testenv starts the real servers that the tests of mailstore run
// against: redis-server (standalone, a 3-master Redis Cluster, and a master with a
// replica under three Sentinels) and the S3
// servers versitygw and MinIO. Backends claim to work only when they pass
// their conformance suite against the real thing, so every test package that
// needs a server calls testenv.Main from its TestMain and asks for the server
// it needs; nothing is mocked.
//
// Shared servers are started lazily, once per test binary, on 127.0.0.1 at a
// free port inside a temporary directory, and are stopped by Main when the
// tests are done. Tests isolate themselves from each other on a shared server
// with Prefix (Redis keys) and S3Server.NewBucket (S3). Dedicated servers
// (NewRedis) belong to one test and stop at its cleanup.
//
// Binaries come from environment variables, falling back to PATH:
// MAILSTORE_REDIS_SERVER (redis-server), MAILSTORE_REDIS_CLI (redis-cli),
// MAILSTORE_VERSITYGW (versitygw) and MAILSTORE_MINIO (minio). When a binary
// is missing the test is skipped, unless MAILSTORE_REQUIRE_SERVERS=1 (set by
// `make test`), in which case it fails.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Environment variables read by the package.
const (
	EnvRedisServer    = "MAILSTORE_REDIS_SERVER"
	EnvRedisCLI       = "MAILSTORE_REDIS_CLI"
	EnvVersityGW      = "MAILSTORE_VERSITYGW"
	EnvMinIO          = "MAILSTORE_MINIO"
	EnvRequireServers = "MAILSTORE_REQUIRE_SERVERS"
)

// errNoMain is returned when a server is requested by a package whose
// TestMain does not call Main: without it nobody would stop the server.
var errNoMain = errors.New("testenv.Main was not called from TestMain; servers would be left running")

// env is the state of one test binary. The lock guards root and procs;
// shared servers have their own once-guards.
var env struct {
	mu      sync.Mutex
	started bool   // Main is running
	stopped bool   // Main has stopped everything; no new servers
	root    string // temp dir holding every server's data and logs
	procs   map[*process]struct{}
}

// Main runs the tests of m, then stops every server this test binary started
// and removes their data, and exits with the tests' exit code. Call it from
// TestMain of every package that uses testenv:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	env.mu.Lock()
	env.started = true
	env.procs = make(map[*process]struct{})
	env.mu.Unlock()

	code := m.Run()

	env.mu.Lock()
	env.stopped = true
	procs := env.procs
	env.procs = nil
	root := env.root
	env.mu.Unlock()
	for p := range procs {
		p.kill()
	}
	if root != "" {
		if err := os.RemoveAll(root); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: remove %s: %v\n", root, err)
		}
	}
	os.Exit(code)
}

// tempDir makes a new directory for one server under the binary's root
// temp dir, creating the root on first use.
func tempDir(name string) (string, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if !env.started {
		return "", errNoMain
	}
	if env.stopped {
		return "", errors.New("testenv: servers already stopped")
	}
	if env.root == "" {
		root, err := os.MkdirTemp("", "mailstore-testenv-")
		if err != nil {
			return "", fmt.Errorf("create testenv temp dir: %w", err)
		}
		env.root = root
	}
	dir, err := os.MkdirTemp(env.root, name+"-")
	if err != nil {
		return "", fmt.Errorf("create %s temp dir: %w", name, err)
	}
	return dir, nil
}

// track registers p so that Main kills it at exit; untrack forgets it after
// it was stopped by its owner.
func track(p *process) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if !env.started {
		return errNoMain
	}
	if env.stopped {
		return errors.New("testenv: servers already stopped")
	}
	env.procs[p] = struct{}{}
	return nil
}

func untrack(p *process) {
	env.mu.Lock()
	defer env.mu.Unlock()
	delete(env.procs, p)
}

// requireServers reports whether a missing server must fail the test rather
// than skip it.
func requireServers() bool {
	v, _ := strconv.ParseBool(os.Getenv(EnvRequireServers))
	return v
}

// binary finds a server binary from envVar, falling back to name on PATH.
// It skips t when the binary is missing, or fails it when servers are
// required.
func binary(t testing.TB, envVar, name string) string {
	t.Helper()
	path, err := lookBinary(envVar, name)
	if err == nil {
		return path
	}
	if requireServers() {
		t.Fatalf("testenv: %v (%s=1)", err, EnvRequireServers)
	}
	t.Skipf("testenv: %v; skipping (run `make test` or set %s)", err, envVar)
	return ""
}

func lookBinary(envVar, name string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s is not an executable: %w", envVar, p, err)
		}
		return path, nil
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found on PATH and %s is unset", name, envVar)
	}
	return path, nil
}

var prefixSeq atomic.Uint64

// Prefix returns a short string unique to this call within the test binary
// and, with high probability, across binaries sharing a server (a counter plus
// random bits), for use as a Redis key prefix so that tests sharing a server
// never see each other's keys. It holds only [0-9a-z], so it is safe inside a
// Redis Cluster hash tag and in S3 names.
func Prefix(t testing.TB) string {
	t.Helper()
	return "t" + strconv.FormatUint(prefixSeq.Add(1), 36) + randHex(3)
}

// randHex returns 2n random lower-case hex digits.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, per crypto/rand
	return hex.EncodeToString(b)
}

// fail ends t with err, the way every server request reports a failure to
// start: a failure, never a skip, because the binary was there.
func fail(t testing.TB, what string, err error) {
	t.Helper()
	t.Fatalf("testenv: start %s: %v", what, err)
}
