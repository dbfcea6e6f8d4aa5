package imapgw

import (
	"context"
	"strings"
	"time"
)

func init() {
	register("IDLE", handler{fn: cmdIdle, states: authed, updates: true})
}

// cmdIdle: RFC 2177. Changes are sent as they happen; the client's DONE is
// read on a goroutine of its own so the session can write meanwhile. The
// autologout timer re-arms at IDLE (the read deadline), and a draining
// gateway ends IDLE with BYE.
func cmdIdle(s *session, _ context.Context, _ *command) error {
	if err := s.endCommand(); err != nil {
		return err
	}
	s.enc.Raw("+ idling").CRLF()
	if err := s.enc.Flush(); err != nil {
		return err
	}
	done := make(chan error, 1)
	_ = s.conn.SetReadDeadline(time.Now().Add(s.gw.cfg.IdleTimeout))
	go func() {
		s.dec.Reset()
		w, err := s.dec.Word()
		if err == nil && !strings.EqualFold(w, "DONE") {
			err = bad("Expected DONE")
		}
		if err == nil {
			err = s.dec.CRLF()
		}
		done <- err
	}()
	if s.sel != nil {
		s.idleUpdate()
	}
	s.idleNotify()
	for {
		select {
		case err := <-done:
			if err != nil {
				if s.ctx.Err() != nil {
					return &statusError{text: "Server shutting down", closeConn: true}
				}
				if isTimeout(err) {
					return &statusError{text: "Autologout; idle for too long", closeConn: true}
				}
				return err
			}
			return nil
		case <-s.ctx.Done():
			// Drain: BYE now; the reader ends on the deadline the
			// shutdown set.
			s.enc.Raw("* BYE Server shutting down").CRLF()
			_ = s.enc.Flush()
			_ = s.conn.SetReadDeadline(time.Now())
			<-done
			s.state = stateLogout
			return errAnswered
		case <-s.watch.C:
			if s.sel != nil {
				s.watch.signal() // for sendUpdates
				s.idleUpdate()
			}
			if s.state == stateLogout {
				// The selected mailbox went away (BYE was sent).
				_ = s.conn.SetReadDeadline(time.Now())
				<-done
				return errAnswered
			}
			s.idleNotify()
		}
	}
}

// idleUpdate catches up and writes every change, expunges included.
func (s *session) idleUpdate() {
	ctx, cancel := context.WithTimeout(s.ctx, s.gw.cfg.CommandTimeout)
	defer cancel()
	s.sendUpdates(ctx, true)
	_ = s.enc.Flush()
}
