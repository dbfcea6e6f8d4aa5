package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.k6.io/k6/js/modules"
	"go.k6.io/k6/lib/types"
)

// defaultTimeout bounds connecting and each command unless a script sets
// its own timeout.
const defaultTimeout = 30 * time.Second

// connOptions are the options every connect accepts:
//
//	{ tls: false, starttls: false, insecureSkipVerify: false,
//	  serverName: "", timeout: "30s" | 30000 }
type connOptions struct {
	tls, startTLS      bool
	insecureSkipVerify bool
	serverName         string
	timeout            time.Duration
	// lhlo is the LMTP client name (LMTP only).
	lhlo string
}

func parseOptions(m map[string]any) (connOptions, error) {
	o := connOptions{timeout: defaultTimeout, lhlo: "k6.localhost"}
	for k, v := range m {
		var err error
		switch k {
		case "tls":
			o.tls, err = asBool(k, v)
		case "starttls":
			o.startTLS, err = asBool(k, v)
		case "insecureSkipVerify":
			o.insecureSkipVerify, err = asBool(k, v)
		case "serverName":
			o.serverName, err = asString(k, v)
		case "lhlo":
			o.lhlo, err = asString(k, v)
		case "timeout":
			o.timeout, err = asDuration(k, v)
		default:
			err = fmt.Errorf("unknown option %q", k)
		}
		if err != nil {
			return o, err
		}
	}
	if o.tls && o.startTLS {
		return o, fmt.Errorf("options tls and starttls exclude each other")
	}
	return o, nil
}

func asBool(k string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("option %s: want a boolean, got %T", k, v)
	}
	return b, nil
}

func asString(k string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("option %s: want a string, got %T", k, v)
	}
	return s, nil
}

// asDuration takes milliseconds (a number) or a k6 duration string.
func asDuration(k string, v any) (time.Duration, error) {
	switch x := v.(type) {
	case int64:
		return time.Duration(x) * time.Millisecond, nil
	case float64:
		return time.Duration(x * float64(time.Millisecond)), nil
	case string:
		d, err := types.ParseExtendedDuration(x)
		if err != nil {
			return 0, fmt.Errorf("option %s: %w", k, err)
		}
		return d, nil
	}
	return 0, fmt.Errorf("option %s: want milliseconds or a duration string, got %T", k, v)
}

// countConn counts the bytes on the wire (below TLS) so that the byte
// counters see what the network carries.
type countConn struct {
	net.Conn
	sent, recv         atomic.Int64
	sentSeen, recvSeen int64 // owned by the VU goroutine
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.recv.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

// delta returns the bytes moved since the last call.
func (c *countConn) delta() (sent, recv int64) {
	s, r := c.sent.Load(), c.recv.Load()
	sent, recv = s-c.sentSeen, r-c.recvSeen
	c.sentSeen, c.recvSeen = s, r
	return sent, recv
}

// session is the transport of one client connection.
type session struct {
	count      *countConn
	conn       net.Conn // count, or TLS over it
	timeout    time.Duration
	deadlineAt time.Time
	stop       func() bool
	once       sync.Once
}

// dial connects through the VU's dialer (so k6's blocked hostnames and
// IPs apply), with TLS from the start when asked. The connection is closed
// when the VU's context ends, so that a blocked call returns when the test
// stops.
func dial(vu modules.VU, addr string, o connOptions) (*session, error) {
	state := vu.State()
	if state == nil {
		return nil, errInitContext
	}
	ctx, cancel := context.WithTimeout(vu.Context(), o.timeout)
	defer cancel()
	raw, err := state.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	s := &session{count: &countConn{Conn: raw}, timeout: o.timeout}
	s.conn = s.count
	s.stop = context.AfterFunc(vu.Context(), func() { _ = raw.Close() })
	if o.tls {
		tc := tls.Client(s.count, tlsConfig(vu, addr, o))
		if err := tc.HandshakeContext(ctx); err != nil {
			s.close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		s.conn = tc
	}
	return s, nil
}

// tlsConfig starts from k6's own (which carries --insecure-skip-tls-verify
// and the TLS version options) and applies the connect options.
func tlsConfig(vu modules.VU, addr string, o connOptions) *tls.Config {
	var cfg *tls.Config
	if st := vu.State(); st != nil && st.TLSConfig != nil {
		cfg = st.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.InsecureSkipVerify = cfg.InsecureSkipVerify || o.insecureSkipVerify
	cfg.ServerName = o.serverName
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	return cfg
}

// deadline bounds the next exchange; d of 0 uses the session timeout.
func (s *session) deadline(d time.Duration) {
	if d <= 0 {
		d = s.timeout
	}
	s.deadlineAt = time.Now().Add(d)
	_ = s.count.SetDeadline(s.deadlineAt)
}

// clearDeadline lets the connection idle between commands, and says
// whether the deadline had passed, so that a timeout is told apart from
// other failures even when a library flattened the error into text.
func (s *session) clearDeadline() (timedOut bool) {
	timedOut = !s.deadlineAt.IsZero() && !time.Now().Before(s.deadlineAt)
	s.deadlineAt = time.Time{}
	_ = s.count.SetDeadline(time.Time{})
	return timedOut
}

// failure returns err marked as a timeout when the deadline had passed,
// and its mail_errors kind; fallback is the kind of any other failure
// ("" to classify the error).
func failure(err error, timedOut bool, fallback string) (string, error) {
	switch {
	case err == nil:
		return "", nil
	case timedOut && !isTimeout(err):
		return kindTimeout, fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
	case timedOut || isTimeout(err):
		return kindTimeout, err
	}
	return fallback, err
}

// fixedDeadlines hides SetDeadline and friends from a protocol library
// (imapclient sets its own 30 s read deadlines): the session alone
// decides the deadlines, through the connection underneath.
type fixedDeadlines struct {
	net.Conn
}

func (fixedDeadlines) SetDeadline(time.Time) error      { return nil }
func (fixedDeadlines) SetReadDeadline(time.Time) error  { return nil }
func (fixedDeadlines) SetWriteDeadline(time.Time) error { return nil }

func (s *session) close() {
	s.once.Do(func() {
		s.stop()
		_ = s.conn.Close()
	})
}
