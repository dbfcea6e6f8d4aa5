package connserve

import (
	"context"
	"fmt"
	"net"
	"sync"
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

func TestMaxPerIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server{
		MaxPerIP: 2,
		Refuse:   func(c net.Conn) { _, _ = c.Write([]byte("busy\r\n")) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, ln, nil, func(c net.Conn, _ bool) Session { return &echoSession{c: c} })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// refused reports whether the server answered "busy" and closed.
	refused := func(c net.Conn) bool {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 16)
		n, _ := c.Read(buf)
		return string(buf[:n]) == "busy\r\n"
	}
	first, second := dial(), dial()
	if refused(first) || refused(second) {
		t.Fatal("a connection within the bound was refused")
	}
	if !refused(dial()) {
		t.Fatal("a third connection from one IP was not refused")
	}
	if got := srv.PerIP("127.0.0.1"); got != 2 {
		t.Fatalf("PerIP = %d, want 2", got)
	}
	// Once a session ends, its slot is free again.
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for srv.PerIP("127.0.0.1") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("PerIP = %d after a close, want 1", srv.PerIP("127.0.0.1"))
		}
		time.Sleep(time.Millisecond)
	}
	if refused(dial()) {
		t.Fatal("a connection was refused after a slot was freed")
	}
}

// drainSession records when it was asked to shut down; a lingering one
// may also end by itself (a POP3 client sending QUIT).
type drainSession struct {
	linger  bool
	order   *atomic.Int32
	askedAt atomic.Int32 // position among Shutdown calls, 0 if never
	end     chan struct{}
	endOnce sync.Once
	selfEnd chan struct{} // closed by the test to end the session itself
	endedBy atomic.Value  // "self" or "shutdown"
}

func (d *drainSession) Serve() {
	select {
	case <-d.end:
		d.endedBy.CompareAndSwap(nil, "shutdown")
	case <-d.selfEnd:
		d.endedBy.CompareAndSwap(nil, "self")
	}
}

func (d *drainSession) Shutdown() {
	d.askedAt.CompareAndSwap(0, d.order.Add(1))
	d.endOnce.Do(func() { close(d.end) })
}

func (d *drainSession) Lingers() bool { return d.linger }

func TestDrain(t *testing.T) {
	for _, selfQuit := range []bool{false, true} {
		t.Run(fmt.Sprintf("lingerer quits itself: %v", selfQuit), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var order atomic.Int32
			made := make(chan *drainSession, 4)
			created := 0 // by the accept loop only
			srv := Server{DrainWindow: 300 * time.Millisecond}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- srv.Serve(ctx, ln, nil, func(c net.Conn, _ bool) Session {
					c.Close()
					d := &drainSession{order: &order, end: make(chan struct{}), selfEnd: make(chan struct{})}
					d.linger = created == 0 // the first one lingers
					created++
					made <- d
					return d
				})
			}()
			var sessions []*drainSession
			for range 4 {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				sessions = append(sessions, <-made)
			}
			for srv.Len() != 4 {
				time.Sleep(time.Millisecond)
			}
			lingerer := sessions[0]
			cancel()
			if selfQuit {
				// It quits while the others are being drained.
				for order.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				close(lingerer.selfEnd)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for i, d := range sessions[1:] {
				if d.askedAt.Load() == 0 {
					t.Fatalf("session %d never asked to shut down", i+1)
				}
			}
			if selfQuit {
				if got := lingerer.endedBy.Load(); got != "self" {
					t.Fatalf("the lingering session ended by %v, want by itself", got)
				}
				return
			}
			if got := lingerer.askedAt.Load(); got != 4 {
				t.Fatalf("the lingering session was asked %dth, want last (4th)", got)
			}
		})
	}
}
