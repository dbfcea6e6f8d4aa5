package storemetrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRedisHook(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewRedisHook(reg)
	c := redis.NewClient(&redis.Options{Addr: testenv.Redis(t)})
	defer c.Close()
	c.AddHook(h)
	ctx := context.Background()
	key := testenv.Prefix(t) + "k"
	if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, key+"missing").Err(); !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil {
		t.Fatal("unknown command accepted")
	}
	p := c.Pipeline()
	p.Get(ctx, key)
	p.Get(ctx, key)
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "mailstore_redis_command_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			seen[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	// (The client's connection handshake adds its own commands.)
	for cmd, n := range map[string]uint64{"set": 1, "get": 1, "nosuchcommand": 1, "pipeline": 1} {
		if seen[cmd] < n {
			t.Errorf("%s timed %d times, want at least %d (all: %v)", cmd, seen[cmd], n, seen)
		}
	}
	if got := testutil.ToFloat64(h.errors.WithLabelValues("get")); got != 0 {
		t.Errorf("a missing key counted as an error")
	}
	if got := testutil.ToFloat64(h.errors.WithLabelValues("nosuchcommand")); got != 1 {
		t.Errorf("unknown command errors = %v, want 1", got)
	}
}

func TestS3Transport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	client := &http.Client{Transport: NewS3Metrics(reg)(http.DefaultTransport)}
	for _, path := range []string{"/ok", "/fail"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := client.Get("http://127.0.0.1:1/"); err == nil {
		t.Fatal("request to a closed port succeeded")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "mailstore_s3_request_duration_seconds":
				for _, l := range m.GetLabel() {
					if l.GetName() == "code" {
						counts[l.GetValue()] += float64(m.GetHistogram().GetSampleCount())
					}
				}
			case "mailstore_s3_errors_total":
				counts["errors"] += m.GetCounter().GetValue()
			}
		}
	}
	if counts["200"] != 1 || counts["503"] != 1 || counts["error"] != 1 || counts["errors"] != 2 {
		t.Fatalf("counts %v", counts)
	}
}
