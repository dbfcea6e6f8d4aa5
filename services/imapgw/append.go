package imapgw

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

func init() {
	register("APPEND", handler{fn: cmdAppend, states: authed, updates: true})
}

// dateTimeLayout is IMAP's date-time ("17-Jul-1996 02:44:25 -0700"),
// with a space-padded day.
const dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

// cmdAppend: RFC 9051 6.3.12 with APPENDUID (RFC 4315), LITERAL+,
// BINARY literals (~{n}, RFC 3516) and the UTF8 (...) form of RFC 6855.
// The literal streams through the ingest path to the blob store; the
// answer comes only after the entry is committed.
func cmdAppend(s *session, ctx context.Context, _ *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	name, err := s.readName()
	if err != nil {
		return err
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	var flags []mail.Flag
	if s.dec.PeekIs('(') {
		if flags, err = s.readFlagList(); err != nil {
			return err
		}
		if err := s.dec.SP(); err != nil {
			return err
		}
	}
	var date time.Time
	if s.dec.PeekIs('"') {
		q, err := s.dec.Quoted()
		if err != nil {
			return err
		}
		if date, err = time.Parse(dateTimeLayout, q); err != nil {
			return bad("Invalid date-time")
		}
		if err := s.dec.SP(); err != nil {
			return err
		}
	}
	utf8Form := false
	if b, _ := s.dec.Peek(); b == 'U' || b == 'u' {
		a, err := s.dec.Atom()
		if err != nil || !strings.EqualFold(a, "UTF8") {
			return bad("Expected a literal")
		}
		if err := s.dec.SP(); err != nil {
			return err
		}
		if err := s.dec.Expect('('); err != nil {
			return err
		}
		utf8Form = true
	}
	lit, err := s.dec.LiteralHeader()
	if err != nil {
		return err
	}
	maxSize := s.gw.deps.Ingest.MaxMessageSize()
	if lit.Size > maxSize {
		return s.refuseLiteral(lit, no("TOOBIG", "Message larger than APPENDLIMIT"))
	}
	m, err := s.gw.deps.Meta.Mailbox(ctx, s.acct.ID, name)
	if errors.Is(err, meta.ErrNoSuchMailbox) {
		return s.refuseLiteral(lit, no("TRYCREATE", "No such mailbox"))
	}
	if err != nil {
		return s.refuseLiteral(lit, err)
	}
	if err := s.dec.StartLiteral(lit); err != nil {
		return err
	}
	// The literal must be read to its end whatever happens, or the
	// client's next bytes would be taken for a command.
	body := &countingReader{r: s.dec.LiteralReader(lit.Size)}
	res, ierr := s.gw.deps.Ingest.Ingest(ctx, ingest.Request{
		Target:       ingest.Target{Account: s.acct.ID, Mailbox: m.ID, MailboxName: m.Name, Flags: flags},
		InternalDate: date,
		Size:         lit.Size,
		Body:         body,
	})
	if body.n < lit.Size {
		if _, err := io.CopyN(io.Discard, body, lit.Size-body.n); err != nil {
			return err
		}
	}
	if body.err != nil && !errors.Is(body.err, io.EOF) {
		return body.err // the client went away mid-literal
	}
	if utf8Form {
		if err := s.dec.Expect(')'); err != nil {
			return err
		}
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if ierr != nil {
		return ierr
	}
	if s.sel != nil && s.sel.mbox.ID == m.ID {
		s.watch.signal()
	}
	return okCode("APPENDUID "+strconv.FormatUint(uint64(res.Appended.UIDValidity), 10)+" "+
		strconv.FormatUint(uint64(res.Appended.UID), 10), "APPEND completed")
}

// refuseLiteral answers a command whose literal is not wanted: a
// synchronizing literal was never sent, so the answer is enough; a
// non-synchronizing one follows anyway and is read and dropped (within
// reason: past that the connection is closed).
func (s *session) refuseLiteral(lit wire.Literal, answer error) error {
	if lit.NonSync {
		if lit.Size > 2*s.gw.deps.Ingest.MaxMessageSize() {
			return &statusError{text: "Literal too large", closeConn: true}
		}
		if err := s.dec.DiscardLiteral(lit.Size); err != nil {
			return err
		}
		if err := s.dec.SkipLine(); err != nil {
			return err
		}
	}
	return answer
}

// countingReader counts what was read and keeps the first error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}
