package pop3gw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func init() {
	register("STAT", handler{fn: cmdStat, states: transaction})
	register("LIST", handler{fn: cmdList, states: transaction})
	register("UIDL", handler{fn: cmdUIDL, states: transaction})
	register("RETR", handler{fn: cmdRetr, states: transaction})
	register("TOP", handler{fn: cmdTop, states: transaction})
	register("DELE", handler{fn: cmdDele, states: transaction})
	register("RSET", handler{fn: cmdRset, states: transaction})
	register("NOOP", handler{fn: cmdNoop, states: transaction})
	register("QUIT", handler{fn: cmdQuit, states: anyState})
}

// maildrop is the session's snapshot of INBOX, taken at login: message n
// is msgs[n-1] for the whole session, whatever other sessions do.
type maildrop struct {
	acct        mail.AccountID
	mbox        mail.MailboxID
	uidValidity uint32
	msgs        []*message
}

type message struct {
	uid       mail.UID
	blob      mail.BlobID
	wire      int64 // wire size, -1 until known
	deleted   bool
	retrieved bool // sent whole by RETR in this session
}

// DeletedKeyword marks a message a POP3 client deleted under a policy
// that keeps it on the server ("forever", "days"): POP3 no longer lists
// it, IMAP still shows it. (Dovecot's pop3_deleted_flag does the same.)
const DeletedKeyword mail.Flag = "$POP3Deleted"

func loadMaildrop(ctx context.Context, m Store, acct mail.AccountID) (*maildrop, error) {
	inbox, err := m.Mailbox(ctx, acct, "INBOX")
	if err != nil {
		return nil, fmt.Errorf("open maildrop: %w", err)
	}
	entries, err := m.ListEntries(ctx, acct, inbox.ID, mail.AllUIDs(), meta.FieldInfo|meta.FieldFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("list maildrop: %w", err)
	}
	d := &maildrop{acct: acct, mbox: inbox.ID, uidValidity: inbox.UIDValidity, msgs: make([]*message, 0, len(entries))}
	for _, e := range entries {
		if slices.Contains(e.Flags, DeletedKeyword) {
			continue
		}
		d.msgs = append(d.msgs, &message{uid: e.UID, blob: e.Blob, wire: -1})
	}
	return d, nil
}

// uidl is a message's unique id: UIDVALIDITY and UID never name another
// message of INBOX, on any pod, ever (RFC 1939 section 7: 1 to 70
// printable characters).
func (d *maildrop) uidl(m *message) string {
	return fmt.Sprintf("%d.%d", d.uidValidity, m.uid)
}

// errGone: the message was expunged by another session since the
// snapshot.
var errGone = errf("Message was deleted by another session")

// msgArg parses a message number that must name a message not marked
// deleted.
func (s *session) msgArg(arg string) (int, *message, error) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || strings.HasPrefix(arg, "+") {
		return 0, nil, errf("Invalid message number")
	}
	if n > len(s.drop.msgs) {
		return 0, nil, errf("No such message")
	}
	m := s.drop.msgs[n-1]
	if m.deleted {
		return 0, nil, errf("Message %d already deleted", n)
	}
	return n, m, nil
}

// wireSize returns a message's wire size, reading it once per pod (the
// per-gateway cache) and once per session.
func (s *session) wireSize(ctx context.Context, m *message) (int64, error) {
	if m.wire >= 0 {
		return m.wire, nil
	}
	if n, ok := s.gw.sizes.get(s.drop.acct, m.blob); ok {
		m.wire = n
		return n, nil
	}
	rc, err := s.gw.deps.Blobs.Get(ctx, s.drop.acct, m.blob, blob.Whole)
	if err != nil {
		return 0, fmt.Errorf("read message %d: %w", m.uid, err)
	}
	defer rc.Close()
	n, err := writeWire(io.Discard, rc, -1)
	if err != nil {
		return 0, fmt.Errorf("size message %d: %w", m.uid, err)
	}
	m.wire = n
	s.gw.sizes.put(s.drop.acct, m.blob, n)
	return n, nil
}

// sizeAll fills in the wire size of every message not marked deleted, a
// few at a time. A message whose blob is gone (expunged and swept since
// the snapshot) counts 0: RETR of it answers -ERR anyway.
func (s *session) sizeAll(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, m := range s.drop.msgs {
		if m.deleted || m.wire >= 0 {
			continue
		}
		g.Go(func() error {
			_, err := s.wireSize(gctx, m)
			if errors.Is(err, blob.ErrNotFound) {
				m.wire = 0
				return nil
			}
			return err
		})
	}
	return g.Wait()
}

func cmdStat(s *session, ctx context.Context, args string) error {
	if args != "" {
		return errf("STAT takes no arguments")
	}
	if err := s.sizeAll(ctx); err != nil {
		return err
	}
	var count, octets int64
	for _, m := range s.drop.msgs {
		if !m.deleted {
			count++
			octets += m.wire
		}
	}
	s.reply(fmt.Sprintf("+OK %d %d", count, octets))
	return nil
}

func cmdList(s *session, ctx context.Context, args string) error {
	if args != "" {
		n, m, err := s.msgArg(args)
		if err != nil {
			return err
		}
		size, err := s.wireSize(ctx, m)
		if errors.Is(err, blob.ErrNotFound) {
			return errGone
		}
		if err != nil {
			return err
		}
		s.reply(fmt.Sprintf("+OK %d %d", n, size))
		return nil
	}
	if err := s.sizeAll(ctx); err != nil {
		return err
	}
	var count, octets int64
	for _, m := range s.drop.msgs {
		if !m.deleted {
			count++
			octets += m.wire
		}
	}
	s.reply(fmt.Sprintf("+OK %d messages (%d octets)", count, octets))
	for i, m := range s.drop.msgs {
		if !m.deleted {
			s.reply(fmt.Sprintf("%d %d", i+1, m.wire))
		}
	}
	s.reply(".")
	return nil
}

func cmdUIDL(s *session, _ context.Context, args string) error {
	if args != "" {
		n, m, err := s.msgArg(args)
		if err != nil {
			return err
		}
		s.reply(fmt.Sprintf("+OK %d %s", n, s.drop.uidl(m)))
		return nil
	}
	s.reply("+OK Unique-id listing follows")
	for i, m := range s.drop.msgs {
		if !m.deleted {
			s.reply(fmt.Sprintf("%d %s", i+1, s.drop.uidl(m)))
		}
	}
	s.reply(".")
	return nil
}

func cmdRetr(s *session, ctx context.Context, args string) error {
	_, m, err := s.msgArg(args)
	if err != nil {
		return err
	}
	return s.send(ctx, m, -1)
}

func cmdTop(s *session, ctx context.Context, args string) error {
	num, lines, ok := strings.Cut(args, " ")
	if !ok {
		return errf("TOP needs a message number and a line count")
	}
	_, m, err := s.msgArg(num)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(lines)
	if err != nil || n < 0 || strings.HasPrefix(lines, "+") {
		return errf("Invalid line count")
	}
	return s.send(ctx, m, n)
}

// send answers RETR (bodyLines < 0) or TOP. The message must still be in
// INBOX: one expunged by another session since the snapshot answers -ERR,
// even while its blob awaits the sweeper.
func (s *session) send(ctx context.Context, m *message, bodyLines int) error {
	d := s.drop
	entries, err := s.gw.deps.Meta.ListEntries(ctx, d.acct, d.mbox, mail.NewUIDSet(m.uid), 0, 0)
	if err != nil {
		return fmt.Errorf("check message %d: %w", m.uid, err)
	}
	if len(entries) == 0 {
		return errGone
	}
	// Open the body before answering +OK, so that a missing blob is a
	// clean -ERR. The stream runs under the session's context: its length
	// is bounded by the write deadline, not the command timeout.
	rc, err := s.gw.deps.Blobs.Get(s.ctx, d.acct, m.blob, blob.Whole)
	if errors.Is(err, blob.ErrNotFound) {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("read message %d: %w", m.uid, err)
	}
	defer rc.Close()
	switch {
	case bodyLines >= 0:
		s.reply("+OK Top of message follows")
	case m.wire >= 0:
		s.reply(fmt.Sprintf("+OK %d octets", m.wire))
	default:
		s.reply("+OK Message follows")
	}
	n, err := writeWire(s.bw, rc, bodyLines)
	var re *readError
	switch {
	case errors.As(err, &re):
		// Part of the message is on the wire: the only safe end is to
		// drop the connection (the client sees no terminating ".").
		s.logger.Error("read message", "uid", m.uid, "err", err)
		return errConnLost
	case err != nil:
		return errConnLost
	}
	if bodyLines < 0 {
		m.retrieved = true
		if m.wire < 0 {
			m.wire = n
			s.gw.sizes.put(d.acct, m.blob, n)
		}
	}
	s.reply(".")
	return nil
}

func cmdDele(s *session, _ context.Context, args string) error {
	n, m, err := s.msgArg(args)
	if err != nil {
		return err
	}
	m.deleted = true
	s.reply(fmt.Sprintf("+OK Message %d deleted", n))
	return nil
}

func cmdRset(s *session, _ context.Context, args string) error {
	if args != "" {
		return errf("RSET takes no arguments")
	}
	for _, m := range s.drop.msgs {
		m.deleted = false
	}
	s.reply(fmt.Sprintf("+OK Maildrop has %d messages", len(s.drop.msgs)))
	return nil
}

func cmdNoop(s *session, _ context.Context, args string) error {
	if args != "" {
		return errf("NOOP takes no arguments")
	}
	s.reply("+OK")
	return nil
}

// cmdQuit ends the session; in TRANSACTION it enters UPDATE, done only
// while the lease is still ours: messages sent by RETR become \Seen, and
// the DELE marks are applied by the account's policy (see update). A
// session that ends any other way changes nothing.
func cmdQuit(s *session, ctx context.Context, args string) error {
	if args != "" {
		return errf("QUIT takes no arguments")
	}
	s.state = stateDone
	if s.drop == nil {
		s.reply("+OK mailstore POP3 signing off")
		return nil
	}
	var deleted, retrieved, touched mail.UIDSet
	for _, m := range s.drop.msgs {
		switch {
		case m.deleted:
			deleted = deleted.Add(m.uid)
		case m.retrieved:
			retrieved = retrieved.Add(m.uid)
		default:
			continue
		}
		touched = touched.Add(m.uid)
	}
	if touched.Empty() {
		s.reply("+OK mailstore POP3 signing off")
		return nil
	}
	if err := s.checkLease(ctx); err != nil {
		if errors.Is(err, meta.ErrLeaseLost) {
			s.reply("-ERR [IN-USE] Maildrop lock lost; no messages deleted")
			return nil
		}
		s.logger.Warn("update maildrop", "err", err)
		s.reply("-ERR [SYS/TEMP] Some deleted messages not removed")
		return nil
	}
	n, err := s.update(ctx, deleted, retrieved, touched)
	if err != nil {
		s.logger.Warn("update maildrop", "err", err)
		s.reply("-ERR [SYS/TEMP] Some deleted messages not removed")
		return nil
	}
	s.reply(fmt.Sprintf("+OK mailstore POP3 signing off (%d messages deleted)", n))
	return nil
}

// update applies the session's changes by the account's policy
// (touched is deleted and retrieved together):
//   - delete (RFC 1939): the deleted messages are expunged, as one
//     Expunge that IMAP sessions see like any other;
//   - forever: they get DeletedKeyword, which hides them from POP3;
//   - days: they get it too, and with the retrieved ones their first
//     retrieval is recorded, from which the metadata service's reaper
//     counts the days before it expunges them.
//
// Retrieved messages become \Seen, as in other servers, so an IMAP client
// of the same account sees what was downloaded. It returns how many
// messages left the maildrop.
func (s *session) update(ctx context.Context, deleted, retrieved, touched mail.UIDSet) (int, error) {
	d, m := s.drop, s.gw.deps.Meta
	gone := 0
	switch s.policy.Mode {
	case meta.POP3KeepDays:
		if err := m.MarkRetrieved(ctx, d.acct, d.mbox, touched, time.Now()); err != nil {
			return 0, fmt.Errorf("record retrieval: %w", err)
		}
		fallthrough
	case meta.POP3KeepForever:
		if !deleted.Empty() {
			if _, err := m.StoreFlags(ctx, d.acct, d.mbox, meta.FlagChange{
				UIDs: deleted, Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen, DeletedKeyword},
			}); err != nil {
				return 0, fmt.Errorf("hide deleted messages: %w", err)
			}
			gone = deleted.Count()
		}
	default:
		if !deleted.Empty() {
			uids, _, err := m.Expunge(ctx, d.acct, d.mbox, deleted)
			if err != nil {
				return 0, fmt.Errorf("expunge deleted messages: %w", err)
			}
			gone = len(uids)
		}
	}
	if !retrieved.Empty() {
		if _, err := m.StoreFlags(ctx, d.acct, d.mbox, meta.FlagChange{
			UIDs: retrieved, Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen},
		}); err != nil {
			return gone, fmt.Errorf("mark retrieved messages seen: %w", err)
		}
	}
	return gone, nil
}
