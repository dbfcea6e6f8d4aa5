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
// value is ready to use.
type Server struct {
	mu       sync.Mutex
	sessions map[Session]struct{}
	wg       sync.WaitGroup
}

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
		sess := newSession(c, tlsConfig != nil)
		s.mu.Lock()
		if s.sessions == nil {
			s.sessions = map[Session]struct{}{}
		}
		s.sessions[sess] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			sess.Serve()
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
		}()
	}
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
