package mail

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// POP3 is mail.pop3 in scripts.
type POP3 struct {
	rec *recorder
}

// POP3Client is one POP3 session (RFC 1939, STLS from RFC 2595), returned
// by mail.pop3.connect. Message numbers are 1-based as in the protocol.
type POP3Client struct {
	rec *recorder
	s   *session
	tp  *textproto.Conn
}

// pop3Error is a -ERR answer.
type pop3Error struct{ msg string }

func (e *pop3Error) Error() string { return "-ERR " + e.msg }

// errPOP3Syntax: the server answered neither +OK nor -ERR.
var errPOP3Syntax = errors.New("malformed POP3 answer")

// Connect opens a session to addr and reads the greeting. Options as for
// IMAP; starttls sends STLS.
func (m *POP3) Connect(addr string, opts map[string]any) (*POP3Client, error) {
	o, err := parseOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("pop3 connect: %w", err)
	}
	start := time.Now()
	s, err := dial(m.rec.vu, addr, o)
	if err != nil {
		if !errors.Is(err, errInitContext) {
			m.rec.connectError("pop3", err)
		}
		return nil, fmt.Errorf("pop3 connect: %w", err)
	}
	c := &POP3Client{rec: m.rec, s: s, tp: textproto.NewConn(s.conn)}
	s.deadline(0)
	_, err = c.answer()
	if err == nil && o.startTLS {
		if err = c.tp.PrintfLine("STLS"); err == nil {
			if _, err = c.answer(); err == nil {
				tc := tls.Client(s.count, tlsConfig(m.rec.vu, addr, o))
				if err = tc.Handshake(); err == nil {
					s.conn = tc
					c.tp = textproto.NewConn(tc)
				}
			}
		}
	}
	kind, err := failure(err, s.clearDeadline(), kindConnect)
	if err != nil {
		m.rec.command(m.rec.m.pop3Duration, "pop3", "CONNECT", start, s.count, pop3Result(err), err, kind)
		s.close()
		return nil, fmt.Errorf("pop3 connect to %s: %w", addr, err)
	}
	m.rec.command(m.rec.m.pop3Duration, "pop3", "CONNECT", start, s.count, "ok", nil, "")
	m.rec.session("pop3")
	return c, nil
}

// answer reads a status line and returns the text after +OK.
func (c *POP3Client) answer() (string, error) {
	line, err := c.tp.ReadLine()
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(line, "+OK"):
		return strings.TrimSpace(line[3:]), nil
	case strings.HasPrefix(line, "-ERR"):
		return "", &pop3Error{msg: strings.TrimSpace(line[4:])}
	}
	return "", fmt.Errorf("%w: %q", errPOP3Syntax, line)
}

func pop3Result(err error) string {
	var pe *pop3Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &pe):
		return "err"
	}
	return "error"
}

// do sends one command and reads its status line, then, when multi, the
// dot-terminated body; it records the command under name.
func (c *POP3Client) do(name string, multi bool, format string, args ...any) (string, []byte, error) {
	start := time.Now()
	c.s.deadline(0)
	var (
		status string
		body   []byte
	)
	err := c.tp.PrintfLine(format, args...)
	if err == nil {
		status, err = c.answer()
	}
	if err == nil && multi {
		body, err = io.ReadAll(c.tp.DotReader())
	}
	kind, err := failure(err, c.s.clearDeadline(), "")
	if name == "PASS" && pop3Result(err) == "err" {
		kind = kindAuth
		err = fmt.Errorf("%w: %w", errAuth, err)
	}
	c.rec.command(c.rec.m.pop3Duration, "pop3", name, start, c.s.count, pop3Result(err), err, kind)
	if err != nil {
		return "", nil, fmt.Errorf("pop3 %s: %w", name, err)
	}
	return status, body, nil
}

// Login sends USER and PASS; a -ERR to PASS counts as an auth error.
func (c *POP3Client) Login(user, password string) error {
	if _, _, err := c.do("USER", false, "USER %s", user); err != nil {
		return err
	}
	_, _, err := c.do("PASS", false, "PASS %s", password)
	return err
}

// Stat is the STAT answer.
type Stat struct {
	Count int64 `js:"count"`
	Size  int64 `js:"size"`
}

// Stat returns the drop's message count and size.
func (c *POP3Client) Stat() (*Stat, error) {
	st, _, err := c.do("STAT", false, "STAT")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(st)
	if len(f) < 2 {
		return nil, fmt.Errorf("pop3 STAT: %w: %q", errPOP3Syntax, st)
	}
	n, err1 := strconv.ParseInt(f[0], 10, 64)
	sz, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pop3 STAT: %w: %q", errPOP3Syntax, st)
	}
	return &Stat{Count: n, Size: sz}, nil
}

// ListEntry is one LIST line.
type ListEntry struct {
	ID   int64 `js:"id"`
	Size int64 `js:"size"`
}

// List returns the sizes of all messages, or of message n when n > 0.
func (c *POP3Client) List(n int64) ([]ListEntry, error) {
	lines, err := c.scan("LIST", n)
	if err != nil {
		return nil, err
	}
	out := make([]ListEntry, 0, len(lines))
	for _, l := range lines {
		sz, err := strconv.ParseInt(l[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pop3 LIST: %w: %q", errPOP3Syntax, l)
		}
		out = append(out, ListEntry{ID: mustAtoi(l[0]), Size: sz})
	}
	return out, nil
}

// UIDLEntry is one UIDL line.
type UIDLEntry struct {
	ID  int64  `js:"id"`
	UID string `js:"uid"`
}

// Uidl returns the unique ids of all messages, or of message n when n > 0.
func (c *POP3Client) Uidl(n int64) ([]UIDLEntry, error) {
	lines, err := c.scan("UIDL", n)
	if err != nil {
		return nil, err
	}
	out := make([]UIDLEntry, 0, len(lines))
	for _, l := range lines {
		out = append(out, UIDLEntry{ID: mustAtoi(l[0]), UID: l[1]})
	}
	return out, nil
}

// scan runs LIST or UIDL, for one message (single line) or all (multi).
func (c *POP3Client) scan(name string, n int64) ([][2]string, error) {
	var lines []string
	if n > 0 {
		st, _, err := c.do(name, false, "%s %d", name, n)
		if err != nil {
			return nil, err
		}
		lines = []string{st}
	} else {
		_, body, err := c.do(name, true, "%s", name)
		if err != nil {
			return nil, err
		}
		lines = strings.Split(strings.TrimRight(string(body), "\n"), "\n")
	}
	out := make([][2]string, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("pop3 %s: %w: %q", name, errPOP3Syntax, l)
		}
		if _, err := strconv.ParseInt(f[0], 10, 64); err != nil {
			return nil, fmt.Errorf("pop3 %s: %w: %q", name, errPOP3Syntax, l)
		}
		out = append(out, [2]string{f[0], f[1]})
	}
	return out, nil
}

func mustAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64) // checked by scan
	return n
}

// Retr returns message n with CRLF line ends, dot-unstuffed.
func (c *POP3Client) Retr(n int64) (string, error) {
	_, body, err := c.do("RETR", true, "RETR %d", n)
	return crlf(body), err
}

// Top returns the header and the first lines of the body of message n.
func (c *POP3Client) Top(n, lines int64) (string, error) {
	_, body, err := c.do("TOP", true, "TOP %d %d", n, lines)
	return crlf(body), err
}

// Dele marks message n deleted (removed at QUIT).
func (c *POP3Client) Dele(n int64) error {
	_, _, err := c.do("DELE", false, "DELE %d", n)
	return err
}

// Noop sends NOOP.
func (c *POP3Client) Noop() error {
	_, _, err := c.do("NOOP", false, "NOOP")
	return err
}

// Rset unmarks deleted messages.
func (c *POP3Client) Rset() error {
	_, _, err := c.do("RSET", false, "RSET")
	return err
}

// Quit commits deletions, ends the session and closes the connection.
func (c *POP3Client) Quit() error {
	_, _, err := c.do("QUIT", false, "QUIT")
	c.s.close()
	return err
}

// Close drops the connection without QUIT (deletions are not committed).
func (c *POP3Client) Close() {
	c.s.close()
}

// crlf restores the CRLF line ends that textproto's DotReader turns into
// LF, so a retrieved message compares byte for byte with what was sent.
func crlf(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return strings.ReplaceAll(string(b), "\n", "\r\n")
}
