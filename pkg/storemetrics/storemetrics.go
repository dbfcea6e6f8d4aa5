// Package storemetrics measures the calls the services make to their
// backing stores, Redis and S3: latency histograms and error counters in
// Prometheus, named mailstore_redis_* and mailstore_s3_*. They are what
// tells an SRE whether a slow IMAP command is slow because of Redis or of
// the object store.
package storemetrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// RedisHook is a go-redis hook that times every command and pipeline.
type RedisHook struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewRedisHook registers the Redis metrics with reg.
func NewRedisHook(reg prometheus.Registerer) *RedisHook {
	h := &RedisHook{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "mailstore", Subsystem: "redis", Name: "command_duration_seconds",
			Help: "Redis round trips by command (\"pipeline\" for a pipeline; scripts are evalsha).", Buckets: latencyBuckets}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mailstore", Subsystem: "redis", Name: "errors_total",
			Help: "Redis calls that failed (a missing key is not a failure), by command."}, []string{"command"}),
	}
	reg.MustRegister(h.duration, h.errors)
	return h
}

// DialHook implements redis.Hook.
func (h *RedisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.errors.WithLabelValues("dial").Inc()
		}
		return c, err
	}
}

// ProcessHook implements redis.Hook.
func (h *RedisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(strings.ToLower(cmd.Name()), start, err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h *RedisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe("pipeline", start, err)
		return err
	}
}

func (h *RedisHook) observe(name string, start time.Time, err error) {
	h.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		h.errors.WithLabelValues(name).Inc()
	}
}

// S3Transport times every S3 request.
type S3Transport struct {
	base     http.RoundTripper
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewS3Metrics registers the S3 metrics with reg and returns a function
// that wraps a transport with them.
func NewS3Metrics(reg prometheus.Registerer) func(http.RoundTripper) http.RoundTripper {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "mailstore", Subsystem: "s3", Name: "request_duration_seconds",
		Help: "S3 requests until the response headers, by HTTP method and status code (\"error\" when no response came).", Buckets: latencyBuckets}, []string{"method", "code"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mailstore", Subsystem: "s3", Name: "errors_total",
		Help: "S3 requests without a response or answered 5xx, by HTTP method."}, []string{"method"})
	reg.MustRegister(duration, errs)
	return func(base http.RoundTripper) http.RoundTripper {
		return &S3Transport{base: base, duration: duration, errors: errs}
	}
}

// RoundTrip implements http.RoundTripper.
func (t *S3Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.duration.WithLabelValues(r.Method, code).Observe(time.Since(start).Seconds())
	if err != nil || resp.StatusCode >= 500 {
		t.errors.WithLabelValues(r.Method).Inc()
	}
	return resp, err
}
