package grpcmeta_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// nextEvent waits for one event on sub, failing after waitBound.
func nextEvent(t *testing.T, sub meta.Subscription) meta.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return ev
	case <-time.After(waitBound):
		t.Fatal("no event")
	}
	return meta.Event{}
}

// waitEnd waits until sub's channel is closed and returns Err.
func waitEnd(t *testing.T, sub meta.Subscription) error {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		select {
		case _, ok := <-sub.C():
			if !ok {
				return sub.Err()
			}
		case <-deadline:
			t.Fatal("subscription did not end")
		}
	}
}

func watch(t *testing.T, store *stubStore, c meta.Feed) meta.Subscription {
	t.Helper()
	sub, err := c.Watch(t.Context(), "a1")
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func TestWatchDelivers(t *testing.T) {
	store := &stubStore{}
	ts := startServer(t, store, nil)
	sub := watch(t, store, ts.client)
	// Watch returned only after the ready message, so the server side is
	// subscribed and this event, published right away, must arrive.
	want := []meta.Event{
		{Account: "a1", Mailbox: 3, Kind: meta.EventAppend, ModSeq: 7, UIDs: mail.NewUIDSet(1, 2, 3)},
		{Account: "a1", Mailbox: 3, Kind: meta.EventFlags, ModSeq: 8, UIDs: mail.NewUIDSet(2)},
		{Account: "a1", Mailbox: 3, Kind: meta.EventExpunge, ModSeq: 9, UIDs: mail.UIDSet{{Start: 5, Stop: mail.MaxUID}}},
		{Account: "a1", Mailbox: 4, Kind: meta.EventMailbox, ModSeq: 1},
	}
	for _, ev := range want {
		store.publish(ev)
	}
	for i, w := range want {
		got := nextEvent(t, sub)
		if got.Account != w.Account || got.Mailbox != w.Mailbox || got.Kind != w.Kind || got.ModSeq != w.ModSeq || got.UIDs.String() != w.UIDs.String() {
			t.Errorf("event %d = %+v, want %+v", i, got, w)
		}
	}
}

func TestWatchEnds(t *testing.T) {
	tests := []struct {
		name    string
		end     func(ts *testServer, store *stubStore, sub meta.Subscription)
		wantErr error // nil: Err must be nil
	}{
		{"close", func(_ *testServer, _ *stubStore, sub meta.Subscription) { _ = sub.Close() }, nil},
		{"server stopped", func(ts *testServer, _ *stubStore, _ meta.Subscription) { ts.grpc.Stop() }, meta.ErrUnavailable},
		{"server drains", func(ts *testServer, _ *stubStore, _ meta.Subscription) { ts.server.Drain() }, meta.ErrUnavailable},
		{"store subscription breaks", func(_ *testServer, store *stubStore, _ meta.Subscription) {
			store.breakAll(fmt.Errorf("redis pubsub: %w", meta.ErrUnavailable))
		}, meta.ErrUnavailable},
		{"store subscription fails", func(_ *testServer, store *stubStore, _ meta.Subscription) {
			store.breakAll(errors.New("decode event: bad payload"))
		}, meta.ErrUnavailable},
		{"store subscription closes", func(_ *testServer, store *stubStore, _ meta.Subscription) { store.breakAll(nil) }, meta.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &stubStore{}
			ts := startServer(t, store, nil)
			sub := watch(t, store, ts.client)
			tc.end(ts, store, sub)
			err := waitEnd(t, sub)
			if tc.wantErr == nil && err != nil {
				t.Errorf("Err = %v, want nil", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestWatchContextEnds(t *testing.T) {
	store := &stubStore{}
	ts := startServer(t, store, nil)
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := ts.client.Watch(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	cancel()
	if err := waitEnd(t, sub); !errors.Is(err, context.Canceled) {
		t.Errorf("Err = %v, want context.Canceled", err)
	}
}

func TestWatchError(t *testing.T) {
	store := &stubStore{err: fmt.Errorf("watch: %w", meta.ErrNoSuchAccount)}
	ts := startServer(t, store, nil)
	if _, err := ts.client.Watch(t.Context(), "a1"); !errors.Is(err, meta.ErrNoSuchAccount) {
		t.Errorf("err = %v, want ErrNoSuchAccount", err)
	}
	t.Run("after drain", func(t *testing.T) {
		ts := startServer(t, &stubStore{}, nil)
		ts.server.Drain()
		if _, err := ts.client.Watch(t.Context(), "a1"); !errors.Is(err, meta.ErrUnavailable) {
			t.Errorf("err = %v, want ErrUnavailable", err)
		}
	})
}

// TestWatchCloseWithUnreadEvents checks that Close returns while events
// are pending and nobody reads them.
func TestWatchCloseWithUnreadEvents(t *testing.T) {
	store := &stubStore{}
	ts := startServer(t, store, nil)
	sub := watch(t, store, ts.client)
	for i := range 10 {
		store.publish(meta.Event{Account: "a1", Mailbox: 1, Kind: meta.EventAppend, ModSeq: mail.ModSeq(i + 1)})
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitEnd(t, sub); err != nil {
		t.Errorf("Err after Close = %v, want nil", err)
	}
}
