package connserve

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// echoSession ends when its connection closes or Shutdown is called.
type echoSession struct {
	c        net.Conn
	shutdown atomic.Bool
}

func (e *echoSession) Serve() {
	defer e.c.Close()
	buf := make([]byte, 16)
	for {
		if _, err := e.c.Read(buf); err != nil {
			return
		}
	}
}

func (e *echoSession) Shutdown() {
	e.shutdown.Store(true)
	_ = e.c.SetReadDeadline(time.Now())
}

func TestServeAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var srv Server
	var made []*echoSession
	madeCh := make(chan *echoSession, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, ln, nil, func(c net.Conn, implicit bool) Session {
			if implicit {
				t.Error("implicit TLS without a config")
			}
			s := &echoSession{c: c}
			madeCh <- s
			return s
		})
	}()
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		made = append(made, <-madeCh)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Len() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions tracked, want 2", srv.Len())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	for i, s := range made {
		if !s.shutdown.Load() {
			t.Errorf("session %d was not shut down", i)
		}
	}
	if srv.Len() != 0 || len(srv.Sessions()) != 0 {
		t.Fatalf("%d sessions left after shutdown", srv.Len())
	}
}
