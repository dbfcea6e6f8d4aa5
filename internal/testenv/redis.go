package testenv

import (
	"context"
	"strconv"
	"sync"
	"testing"
)

// shared is a server started at most once per test binary. A failed start
// is remembered, so every later test fails fast with the same error rather
// than trying again.
type shared[T any] struct {
	once sync.Once
	val  T
	err  error
}

func (s *shared[T]) get(start func() (T, error)) (T, error) {
	s.once.Do(func() { s.val, s.err = start() })
	return s.val, s.err
}

var sharedRedis shared[*RedisServer]

// Redis returns the address (host:port) of a standalone redis-server shared
// by every test of this test binary. It keeps no data on disk. Use Prefix to
// keep tests apart.
func Redis(t testing.TB) string {
	t.Helper()
	server := binary(t, EnvRedisServer, "redis-server")
	srv, err := sharedRedis.get(func() (*RedisServer, error) {
		return startRedis(server, RedisOptions{})
	})
	if err != nil {
		fail(t, "shared redis-server", err)
	}
	return srv.addr
}

// RedisOptions configures a dedicated server made by NewRedis.
type RedisOptions struct {
	// AOF turns on the append-only file with appendfsync always, so that
	// every acknowledged write survives Kill and is loaded by Restart.
	AOF bool
}

// RedisServer is a redis-server owned by one test. It is killed at the
// test's cleanup.
type RedisServer struct {
	t    testing.TB // nil for the shared server
	bin  string
	dir  string
	port int
	addr string
	args []string

	mu   sync.Mutex
	proc *process // nil while killed
}

// NewRedis starts a redis-server for t alone, so that t may kill and restart
// it without disturbing other tests.
func NewRedis(t testing.TB, opts RedisOptions) *RedisServer {
	t.Helper()
	server := binary(t, EnvRedisServer, "redis-server")
	srv, err := startRedis(server, opts)
	if err != nil {
		fail(t, "redis-server", err)
	}
	srv.t = t
	t.Cleanup(srv.stop)
	return srv
}

// startRedis starts a standalone server in its own directory at a free port.
func startRedis(bin string, opts RedisOptions) (*RedisServer, error) {
	return retryStart(func() (*RedisServer, error) {
		dir, err := tempDir("redis")
		if err != nil {
			return nil, err
		}
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		args := persistArgs(opts.AOF)
		srv := &RedisServer{
			bin:  bin,
			dir:  dir,
			port: ports[0],
			addr: hostPort(ports[0]),
			args: args,
		}
		if err := srv.start(); err != nil {
			return nil, err
		}
		return srv, nil
	})
}

// start runs the server on its port and data dir and waits until it
// answers PING (that is, after it loaded its AOF).
func (s *RedisServer) start() error {
	args := append(redisBaseArgs(s.dir, s.port), s.args...)
	p, err := startProcess("redis-server", s.dir, s.bin, args, nil)
	if err != nil {
		return err
	}
	if err := p.waitReady(func(ctx context.Context) error { return redisPing(ctx, s.addr) }); err != nil {
		p.kill()
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// redisBaseArgs are the arguments every test server gets: loopback only, a
// given port, data in dir, log to stdout (captured by the process log).
func redisBaseArgs(dir string, port int) []string {
	return []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "",
		"--databases", "16",
	}
}

// persistArgs: no snapshots, and with aof an append-only file synced at
// every write (so that what a killed server acknowledged survives).
func persistArgs(aof bool) []string {
	if aof {
		return []string{"--save", "", "--appendonly", "yes", "--appendfsync", "always"}
	}
	return []string{"--save", "", "--appendonly", "no"}
}

// Addr returns the server's address, host:port. It stays the same across
// Kill and Restart.
func (s *RedisServer) Addr() string { return s.addr }

// Kill sends SIGKILL to the server and waits until it is gone, like a crash
// of the machine as far as the server can tell: only what it had written to
// the AOF (with fsync) survives.
func (s *RedisServer) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Restart starts the server again on the same port and data directory
// (killing it first if it is running) and returns once it has loaded its
// data and answers PING. It fails the test if the server does not come
// back; like t.Fatal, call it from the test goroutine.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: restart redis-server at %s: %v", s.addr, err)
	}
}

func (s *RedisServer) stop() { s.Kill() }
