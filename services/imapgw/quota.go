package imapgw

import (
	"context"
	"strings"
)

func init() {
	register("GETQUOTA", handler{fn: cmdGetQuota, states: authed, updates: true})
	register("GETQUOTAROOT", handler{fn: cmdGetQuotaRoot, states: authed, updates: true})
	register("SETQUOTA", handler{fn: cmdSetQuota, states: authed, updates: true})
	registerCap("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE")
}

// The account quota is one quota root, named "" (RFC 9208), covering
// every mailbox; STORAGE is in units of 1024 octets.
const quotaRoot = ""

// writeQuota writes "* QUOTA "" (STORAGE u l MESSAGE u l)" with the
// resources that have a limit; the account is read fresh.
func (s *session) writeQuota(ctx context.Context) error {
	acct, err := s.gw.deps.Meta.Account(ctx, s.acct.ID)
	if err != nil {
		return err
	}
	q := acct.Quota
	var parts []string
	if q.LimitBytes > 0 {
		parts = append(parts, "STORAGE "+uint64String(uint64((q.UsedBytes+1023)/1024))+" "+uint64String(uint64(q.LimitBytes/1024)))
	}
	if q.LimitMessages > 0 {
		parts = append(parts, "MESSAGE "+uint64String(uint64(q.UsedMessages))+" "+uint64String(uint64(q.LimitMessages)))
	}
	s.enc.Raw(`* QUOTA "" (`).Raw(strings.Join(parts, " ")).Raw(")").CRLF()
	return nil
}

func cmdGetQuota(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	root, err := s.dec.AString()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if root != quotaRoot {
		return no("NONEXISTENT", "No such quota root")
	}
	return s.writeQuota(ctx)
}

func cmdGetQuotaRoot(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	name, err := s.readName()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if _, err := s.gw.deps.Meta.Mailbox(ctx, s.acct.ID, name); err != nil {
		return err
	}
	s.enc.Raw("* QUOTAROOT ")
	s.writeName(name)
	s.enc.Raw(` ""`).CRLF()
	return s.writeQuota(ctx)
}

// cmdSetQuota: quotas are the administrator's (mailctl account quota).
func cmdSetQuota(s *session, _ context.Context, _ *command) error {
	if err := s.dec.SkipLine(); err != nil {
		return err
	}
	return no("NOPERM", "Quotas are set by the administrator")
}
