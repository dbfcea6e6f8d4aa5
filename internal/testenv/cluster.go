package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSize is the number of masters of the test cluster, the fewest
// redis-cli --cluster create accepts.
const clusterSize = 3

var sharedCluster shared[[]string]

// RedisCluster returns the addresses of the masters of a Redis Cluster of 3
// masters and no replicas, shared by every test of this test binary and
// ready (cluster_state:ok on every node, all slots assigned). Use Prefix to
// keep tests apart.
func RedisCluster(t testing.TB) []string {
	t.Helper()
	server := binary(t, EnvRedisServer, "redis-server")
	cli := binary(t, EnvRedisCLI, "redis-cli")
	addrs, err := sharedCluster.get(func() ([]string, error) {
		return startCluster(server, cli)
	})
	if err != nil {
		fail(t, "redis cluster", err)
	}
	return append([]string(nil), addrs...)
}

// startCluster starts the nodes, joins them with redis-cli and waits until
// every node sees a healthy cluster.
func startCluster(server, cli string) ([]string, error) {
	addrs := make([]string, 0, clusterSize)
	for i := range clusterSize {
		addr, err := retryStart(func() (string, error) { return startClusterNode(server, i) })
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
	}

	if err := createCluster(cli, addrs); err != nil {
		return nil, err
	}
	return addrs, nil
}

// createCluster joins the nodes at addrs into a cluster of masters with
// redis-cli and waits until every node sees it healthy.
func createCluster(cli string, addrs []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli --cluster create %s: %w; output:\n%s", strings.Join(addrs, " "), err, out)
	}
	return waitClusterOK(ctx, addrs)
}

// clusterNodeArgs are a cluster node's own arguments, with its cluster
// bus on busPort.
func clusterNodeArgs(busPort int) []string {
	return []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(busPort),
		"--cluster-node-timeout", "5000",
	}
}

// startClusterNode starts node i with an empty cluster config in its own
// directory. The cluster bus port is chosen explicitly: the default, port
// plus 10000, may be taken or beyond 65535.
func startClusterNode(bin string, i int) (string, error) {
	dir, err := tempDir("redis-cluster-" + strconv.Itoa(i))
	if err != nil {
		return "", err
	}
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	addr := hostPort(ports[0])
	args := slices.Concat(redisBaseArgs(dir, ports[0]), persistArgs(false), clusterNodeArgs(ports[1]))
	p, err := startProcess("redis-server", dir, bin, args, nil)
	if err != nil {
		return "", err
	}
	if err := p.waitReady(func(ctx context.Context) error { return redisPing(ctx, addr) }); err != nil {
		p.kill()
		return "", err
	}
	return addr, nil
}

// waitClusterOK polls CLUSTER INFO on every node until each reports
// cluster_state:ok, all 16384 slots assigned and all nodes known, so that a
// client may start at any of them.
func waitClusterOK(ctx context.Context, addrs []string) error {
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": "16384",
		"cluster_known_nodes":    strconv.Itoa(len(addrs)),
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := clusterOK(ctx, addrs, want)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis cluster not ready after %v: %w", startTimeout, err)
		case <-tick.C:
		}
	}
}

func clusterOK(ctx context.Context, addrs []string, want map[string]string) error {
	for _, addr := range addrs {
		info, err := redisDo(ctx, addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("CLUSTER INFO at %s: %w", addr, err)
		}
		got := make(map[string]string)
		for line := range strings.Lines(info) {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok {
				got[k] = v
			}
		}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("node %s: %s is %q, want %q", addr, k, got[k], v)
			}
		}
	}
	return nil
}

// RedisClusterNodes is a Redis Cluster owned by one test (3 masters, no
// replicas), so that the test may kill and restart its nodes: each keeps
// its port, data directory and nodes.conf, and rejoins with its slots.
type RedisClusterNodes struct {
	Nodes []*RedisServer
}

// NewRedisCluster starts a cluster for t alone; with opts.AOF every node
// keeps an append-only file with appendfsync always.
func NewRedisCluster(t testing.TB, opts RedisOptions) *RedisClusterNodes {
	t.Helper()
	server := binary(t, EnvRedisServer, "redis-server")
	cli := binary(t, EnvRedisCLI, "redis-cli")
	c := &RedisClusterNodes{}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.stop()
		}
	})
	for i := range clusterSize {
		n, err := retryStart(func() (*RedisServer, error) {
			dir, err := tempDir("redis-cluster-" + strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			ports, err := freePorts(2)
			if err != nil {
				return nil, err
			}
			args := slices.Concat(persistArgs(opts.AOF), clusterNodeArgs(ports[1]))
			n := &RedisServer{t: t, bin: server, dir: dir, port: ports[0], addr: hostPort(ports[0]), args: args}
			if err := n.start(); err != nil {
				return nil, err
			}
			return n, nil
		})
		if err != nil {
			fail(t, "redis cluster node", err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	if err := createCluster(cli, c.Addrs()); err != nil {
		fail(t, "redis cluster", err)
	}
	return c
}

// Addrs returns the nodes' addresses.
func (c *RedisClusterNodes) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// WaitOK waits until every node reports a healthy cluster again (after a
// restart), up to the start timeout.
func (c *RedisClusterNodes) WaitOK() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return waitClusterOK(ctx, c.Addrs())
}
