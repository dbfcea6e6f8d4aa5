// Package localmeta is the embedded metadata backend: a meta.Store on one
// bbolt file, with change events, leases, rate-limit counters and slots
// kept in process. It is the default of `make run` and of `-target=all` on a
// laptop, where running Redis would be a chore.
//
// One metadata process only. The file is locked by bbolt while open; a
// second process (or a second Open in this one) fails after the lock
// timeout with ErrLocked instead of waiting. Events, leases, counters and
// slots live in this process's memory, so they are only correct while a
// single process serves the metadata API; scale out with the Redis
// backend.
//
// Every mutation is one bbolt write transaction, so UID and MODSEQ
// allocation, counters, quota and blob reference counts change together or
// not at all. Events are published after the commit, while the writer
// mutex is still held, so subscribers see each mailbox's events in MODSEQ
// order. Lock order: Store.wmu, then bbolt's writer lock, then broker.mu;
// Store.lmu (leases) may take bbolt's writer lock but never wmu.
package localmeta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

var _ meta.Store = (*Store)(nil)

// ErrLocked is returned by Open when another process (or another Store in
// this one) holds the file.
var ErrLocked = errors.New("metadata file locked by another process (the local backend allows one metadata process)")

// ErrSlowSubscriber ends a subscription whose consumer did not keep up;
// it should catch up with ChangesSince and Watch again.
var ErrSlowSubscriber = fmt.Errorf("subscriber too slow: %w", meta.ErrUnavailable)

// errClosed is returned after Close.
var errClosed = fmt.Errorf("local metadata store closed: %w", meta.ErrUnavailable)

// Option tunes a Store; the defaults suit production.
type Option func(*options)

type options struct {
	clock       func() time.Time
	lockTimeout time.Duration
	eventBuffer int
	noSync      bool
}

// WithClock sets the clock used for lease and counter expiry, blob GC
// times, creation dates, UIDVALIDITY and the commit time of events.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithLockTimeout sets how long Open waits for the file lock (default 1s).
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// WithEventBuffer sets the channel size of each subscription (default
// 1024); a subscriber that falls further behind is dropped.
func WithEventBuffer(n int) Option { return func(o *options) { o.eventBuffer = n } }

// WithNoSync skips fsync on commit: for tests and benchmarks only, a crash
// may then lose acknowledged changes.
func WithNoSync() Option { return func(o *options) { o.noSync = true } }

// Store is the embedded metadata store. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	closed atomic.Bool

	// wmu serializes write transactions and the publication of their
	// events, so events leave in commit (and so MODSEQ) order.
	wmu    sync.Mutex
	broker *broker

	// lmu guards leases and the fencing token block.
	lmu        sync.Mutex
	leases     map[leaseKey]leaseState
	nextToken  uint64 // next fencing token to hand out
	tokenLimit uint64 // highest token reserved in the file
	leaseOps   int

	cmu      sync.Mutex
	counters map[string]counterState
	ctrOps   int

	// smu guards slots (slots.go).
	smu     sync.Mutex
	slots   map[string]map[string]counterState // key -> holder -> count
	slotOps int
}

// Open opens (creating if needed) the store at cfg.Path.
func Open(cfg Config, logger *slog.Logger, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		return nil, errNoPath
	}
	o := options{clock: time.Now, lockTimeout: time.Second, eventBuffer: 1024}
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("open metadata file %s: %w", cfg.Path, err)
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout:        o.lockTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		NoSync:         o.noSync,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open metadata file %s: %w", cfg.Path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open metadata file %s: %w", cfg.Path, err)
	}
	s := &Store{
		db:       db,
		cfg:      cfg,
		logger:   logger,
		now:      o.clock,
		broker:   newBroker(o.eventBuffer),
		leases:   make(map[leaseKey]leaseState),
		counters: make(map[string]counterState),
		slots:    make(map[string]map[string]counterState),
	}
	err = db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucketIfNotExists(bktMeta)
		if err != nil {
			return err
		}
		if v := mb.Get(keyVersion); v == nil {
			if err := mb.Put(keyVersion, u32Key(schemaVersion)); err != nil {
				return err
			}
		} else if len(v) != 4 || decodeU32(v) != schemaVersion {
			return fmt.Errorf("schema version %x, want %d", v, schemaVersion)
		}
		if v := mb.Get(keyLeaseToken); len(v) == 8 {
			s.tokenLimit = decodeU64(v)
		}
		s.nextToken = s.tokenLimit + 1
		for _, name := range [][]byte{bktLogins, bktAliases, bktAccounts, bktGC} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open metadata file %s: %w", cfg.Path, err)
	}
	logger.Info("local metadata store open", "path", cfg.Path)
	return s, nil
}

// Close closes the file and ends every subscription.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.broker.closeAll(errClosed)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close metadata file: %w", err)
	}
	return nil
}

// update runs fn in one write transaction and, after commit, publishes the
// events fn recorded.
func (s *Store) update(ctx context.Context, fn func(w *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var w *wtx
	err := s.db.Update(func(tx *bolt.Tx) error {
		w = &wtx{s: s, tx: tx, now: s.now(), accts: make(map[mail.AccountID]*acctState, 1)}
		if err := fn(w); err != nil {
			return err
		}
		return w.flush()
	})
	if err != nil {
		return classify(err)
	}
	// Events carry the store's clock at publish as their commit time;
	// wmu, still held, keeps the times in commit order.
	at := s.now()
	for _, ev := range w.events {
		ev.Time = at
		s.broker.publish(ev)
	}
	return nil
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	return classify(s.db.View(fn))
}

// classify passes contract errors through and turns anything else from
// bbolt (a closed file, an I/O error, corruption) into ErrUnavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{
		meta.ErrNoSuchAccount, meta.ErrNoSuchMailbox, meta.ErrNoSuchMessage,
		meta.ErrExists, meta.ErrInvalidArgument, meta.ErrOverQuota,
		meta.ErrConflict, meta.ErrLeaseHeld, meta.ErrLeaseLost,
		meta.ErrAuthFailed, meta.ErrDisabled, meta.ErrUnavailable,
		meta.ErrPermission, context.Canceled, context.DeadlineExceeded,
	} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", meta.ErrUnavailable, err)
}

func decodeU32(v []byte) uint32 {
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
}

func decodeU64(v []byte) uint64 {
	return uint64(decodeU32(v))<<32 | uint64(decodeU32(v[4:]))
}
