package redismeta

import (
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
)

// AddHook adds a go-redis hook (metrics) to the store's client.
func (s *Store) AddHook(h redis.Hook) { s.c.AddHook(h) }

// InstrumentTracing makes every Redis call a span of the caller's trace
// (OpenTelemetry, the global tracer provider).
func (s *Store) InstrumentTracing() error { return redisotel.InstrumentTracing(s.c) }
