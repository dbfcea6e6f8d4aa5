package localmeta

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// broker fans events out to the subscriptions of their account. publish
// never blocks: a subscription whose buffer is full is ended with
// ErrSlowSubscriber, and its consumer catches up with ChangesSince.
type broker struct {
	mu     sync.Mutex
	size   int
	subs   map[mail.AccountID]map[*subscription]struct{}
	closed error // non-nil once the store is closed
}

func newBroker(size int) *broker {
	return &broker{size: max(size, 1), subs: make(map[mail.AccountID]map[*subscription]struct{})}
}

type subscription struct {
	b    *broker
	acct mail.AccountID
	ch   chan meta.Event
	stop func() bool // stops the context watcher

	// guarded by b.mu
	done bool
	err  error
}

func (b *broker) subscribe(ctx context.Context, acct mail.AccountID) (*subscription, error) {
	s := &subscription{b: b, acct: acct, ch: make(chan meta.Event, b.size)}
	b.mu.Lock()
	if b.closed != nil {
		b.mu.Unlock()
		return nil, b.closed
	}
	set := b.subs[acct]
	if set == nil {
		set = make(map[*subscription]struct{})
		b.subs[acct] = set
	}
	set[s] = struct{}{}
	b.mu.Unlock()
	s.stop = context.AfterFunc(ctx, func() { b.end(s, ctx.Err()) })
	return s, nil
}

func (b *broker) publish(ev meta.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[ev.Account] {
		select {
		case s.ch <- ev:
		default:
			b.endLocked(s, ErrSlowSubscriber)
		}
	}
}

func (b *broker) end(s *subscription, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.endLocked(s, err)
}

func (b *broker) endLocked(s *subscription, err error) {
	if s.done {
		return
	}
	s.done = true
	s.err = err
	if set := b.subs[s.acct]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.subs, s.acct)
		}
	}
	close(s.ch)
}

func (b *broker) closeAll(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = err
	for _, set := range b.subs {
		for s := range set {
			b.endLocked(s, err)
		}
	}
}

func (s *subscription) C() <-chan meta.Event { return s.ch }

func (s *subscription) Err() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.err
}

func (s *subscription) Close() error {
	if s.stop != nil {
		s.stop()
	}
	s.b.end(s, nil)
	return nil
}

// Watch subscribes to the account's events until Close, the end of ctx
// (Err is then ctx.Err()), the close of the store, or falling more than
// the event buffer behind (Err is ErrSlowSubscriber).
func (s *Store) Watch(ctx context.Context, acct mail.AccountID) (meta.Subscription, error) {
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if accountBucket(tx, acct) == nil {
			return meta.ErrNoSuchAccount
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watch account %s: %w", acct, err)
	}
	sub, err := s.broker.subscribe(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("watch account %s: %w", acct, err)
	}
	return sub, nil
}
