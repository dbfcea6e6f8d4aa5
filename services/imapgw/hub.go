package imapgw

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mailstore/mailstore/pkg/gwmetrics"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// hub holds one metadata Watch per account that has sessions on this pod
// and fans its events out to those sessions as signals. A signal carries
// no data: the session reads what changed from the change log by the MODSEQ
// it last applied, so events that coalesce, arrive late or are lost when the
// stream breaks cost nothing but a read. After a broken stream is
// re-established every session of the account is signalled, because events
// may have been missed in between. A session with NOTIFY also learns which
// other mailboxes had events (hubSub.watchOthers), again only as hints.
type hub struct {
	feed    meta.Feed
	logger  *slog.Logger
	metrics *gwmetrics.Gateway

	mu       sync.Mutex
	accounts map[mail.AccountID]*accountWatch
	closed   bool
}

type accountWatch struct {
	subs   map[*hubSub]struct{}
	cancel context.CancelFunc
}

// hubSub is one session's subscription. C gets a value when the session's
// mailbox (or, with all set, any mailbox of the account) may have changed.
type hubSub struct {
	acct mail.AccountID
	C    chan struct{}

	mu   sync.Mutex
	mbox mail.MailboxID // 0: none selected
	all  bool
	// NOTIFY (RFC 5465): with others set, an event of any mailbox wakes
	// the session and is recorded in changed (the kinds seen per mailbox,
	// a set bounded by the account's mailboxes) until takeChanges.
	// restarted: the stream was re-established, anything may have
	// changed; subs: a session on this pod changed subscriptions (the feed
	// has no event for those).
	others    bool
	changed   map[mail.MailboxID]eventKinds
	restarted bool
	subs      bool
}

// eventKinds is a set of meta.EventKind, bit 1<<kind.
type eventKinds uint8

func (k eventKinds) has(kind meta.EventKind) bool { return k&(1<<kind) != 0 }

// watchOthers turns the recording of other mailboxes' changes on or off.
// Turning it on again keeps what was recorded.
func (s *hubSub) watchOthers(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.others = on
	switch {
	case !on:
		s.changed, s.restarted, s.subs = nil, false, false
	case s.changed == nil:
		s.changed = map[mail.MailboxID]eventKinds{}
	}
}

// takeChanges returns and clears what watchOthers recorded.
func (s *hubSub) takeChanges() (changed map[mail.MailboxID]eventKinds, restarted, subs bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.others {
		return nil, false, false
	}
	changed, restarted, subs = s.changed, s.restarted, s.subs
	s.changed, s.restarted, s.subs = map[mail.MailboxID]eventKinds{}, false, false
	return changed, restarted, subs
}

// watchMailbox sets which mailbox the session wants signals for.
func (s *hubSub) watchMailbox(id mail.MailboxID, all bool) {
	s.mu.Lock()
	s.mbox, s.all = id, all
	s.mu.Unlock()
}

// event records an event of kind in mailbox id (0: the stream was
// re-established) and wakes the session if it cares.
func (s *hubSub) event(id mail.MailboxID, kind meta.EventKind) {
	s.mu.Lock()
	wake := s.all || (s.mbox != 0 && s.mbox == id) || id == 0
	if s.others {
		wake = true
		if id == 0 {
			s.restarted = true
		} else {
			s.changed[id] |= 1 << kind
		}
	}
	s.mu.Unlock()
	if wake {
		s.signal()
	}
}

// subscriptionsChanged wakes a session that watches other mailboxes.
func (s *hubSub) subscriptionsChanged() {
	s.mu.Lock()
	wake := s.others
	s.subs = s.subs || s.others
	s.mu.Unlock()
	if wake {
		s.signal()
	}
}

// signal wakes the session without blocking; signals coalesce.
func (s *hubSub) signal() {
	select {
	case s.C <- struct{}{}:
	default:
	}
}

func newHub(feed meta.Feed, logger *slog.Logger, metrics *gwmetrics.Gateway) *hub {
	return &hub{feed: feed, logger: logger, metrics: metrics, accounts: map[mail.AccountID]*accountWatch{}}
}

// subscribe registers a session of acct, starting the account's watch if
// it is the first.
func (h *hub) subscribe(acct mail.AccountID) *hubSub {
	sub := &hubSub{acct: acct, C: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.accounts[acct]
	if w == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w = &accountWatch{subs: map[*hubSub]struct{}{}, cancel: cancel}
		h.accounts[acct] = w
		if !h.closed {
			go h.run(ctx, acct, w)
		}
	}
	w.subs[sub] = struct{}{}
	return sub
}

// unsubscribe removes a session; the last one stops the watch.
func (h *hub) unsubscribe(sub *hubSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.accounts[sub.acct]
	if w == nil {
		return
	}
	delete(w.subs, sub)
	if len(w.subs) == 0 {
		w.cancel()
		delete(h.accounts, sub.acct)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, w := range h.accounts {
		w.cancel()
	}
}

// signal passes an event of kind in mailbox mbox (0: any mailbox may have
// changed) to every session of the account.
func (h *hub) signal(w *accountWatch, mbox mail.MailboxID, kind meta.EventKind) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range w.subs {
		sub.event(mbox, kind)
	}
}

// subscriptionsChanged tells the account's sessions on this pod that a
// subscription changed.
func (h *hub) subscriptionsChanged(acct mail.AccountID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.accounts[acct]; w != nil {
		for sub := range w.subs {
			sub.subscriptionsChanged()
		}
	}
}

// run keeps the account's watch open until ctx ends, re-subscribing with
// back-off when the stream breaks.
func (h *hub) run(ctx context.Context, acct mail.AccountID, w *accountWatch) {
	backoff := 50 * time.Millisecond
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			h.metrics.WatchRestarted()
		}
		sub, err := h.feed.Watch(ctx, acct)
		if err != nil {
			h.logger.Debug("watch account", "account", acct, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		// Changes may have been made before the stream was up (or while
		// it was down): every session catches up once.
		h.signal(w, 0, 0)
		backoff = 50 * time.Millisecond
		closed := h.metrics.WatchOpened()
		for ev := range sub.C() {
			h.metrics.Event(ev.Kind.String())
			// Lag from commit, by the store's clock, to here, by ours;
			// EventLag clamps skew below zero. A zero Time is a
			// publisher that does not stamp events: no sample.
			if !ev.Time.IsZero() {
				h.metrics.EventLag(time.Since(ev.Time))
			}
			h.signal(w, ev.Mailbox, ev.Kind)
		}
		sub.Close()
		closed()
	}
}
