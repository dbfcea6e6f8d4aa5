package imapgw

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// hub holds one metadata Watch per account that has sessions on this pod
// and fans its events out to those sessions as signals. A signal carries
// no data: the session reads what changed from the change log by the MODSEQ
// it last applied, so events that coalesce, arrive late or are lost when the
// stream breaks cost nothing but a read. After a broken stream is
// re-established every session of the account is signalled, because events
// may have been missed in between.
type hub struct {
	feed   meta.Feed
	logger *slog.Logger

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
}

// watchMailbox sets which mailbox the session wants signals for.
func (s *hubSub) watchMailbox(id mail.MailboxID, all bool) {
	s.mu.Lock()
	s.mbox, s.all = id, all
	s.mu.Unlock()
}

func (s *hubSub) wants(id mail.MailboxID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all || (s.mbox != 0 && s.mbox == id) || id == 0
}

// signal wakes the session without blocking; signals coalesce.
func (s *hubSub) signal() {
	select {
	case s.C <- struct{}{}:
	default:
	}
}

func newHub(feed meta.Feed, logger *slog.Logger) *hub {
	return &hub{feed: feed, logger: logger, accounts: map[mail.AccountID]*accountWatch{}}
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

// signalAll wakes every session of the account for mailbox mbox (0: all).
func (h *hub) signal(acct mail.AccountID, w *accountWatch, mbox mail.MailboxID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range w.subs {
		if mbox == 0 || sub.wants(mbox) {
			sub.signal()
		}
	}
}

// run keeps the account's watch open until ctx ends, re-subscribing with
// back-off when the stream breaks.
func (h *hub) run(ctx context.Context, acct mail.AccountID, w *accountWatch) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
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
		h.signal(acct, w, 0)
		backoff = 50 * time.Millisecond
		for ev := range sub.C() {
			h.signal(acct, w, ev.Mailbox)
		}
		sub.Close()
	}
}
