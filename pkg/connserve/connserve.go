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

// Server tracks the sessions of one gateway across its listeners. The zero
// value is ready to use; set the limits before the first Serve.
type Server struct {
	// MaxPerIP bounds the sessions from one client IP address across the
	// server's listeners (0: no bound). A connection over the bound is
	// handed to Refuse instead of getting a session.
	MaxPerIP int
	// Refuse tells a refused client why, briefly, in its protocol's words
	// (e.g. "* BYE Too many connections"); it must not block for long. The
	// server closes the connection afterwards. Nil closes it silently.
	Refuse func(c net.Conn)

	mu       sync.Mutex
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
		if tlsConfig != nil {
			c = tls.Server(c, tlsConfig)
		}
		ip := clientIP(c)
		s.mu.Lock()
		if s.MaxPerIP > 0 && s.perIP[ip] >= s.MaxPerIP {
			s.mu.Unlock()
			s.refuse(c)
			continue
		}
		if s.sessions == nil {
			s.sessions = map[Session]string{}
			s.perIP = map[string]int{}
		}
		s.perIP[ip]++
		s.wg.Add(1)
		s.mu.Unlock()
		// The session is made under the count, so it is counted before the
		// next accept; newSession must not block.
		sess := newSession(c, tlsConfig != nil)
		s.mu.Lock()
		s.sessions[sess] = ip
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			sess.Serve()
			s.mu.Lock()
			delete(s.sessions, sess)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// refuse answers a connection over the per-IP bound on its own goroutine
// (a slow client must not stall the accept loop) and closes it.
func (s *Server) refuse(c net.Conn) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer c.Close()
		if s.Refuse != nil {
			_ = c.SetDeadline(time.Now().Add(refuseTimeout))
			s.Refuse(c)
		}
	}()
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

// Shutdown tells every session to end and waits for them.
func (s *Server) Shutdown() {
	s.mu.Lock()
	for sess := range s.sessions {
		sess.Shutdown()
	}
	s.mu.Unlock()
	s.wg.Wait()
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
