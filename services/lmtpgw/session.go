package lmtpgw

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailstore/mailstore/pkg/meta"
)

// Replies. go-smtp writes an *smtp.SMTPError as given, so the gateway
// chooses every code itself.
var (
	errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errDisabled   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 2, 1}, Message: "Mailbox disabled, not accepting messages"}
	errQuotaPerm  = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
	errQuotaTemp  = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full, try again later"}
	errTooLarge   = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too large"}
	errLongLine   = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Line too long"}
	errNestedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command"}
	errTemp       = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	// delivered is the success reply. go-smtp would write "250 2.0.0 OK:
	// queued" for a nil status, but LMTP's 250 means stored, not queued;
	// an *SMTPError with code 250 is written as is.
	delivered = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Saved"}
)

// backend makes a session per connection for go-smtp.
type backend struct{ g *Gateway }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		// After STARTTLS go-smtp makes a new session over the TLS
		// connection, which wraps the gateway's.
		nc = tc.NetConn()
	}
	lc, ok := nc.(*lmtpConn)
	if !ok {
		return nil, errors.New("lmtpgw: connection not served by Gateway.Serve")
	}
	s := &session{g: b.g, conn: lc, helo: c.Hostname(), proto: "LMTP"}
	s.ctx, s.cancel = context.WithCancel(lc.ctx)
	if ta, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		s.remoteIP = ta.IP.String()
	}
	if _, isTLS := c.TLSConnectionState(); isTLS {
		s.proto = "LMTPS"
	}
	return s, nil
}

// session is one LMTP connection's transaction state.
type session struct {
	g        *Gateway
	conn     *lmtpConn
	ctx      context.Context
	cancel   context.CancelFunc
	helo     string
	remoteIP string // "" on a Unix socket
	proto    string // LMTP or LMTPS

	// The transaction.
	inTx  bool // MAIL was accepted
	from  string
	utf8  bool
	size  int64 // MAIL FROM SIZE=, 0 when not given
	id    string
	rcpts []recipient
}

// recipient is an accepted RCPT TO.
type recipient struct {
	addr    string // as go-smtp has it: the key of its status collector
	given   string // as the client gave it (a bare local part without the marker domain)
	account meta.Account
}

var _ smtp.LMTPSession = (*session)(nil)

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.inTx {
		// go-smtp would keep the recipients it already accepted.
		return errNestedMail
	}
	s.inTx, s.from, s.utf8, s.size, s.rcpts = true, from, opts.UTF8, opts.Size, nil
	s.id = rand.Text()[:16]
	return nil
}

// Rcpt resolves the address now, so an unknown user or a full mailbox is
// refused before the MTA sends the body.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.g.cfg.CommandTimeout)
	defer cancel()
	acct, err := s.g.lookup(ctx, to)
	switch {
	case errors.Is(err, meta.ErrNoSuchAccount):
		s.g.logger.Info("unknown recipient", "rcpt", to, "session", s.id)
		s.g.deps.Metrics.Delivery("unknown_recipient")
		return errNoSuchUser
	case err != nil:
		s.g.logger.Warn("look up recipient", "rcpt", to, "session", s.id, "err", err)
		return errTemp
	case acct.Disabled:
		return errDisabled
	case overQuota(acct.Quota, s.size):
		s.g.logger.Info("recipient over quota", "rcpt", to, "account", acct.ID, "session", s.id)
		s.g.deps.Metrics.Delivery("over_quota")
		return s.g.quotaError()
	}
	s.rcpts = append(s.rcpts, recipient{addr: to, given: unmarkBare(to), account: acct})
	return nil
}

// overQuota reports whether the account cannot take a message of size
// bytes (0: unknown) at all.
func overQuota(q meta.Quota, size int64) bool {
	if q.LimitBytes > 0 && (q.UsedBytes >= q.LimitBytes || q.UsedBytes+size > q.LimitBytes) {
		return true
	}
	return q.LimitMessages > 0 && q.UsedMessages >= q.LimitMessages
}

func (g *Gateway) quotaError() error {
	if g.cfg.OverQuotaTemporary {
		return errQuotaTemp
	}
	return errQuotaPerm
}

// lookup finds the account of a RCPT TO address. For user+detail@domain
// the whole address is tried first (an alias may contain '+'), then
// user@domain; Sieve sees the detail in the envelope's To, which keeps
// the address as given.
func (g *Gateway) lookup(ctx context.Context, addr string) (meta.Account, error) {
	addr = unmarkBare(addr)
	acct, err := g.deps.Meta.LookupAddress(ctx, addr)
	if !errors.Is(err, meta.ErrNoSuchAccount) {
		return acct, err
	}
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i:]
	}
	user, _, ok := strings.Cut(local, "+")
	if !ok || user == "" {
		return meta.Account{}, err
	}
	return g.deps.Meta.LookupAddress(ctx, user+domain)
}

// unmarkBare returns a bare local part rewritten by rcptRewriter as it was
// given, and any other address unchanged.
func unmarkBare(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && strings.EqualFold(addr[i+1:], bareDomain) {
		return addr[:i]
	}
	return addr
}

// Data is not called in LMTP mode (go-smtp calls LMTPData); it delivers
// and answers with the first recipient's failure, if any.
func (s *session) Data(r io.Reader) error {
	var st firstError
	if err := s.LMTPData(r, &st); err != nil {
		return err
	}
	return st.err
}

type firstError struct{ err error }

func (f *firstError) SetStatus(_ string, err error) {
	if f.err == nil && err != delivered {
		f.err = err
	}
}

// LMTPData receives the message and stores it for every recipient; see
// deliver.go.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	// Ended in Reset, which go-smtp calls once the replies are out.
	s.conn.beginDelivery(time.Now().Add(s.g.cfg.DataTimeout))
	ctx, cancel := context.WithTimeout(s.ctx, s.g.cfg.DataTimeout)
	defer cancel()
	return s.g.deliver(ctx, s.transaction(), r, status)
}

// transaction is what a delivery needs to know of the session.
func (s *session) transaction() *transaction {
	return &transaction{
		id: s.id, from: s.from, helo: s.helo, remoteIP: s.remoteIP,
		proto: s.proto, utf8: s.utf8, rcpts: s.rcpts,
	}
}

func (s *session) Reset() {
	s.inTx, s.from, s.utf8, s.size, s.id, s.rcpts = false, "", false, 0, "", nil
	s.conn.endDelivery()
}

func (s *session) Logout() error {
	s.cancel()
	return nil
}
