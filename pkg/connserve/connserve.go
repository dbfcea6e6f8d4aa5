// Package connserve runs the accept loop of the protocol gateways (IMAP,
// POP3, LMTP): it accepts connections with back-off on temporary errors,
// wraps implicit-TLS connections, runs one session per connection on its
// own goroutine, and on shutdown tells every session to end and waits for
// them. The gateways only say how to make and stop a session.
package connserve

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// Session is one connection's protocol session.
type Session interface {
	// Serve runs the session until it ends; it closes the connection.
	Serve()
	// Shutdown asks a running session to end soon, from another goroutine.
	Shutdown()
}

// Lingerer is a Session that should be left to finish by itself during a
// drain (a POP3 session about to QUIT and apply its deletions): it is
// told to shut down only when the drain window has passed.
type Lingerer interface {
	Lingers() bool
}

// Server tracks the sessions of one gateway across its listeners. The zero
// value is ready to use; set the limits before the first Serve.
type Server struct {
	// MaxPerIP bounds the sessions from one client IP address across the
	// server's listeners (0: no bound). A connection over the bound is
	// handed to Refuse instead of getting a session.
	MaxPerIP int
	// Admit, when set, is asked for each connection's client IP before it
	// gets a session (limits shared by several pods); ok false refuses the
	// connection like MaxPerIP, and release is called when the session
	// ends. It runs on the connection's goroutine and may block briefly.
	Admit func(ip string) (release func(), ok bool)
	// WrapConn, when set, wraps each accepted connection before anything
	// else (before TLS), e.g. to count its bytes on the wire.
	WrapConn func(net.Conn) net.Conn
	// DrainWindow spreads Shutdown's requests to the sessions over that
	// long, so a pod's clients do not all reconnect at the same moment; 0
	// asks them all at once.
	DrainWindow time.Duration
	// Refuse tells a refused client why, briefly, in its protocol's words
	// (e.g. "* BYE Too many connections"); it must not block for long. The
	// server closes the connection afterwards. Nil closes it silently.
	Refuse func(c net.Conn)

	mu       sync.Mutex
	closing  bool
	sessions map[Session]string // session -> client IP
	perIP    map[string]int
	wg       sync.WaitGroup
}

// refuseTimeout bounds how long a refusal may take to write.
const refuseTimeout = 5 * time.Second

// Serve accepts connections on ln until ctx ends, then shuts every session
// of the server down and waits for them. With tlsConfig set, every
// connection starts with a TLS handshake (implicit TLS); newSession gets
// the connection and whether it is implicit TLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config, newSession func(c net.Conn, implicitTLS bool) Session) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.Shutdown()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.wg.Add(1)
		go s.handle(c, tlsConfig, newSession)
	}
}

// handle runs one connection on its own goroutine: everything that may
// block (reading a PROXY protocol header to learn the client's address, a
// refusal to a slow client) stays off the accept loop.
func (s *Server) handle(c net.Conn, tlsConfig *tls.Config, newSession func(c net.Conn, implicitTLS bool) Session) {
	defer s.wg.Done()
	if s.WrapConn != nil {
		c = s.WrapConn(c)
	}
	ip := clientIP(c)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	if s.MaxPerIP > 0 && s.perIP[ip] >= s.MaxPerIP {
		s.mu.Unlock()
		s.refuse(c)
		return
	}
	if s.sessions == nil {
		s.sessions = map[Session]string{}
		s.perIP = map[string]int{}
	}
	s.perIP[ip]++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		s.mu.Unlock()
	}
	if s.Admit != nil {
		admitted, ok := s.Admit(ip)
		if !ok {
			release()
			s.refuse(c)
			return
		}
		local := release
		release = func() { admitted(); local() }
	}
	if tlsConfig != nil {
		c = tls.Server(c, tlsConfig)
	}
	sess := newSession(c, tlsConfig != nil)
	s.mu.Lock()
	if s.closing {
		// Shutdown has begun and would not see this session: end it.
		s.mu.Unlock()
		c.Close()
		release()
		return
	}
	s.sessions[sess] = ip
	s.mu.Unlock()
	sess.Serve()
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	release()
}

// refuse tells a connection over a limit why, briefly, and closes it.
func (s *Server) refuse(c net.Conn) {
	defer c.Close()
	if s.Refuse != nil {
		_ = c.SetDeadline(time.Now().Add(refuseTimeout))
		s.Refuse(c)
	}
}

// clientIP is the connection's remote IP address ("" when it has none).
func clientIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// PerIP returns the number of running sessions from ip.
func (s *Server) PerIP(ip string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perIP[ip]
}

// Shutdown tells every session to end and waits for them. The requests
// are spread evenly over DrainWindow; sessions that linger are asked last,
// at its end. A session asked to end finishes the command it is running.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.closing = true
	var now, later []Session
	for sess := range s.sessions {
		if l, ok := sess.(Lingerer); ok && l.Lingers() && s.DrainWindow > 0 {
			later = append(later, sess)
		} else {
			now = append(now, sess)
		}
	}
	s.mu.Unlock()
	var step time.Duration
	if len(now) > 0 {
		step = s.DrainWindow / time.Duration(len(now))
	}
	start := time.Now()
	for i, sess := range now {
		if step > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * step)))
		}
		sess.Shutdown()
	}
	if len(later) > 0 {
		wait := time.NewTimer(time.Until(start.Add(s.DrainWindow)))
		done := make(chan struct{})
		go func() { s.waitFor(later); close(done) }()
		select {
		case <-wait.C:
		case <-done:
		}
		wait.Stop()
		for _, sess := range later {
			sess.Shutdown()
		}
	}
	s.wg.Wait()
}

// waitFor returns when none of sessions is running any more.
func (s *Server) waitFor(sessions []Session) {
	for {
		s.mu.Lock()
		left := 0
		for _, sess := range sessions {
			if _, ok := s.sessions[sess]; ok {
				left++
			}
		}
		s.mu.Unlock()
		if left == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Len returns the number of running sessions.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Sessions returns the running sessions, in no order.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}
