package testenv

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"context"
	"github.com/minio/minio-go/v7"
	"github.com/redis/go-redis/v9"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRedis(t *testing.T) {
	t.Parallel()
	addr := Redis(t)
	if again := Redis(t); again != addr {
		t.Fatalf("shared Redis moved: %s then %s", addr, again)
	}
	if err := redisPing(ctxT(t), addr); err != nil {
		t.Fatalf("PING %s: %v", addr, err)
	}
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := RedisCluster(t)
	if len(addrs) != 3 {
		t.Fatalf("RedisCluster returned %d addresses, want 3: %v", len(addrs), addrs)
	}
	want := map[string]string{"cluster_state": "ok", "cluster_size": "3"}
	ctx := ctxT(t)
	if err := clusterOK(ctx, addrs, want); err != nil {
		t.Fatal(err)
	}

	// A real cluster client must be able to write keys in every slot range
	// at once, with no CLUSTERDOWN or redirect errors left to settle.
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Close() })
	prefix := Prefix(t)
	for i := range 100 {
		key := fmt.Sprintf("%s:%d", prefix, i)
		if err := c.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
	}
}

func TestS3(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{VersityGW, MinIO} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			srv := S3(t, kind)
			bucket := srv.NewBucket(t)
			if other := srv.NewBucket(t); other == bucket {
				t.Fatalf("NewBucket returned %s twice", bucket)
			}
			c, err := srv.client()
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxT(t)
			const body = "hello, mailstore"
			if _, err := c.PutObject(ctx, bucket, "a/b", strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
				t.Fatalf("put object: %v", err)
			}
			obj, err := c.GetObject(ctx, bucket, "a/b", minio.GetObjectOptions{})
			if err != nil {
				t.Fatalf("get object: %v", err)
			}
			defer obj.Close()
			got, err := io.ReadAll(obj)
			if err != nil {
				t.Fatalf("read object: %v", err)
			}
			if string(got) != body {
				t.Fatalf("object holds %q, want %q", got, body)
			}
		})
	}
}

func TestNewRedisAOFSurvivesKill(t *testing.T) {
	t.Parallel()
	srv := NewRedis(t, RedisOptions{AOF: true})
	ctx := ctxT(t)
	if _, err := redisDo(ctx, srv.Addr(), "SET", "k", "v"); err != nil {
		t.Fatalf("SET: %v", err)
	}
	srv.Kill()
	if err := redisPing(ctx, srv.Addr()); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	srv.Restart()
	got, err := redisDo(ctx, srv.Addr(), "GET", "k")
	if err != nil {
		t.Fatalf("GET after restart: %v", err)
	}
	if got != "v" {
		t.Fatalf("GET k after restart = %q, want %q", got, "v")
	}
}

func TestPrefixUnique(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		p := Prefix(t)
		if seen[p] {
			t.Fatalf("Prefix returned %q twice", p)
		}
		seen[p] = true
		for _, r := range p {
			if (r < '0' || r > '9') && (r < 'a' || r > 'z') {
				t.Fatalf("Prefix %q holds %q, want only [0-9a-z]", p, r)
			}
		}
	}
}

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	tests := []struct {
		name              string
		bin               string
		require           string
		wantSkip, wantErr bool
	}{
		{name: "missing skips", bin: "/nonexistent/redis-server", wantSkip: true},
		{name: "missing fails when required", bin: "/nonexistent/redis-server", require: "1", wantErr: true},
		{name: "present", bin: os.Args[0], require: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvRedisServer, tt.bin)
			t.Setenv(EnvRequireServers, tt.require)
			r := &recorder{TB: t}
			var got string
			done := make(chan struct{})
			go func() {
				defer close(done)
				got = binary(r, EnvRedisServer, "redis-server")
			}()
			<-done
			if r.skipped != tt.wantSkip || r.failed != tt.wantErr {
				t.Fatalf("skipped=%v failed=%v (%s), want skipped=%v failed=%v", r.skipped, r.failed, r.msg, tt.wantSkip, tt.wantErr)
			}
			if !tt.wantSkip && !tt.wantErr && got != tt.bin {
				t.Fatalf("binary = %q, want %q", got, tt.bin)
			}
		})
	}
}

func TestNewS3KillRestart(t *testing.T) {
	for _, kind := range []string{VersityGW, MinIO} {
		t.Run(kind, func(t *testing.T) {
			p := NewS3(t, kind)
			bucket := p.Server.NewBucket(t)
			p.Kill()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := p.Server.listBuckets(ctx); err == nil {
				t.Fatal("list buckets succeeded on a killed server")
			}
			p.Restart()
			c, err := p.Server.client()
			if err != nil {
				t.Fatal(err)
			}
			ok, err := c.BucketExists(t.Context(), bucket)
			if err != nil || !ok {
				t.Fatalf("bucket %s after restart: exists=%v err=%v", bucket, ok, err)
			}
		})
	}
}
