package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
)

// The chaos stack: Redis (AOF, appendfsync always) and an S3 server owned
// by the test, 2 blob processes on one bucket (the blob service is
// stateless over S3 and blob ids are allocated by the caller, so replicas
// may share a bucket), 2 metadata processes with short sweep intervals,
// and 3 IMAP, 2 POP3 and 2 LMTP gateways, each pointed at one metadata and
// one blob process, alternating.

// chaosStack is the running system under test.
type chaosStack struct {
	t       *testing.T
	redis   *testenv.RedisServer       // standalone, or
	cluster *testenv.RedisClusterNodes // a 3-master Redis Cluster
	s3      *testenv.S3Process

	metaAddrs, blobAddrs, imapAddrs, popAddrs, lmtpAddrs []string

	procs []*chaosProc // every mailstore process
	net   *chaosNet    // the proxies every link between processes crosses

	mu     sync.Mutex
	issues []string // races, panics and crashes seen in process output
}

// chaosProc is one mailstore process of the stack with its role.
type chaosProc struct {
	*proc
	role string // imap, pop3, lmtp, metadata, blob

	// killedByUs is set while the fault loop has it down on purpose.
	mu         sync.Mutex
	killedByUs bool
}

// chaosSweepFlags make the metadata service sweep released blobs within
// seconds, so the final check sees the sweeper's work (and any blob it
// deleted too early).
var chaosSweepFlags = []string{
	"-metadata.sweep.interval=2s", "-metadata.sweep.grace=2s",
	"-metadata.sweep.orphan-interval=20s", "-metadata.sweep.orphan-age=1m",
}

// chaosGatewayFlags: no per-IP connection bound (every client is
// 127.0.0.1, and slots of a killed pod stay taken until they expire) and
// a short POP3 lock lifetime, so a killed POP3 pod blocks the account for
// seconds rather than a minute. The lifetime is still well above the
// longest SIGSTOP (3 s) plus a renewal period (a third of it).
var chaosGatewayFlags = []string{
	"-imap.max-connections-per-ip=0", "-pop3.max-connections-per-ip=0", "-lmtp.max-connections-per-ip=0",
	"-pop3.lease-ttl=12s",
}

// startChaosStack starts the stack on a standalone Redis or, with
// cluster, on a Redis Cluster of 3 masters (every node with AOF and
// appendfsync always). The cluster's nodes are reached directly: its
// clients learn the nodes' addresses from the cluster itself, so the
// metadata-to-Redis link has no proxy and no network faults then.
func startChaosStack(t *testing.T, s3Kind string, cluster bool) *chaosStack {
	t.Helper()
	st := &chaosStack{t: t, net: newChaosNet(t)}
	redisFlags := []string{}
	if cluster {
		st.cluster = testenv.NewRedisCluster(t, testenv.RedisOptions{AOF: true})
		redisFlags = append(redisFlags, "-metadata.redis.addrs="+strings.Join(st.cluster.Addrs(), ","), "-metadata.redis.cluster=true")
	} else {
		st.redis = testenv.NewRedis(t, testenv.RedisOptions{AOF: true})
		redisFlags = append(redisFlags, "-metadata.redis.addrs="+st.net.link("meta-redis", st.redis.Addr()))
	}
	st.s3 = testenv.NewS3(t, s3Kind)
	env, s3flags := s3Flags(t, st.s3.Server) // one bucket for both blob processes
	s3Proxy := st.net.link("blob-s3", st.s3.Server.Endpoint)
	for i, f := range s3flags {
		if strings.HasPrefix(f, "-blob.s3.endpoint=") {
			s3flags[i] = "-blob.s3.endpoint=" + s3Proxy
		}
	}
	prefix := testenv.Prefix(t)
	add := func(role, name string, env []string, args ...string) {
		st.procs = append(st.procs, &chaosProc{proc: startProc(t, name, env, args...), role: role})
	}
	for i := range 2 {
		addr := freeAddr(t)
		st.blobAddrs = append(st.blobAddrs, addr)
		add("blob", "blob-"+strconv.Itoa(i), env, append([]string{"-target=blob", "-blob.listen-address=" + addr}, s3flags...)...)
	}
	var gwBlob, gwMeta []string // the proxies to blob-i and metadata-i
	for i := range 2 {
		gwBlob = append(gwBlob, st.net.link("gw-blob-"+strconv.Itoa(i), st.blobAddrs[i]))
	}
	for i := range 2 {
		addr := freeAddr(t)
		st.metaAddrs = append(st.metaAddrs, addr)
		add("metadata", "metadata-"+strconv.Itoa(i), nil, slices.Concat([]string{
			"-target=metadata", "-metadata.listen-address=" + addr, "-blob.address=" + gwBlob[i%2],
			"-metadata.backend=redis", "-metadata.redis.key-prefix=" + prefix,
		}, redisFlags, chaosSweepFlags)...)
		gwMeta = append(gwMeta, st.net.link("gw-meta-"+strconv.Itoa(i), addr))
	}
	gateway := func(role string, n int, addrs *[]string) {
		for i := range n {
			addr := freeAddr(t)
			*addrs = append(*addrs, addr)
			add(role, role+"-"+strconv.Itoa(i), nil, append([]string{
				"-target=" + role, "-" + role + ".listen-address=" + addr,
				"-metadata.address=" + gwMeta[i%2], "-blob.address=" + gwBlob[i%2],
			}, chaosGatewayFlags...)...)
		}
	}
	gateway("imap", 3, &st.imapAddrs)
	gateway("pop3", 2, &st.popAddrs)
	gateway("lmtp", 2, &st.lmtpAddrs)
	return st
}

// chaosFault is one injected fault.
type chaosFault struct {
	Kind   string    `json:"kind"` // kill, sigstop, redis-kill, redis-sigstop, s3-kill, s3-sigstop, net-*
	Target string    `json:"target"`
	What   string    `json:"what,omitempty"` // a network fault's toxic
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"` // when the target was serving again
	Down   string    `json:"down"`
}

func (f chaosFault) String() string {
	s := fmt.Sprintf("%s %-13s %-11s down %-6s back after %s", f.Start.Format("15:04:05.000"), f.Kind, f.Target, f.Down, f.End.Sub(f.Start).Round(time.Millisecond))
	if f.What != "" {
		s += " (" + f.What + ")"
	}
	return s
}

// injectFault injects one fault chosen by rng and returns once the
// target serves again. Like t.Fatal, call it from the test goroutine (a
// restart that fails fails the test).
func (st *chaosStack) injectFault(rng *rand.Rand) chaosFault {
	st.t.Helper()
	down := time.Duration(200+rng.IntN(1800)) * time.Millisecond
	f := chaosFault{Start: time.Now(), Down: down.Round(time.Millisecond).String()}
	r := rng.IntN(100)
	if st.cluster != nil && rng.IntN(2) == 0 {
		// On a cluster, half the faults hit one of its nodes.
		r = 68 + rng.IntN(19)
	}
	switch {
	case r < 25: // a network fault on one link (chaos_net_test.go)
		var d time.Duration
		f.Kind, f.Target, f.What, d = st.net.inject(rng)
		f.Down = d.Round(time.Millisecond).String()
	case r < 55: // kill -9 and restart a mailstore process
		p := st.procs[rng.IntN(len(st.procs))]
		f.Kind, f.Target = "kill", p.name
		p.mu.Lock()
		p.killedByUs = true
		p.mu.Unlock()
		p.kill()
		st.checkOutput(p)
		time.Sleep(down)
		p.start()
		p.mu.Lock()
		p.killedByUs = false
		p.mu.Unlock()
	case r < 68: // SIGSTOP a mailstore process for 1-3 s
		p := st.procs[rng.IntN(len(st.procs))]
		down = time.Duration(1000+rng.IntN(2000)) * time.Millisecond
		f.Kind, f.Target, f.Down = "sigstop", p.name, down.Round(time.Millisecond).String()
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(down)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	case r < 77:
		node, name := st.redisNode(rng)
		f.Kind, f.Target = "redis-kill", name
		node.Kill()
		time.Sleep(down)
		node.Restart()
	case r < 87:
		node, name := st.redisNode(rng)
		down = time.Duration(1000+rng.IntN(2000)) * time.Millisecond
		f.Kind, f.Target, f.Down = "redis-sigstop", name, down.Round(time.Millisecond).String()
		pid, err := redisPID(node.Addr())
		if err != nil {
			st.t.Logf("chaos: redis pid: %v; fault skipped", err)
			f.Kind = "redis-sigstop-skipped"
			break
		}
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		time.Sleep(down)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	case r < 93:
		f.Kind, f.Target = "s3-kill", st.s3.Server.Kind
		st.s3.Kill()
		time.Sleep(down)
		st.s3.Restart()
	default:
		down = time.Duration(1000+rng.IntN(2000)) * time.Millisecond
		f.Kind, f.Target, f.Down = "s3-sigstop", st.s3.Server.Kind, down.Round(time.Millisecond).String()
		if err := st.s3.Signal(syscall.SIGSTOP); err != nil {
			st.t.Logf("chaos: stop %s: %v; fault skipped", st.s3.Server.Kind, err)
			f.Kind = "s3-sigstop-skipped"
			break
		}
		time.Sleep(down)
		_ = st.s3.Signal(syscall.SIGCONT)
	}
	f.End = time.Now()
	return f
}

// redisNode picks the Redis server a fault hits: the standalone one, or
// one node of the cluster.
func (st *chaosStack) redisNode(rng *rand.Rand) (*testenv.RedisServer, string) {
	if st.cluster == nil {
		return st.redis, "redis"
	}
	i := rng.IntN(len(st.cluster.Nodes))
	return st.cluster.Nodes[i], "redis-node-" + strconv.Itoa(i)
}

// redisPID asks the server at addr for its process id (testenv does not
// expose it).
func redisPID(addr string) (int, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	info, err := rc.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("no process_id in INFO server")
}

// checkOutput records a race report or panic in p's output so far (a
// restart replaces the output buffer).
func (st *chaosStack) checkOutput(p *chaosProc) {
	out := p.out.String()
	for _, marker := range []string{"DATA RACE", "panic:"} {
		if i := strings.Index(out, marker); i >= 0 {
			st.mu.Lock()
			st.issues = append(st.issues, fmt.Sprintf("%s output shows %q:\n%s", p.name, marker, out[max(0, i-2000):min(len(out), i+4000)]))
			st.mu.Unlock()
			return
		}
	}
}

// crashed returns the processes that ended without the fault loop
// killing them, restarting each (so the check runs on a whole stack).
func (st *chaosStack) crashed() []string {
	st.t.Helper()
	var out []string
	for _, p := range st.procs {
		select {
		case <-p.done:
		default:
			continue
		}
		p.mu.Lock()
		ours := p.killedByUs
		p.mu.Unlock()
		if ours {
			continue
		}
		tail := p.out.String()
		out = append(out, fmt.Sprintf("%s exited on its own (%v):\n%s", p.name, p.cmd.ProcessState, tail[max(0, len(tail)-3000):]))
		st.checkOutput(p)
		p.start()
	}
	return out
}

// waitHealthy waits until every mailstore process answers /readyz, the
// same readiness a Kubernetes probe would see.
func (st *chaosStack) waitHealthy() error {
	if st.cluster != nil {
		if err := st.cluster.WaitOK(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range st.procs {
		for {
			resp, err := http.Get("http://" + p.http + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready: %v", p.name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
