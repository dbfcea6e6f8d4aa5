package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 server kinds accepted by S3.
const (
	VersityGW = "versitygw"
	MinIO     = "minio"
)

// Credentials and region of every test S3 server. MinIO wants keys of at
// least 8 characters.
const (
	s3AccessKey = "mailstore-test"
	s3SecretKey = "mailstore-test-secret"
	s3Region    = "us-east-1"
)

// S3Server is a running S3-compatible server, reached over plain HTTP with
// path-style bucket addressing.
type S3Server struct {
	Kind      string // VersityGW or MinIO
	Endpoint  string // host:port, no scheme
	AccessKey string
	SecretKey string
	Region    string
}

var (
	sharedVersityGW shared[S3Server]
	sharedMinIO     shared[S3Server]
)

// S3 returns the S3 server of the given kind ("versitygw" or "minio") shared
// by every test of this test binary. Use NewBucket to keep tests apart.
func S3(t testing.TB, kind string) S3Server {
	t.Helper()
	var (
		srv S3Server
		err error
	)
	switch kind {
	case VersityGW:
		bin := binary(t, EnvVersityGW, "versitygw")
		srv, err = sharedVersityGW.get(func() (S3Server, error) { return startVersityGW(bin) })
	case MinIO:
		bin := binary(t, EnvMinIO, "minio")
		srv, err = sharedMinIO.get(func() (S3Server, error) { return startMinIO(bin) })
	default:
		t.Fatalf("testenv: unknown S3 kind %q, want %q or %q", kind, VersityGW, MinIO)
	}
	if err != nil {
		fail(t, kind, err)
	}
	return srv
}

func newS3Server(kind string, port int) S3Server {
	return S3Server{
		Kind:      kind,
		Endpoint:  hostPort(port),
		AccessKey: s3AccessKey,
		SecretKey: s3SecretKey,
		Region:    s3Region,
	}
}

// startVersityGW runs versitygw's posix backend over a fresh directory.
func startVersityGW(bin string) (S3Server, error) {
	p, err := startS3Process(bin, VersityGW)
	if err != nil {
		return S3Server{}, err
	}
	return p.Server, nil
}

// startMinIO runs a single-drive MinIO server over a fresh directory, with
// its console on a second port and its browser and update check off.
func startMinIO(bin string) (S3Server, error) {
	p, err := startS3Process(bin, MinIO)
	if err != nil {
		return S3Server{}, err
	}
	return p.Server, nil
}

// S3Process is an S3 server owned by one test, which may kill and restart
// it.
type S3Process struct {
	Server S3Server

	t     testing.TB
	bin   string
	dir   string
	ports []int
	mu    sync.Mutex
	proc  *process
}

// NewS3 starts an S3 server of the given kind for t alone; it is killed at
// t's cleanup.
func NewS3(t testing.TB, kind string) *S3Process {
	t.Helper()
	var bin string
	switch kind {
	case VersityGW:
		bin = binary(t, EnvVersityGW, "versitygw")
	case MinIO:
		bin = binary(t, EnvMinIO, "minio")
	default:
		t.Fatalf("testenv: unknown S3 kind %q, want %q or %q", kind, VersityGW, MinIO)
	}
	p, err := startS3Process(bin, kind)
	if err != nil {
		fail(t, kind, err)
	}
	p.t = t
	t.Cleanup(p.Kill)
	return p
}

func startS3Process(bin, kind string) (*S3Process, error) {
	return retryStart(func() (*S3Process, error) {
		dir, err := tempDir(kind)
		if err != nil {
			return nil, err
		}
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		p := &S3Process{Server: newS3Server(kind, ports[0]), bin: bin, dir: dir, ports: ports}
		if err := p.start(); err != nil {
			return nil, err
		}
		return p, nil
	})
}

// start runs the server on its ports and directory and waits until it
// serves signed requests.
func (s *S3Process) start() error {
	srv := s.Server
	var (
		args, extraEnv []string
		ready          func(ctx context.Context) error
	)
	switch srv.Kind {
	case VersityGW:
		args = []string{
			"--access", srv.AccessKey,
			"--secret", srv.SecretKey,
			"--region", srv.Region,
			"--port", srv.Endpoint,
			"--quiet",
			"posix", s.dir,
		}
		ready = func(ctx context.Context) error {
			if err := tcpReady(ctx, srv.Endpoint); err != nil {
				return err
			}
			return srv.listBuckets(ctx)
		}
	default:
		args = []string{
			"server", s.dir + "/data",
			"--address", srv.Endpoint,
			"--console-address", hostPort(s.ports[1]),
			"--quiet",
		}
		extraEnv = []string{
			"MINIO_ROOT_USER=" + srv.AccessKey,
			"MINIO_ROOT_PASSWORD=" + srv.SecretKey,
			"MINIO_REGION=" + srv.Region,
			"MINIO_BROWSER=off",
			"MINIO_UPDATE=off",
			"MINIO_CI_CD=1",
		}
		ready = func(ctx context.Context) error {
			if err := httpOK(ctx, "http://"+srv.Endpoint+"/minio/health/live"); err != nil {
				return err
			}
			return srv.listBuckets(ctx)
		}
	}
	p, err := startProcess(srv.Kind, s.dir, s.bin, args, extraEnv)
	if err != nil {
		return err
	}
	if err := p.waitReady(ready); err != nil {
		p.kill()
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// Kill sends SIGKILL to the server and waits until it is gone.
func (s *S3Process) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Signal sends sig to the server process (SIGSTOP and SIGCONT pause and
// resume it); an error if it is not running.
func (s *S3Process) Signal(sig os.Signal) error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("testenv: %s is not running", s.Server.Kind)
	}
	return p.cmd.Process.Signal(sig)
}

// Restart starts the server again on the same port and directory (killing
// it first if it runs) and returns once it serves. Like t.Fatal, call it
// from the test goroutine.
func (s *S3Process) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: restart %s at %s: %v", s.Server.Kind, s.Server.Endpoint, err)
	}
}

// httpOK succeeds when GET url answers 200.
func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// client returns a minio-go client for the server.
func (s S3Server) client() (*minio.Client, error) {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       false,
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		return nil, fmt.Errorf("create S3 client for %s: %w", s.Endpoint, err)
	}
	return c, nil
}

// listBuckets is the readiness check: a signed request that succeeds only
// when the server accepts the credentials and serves the API.
func (s S3Server) listBuckets(ctx context.Context) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	if _, err := c.ListBuckets(ctx); err != nil {
		return fmt.Errorf("list buckets: %w", err)
	}
	return nil
}

var bucketSeq atomic.Uint64

// NewBucket creates a new, empty bucket with a unique valid S3 name and
// returns the name. The bucket is left behind when the test ends; the whole
// server goes when the test binary exits.
func (s S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "mailstore-test-" + strconv.FormatUint(bucketSeq.Add(1), 10) + "-" + randHex(4)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := s.client()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("testenv: create bucket %s on %s: %v", name, s.Kind, err)
	}
	return name
}
