package imapgw

import (
	"context"
	"strconv"
	"strings"
)

// caps are the capabilities of implemented extensions, registered by the
// file of each command family, so that nothing is announced before it
// works.
var caps []string

func registerCap(names ...string) { caps = append(caps, names...) }

func init() {
	register("CAPABILITY", handler{fn: cmdCapability, states: anyState, updates: true})
	registerCap("LITERAL+", "SASL-IR", "ENABLE", "ID", "IDLE", "NAMESPACE", "UNSELECT")
}

// capabilities lists what the session may use now.
func (s *session) capabilities() string {
	var b strings.Builder
	b.WriteString("IMAP4rev1 IMAP4rev2")
	if s.state == stateNotAuth {
		if s.gw.tls != nil && !s.tls {
			b.WriteString(" STARTTLS")
		}
		if s.plaintextAllowed() {
			b.WriteString(" AUTH=PLAIN AUTH=LOGIN")
		} else {
			b.WriteString(" LOGINDISABLED")
		}
	}
	for _, c := range caps {
		b.WriteByte(' ')
		b.WriteString(c)
	}
	if s.state != stateNotAuth && s.gw.deps.Ingest != nil {
		b.WriteString(" APPENDLIMIT=")
		b.WriteString(strconv.FormatInt(s.gw.deps.Ingest.MaxMessageSize(), 10))
	}
	return b.String()
}

func cmdCapability(s *session, _ context.Context, _ *command) error {
	if err := s.endCommand(); err != nil {
		return err
	}
	s.enc.Raw("* CAPABILITY ").Raw(s.capabilities()).CRLF()
	return nil
}
