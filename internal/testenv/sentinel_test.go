package testenv

import (
	"net"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	setup := RedisSentinel(t)
	if again := RedisSentinel(t); again.MasterAddr != setup.MasterAddr || !slices.Equal(again.SentinelAddrs, setup.SentinelAddrs) {
		t.Fatalf("shared Sentinel setup moved: %+v then %+v", setup, again)
	}
	if setup.MasterName != SentinelMasterName || len(setup.SentinelAddrs) != sentinelCount {
		t.Fatalf("RedisSentinel = %+v, want master %q and %d sentinels", setup, SentinelMasterName, sentinelCount)
	}
	ctx := ctxT(t)

	// Every sentinel answers the question clients ask.
	for _, addr := range setup.SentinelAddrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		got, err := sc.GetMasterAddrByName(ctx, setup.MasterName).Result()
		sc.Close()
		if err != nil {
			t.Fatalf("SENTINEL get-master-addr-by-name at %s: %v", addr, err)
		}
		if len(got) != 2 || net.JoinHostPort(got[0], got[1]) != setup.MasterAddr {
			t.Fatalf("sentinel %s reports master %v, want %s", addr, got, setup.MasterAddr)
		}
	}

	// A failover client finds the master and can write to it.
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: setup.MasterName, SentinelAddrs: setup.SentinelAddrs})
	t.Cleanup(func() { c.Close() })
	key := Prefix(t) + ":k"
	if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatalf("SET through sentinel: %v", err)
	}
	if err := redisPing(ctx, setup.MasterAddr); err != nil {
		t.Fatalf("PING master: %v", err)
	}
}

func TestNewRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	g := NewRedisSentinel(t)
	ctx := ctxT(t)
	if err := infoHas(ctx, g.ReplicaAddr, "replication", map[string]string{"role": "slave", "master_link_status": "up"}); err != nil {
		t.Fatalf("replica before failover: %v", err)
	}

	g.KillMaster()
	if err := redisPing(ctx, g.MasterAddr); err == nil {
		t.Fatal("PING succeeded after KillMaster")
	}
	newMaster := g.WaitFailover(t)
	if newMaster != g.ReplicaAddr {
		t.Fatalf("WaitFailover = %s, want the replica %s", newMaster, g.ReplicaAddr)
	}

	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName, SentinelAddrs: g.SentinelAddrs})
	t.Cleanup(func() { c.Close() })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET after failover: %v", err)
	}
	if got, err := redisDo(ctx, newMaster, "GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET k on the new master = %q, %v; want %q", got, err, "v")
	}
}
