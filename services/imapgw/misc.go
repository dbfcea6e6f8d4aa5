package imapgw

import (
	"context"
	"strings"
)

func init() {
	register("NOOP", handler{fn: cmdNoop, states: anyState, updates: true})
	register("CHECK", handler{fn: cmdNoop, states: selectedSt, updates: true})
	register("ENABLE", handler{fn: cmdEnable, states: authed})
	register("ID", handler{fn: cmdID, states: anyState})
	register("NAMESPACE", handler{fn: cmdNamespace, states: authed, updates: true})
}

func cmdNoop(s *session, _ context.Context, _ *command) error { return s.endCommand() }

// cmdEnable: RFC 5161. IMAP4rev2 and UTF8=ACCEPT switch mailbox names to
// UTF-8; QRESYNC implies CONDSTORE.
func cmdEnable(s *session, _ context.Context, _ *command) error {
	var names []string
	for s.dec.PeekIs(' ') {
		_ = s.dec.SP()
		a, err := s.dec.Atom()
		if err != nil {
			return err
		}
		names = append(names, a)
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if len(names) == 0 {
		return bad("ENABLE needs at least one capability")
	}
	var enabled []string
	for _, n := range names {
		switch strings.ToUpper(n) {
		case "IMAP4REV2":
			if !s.rev2 {
				s.rev2, s.utf8 = true, true
				enabled = append(enabled, "IMAP4rev2")
			}
		case "UTF8=ACCEPT":
			if !s.utf8 || !s.enc.UTF8 {
				s.utf8 = true
				enabled = append(enabled, "UTF8=ACCEPT")
			}
		case "CONDSTORE":
			if hasCap("CONDSTORE") && !s.condstore {
				s.condstore = true
				enabled = append(enabled, "CONDSTORE")
			}
		case "QRESYNC":
			if hasCap("QRESYNC") && !s.qresync {
				s.qresync, s.condstore = true, true
				enabled = append(enabled, "QRESYNC")
			}
		}
	}
	s.enc.UTF8 = s.utf8
	s.enc.Raw("* ENABLED")
	for _, e := range enabled {
		s.enc.SP().Raw(e)
	}
	s.enc.CRLF()
	return nil
}

func hasCap(name string) bool {
	for _, c := range caps {
		if c == name {
			return true
		}
	}
	return false
}

// cmdID: RFC 2971. The client's fields are read and logged at debug level
// (they help support), ours are fixed.
func cmdID(s *session, _ context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	var fields []string
	if s.dec.PeekIs('(') {
		err := s.dec.List(func() error {
			v, ok, err := s.dec.NString()
			if err != nil {
				return err
			}
			if !ok {
				v = "NIL"
			}
			if len(fields) < 60 {
				fields = append(fields, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
	} else if _, ok, err := s.dec.NString(); err != nil || ok {
		if err != nil {
			return err
		}
		return bad("ID takes a list or NIL")
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if len(fields) > 0 {
		s.logger.Debug("client id", "fields", fields)
	}
	s.enc.Raw(`* ID ("name" "mailstore" "vendor" "mailstore")`).CRLF()
	return nil
}

func cmdNamespace(s *session, _ context.Context, _ *command) error {
	if err := s.endCommand(); err != nil {
		return err
	}
	s.enc.Raw(`* NAMESPACE (("" "/")) NIL NIL`).CRLF()
	return nil
}
