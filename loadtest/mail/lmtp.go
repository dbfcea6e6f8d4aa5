package mail

import (
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-smtp"
)

// LMTP is mail.lmtp in scripts.
type LMTP struct {
	rec *recorder
}

// RcptReply is the server's answer for one recipient: to RCPT TO when it
// refused the recipient there, else its own reply after the data.
type RcptReply struct {
	Rcpt         string `js:"rcpt"`
	Code         int    `js:"code"`
	EnhancedCode string `js:"enhancedCode"`
	Message      string `js:"message"`
}

// Deliver sends body (string or ArrayBuffer) from from to rcpts over one
// LMTP session (LHLO, MAIL, RCPT..., DATA, QUIT) and returns a reply per
// recipient in the order given. A refused recipient is an answer, not an
// error; the call throws only when the session fails as a whole.
// Options as for IMAP (but no starttls), plus lhlo (the client name).
func (m *LMTP) Deliver(addr, from string, rcpts []string, body any, opts map[string]any) ([]RcptReply, error) {
	o, err := parseOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("lmtp deliver: %w", err)
	}
	b, err := toBytes(body)
	if err != nil {
		return nil, fmt.Errorf("lmtp deliver: %w", err)
	}
	if o.startTLS {
		// go-smtp's client offers STARTTLS only in SMTP mode.
		return nil, errors.New("lmtp deliver: starttls is not supported; use tls")
	}
	if len(rcpts) == 0 {
		return nil, errors.New("lmtp deliver: no recipients")
	}
	start := time.Now()
	s, err := dial(m.rec.vu, addr, o)
	if err != nil {
		if !errors.Is(err, errInitContext) {
			m.rec.connectError("lmtp", err)
		}
		return nil, fmt.Errorf("lmtp deliver: %w", err)
	}
	defer s.close()
	m.rec.session("lmtp")
	// go-smtp sets its own deadline for each command from these.
	c := smtp.NewClientLMTP(s.conn)
	c.CommandTimeout, c.SubmissionTimeout = o.timeout, o.timeout
	replies, stage, err := deliver(c, o, from, rcpts, b)
	fallback := ""
	if stage == "connect" {
		fallback = kindConnect
	}
	kind, err := failure(err, s.clearDeadline(), fallback)
	result := deliveryResult(replies, err)
	m.rec.command(m.rec.m.lmtpDuration, "lmtp", "DELIVER", start, s.count, result, err, kind)
	if err != nil {
		return nil, fmt.Errorf("lmtp deliver to %s (%s): %w", addr, stage, err)
	}
	_ = c.Quit()
	m.rec.flushBytes("lmtp", s.count)
	return replies, nil
}

// deliver runs the transaction; stage names the step that failed.
func deliver(c *smtp.Client, o connOptions, from string, rcpts []string, body []byte) ([]RcptReply, string, error) {
	if err := c.Hello(o.lhlo); err != nil {
		return nil, "connect", err
	}
	if err := c.Mail(from, nil); err != nil {
		return nil, "MAIL", err
	}
	replies := make([]RcptReply, len(rcpts))
	accepted := 0
	for i, r := range rcpts {
		replies[i].Rcpt = r
		if err := c.Rcpt(r, nil); err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				return nil, "RCPT", err
			}
			replies[i].set(se)
			continue
		}
		accepted++
	}
	if accepted == 0 {
		_ = c.Reset()
		return replies, "", nil
	}
	w, err := c.Data()
	if err != nil {
		return nil, "DATA", err
	}
	if _, err := w.Write(body); err != nil {
		return nil, "DATA", err
	}
	resp, err := w.CloseWithLMTPResponse()
	var perRcpt smtp.LMTPDataError
	if err != nil && !errors.As(err, &perRcpt) {
		return nil, "DATA", err
	}
	for i := range replies {
		if replies[i].Code != 0 {
			continue // refused at RCPT
		}
		r := replies[i].Rcpt
		if se, ok := perRcpt[r]; ok {
			replies[i].set(se)
		} else if dr, ok := resp[r]; ok {
			replies[i].Code, replies[i].Message = 250, dr.StatusText
		}
	}
	return replies, "", nil
}

func (r *RcptReply) set(se *smtp.SMTPError) {
	r.Code, r.Message = se.Code, se.Message
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		ec := se.EnhancedCode
		r.EnhancedCode = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
	}
}

// deliveryResult tags a delivery: ok when every recipient got 2xx,
// partial when some did, tempfail or permfail when none did (by the first
// refusal), error when the session failed.
func deliveryResult(replies []RcptReply, err error) string {
	if err != nil {
		return "error"
	}
	ok, temp := 0, false
	for _, r := range replies {
		switch {
		case r.Code/100 == 2:
			ok++
		case r.Code/100 == 4:
			temp = true
		}
	}
	switch {
	case ok == len(replies):
		return "ok"
	case ok > 0:
		return "partial"
	case temp:
		return "tempfail"
	}
	return "permfail"
}
