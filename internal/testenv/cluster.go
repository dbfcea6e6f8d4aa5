package testenv

import (
	"context"
	"fmt"
	"os/exec"
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

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create %s: %w; output:\n%s", strings.Join(addrs, " "), err, out)
	}

	if err := waitClusterOK(ctx, addrs); err != nil {
		return nil, err
	}
	return addrs, nil
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
	args := append(redisBaseArgs(dir, ports[0]),
		"--save", "",
		"--appendonly", "no",
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(ports[1]),
		"--cluster-node-timeout", "5000",
	)
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
