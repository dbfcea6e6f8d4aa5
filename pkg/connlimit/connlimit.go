// Package connlimit enforces connection limits shared by every gateway
// pod (connections per client IP, per account) through the metadata
// store's Slots: a pod holds a count per key there, refreshed while its
// connections live, so a pod that dies frees its share when the counts
// lapse.
//
// A limit that cannot be checked because the metadata store is down lets
// the connection in (and logs): refusing every client while Redis
// restarts would turn a blip into an outage, and the session itself needs
// the store anyway.
package connlimit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/mailstore/mailstore/pkg/connserve"
	"github.com/mailstore/mailstore/pkg/meta"
)

// Store is the part of the metadata store a Keeper uses.
type Store interface {
	AcquireSlot(ctx context.Context, key, holder string, limit int64, ttl time.Duration) (int64, error)
	ReleaseSlot(ctx context.Context, key, holder string) error
	RefreshSlots(ctx context.Context, holder string, keys []string, ttl time.Duration) error
}

// callTimeout bounds one call to the store, so a hung store delays a
// connection by that much at most.
const callTimeout = 2 * time.Second

// Keeper holds one pod's slots.
type Keeper struct {
	store  Store
	holder string
	ttl    time.Duration
	logger *slog.Logger

	mu   sync.Mutex
	held map[string]int // key -> slots held here
}

// New returns a keeper for holder (stable per pod, e.g. "imap pod-7")
// whose counts lapse ttl after the last refresh; Run refreshes them.
func New(store Store, holder string, ttl time.Duration, logger *slog.Logger) *Keeper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Keeper{store: store, holder: holder, ttl: ttl, logger: logger, held: map[string]int{}}
}

// Acquire takes a slot of key under limit. ok is false when the limit is
// reached across all pods; otherwise release must be called once when the
// connection ends.
func (k *Keeper) Acquire(ctx context.Context, key string, limit int64) (release func(), ok bool) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := k.store.AcquireSlot(ctx, key, k.holder, limit, k.ttl)
	switch {
	case errors.Is(err, meta.ErrLimit):
		return nil, false
	case err != nil:
		k.logger.Warn("connection limit unchecked; letting the connection in", "key", key, "err", err)
		return func() {}, true
	}
	k.mu.Lock()
	k.held[key]++
	k.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { k.release(key) }) }, true
}

func (k *Keeper) release(key string) {
	k.mu.Lock()
	if k.held[key]--; k.held[key] <= 0 {
		delete(k.held, key)
	}
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := k.store.ReleaseSlot(ctx, key, k.holder); err != nil {
		// The count lapses by itself after the TTL unless refreshed, and
		// Run refreshes only keys still held.
		k.logger.Warn("release connection slot", "key", key, "err", err)
	}
}

// Run refreshes the held slots every ttl/3 until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(k.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.mu.Lock()
		keys := make([]string, 0, len(k.held))
		for key := range k.held {
			keys = append(keys, key)
		}
		k.mu.Unlock()
		if len(keys) == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, k.ttl/3)
		if err := k.store.RefreshSlots(rctx, k.holder, keys, k.ttl); err != nil {
			k.logger.Warn("refresh connection slots", "keys", len(keys), "err", err)
		}
		cancel()
	}
}

// Held returns how many slots of key this keeper holds.
func (k *Keeper) Held(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held[key]
}

// DefaultTTL is how long a dead pod's counts outlive it.
const DefaultTTL = time.Minute

// Holder names this process as a slot holder: unique per process, even
// for several gateway processes on one host.
func Holder(service string) string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s %s/%d/%x", service, host, os.Getpid(), b)
}

// Admitter returns a connserve Admit function limiting the connections of
// one client IP to limit, under keys prefix+IP.
func (k *Keeper) Admitter(prefix string, limit int64) func(ip string) (func(), bool) {
	return func(ip string) (func(), bool) {
		return k.Acquire(context.Background(), prefix+ip, limit)
	}
}

// Limit bounds srv's connections per client IP to max (0: no bound) for
// service ("imap", "pop3", "lmtp"): across every pod when store keeps
// shared Slots (the metadata store does), else on this pod alone. It
// returns the keeper (nil without shared slots; also usable for other
// limits, such as sessions per account) and the function that stops it.
func Limit(srv *connserve.Server, store any, service string, max int, logger *slog.Logger) (*Keeper, func()) {
	ls, ok := store.(Store)
	if !ok {
		srv.MaxPerIP = max
		return nil, func() {}
	}
	k := New(ls, Holder(service), DefaultTTL, logger)
	ctx, stop := context.WithCancel(context.Background())
	go k.Run(ctx)
	if max > 0 {
		srv.Admit = k.Admitter("conn/"+service+"/ip/", int64(max))
	}
	return k, stop
}
