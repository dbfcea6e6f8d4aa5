package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SentinelMasterName is the name under which the sentinels of RedisSentinel
// and NewRedisSentinel monitor their master.
const SentinelMasterName = "mailstore"

// sentinelCount and sentinelQuorum: three sentinels, two of which must agree
// that the master is down, the smallest setup that still fails over when one
// sentinel is lost.
const (
	sentinelCount  = 3
	sentinelQuorum = 2
)

// failoverTimeout bounds how long WaitFailover waits for the sentinels to
// promote the replica.
const failoverTimeout = 30 * time.Second

// SentinelSetup tells a client how to reach a Sentinel-managed master.
type SentinelSetup struct {
	// MasterName is the name the sentinels monitor the master under.
	MasterName string
	// SentinelAddrs are the sentinels' addresses (host:port).
	SentinelAddrs []string
	// MasterAddr is the master's address when the setup was ready. Clients
	// should ask the sentinels instead; it is for checks only.
	MasterAddr string
}

// sentinelTimings are the sentinels' failure-detection settings. The shared
// setup is never failed over on purpose, so it detects slowly and never
// mistakes a busy machine for a dead master; a dedicated one fails over in a
// few seconds.
type sentinelTimings struct {
	downAfter       time.Duration // sentinel down-after-milliseconds
	failoverTimeout time.Duration // sentinel failover-timeout
}

var (
	sharedSentinelTimings    = sentinelTimings{downAfter: 5 * time.Second, failoverTimeout: 10 * time.Second}
	dedicatedSentinelTimings = sentinelTimings{downAfter: time.Second, failoverTimeout: 3 * time.Second}
)

var sharedSentinel shared[*SentinelGroup]

// RedisSentinel returns a Sentinel setup shared by every test of this test
// binary: one master, one replica (in sync) and three sentinels that all
// know the master, the replica and each other. Use Prefix to keep tests
// apart. The shared setup must not be failed over; use NewRedisSentinel for
// that.
func RedisSentinel(t testing.TB) SentinelSetup {
	t.Helper()
	server := binary(t, EnvRedisServer, "redis-server")
	g, err := sharedSentinel.get(func() (*SentinelGroup, error) {
		return startSentinelGroup(server, sharedSentinelTimings)
	})
	if err != nil {
		fail(t, "redis sentinel setup", err)
	}
	return g.setup()
}

// SentinelGroup is a Sentinel setup owned by one test, which may kill its
// master to exercise a failover. Everything is killed at the test's cleanup.
type SentinelGroup struct {
	SentinelSetup
	// ReplicaAddr is the address of the replica, the master after a
	// failover.
	ReplicaAddr string

	mu        sync.Mutex
	master    *process // nil once killed
	replica   *process
	sentinels []*process
}

// NewRedisSentinel starts a Sentinel setup for t alone, with short
// failure-detection times (a killed master is replaced within a few
// seconds), so that t may kill the master without disturbing other tests.
func NewRedisSentinel(t testing.TB) *SentinelGroup {
	t.Helper()
	server := binary(t, EnvRedisServer, "redis-server")
	g, err := startSentinelGroup(server, dedicatedSentinelTimings)
	if err != nil {
		fail(t, "redis sentinel setup", err)
	}
	t.Cleanup(g.stop)
	return g
}

// setup returns a copy of the setup that callers cannot alter.
func (g *SentinelGroup) setup() SentinelSetup {
	s := g.SentinelSetup
	s.SentinelAddrs = append([]string(nil), s.SentinelAddrs...)
	return s
}

// KillMaster sends SIGKILL to the original master and waits until it is
// gone. Writes it acknowledged but had not yet sent to the replica are lost:
// replication is asynchronous.
func (g *SentinelGroup) KillMaster() {
	g.mu.Lock()
	p := g.master
	g.master = nil
	g.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// WaitFailover waits until every sentinel reports the replica as the master
// and the replica itself has taken the master role, and returns the new
// master's address. It fails the test if that takes longer than 30 s; like
// t.Fatal, call it from the test goroutine.
func (g *SentinelGroup) WaitFailover(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failoverTimeout)
	defer cancel()
	err := poll(ctx, func(ctx context.Context) error {
		if err := sentinelsReport(ctx, g.SentinelAddrs, g.MasterName, g.ReplicaAddr, 0); err != nil {
			return err
		}
		return infoHas(ctx, g.ReplicaAddr, "replication", map[string]string{"role": "master"})
	})
	if err != nil {
		t.Fatalf("testenv: failover from %s to %s: %v", g.MasterAddr, g.ReplicaAddr, err)
	}
	return g.ReplicaAddr
}

func (g *SentinelGroup) stop() {
	g.KillMaster()
	g.mu.Lock()
	procs := append([]*process{g.replica}, g.sentinels...)
	g.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			p.kill()
		}
	}
}

// startSentinelGroup starts the master, then the replica, then the
// sentinels, and waits until the replica is in sync and every sentinel
// reports the master with its replica and the other sentinels (without the
// latter they could not agree on a failover).
func startSentinelGroup(bin string, timings sentinelTimings) (_ *SentinelGroup, err error) {
	g := &SentinelGroup{SentinelSetup: SentinelSetup{MasterName: SentinelMasterName}}
	defer func() {
		if err != nil {
			g.stop()
		}
	}()

	g.MasterAddr, g.master, err = startSentinelData(bin, "redis-sentinel-master", nil)
	if err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(g.MasterAddr, ":")
	g.ReplicaAddr, g.replica, err = startSentinelData(bin, "redis-sentinel-replica", []string{"--replicaof", host, port})
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	err = poll(ctx, func(ctx context.Context) error {
		return infoHas(ctx, g.ReplicaAddr, "replication", map[string]string{"master_link_status": "up"})
	})
	if err != nil {
		return nil, fmt.Errorf("replica %s of %s: %w; log tail:\n%s", g.ReplicaAddr, g.MasterAddr, err, g.replica.logTail())
	}

	for i := range sentinelCount {
		addr, p, err := retryStartProc(func() (string, *process, error) {
			return startSentinel(bin, i, g.MasterAddr, timings)
		})
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		g.sentinels = append(g.sentinels, p)
		g.mu.Unlock()
		g.SentinelAddrs = append(g.SentinelAddrs, addr)
	}

	err = poll(ctx, func(ctx context.Context) error {
		return sentinelsReport(ctx, g.SentinelAddrs, g.MasterName, g.MasterAddr, 1)
	})
	if err != nil {
		return nil, fmt.Errorf("sentinels %s not ready: %w; log tail of the first:\n%s",
			strings.Join(g.SentinelAddrs, " "), err, g.sentinels[0].logTail())
	}
	return g, nil
}

// retryStartProc is retryStart for starters that return an address and the
// process.
func retryStartProc(start func() (string, *process, error)) (string, *process, error) {
	type started struct {
		addr string
		p    *process
	}
	s, err := retryStart(func() (started, error) {
		addr, p, err := start()
		return started{addr, p}, err
	})
	return s.addr, s.p, err
}

// startSentinelData starts the master or the replica (with extra args) in
// its own directory at a free port, with no persistence, and waits until it
// answers PING. A replica's first sync starts at once instead of after the
// default 5 s that a master waits for more replicas to share the transfer.
func startSentinelData(bin, name string, extra []string) (string, *process, error) {
	return retryStartProc(func() (string, *process, error) {
		dir, err := tempDir(name)
		if err != nil {
			return "", nil, err
		}
		ports, err := freePorts(1)
		if err != nil {
			return "", nil, err
		}
		addr := hostPort(ports[0])
		args := append(redisBaseArgs(dir, ports[0]),
			"--save", "",
			"--appendonly", "no",
			"--repl-diskless-sync-delay", "0",
		)
		args = append(args, extra...)
		p, err := startProcess("redis-server", dir, bin, args, nil)
		if err != nil {
			return "", nil, err
		}
		if err := p.waitReady(func(ctx context.Context) error { return redisPing(ctx, addr) }); err != nil {
			p.kill()
			return "", nil, err
		}
		return addr, p, nil
	})
}

// startSentinel starts sentinel i monitoring the master at masterAddr. Each
// sentinel has its own config file in its own directory: Sentinel rewrites
// it to record what it learns (replicas, other sentinels, epochs).
func startSentinel(bin string, i int, masterAddr string, timings sentinelTimings) (string, *process, error) {
	dir, err := tempDir("redis-sentinel-" + strconv.Itoa(i))
	if err != nil {
		return "", nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return "", nil, err
	}
	addr := hostPort(ports[0])
	host, port, _ := strings.Cut(masterAddr, ":")
	conf := strings.Join([]string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(ports[0]),
		"daemonize no",
		`logfile ""`,
		"dir " + dir,
		fmt.Sprintf("sentinel monitor %s %s %s %d", SentinelMasterName, host, port, sentinelQuorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", SentinelMasterName, timings.downAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", SentinelMasterName, timings.failoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", SentinelMasterName),
	}, "\n") + "\n"
	confPath := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", nil, fmt.Errorf("write sentinel config: %w", err)
	}
	p, err := startProcess("redis-sentinel", dir, bin, []string{confPath, "--sentinel"}, nil)
	if err != nil {
		return "", nil, err
	}
	if err := p.waitReady(func(ctx context.Context) error { return redisPing(ctx, addr) }); err != nil {
		p.kill()
		return "", nil, err
	}
	return addr, p, nil
}

// sentinelsReport succeeds when every sentinel reports masterAddr as the
// master of name, with status ok, all the other sentinels known and, when
// replicas is above zero, that many replicas known. INFO sentinel says all
// of it in one line per master (master0:name=...,status=ok,address=...,
// slaves=1,sentinels=3); its address is what SENTINEL
// get-master-addr-by-name answers.
func sentinelsReport(ctx context.Context, sentinels []string, name, masterAddr string, replicas int) error {
	for _, s := range sentinels {
		info, err := redisDo(ctx, s, "INFO", "sentinel")
		if err != nil {
			return fmt.Errorf("INFO sentinel at %s: %w", s, err)
		}
		want := map[string]string{
			"status":    "ok",
			"address":   masterAddr,
			"sentinels": strconv.Itoa(len(sentinels)),
		}
		if replicas > 0 {
			want["slaves"] = strconv.Itoa(replicas)
		}
		if err := sentinelMasterHas(info, name, want); err != nil {
			return fmt.Errorf("sentinel %s: %w", s, err)
		}
	}
	return nil
}

// sentinelMasterHas checks the master<n> line of name in INFO sentinel.
func sentinelMasterHas(info, name string, want map[string]string) error {
	for _, v := range infoFields(info) {
		got := make(map[string]string)
		for _, kv := range strings.Split(v, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				got[k] = v
			}
		}
		if got["name"] != name {
			continue
		}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("master %s: %s is %q, want %q", name, k, got[k], v)
			}
		}
		return nil
	}
	return fmt.Errorf("master %s not monitored", name)
}

// infoHas checks fields of one INFO section of the server at addr.
func infoHas(ctx context.Context, addr, section string, want map[string]string) error {
	info, err := redisDo(ctx, addr, "INFO", section)
	if err != nil {
		return fmt.Errorf("INFO %s at %s: %w", section, addr, err)
	}
	got := infoFields(info)
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("%s: %s is %q, want %q", addr, k, got[k], v)
		}
	}
	return nil
}

// infoFields parses the key:value lines of an INFO reply.
func infoFields(info string) map[string]string {
	fields := make(map[string]string)
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// poll calls check every pollInterval until it succeeds or ctx ends; the
// error then carries check's last error.
func poll(ctx context.Context, check func(ctx context.Context) error) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(attempt)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-tick.C:
		}
	}
}
