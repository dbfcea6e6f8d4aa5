package mail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAP is mail.imap in scripts.
type IMAP struct {
	rec *recorder
}

// IMAPClient is one IMAP session, returned by mail.imap.connect. Its
// methods run one command each and throw on any answer but OK.
type IMAPClient struct {
	rec    *recorder
	s      *session
	c      *imapclient.Client
	events chan IdleEvent
}

// Connect opens a session to addr (host:port) and waits for the greeting.
// Options: tls (implicit TLS), starttls, insecureSkipVerify, serverName,
// timeout (per command; milliseconds or "30s").
func (m *IMAP) Connect(addr string, opts map[string]any) (*IMAPClient, error) {
	o, err := parseOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("imap connect: %w", err)
	}
	start := time.Now()
	s, err := dial(m.rec.vu, addr, o)
	if err != nil {
		if !errors.Is(err, errInitContext) {
			m.rec.connectError("imap", err)
		}
		return nil, fmt.Errorf("imap connect: %w", err)
	}
	c := &IMAPClient{rec: m.rec, s: s, events: make(chan IdleEvent, 64)}
	options := &imapclient.Options{
		TLSConfig:             tlsConfig(m.rec.vu, addr, o),
		UnilateralDataHandler: c.unilateral(),
	}
	s.deadline(0)
	conn := fixedDeadlines{s.conn}
	if o.startTLS {
		c.c, err = imapclient.NewStartTLS(conn, options)
	} else {
		c.c = imapclient.New(conn, options)
		err = c.c.WaitGreeting()
	}
	kind, err := failure(err, s.clearDeadline(), kindConnect)
	if err != nil {
		m.rec.command(m.rec.m.imapDuration, "imap", "CONNECT", start, s.count, imapResult(err), err, kind)
		s.close()
		return nil, fmt.Errorf("imap connect to %s: %w", addr, err)
	}
	m.rec.command(m.rec.m.imapDuration, "imap", "CONNECT", start, s.count, "ok", nil, "")
	m.rec.session("imap")
	return c, nil
}

// do runs one command under the session timeout and records it.
func (c *IMAPClient) do(command string, fn func() error) error {
	start := time.Now()
	c.s.deadline(0)
	kind, err := failure(fn(), c.s.clearDeadline(), "")
	if command == "LOGIN" && imapResult(err) == "no" {
		kind = kindAuth
		err = fmt.Errorf("%w: %w", errAuth, err)
	}
	c.rec.command(c.rec.m.imapDuration, "imap", command, start, c.s.count, imapResult(err), err, kind)
	if err != nil {
		return fmt.Errorf("imap %s: %w", command, err)
	}
	return nil
}

// Login sends LOGIN; a NO counts as an auth error.
func (c *IMAPClient) Login(user, password string) error {
	return c.do("LOGIN", func() error { return c.c.Login(user, password).Wait() })
}

// Capability asks for the capabilities afresh and returns them sorted.
func (c *IMAPClient) Capability() ([]string, error) {
	var caps imap.CapSet
	err := c.do("CAPABILITY", func() error {
		var err error
		caps, err = c.c.Capability().Wait()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(caps))
	for cp := range caps {
		out = append(out, string(cp))
	}
	sortStrings(out)
	return out, nil
}

// Noop sends NOOP, which also collects pending updates.
func (c *IMAPClient) Noop() error {
	return c.do("NOOP", func() error { return c.c.Noop().Wait() })
}

// Create makes a mailbox.
func (c *IMAPClient) Create(mailbox string) error {
	return c.do("CREATE", func() error { return c.c.Create(mailbox, nil).Wait() })
}

// Delete removes a mailbox.
func (c *IMAPClient) Delete(mailbox string) error {
	return c.do("DELETE", func() error { return c.c.Delete(mailbox).Wait() })
}

// MailboxInfo is one LIST answer.
type MailboxInfo struct {
	Name  string   `js:"name"`
	Delim string   `js:"delim"`
	Attrs []string `js:"attrs"`
}

// List returns the mailboxes matching pattern under ref ("" and "*" for
// all).
func (c *IMAPClient) List(ref, pattern string) ([]MailboxInfo, error) {
	var list []*imap.ListData
	err := c.do("LIST", func() error {
		var err error
		list, err = c.c.List(ref, pattern, nil).Collect()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]MailboxInfo, 0, len(list))
	for _, l := range list {
		mi := MailboxInfo{Name: l.Mailbox, Attrs: make([]string, 0, len(l.Attrs))}
		if l.Delim != 0 {
			mi.Delim = string(l.Delim)
		}
		for _, a := range l.Attrs {
			mi.Attrs = append(mi.Attrs, string(a))
		}
		out = append(out, mi)
	}
	return out, nil
}

// SelectInfo is what SELECT and EXAMINE report.
type SelectInfo struct {
	Messages       uint32   `js:"messages"`
	UIDNext        uint32   `js:"uidNext"`
	UIDValidity    uint32   `js:"uidValidity"`
	Flags          []string `js:"flags"`
	PermanentFlags []string `js:"permanentFlags"`
	HighestModSeq  uint64   `js:"highestModSeq"`
	ReadOnly       bool     `js:"readOnly"`
}

// Select opens a mailbox read-write.
func (c *IMAPClient) Select(mailbox string) (*SelectInfo, error) {
	return c.selectMailbox("SELECT", mailbox, false)
}

// Examine opens a mailbox read-only.
func (c *IMAPClient) Examine(mailbox string) (*SelectInfo, error) {
	return c.selectMailbox("EXAMINE", mailbox, true)
}

func (c *IMAPClient) selectMailbox(command, mailbox string, readOnly bool) (*SelectInfo, error) {
	var d *imap.SelectData
	err := c.do(command, func() error {
		var err error
		d, err = c.c.Select(mailbox, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SelectInfo{
		Messages: d.NumMessages, UIDNext: uint32(d.UIDNext), UIDValidity: d.UIDValidity,
		Flags: flagStrings(d.Flags), PermanentFlags: flagStrings(d.PermanentFlags),
		HighestModSeq: d.HighestModSeq, ReadOnly: readOnly,
	}, nil
}

// Status asks for items of a mailbox (default MESSAGES UIDNEXT
// UIDVALIDITY UNSEEN; also SIZE, DELETED, HIGHESTMODSEQ, APPENDLIMIT) and
// returns them by lower-case name.
func (c *IMAPClient) Status(mailbox string, items []string) (map[string]any, error) {
	if len(items) == 0 {
		items = []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
	}
	var so imap.StatusOptions
	for _, it := range items {
		switch strings.ToUpper(it) {
		case "MESSAGES":
			so.NumMessages = true
		case "UIDNEXT":
			so.UIDNext = true
		case "UIDVALIDITY":
			so.UIDValidity = true
		case "UNSEEN":
			so.NumUnseen = true
		case "DELETED":
			so.NumDeleted = true
		case "SIZE":
			so.Size = true
		case "HIGHESTMODSEQ":
			so.HighestModSeq = true
		case "APPENDLIMIT":
			so.AppendLimit = true
		default:
			return nil, fmt.Errorf("imap STATUS: unknown item %q", it)
		}
	}
	var d *imap.StatusData
	err := c.do("STATUS", func() error {
		var err error
		d, err = c.c.Status(mailbox, &so).Wait()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]any{"mailbox": d.Mailbox}
	if d.NumMessages != nil {
		out["messages"] = *d.NumMessages
	}
	if so.UIDNext {
		out["uidnext"] = uint32(d.UIDNext)
	}
	if so.UIDValidity {
		out["uidvalidity"] = d.UIDValidity
	}
	if d.NumUnseen != nil {
		out["unseen"] = *d.NumUnseen
	}
	if d.NumDeleted != nil {
		out["deleted"] = *d.NumDeleted
	}
	if d.Size != nil {
		out["size"] = *d.Size
	}
	if so.HighestModSeq {
		out["highestmodseq"] = d.HighestModSeq
	}
	if d.AppendLimit != nil {
		out["appendlimit"] = *d.AppendLimit
	}
	return out, nil
}

// AppendResult is the APPENDUID answer (zero without UIDPLUS).
type AppendResult struct {
	UID         uint32 `js:"uid"`
	UIDValidity uint32 `js:"uidValidity"`
}

// Append stores body (a string or ArrayBuffer) in mailbox with flags.
func (c *IMAPClient) Append(mailbox string, body any, flags []string) (*AppendResult, error) {
	b, err := toBytes(body)
	if err != nil {
		return nil, fmt.Errorf("imap APPEND: %w", err)
	}
	var d *imap.AppendData
	err = c.do("APPEND", func() error {
		cmd := c.c.Append(mailbox, int64(len(b)), &imap.AppendOptions{Flags: toFlags(flags)})
		if _, err := cmd.Write(b); err != nil {
			_ = cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		var err error
		d, err = cmd.Wait()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &AppendResult{UID: uint32(d.UID), UIDValidity: d.UIDValidity}, nil
}

// CopyResult is the COPYUID answer (empty without UIDPLUS).
type CopyResult struct {
	UIDValidity uint32 `js:"uidValidity"`
	SourceUIDs  string `js:"sourceUids"`
	DestUIDs    string `js:"destUids"`
}

// Copy copies the messages of set (sequence numbers, or UIDs with
// {uid: true}) to mailbox.
func (c *IMAPClient) Copy(set, mailbox string, opts map[string]any) (*CopyResult, error) {
	ns, uid, err := numSetArg(set, opts)
	if err != nil {
		return nil, fmt.Errorf("imap COPY: %w", err)
	}
	var d *imap.CopyData
	err = c.do(cmdName("COPY", uid), func() error {
		var err error
		d, err = c.c.Copy(ns, mailbox).Wait()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &CopyResult{UIDValidity: d.UIDValidity, SourceUIDs: d.SourceUIDs.String(), DestUIDs: d.DestUIDs.String()}, nil
}

// Move moves the messages of set to mailbox (MOVE, RFC 6851).
func (c *IMAPClient) Move(set, mailbox string, opts map[string]any) (*CopyResult, error) {
	ns, uid, err := numSetArg(set, opts)
	if err != nil {
		return nil, fmt.Errorf("imap MOVE: %w", err)
	}
	var d *imapclient.MoveData
	err = c.do(cmdName("MOVE", uid), func() error {
		var err error
		d, err = c.c.Move(ns, mailbox).Wait()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &CopyResult{UIDValidity: d.UIDValidity, SourceUIDs: setString(d.SourceUIDs), DestUIDs: setString(d.DestUIDs)}, nil
}

// Expunge removes \Deleted messages and returns the expunged sequence
// numbers in the order the server sent them.
func (c *IMAPClient) Expunge() ([]uint32, error) {
	var seqs []uint32
	err := c.do("EXPUNGE", func() error {
		var err error
		seqs, err = c.c.Expunge().Collect()
		return err
	})
	return seqs, err
}

// Logout ends the session politely and closes the connection.
func (c *IMAPClient) Logout() error {
	err := c.do("LOGOUT", func() error { return c.c.Logout().Wait() })
	c.s.close()
	return err
}

// Close drops the connection without LOGOUT.
func (c *IMAPClient) Close() {
	c.s.close()
}

func setString(ns imap.NumSet) string {
	if ns == nil {
		return ""
	}
	return ns.String()
}

func cmdName(name string, uid bool) string {
	if uid {
		return "UID " + name
	}
	return name
}

func flagStrings(fs []imap.Flag) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, string(f))
	}
	return out
}

func toFlags(ss []string) []imap.Flag {
	out := make([]imap.Flag, 0, len(ss))
	for _, s := range ss {
		out = append(out, imap.Flag(s))
	}
	return out
}

// numSetArg parses set as UIDs when opts has uid: true.
func numSetArg(set string, opts map[string]any) (imap.NumSet, bool, error) {
	uid := false
	for k, v := range opts {
		if k != "uid" {
			return nil, false, fmt.Errorf("unknown option %q", k)
		}
		b, err := asBool(k, v)
		if err != nil {
			return nil, false, err
		}
		uid = b
	}
	ns, err := parseNumSet(set, uid)
	return ns, uid, err
}

// parseNumSet reads an IMAP sequence set ("1:5,7,9:*"); * is 0 in
// go-imap's ranges.
func parseNumSet(s string, uid bool) (imap.NumSet, error) {
	var seq imap.SeqSet
	var uids imap.UIDSet
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		start, err := parseSetNum(lo)
		if err != nil {
			return nil, fmt.Errorf("number set %q: %w", s, err)
		}
		stop := start
		if isRange {
			if stop, err = parseSetNum(hi); err != nil {
				return nil, fmt.Errorf("number set %q: %w", s, err)
			}
		}
		seq = append(seq, imap.SeqRange{Start: start, Stop: stop})
		uids = append(uids, imap.UIDRange{Start: imap.UID(start), Stop: imap.UID(stop)})
	}
	if uid {
		return uids, nil
	}
	return seq, nil
}

func parseSetNum(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return uint32(n), nil
}
