package pop3gw

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailstore/mailstore/pkg/sasllogin"

	"github.com/mailstore/mailstore/pkg/meta"
)

func init() {
	register("CAPA", handler{fn: cmdCapa, states: anyState})
	register("STLS", handler{fn: cmdSTLS, states: authorization})
	register("USER", handler{fn: cmdUser, states: authorization})
	register("PASS", handler{fn: cmdPass, states: authorization})
	register("AUTH", handler{fn: cmdAuth, states: authorization})
	register("APOP", handler{fn: cmdAPOP, states: authorization})
}

// capabilities lists the RFC 2449 capabilities for the session's state.
func (s *session) capabilities() []string {
	caps := []string{"TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"}
	if s.state == stateAuthorization {
		if s.plaintextAllowed() {
			caps = append(caps, "USER", "SASL PLAIN LOGIN")
		}
		if s.gw.tls != nil && !s.tls {
			caps = append(caps, "STLS")
		}
	}
	// RFC 2449 section 6.7 and 6.8: before login, the server-wide values,
	// marked USER as an account may have its own; after, the account's.
	if s.state == stateAuthorization {
		def := s.gw.cfg.Default
		caps = append(caps, "EXPIRE "+expireValue(def)+" USER")
		if def.LoginDelay > 0 {
			caps = append(caps, fmt.Sprintf("LOGIN-DELAY %d USER", def.LoginDelay))
		}
	} else {
		caps = append(caps, "EXPIRE "+expireValue(s.policy))
		if s.policy.LoginDelay > 0 {
			caps = append(caps, fmt.Sprintf("LOGIN-DELAY %d", s.policy.LoginDelay))
		}
	}
	return append(caps, "IMPLEMENTATION mailstore")
}

// expireValue is the EXPIRE capability's argument for a policy: NEVER
// unless retrieved messages are removed after some days. (Under "forever"
// a deleted message is only hidden from POP3; under "delete" it goes at
// QUIT, as the client asked: neither expires on the server's initiative.)
func expireValue(p meta.POP3Policy) string {
	if p.Mode == meta.POP3KeepDays {
		return strconv.Itoa(p.KeepDays)
	}
	return "NEVER"
}

// effectivePolicy is an account's policy with the server-wide defaults
// filled in where the account has none.
func effectivePolicy(acct, def meta.POP3Policy) meta.POP3Policy {
	p := acct
	if p.Mode == meta.POP3Default {
		p.Mode, p.KeepDays = def.Mode, def.KeepDays
	}
	if p.LoginDelay == 0 {
		p.LoginDelay = def.LoginDelay
	}
	return p
}

func cmdCapa(s *session, _ context.Context, args string) error {
	if args != "" {
		return errf("CAPA takes no arguments")
	}
	s.reply("+OK Capability list follows")
	for _, c := range s.capabilities() {
		s.reply(c)
	}
	s.reply(".")
	return nil
}

func cmdSTLS(s *session, _ context.Context, args string) error {
	if args != "" {
		return errf("STLS takes no arguments")
	}
	if s.gw.tls == nil || s.tls {
		return errf("TLS not available")
	}
	// Nothing pipelined after STLS may be used (RFC 2595 section 4): the
	// plaintext could have been injected by an attacker.
	if s.br.Buffered() > 0 {
		return &protoError{text: "Data after STLS", closeConn: true}
	}
	s.reply("+OK Begin TLS negotiation")
	if err := s.bw.Flush(); err != nil {
		return errConnLost
	}
	tc := tls.Server(s.conn, s.gw.tls)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return errConnLost
	}
	_ = tc.SetDeadline(time.Time{})
	s.setConn(tc)
	s.tls = true
	s.user = "" // RFC 2595: forget what came before TLS
	return nil
}

// errPlaintext refuses authentication on a connection that is not secure.
var errPlaintext = errf("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS first")

func cmdUser(s *session, _ context.Context, args string) error {
	if !s.plaintextAllowed() {
		return errPlaintext
	}
	if args == "" {
		return errf("USER needs a name")
	}
	s.user = args
	s.reply("+OK Send PASS")
	return nil
}

func cmdPass(s *session, ctx context.Context, args string) error {
	if !s.plaintextAllowed() {
		return errPlaintext
	}
	if s.user == "" {
		return errf("Send USER first")
	}
	// The password is the rest of the line: it may contain spaces
	// (RFC 1939 section 7).
	user := s.user
	s.user = ""
	return s.login(ctx, user, args)
}

func cmdAPOP(*session, context.Context, string) error {
	// APOP needs a plaintext-equivalent secret on the server.
	return errf("APOP not supported")
}

func cmdAuth(s *session, ctx context.Context, args string) error {
	if args == "" {
		// The pre-RFC 5034 listing some clients still ask for.
		s.reply("+OK Mechanisms follow")
		s.reply("PLAIN")
		s.reply("LOGIN")
		s.reply(".")
		return nil
	}
	if !s.plaintextAllowed() {
		return errPlaintext
	}
	s.user = ""
	mech, ir, hasIR := strings.Cut(args, " ")
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
		return errf("Unsupported mechanism")
	}
	var resp []byte
	if hasIR {
		if ir != "=" {
			var err error
			if resp, err = base64.StdEncoding.DecodeString(ir); err != nil {
				return errf("Invalid base64 in initial response")
			}
		} else {
			resp = []byte{}
		}
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return s.authFailed(ctx)
		}
		if done {
			break
		}
		s.reply("+ " + base64.StdEncoding.EncodeToString(challenge))
		if err := s.bw.Flush(); err != nil {
			return errConnLost
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(s.gw.cfg.IdleTimeout))
		line, err := s.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			return errf("Authentication line too long")
		case err != nil:
			return errConnLost
		case line == "*":
			return errf("Authentication cancelled")
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			return errf("Invalid base64 response")
		}
	}
	return s.login(ctx, user, pass)
}

// authFailed answers a failed authentication after a growing delay, and
// closes the connection after too many.
func (s *session) authFailed(ctx context.Context) error {
	s.authFailures++
	// Growing delay against guessing within one connection; the failure
	// counters in the metadata store throttle across pods.
	delay := min(s.gw.cfg.AuthFailureDelay<<min(s.authFailures-1, 6), 5*time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(delay):
	}
	if s.authFailures >= s.gw.cfg.MaxAuthFailures {
		return &protoError{text: "[AUTH] Too many authentication failures", closeConn: true}
	}
	return errf("[AUTH] Authentication failed")
}

// login checks the credentials, takes the maildrop lock and the snapshot,
// and enters the TRANSACTION state. On any failure the session stays in
// AUTHORIZATION holding nothing.
func (s *session) login(ctx context.Context, user, pass string) error {
	acct, err := s.gw.deps.Auth.Authenticate(ctx, user, pass, s.remote)
	s.gw.deps.Metrics.Login(err)
	switch {
	case errors.Is(err, meta.ErrAuthFailed):
		s.logger.Info("authentication failed", "user", user, "failures", s.authFailures+1)
		return s.authFailed(ctx)
	case err != nil:
		return fmt.Errorf("authenticate: %w", err)
	}
	m := s.gw.deps.Meta
	holder := s.gw.deps.Pod + " " + s.remote
	lease, err := m.AcquireLease(ctx, acct.ID, leaseName, holder, s.gw.cfg.LeaseTTL)
	switch {
	case errors.Is(err, meta.ErrLeaseHeld):
		return errf("[IN-USE] Maildrop is locked by another POP3 session")
	case err != nil:
		return fmt.Errorf("lock maildrop: %w", err)
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = m.ReleaseLease(rctx, acct.ID, leaseName, lease.Token)
	}
	policy := effectivePolicy(acct.POP3, s.gw.cfg.Default)
	if policy.LoginDelay > 0 {
		// One login per LOGIN-DELAY window, whatever pod it lands on: the
		// counter lives for the window from the first login in it. Counted
		// only once the lock is ours, so an IN-USE answer costs nothing.
		delay := time.Duration(policy.LoginDelay) * time.Second
		n, err := m.IncrCounter(ctx, "pop3login/"+string(acct.ID), 1, delay)
		if err != nil {
			release()
			return fmt.Errorf("check login delay: %w", err)
		}
		if n > 1 {
			release()
			return errf("[LOGIN-DELAY] Minimum time between logins is %d seconds", policy.LoginDelay)
		}
	}
	drop, err := loadMaildrop(ctx, m, acct.ID)
	if err != nil {
		release()
		return err
	}
	s.drop, s.lease, s.policy = drop, lease, policy
	s.gw.deps.Metrics.LockHeld(1)
	s.logger = s.logger.With("account", acct.ID)
	lctx, stop := context.WithCancel(s.ctx)
	s.leaseStop, s.leaseDone = stop, make(chan struct{})
	go s.keepLease(lctx)
	s.state = stateTransaction
	s.reply(fmt.Sprintf("+OK Logged in; maildrop has %d messages", len(drop.msgs)))
	return nil
}
