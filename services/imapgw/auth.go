package imapgw

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailstore/mailstore/pkg/sasllogin"

	"github.com/mailstore/mailstore/pkg/meta"
)

func init() {
	register("STARTTLS", handler{fn: cmdStartTLS, states: notAuth})
	register("LOGIN", handler{fn: cmdLogin, states: notAuth})
	register("AUTHENTICATE", handler{fn: cmdAuthenticate, states: notAuth})
	register("LOGOUT", handler{fn: cmdLogout, states: anyState})
}

func cmdStartTLS(s *session, _ context.Context, cmd *command) error {
	if err := s.endCommand(); err != nil {
		return err
	}
	if s.gw.tls == nil || s.tls || s.compressed {
		return no("", "TLS not available")
	}
	// Nothing the client pipelined after STARTTLS may be used (RFC 9051
	// section 6.2.1): any buffered input is a protocol violation.
	if s.br.Buffered() > 0 {
		return &statusError{status: "BAD", text: "Data after STARTTLS", closeConn: true}
	}
	s.tagged(cmd.tag, "OK", "", "Begin TLS negotiation now")
	if err := s.enc.Flush(); err != nil {
		return err
	}
	tc := tls.Server(s.conn, s.gw.tls)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return &statusError{text: "TLS handshake failed", closeConn: true}
	}
	_ = tc.SetDeadline(time.Time{})
	s.setConn(tc)
	s.tls = true
	return errAnswered
}

// errAnswered: the command already wrote its tagged answer.
var errAnswered = &statusError{}

func cmdLogin(s *session, ctx context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	user, err := s.dec.AString()
	if err != nil {
		return err
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	pass, err := s.dec.AString()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if !s.plaintextAllowed() {
		return no("PRIVACYREQUIRED", "Use STARTTLS first")
	}
	return s.login(ctx, user, pass)
}

// login checks the credentials and enters the authenticated state.
func (s *session) login(ctx context.Context, user, pass string) error {
	acct, err := s.gw.deps.Auth.Authenticate(ctx, user, pass, s.remote)
	s.gw.deps.Metrics.Login(err)
	switch {
	case errors.Is(err, meta.ErrAuthFailed):
		s.authFailures++
		s.logger.Info("authentication failed", "user", user, "failures", s.authFailures)
		// Growing delay against guessing within one connection; the
		// failure counters in the metadata store throttle across pods.
		delay := min(s.gw.cfg.AuthFailureDelay<<min(s.authFailures-1, 6), 5*time.Second)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		if s.authFailures >= s.gw.cfg.MaxAuthFailures {
			return &statusError{text: "Too many authentication failures", closeConn: true}
		}
		return no("AUTHENTICATIONFAILED", "Authentication failed")
	case err != nil:
		return err
	}
	if g := s.gw; g.limits != nil && g.cfg.MaxConnsPerAccount > 0 {
		release, ok := g.limits.Acquire(ctx, "conn/imap/acct/"+string(acct.ID), int64(g.cfg.MaxConnsPerAccount))
		if !ok {
			return no("LIMIT", "Too many sessions for this account; log out elsewhere first")
		}
		s.releaseAcct = release
	}
	s.acct = acct
	s.state = stateAuth
	s.watch = s.gw.hub.subscribe(acct.ID)
	s.logger = s.logger.With("account", acct.ID)
	return okCode("CAPABILITY "+s.capabilities(), "Logged in")
}

func cmdAuthenticate(s *session, ctx context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	mech, err := s.dec.Atom()
	if err != nil {
		return err
	}
	var ir []byte
	hasIR := false
	if s.dec.PeekIs(' ') {
		_ = s.dec.SP()
		a, err := s.dec.Word()
		if err != nil {
			return err
		}
		hasIR = true
		if a != "=" {
			if ir, err = base64.StdEncoding.DecodeString(a); err != nil {
				return bad("Invalid base64 in initial response")
			}
		}
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if !s.plaintextAllowed() {
		return no("PRIVACYREQUIRED", "Use STARTTLS first")
	}
	var user, pass string
	var srv sasl.Server
	switch strings.ToUpper(mech) {
	case "PLAIN":
		srv = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && !strings.EqualFold(identity, username) {
				return errors.New("no proxy authorization")
			}
			user, pass = username, password
			return nil
		})
	case "LOGIN":
		srv = sasllogin.NewServer(func(username, password string) error {
			user, pass = username, password
			return nil
		})
	default:
		return no("CANNOT", "Unsupported mechanism")
	}
	resp := ir
	if !hasIR {
		resp = nil
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return no("AUTHENTICATIONFAILED", "Authentication failed")
		}
		if done {
			break
		}
		s.enc.Raw("+ ").Raw(base64.StdEncoding.EncodeToString(challenge)).CRLF()
		if err := s.enc.Flush(); err != nil {
			return err
		}
		s.dec.Reset()
		line, err := s.dec.Word()
		if err != nil && !s.dec.AtEOL() {
			return err
		}
		if err := s.dec.CRLF(); err != nil {
			return err
		}
		if line == "*" {
			return bad("Authentication cancelled")
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			return bad("Invalid base64 response")
		}
	}
	return s.login(ctx, user, pass)
}

func cmdLogout(s *session, _ context.Context, cmd *command) error {
	if err := s.endCommand(); err != nil {
		return err
	}
	s.enc.Raw("* BYE Logging out").CRLF()
	s.tagged(cmd.tag, "OK", "", "LOGOUT completed")
	s.state = stateLogout
	return errAnswered
}
