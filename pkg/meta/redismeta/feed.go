package redismeta

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// healthInterval: a subscription with no traffic for this long sends a
// PING; if the next interval passes without a PONG, the subscription is
// broken (a silent network partition would otherwise go unnoticed).
const healthInterval = 15 * time.Second

// subBuffer is how many events a subscription buffers. A slower consumer
// holds the reader back; Redis then buffers, and past its client output
// limit drops the connection, which ends the subscription with an error so
// the consumer catches up through ChangesSince.
const subBuffer = 256

// Watch subscribes with SSUBSCRIBE on the account channel and returns once
// Redis confirmed the subscription, so every event published after Watch
// returns is delivered. The subscription ends on Close (Err nil), on the
// end of ctx (Err is ctx.Err()), or when the connection breaks (Err wraps
// meta.ErrUnavailable). go-redis' own reconnect-and-resubscribe is not
// relied on: events would be lost silently in between.
func (s *Store) Watch(ctx context.Context, acct mail.AccountID) (meta.Subscription, error) {
	if !validAccountID(acct) {
		return nil, fmt.Errorf("watch account %s: %w", acct, meta.ErrNoSuchAccount)
	}
	n, err := s.c.Exists(ctx, s.k.account(acct)).Result()
	if err != nil {
		return nil, wrap(err, "watch account %s", acct)
	}
	if n == 0 {
		return nil, fmt.Errorf("watch account %s: %w", acct, meta.ErrNoSuchAccount)
	}
	ps := s.c.SSubscribe(ctx, s.k.events(acct))
	timeout := healthInterval
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, timeout)
		if err != nil {
			_ = ps.Close()
			return nil, wrap(err, "watch account %s", acct)
		}
		if m, ok := msg.(*redis.Subscription); ok && m.Kind == "ssubscribe" {
			break
		}
	}
	sub := &subscription{
		acct:   acct,
		ps:     ps,
		ch:     make(chan meta.Event, subBuffer),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		logger: s.logger,
	}
	stop := context.AfterFunc(ctx, func() { sub.end(ctx.Err()) })
	go func() {
		defer stop()
		sub.read()
	}()
	return sub, nil
}

type subscription struct {
	acct   mail.AccountID
	ps     *redis.PubSub
	ch     chan meta.Event
	done   chan struct{} // closed by end
	exited chan struct{} // closed when read returns
	logger interface {
		Warn(msg string, args ...any)
	}

	mu    sync.Mutex
	ended bool
	err   error
}

func (s *subscription) C() <-chan meta.Event { return s.ch }

func (s *subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription and waits for its reader to stop.
func (s *subscription) Close() error {
	s.end(nil)
	<-s.exited
	return nil
}

// end records why the subscription ends (first caller wins) and closes the
// connection, which unblocks the reader.
func (s *subscription) end(err error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.err = true, err
	s.mu.Unlock()
	close(s.done)
	_ = s.ps.Close()
}

func (s *subscription) read() {
	defer close(s.exited)
	defer close(s.ch)
	ctx := context.Background()
	pinged := false
	for {
		msg, err := s.ps.ReceiveTimeout(ctx, healthInterval)
		select {
		case <-s.done:
			return
		default:
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				if err := s.ps.Ping(ctx); err != nil {
					s.end(wrap(err, "watch account %s", s.acct))
					return
				}
				pinged = true
				continue
			}
			s.end(wrap(err, "watch account %s", s.acct))
			return
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			ev, err := decodeEvent(s.acct, m.Payload)
			if err != nil {
				s.logger.Warn("drop malformed event", "account", s.acct, "err", err)
				continue
			}
			select {
			case s.ch <- ev:
			case <-s.done:
				return
			}
		case *redis.Subscription:
			if m.Kind == "sunsubscribe" {
				// The server dropped us, e.g. when the slot moved.
				s.end(fmt.Errorf("watch account %s: %w: unsubscribed by the server", s.acct, meta.ErrUnavailable))
				return
			}
		}
	}
}
