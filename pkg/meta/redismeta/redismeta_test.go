package redismeta

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestConformance runs the metatest suite on a standalone redis-server and
// on a 3-master Redis Cluster.
func TestConformance(t *testing.T) {
	for _, mode := range []string{"standalone", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			metatest.Run(t, func(t *testing.T) meta.Store {
				return newTestStore(t, mode == "cluster")
			})
		})
	}
}

// newTestStore returns a Store through New (so the real configuration path
// is used) with its own key prefix; its keys are removed at cleanup.
func newTestStore(t testing.TB, cluster bool) *Store {
	t.Helper()
	cfg := Config{
		KeyPrefix:    testenv.Prefix(t) + ":",
		DialTimeout:  5 * time.Second,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		ChangeLogMax: DefaultChangeLogMax,
		PoolSize:     8,
	}
	if cluster {
		cfg.Addrs, cfg.Cluster = testenv.RedisCluster(t), true
	} else {
		cfg.Addrs = []string{testenv.Redis(t)}
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() {
		removeKeys(t, s.c, cfg.KeyPrefix)
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// removeKeys deletes every key under prefix, on every master.
func removeKeys(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	del := func(ctx context.Context, n *redis.Client) error {
		iter := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		for _, k := range batch {
			// One key per command: keys of several slots may sit on one node.
			if err := n.Unlink(ctx, k).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch cc := c.(type) {
	case *redis.ClusterClient:
		err = cc.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, cc)
	}
	if err != nil {
		t.Logf("remove test keys %s*: %v", prefix, err)
	}
}
