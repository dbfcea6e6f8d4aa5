package lmtpgw

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mailstore/mailstore/pkg/gwmetrics"
)

// go-smtp owns the protocol loop but only offers Server.Serve(listener):
// it has no way to serve one connection that someone else accepted. The
// gateway still wants connserve's accept loop (the per-IP bound with a
// refusal, the drain on shutdown, shared with the other gateways), so
// connserve accepts, and each admitted connection is handed to go-smtp
// through a feed: a net.Listener whose Accept returns the connections
// pushed into it. The connserve session lasts until go-smtp closes the
// connection.

// feed is a net.Listener fed by connserve sessions.
type feed struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newFeed(addr net.Addr) *feed {
	return &feed{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (f *feed) Accept() (net.Conn, error) {
	select {
	case c := <-f.ch:
		return c, nil
	case <-f.done:
		return nil, net.ErrClosed
	}
}

func (f *feed) Close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

func (f *feed) Addr() net.Addr { return f.addr }

// push hands c to go-smtp; false once the feed is closed.
func (f *feed) push(c net.Conn) bool {
	select {
	case f.ch <- c:
		return true
	case <-f.done:
		return false
	}
}

// connSession is the connserve side of one connection.
type connSession struct {
	feed    *feed
	conn    *lmtpConn
	metrics *gwmetrics.Gateway
}

// newConnSession wraps c; ctx is the Serve context without its
// cancellation, so a drain lets a running delivery finish.
func newConnSession(ctx context.Context, g *Gateway, f *feed, c net.Conn) *connSession {
	return &connSession{feed: f, conn: newLMTPConn(ctx, c, g.cfg.IdleTimeout), metrics: g.deps.Metrics}
}

// Serve hands the connection to go-smtp and waits until it is closed.
func (s *connSession) Serve() {
	defer s.metrics.SessionStarted()()
	if !s.feed.push(s.conn) {
		s.conn.Close()
		return
	}
	<-s.conn.closed
}

// Shutdown closes the connection now if no message is being delivered on
// it, else right after the replies to that delivery are written.
func (s *connSession) Shutdown() { s.conn.shutdown() }

// lmtpConn is a connection with an idle timeout on every read, the same
// bound on the whole of a command line, a hard deadline during a message
// transfer, and a graceful close for drains.
type lmtpConn struct {
	net.Conn
	ctx    context.Context // the session's parent
	idle   time.Duration
	rd     io.Reader // the bare local-part rewriter over readRaw
	closed chan struct{}
	once   sync.Once

	mu   sync.Mutex
	hard time.Time // zero: none
	// lineStart is when the first byte of a command line not yet ended
	// arrived (zero: none pending). Outside a transfer, the rest of the
	// line must come within the idle timeout of it, so a client trickling
	// a byte at a time (slowloris) cannot hold the connection forever.
	lineStart time.Time
	busy      bool // a delivery is running on the connection
	draining  bool
}

func newLMTPConn(ctx context.Context, c net.Conn, idle time.Duration) *lmtpConn {
	lc := &lmtpConn{Conn: c, ctx: ctx, idle: idle, closed: make(chan struct{})}
	lc.rd = newRCPTRewriter(rawReader{lc})
	return lc
}

// Read is what go-smtp reads: the connection's bytes, with RCPT TO of a
// bare local part rewritten (bare.go).
func (c *lmtpConn) Read(p []byte) (int, error) { return c.rd.Read(p) }

// rawReader reads the connection itself.
type rawReader struct{ c *lmtpConn }

func (r rawReader) Read(p []byte) (int, error) { return r.c.readRaw(p) }

// readRaw refreshes the idle deadline first, so a client is cut off after
// being silent for the idle timeout whether between commands or within
// DATA; a slow trickle cannot outlast the hard deadline of a transfer, nor,
// between transfers, the idle timeout counted from a command line's first
// byte.
func (c *lmtpConn) readRaw(p []byte) (int, error) {
	d := time.Now().Add(c.idle)
	c.mu.Lock()
	if !c.hard.IsZero() {
		// Within a transfer the hard deadline bounds everything, and
		// the command lines that follow it start afresh.
		c.lineStart = time.Time{}
		d = minTime(d, c.hard)
	} else if !c.lineStart.IsZero() {
		d = minTime(d, c.lineStart.Add(c.idle))
	}
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if c.hard.IsZero() {
			switch i := bytes.LastIndexByte(p[:n], '\n'); {
			case i == n-1:
				c.lineStart = time.Time{}
			case i >= 0, c.lineStart.IsZero():
				c.lineStart = time.Now()
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (c *lmtpConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		close(c.closed)
	})
	return err
}

// beginDelivery marks a delivery running, with a hard read deadline.
func (c *lmtpConn) beginDelivery(deadline time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = true
	c.hard = deadline
}

// endDelivery is called once the delivery's replies are written; it
// closes a connection whose shutdown waited for them.
func (c *lmtpConn) endDelivery() {
	c.mu.Lock()
	c.busy = false
	c.hard = time.Time{}
	closeNow := c.draining
	c.mu.Unlock()
	if closeNow {
		c.Close()
	}
}

func (c *lmtpConn) shutdown() {
	c.mu.Lock()
	c.draining = true
	busy := c.busy
	c.mu.Unlock()
	if !busy {
		c.Close()
	}
}
