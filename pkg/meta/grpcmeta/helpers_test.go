package grpcmeta_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
)

// waitBound bounds waits for something asynchronous; a failure bound, not
// a timing assertion.
const waitBound = 10 * time.Second

// testServer is a MetadataService on a loopback TCP port with a client.
type testServer struct {
	grpc   *grpc.Server
	server *grpcmeta.Server
	conn   *grpc.ClientConn
	client *grpcmeta.Client
	addr   string
}

// startServer serves store (and auth, may be nil) over real gRPC on
// 127.0.0.1 and returns a connected client; everything stops at cleanup.
func startServer(t *testing.T, store meta.Store, auth meta.Authenticator) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(grpcmeta.MaxMessageSize))
	srv := grpcmeta.NewServer(store, auth, slog.New(slog.NewTextHandler(t.Output(), nil)))
	srv.Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})
	cc := dial(t, lis.Addr().String())
	return &testServer{grpc: gs, server: srv, conn: cc, client: grpcmeta.New(cc), addr: lis.Addr().String()}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	t.Cleanup(cancel)
	return ctx
}

// stubStore is a meta.Store whose unimplemented methods panic (the nil
// embedded interface); tests override what they need through the fields.
type stubStore struct {
	meta.Store

	err error // returned by Account, Mailbox, Watch when set

	// entries is what ListEntries returns; changes what ChangesSince does.
	entries []meta.Entry
	changes meta.ChangeSet

	mu   sync.Mutex
	subs []*stubSub
	// subscribed is signalled after each Watch.
	subscribed chan struct{}
	// lastUpdate, lastFlags and lastEntry record arguments.
	lastUpdate meta.AccountUpdate
	lastFlags  meta.FlagChange
	lastEntry  meta.NewEntry
	mailboxes  []meta.Mailbox
}

func (s *stubStore) Close() error { return nil }

func (s *stubStore) Account(_ context.Context, id mail.AccountID) (meta.Account, error) {
	if s.err != nil {
		return meta.Account{}, s.err
	}
	return meta.Account{ID: id, Login: "user@example.com", PasswordHash: "$argon2id$secret"}, nil
}

func (s *stubStore) UpdateAccount(_ context.Context, id mail.AccountID, u meta.AccountUpdate) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUpdate = u
	return meta.Account{ID: id}, nil
}

func (s *stubStore) ListMailboxes(context.Context, mail.AccountID) ([]meta.Mailbox, error) {
	return s.mailboxes, nil
}

func (s *stubStore) AppendEntry(_ context.Context, _ mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) (meta.Appended, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastEntry = e
	return meta.Appended{Mailbox: mbox, UIDValidity: 7, UID: 42, ModSeq: 99}, nil
}

func (s *stubStore) ListEntries(context.Context, mail.AccountID, mail.MailboxID, mail.UIDSet, meta.Fields, mail.ModSeq) ([]meta.Entry, error) {
	return s.entries, nil
}

func (s *stubStore) StoreFlags(_ context.Context, _ mail.AccountID, _ mail.MailboxID, c meta.FlagChange) (meta.FlagResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastFlags = c
	return meta.FlagResult{
		Updated:   []meta.Entry{{UID: 3, ModSeq: 10, Flags: c.Flags}},
		Unchanged: []meta.Entry{{UID: 2, ModSeq: 7, Flags: []mail.Flag{mail.FlagFlagged}}},
		Modified:  mail.NewUIDSet(4, 5),
	}, nil
}

func (s *stubStore) ChangesSince(context.Context, mail.AccountID, mail.MailboxID, mail.ModSeq) (meta.ChangeSet, error) {
	return s.changes, nil
}

func (s *stubStore) Watch(context.Context, mail.AccountID) (meta.Subscription, error) {
	if s.err != nil {
		return nil, s.err
	}
	sub := &stubSub{ch: make(chan meta.Event, 16)}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	if s.subscribed != nil {
		s.subscribed <- struct{}{}
	}
	return sub, nil
}

// publish sends ev to every open subscription.
func (s *stubStore) publish(ev meta.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		sub.send(ev)
	}
}

// breakAll ends every subscription with err.
func (s *stubStore) breakAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		sub.end(err)
	}
}

type stubSub struct {
	mu     sync.Mutex
	ch     chan meta.Event
	err    error
	closed bool
}

func (s *stubSub) send(ev meta.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.ch <- ev
	}
}

func (s *stubSub) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed, s.err = true, err
		close(s.ch)
	}
}

func (s *stubSub) C() <-chan meta.Event { return s.ch }
func (s *stubSub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
func (s *stubSub) Close() error { s.end(nil); return nil }

// stubAuth accepts one login and password.
type stubAuth struct{}

func (stubAuth) Authenticate(_ context.Context, login, password, remoteAddr string) (meta.Account, error) {
	if login == "user" && (password == "secret" || password == "s\xe9cret") && remoteAddr == "192.0.2.1:1234" {
		return meta.Account{ID: "a1", Login: login, PasswordHash: "$argon2id$hash"}, nil
	}
	return meta.Account{}, meta.ErrAuthFailed
}
