package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Protocol clients for the chaos run. Unlike the e2e helpers (imapConn,
// popConn, lmtpConn), they never fail the test: every call returns either
// the server's answer or errChaosBroken, because under faults a broken
// connection is an expected outcome, recorded in the history as unknown.

// errChaosBroken means the connection broke or timed out: the outcome of
// the command in flight is unknown.
var errChaosBroken = errors.New("connection broken")

// chaosOpTimeout bounds one command; a command that takes longer has an
// unknown outcome.
const chaosOpTimeout = 15 * time.Second

// chaosLine is a line reader with a deadline per command.
type chaosLine struct {
	conn net.Conn
	r    *bufio.Reader
}

func chaosDial(addr string) (*chaosLine, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, errChaosBroken)
	}
	return &chaosLine{conn: c, r: bufio.NewReader(c)}, nil
}

func (l *chaosLine) close() { _ = l.conn.Close() }

// deadline starts a command's time budget.
func (l *chaosLine) deadline(d time.Duration) { _ = l.conn.SetDeadline(time.Now().Add(d)) }

func (l *chaosLine) write(s string) error {
	if _, err := io.WriteString(l.conn, s); err != nil {
		return fmt.Errorf("write: %v: %w", err, errChaosBroken)
	}
	return nil
}

func (l *chaosLine) line() (string, error) {
	s, err := l.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read: %v: %w", err, errChaosBroken)
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// chaosIMAP is an IMAP client session.
type chaosIMAP struct {
	*chaosLine
	n        int
	selected string
}

// imapReply is the answer to one IMAP command.
type imapReply struct {
	untagged []string
	status   string // OK, NO or BAD
	text     string // the tagged line after the status
}

func (r imapReply) String() string {
	return strings.TrimSpace(r.status + " " + r.text)
}

// temp reports a refusal that says "try again": the command may or may
// not have taken effect.
func (r imapReply) temp() bool { return strings.Contains(r.text, "[UNAVAILABLE]") }

var (
	literalRe   = regexp.MustCompile(`\{(\d+)\+?\}$`)
	appendUIDRe = regexp.MustCompile(`\[APPENDUID (\d+) (\d+)\]`)
	copyUIDRe   = regexp.MustCompile(`\[COPYUID (\d+) (\S+) (\S+)\]`)
	modifiedRe  = regexp.MustCompile(`\[MODIFIED ([0-9:,]+)\]`)
)

func chaosDialIMAP(addr, user, pass string) (*chaosIMAP, error) {
	l, err := chaosDial(addr)
	if err != nil {
		return nil, err
	}
	c := &chaosIMAP{chaosLine: l}
	l.deadline(chaosOpTimeout)
	g, err := l.line()
	if err != nil {
		l.close()
		return nil, err
	}
	if !strings.HasPrefix(g, "* OK") {
		l.close()
		return nil, fmt.Errorf("greeting %q", g)
	}
	r, err := c.cmd("LOGIN %s %s", user, pass)
	if err != nil {
		l.close()
		return nil, err
	}
	if r.status != "OK" {
		l.close()
		return nil, fmt.Errorf("LOGIN: %s", r)
	}
	return c, nil
}

// cmd sends a command line (which may carry a LITERAL+ literal) and
// reads the answer.
func (c *chaosIMAP) cmd(format string, args ...any) (imapReply, error) {
	c.n++
	tag := "x" + strconv.Itoa(c.n)
	c.deadline(chaosOpTimeout)
	if err := c.write(tag + " " + fmt.Sprintf(format, args...) + "\r\n"); err != nil {
		return imapReply{}, err
	}
	return c.readTagged(tag)
}

func (c *chaosIMAP) readTagged(tag string) (imapReply, error) {
	var r imapReply
	for {
		l, err := c.line()
		if err != nil {
			return r, err
		}
		// Skip literals inside untagged responses.
		for {
			m := literalRe.FindStringSubmatch(l)
			if m == nil {
				break
			}
			n, _ := strconv.Atoi(m[1])
			if _, err := io.CopyN(io.Discard, c.r, int64(n)); err != nil {
				return r, fmt.Errorf("read literal: %v: %w", err, errChaosBroken)
			}
			rest, err := c.line()
			if err != nil {
				return r, err
			}
			l += "<literal>" + rest
		}
		if strings.HasPrefix(l, tag+" ") {
			st, text, _ := strings.Cut(strings.TrimPrefix(l, tag+" "), " ")
			r.status, r.text = st, text
			return r, nil
		}
		if strings.HasPrefix(l, "* BYE") {
			return r, fmt.Errorf("%s: %w", l, errChaosBroken)
		}
		r.untagged = append(r.untagged, l)
	}
}

// selectBox selects mbox unless it is selected already.
func (c *chaosIMAP) selectBox(mbox string) (imapReply, error) {
	r, err := c.cmd("SELECT %s", mbox)
	if err == nil && r.status == "OK" {
		c.selected = mbox
	} else {
		c.selected = ""
	}
	return r, err
}

// chaosPOP3 is a POP3 client session.
type chaosPOP3 struct{ *chaosLine }

func chaosDialPOP3(addr string) (*chaosPOP3, error) {
	l, err := chaosDial(addr)
	if err != nil {
		return nil, err
	}
	l.deadline(chaosOpTimeout)
	g, err := l.line()
	if err != nil {
		l.close()
		return nil, err
	}
	if !strings.HasPrefix(g, "+OK") {
		l.close()
		return nil, fmt.Errorf("greeting %q", g)
	}
	return &chaosPOP3{l}, nil
}

// cmd sends one command and returns the status line.
func (p *chaosPOP3) cmd(format string, args ...any) (string, error) {
	p.deadline(chaosOpTimeout)
	if err := p.write(fmt.Sprintf(format, args...) + "\r\n"); err != nil {
		return "", err
	}
	return p.line()
}

// multi reads a dot-terminated multi-line body (dot-unstuffed).
func (p *chaosPOP3) multi() ([]string, error) {
	var out []string
	for {
		l, err := p.line()
		if err != nil {
			return out, err
		}
		if l == "." {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

// chaosLMTP is an LMTP client.
type chaosLMTP struct{ *chaosLine }

func chaosDialLMTP(addr string) (*chaosLMTP, error) {
	l, err := chaosDial(addr)
	if err != nil {
		return nil, err
	}
	c := &chaosLMTP{l}
	l.deadline(chaosOpTimeout)
	if code, line, err := c.reply(); err != nil || code != 220 {
		l.close()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("greeting %q", line)
	}
	if code, line, err := c.cmd("LHLO chaos.test"); err != nil || code != 250 {
		l.close()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("LHLO: %q", line)
	}
	return c, nil
}

// reply reads one (possibly multi-line) reply.
func (c *chaosLMTP) reply() (int, string, error) {
	for {
		s, err := c.line()
		if err != nil {
			return 0, "", err
		}
		if len(s) < 4 || s[3] != '-' {
			code, err := strconv.Atoi(s[:min(3, len(s))])
			if err != nil {
				return 0, s, fmt.Errorf("bad reply %q: %w", s, errChaosBroken)
			}
			return code, s, nil
		}
	}
}

func (c *chaosLMTP) cmd(format string, args ...any) (int, string, error) {
	c.deadline(chaosOpTimeout)
	if err := c.write(fmt.Sprintf(format, args...) + "\r\n"); err != nil {
		return 0, "", err
	}
	return c.reply()
}

// lmtpRcptResult is one recipient's outcome of a transaction.
type lmtpRcptResult struct {
	code int    // 0 when unknown
	line string // the reply, or the error
	err  error  // errChaosBroken when unknown
	rcpt bool   // the recipient was refused at RCPT (nothing stored)
}

// deliver runs one transaction and returns the outcome per recipient.
func (c *chaosLMTP) deliver(from, msg string, rcpts []string) []lmtpRcptResult {
	out := make([]lmtpRcptResult, len(rcpts))
	fail := func(from int, err error) []lmtpRcptResult {
		for i := from; i < len(out); i++ {
			if out[i].code == 0 && !out[i].rcpt {
				out[i] = lmtpRcptResult{line: err.Error(), err: err}
			}
		}
		return out
	}
	if code, line, err := c.cmd("MAIL FROM:<%s>", from); err != nil {
		return fail(0, err)
	} else if code != 250 {
		for i := range out {
			out[i] = lmtpRcptResult{code: code, line: line, rcpt: true}
		}
		return out
	}
	var accepted []int
	for i, r := range rcpts {
		code, line, err := c.cmd("RCPT TO:<%s>", r)
		if err != nil {
			return fail(0, err)
		}
		if code != 250 {
			out[i] = lmtpRcptResult{code: code, line: line, rcpt: true}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		_, _, _ = c.cmd("RSET")
		return out
	}
	if code, line, err := c.cmd("DATA"); err != nil {
		return fail(0, err)
	} else if code != 354 {
		for _, i := range accepted {
			out[i] = lmtpRcptResult{code: code, line: line, rcpt: true}
		}
		return out
	}
	c.deadline(chaosOpTimeout)
	if err := c.write(chaosDotStuff(msg) + ".\r\n"); err != nil {
		return fail(0, err)
	}
	for _, i := range accepted {
		code, line, err := c.reply()
		if err != nil {
			return fail(i, err)
		}
		out[i] = lmtpRcptResult{code: code, line: line}
	}
	return out
}

// chaosDotStuff escapes a CRLF message for DATA.
func chaosDotStuff(msg string) string {
	lines := strings.SplitAfter(msg, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			lines[i] = "." + l
		}
	}
	return strings.Join(lines, "")
}
