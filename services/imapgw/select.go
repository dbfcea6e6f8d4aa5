package imapgw

import (
	"context"
	"errors"
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func init() {
	register("SELECT", handler{fn: cmdSelect, states: authed})
	register("EXAMINE", handler{fn: cmdSelect, states: authed})
	register("CLOSE", handler{fn: cmdClose, states: selectedSt})
	register("UNSELECT", handler{fn: cmdUnselect, states: selectedSt})
}

// qresyncParams are the QRESYNC select parameters (RFC 7162 3.2.5).
type qresyncParams struct {
	uidValidity uint32
	modseq      mail.ModSeq
	known       mail.UIDSet // nil: all
}

func cmdSelect(s *session, ctx context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	raw, err := s.dec.AString()
	if err != nil {
		return err
	}
	var qr *qresyncParams
	condstore := false
	if s.dec.PeekIs(' ') {
		_ = s.dec.SP()
		err := s.dec.List(func() error {
			p, err := s.dec.Atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(p) {
			case "CONDSTORE":
				condstore = true
				return nil
			case "QRESYNC":
				if !s.qresync {
					return bad("QRESYNC is not enabled")
				}
				if err := s.dec.SP(); err != nil {
					return err
				}
				qr, err = s.readQresync()
				return err
			}
			return bad("Unknown SELECT parameter")
		})
		if err != nil {
			return err
		}
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	// A failed SELECT leaves no mailbox selected (RFC 9051 6.3.2).
	if s.sel != nil {
		s.unselect()
	}
	name, err := s.decodeName(raw)
	if err != nil {
		return err
	}
	m, err := s.gw.deps.Meta.Mailbox(ctx, s.acct.ID, name)
	if errors.Is(err, meta.ErrNoSuchMailbox) {
		return no("NONEXISTENT", "No such mailbox")
	}
	if err != nil {
		return err
	}
	entries, err := s.gw.deps.Meta.ListEntries(ctx, s.acct.ID, m.ID, mail.AllUIDs(), 0, 0)
	if err != nil {
		return err
	}
	if condstore && !s.condstore {
		s.condstore = true
	}
	readOnly := cmd.name == "EXAMINE"
	v := newView(m, readOnly, entries)
	if err := s.claimRecent(ctx, v); err != nil {
		return err
	}
	// Changes committed while we read are caught up at the first update
	// point: the entry list may be newer than m.HighestModSeq, never older,
	// and the events of changes made before the watch below began are not
	// delivered to this session, so it is woken once to look.
	s.sel = v
	s.state = stateSelected
	s.watch.watchMailbox(m.ID, false)
	s.watch.signal()

	e := s.enc
	e.Raw(`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`).CRLF()
	if readOnly {
		e.Raw(`* OK [PERMANENTFLAGS ()] Read-only mailbox`).CRLF()
	} else {
		e.Raw(`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted`).CRLF()
	}
	e.Raw("* ").Number(uint64(len(v.uids))).Raw(" EXISTS").CRLF()
	if !s.rev2 {
		e.Raw("* ").Number(uint64(len(v.recent))).Raw(" RECENT").CRLF()
	}
	e.Raw("* OK [UIDVALIDITY ").Number(uint64(m.UIDValidity)).Raw("] UIDs valid").CRLF()
	next := m.UIDNext
	if mu := v.maxUID(); mu >= next {
		next = mu + 1
	}
	e.Raw("* OK [UIDNEXT ").Number(uint64(next)).Raw("] Predicted next UID").CRLF()
	if s.condstore {
		e.Raw("* OK [HIGHESTMODSEQ ").Number(uint64(m.HighestModSeq)).Raw("] Highest").CRLF()
	}
	if hasCap("OBJECTID") {
		e.Raw("* OK [MAILBOXID (M").Raw(s.mailboxObjectID(m)).Raw(")] Ok").CRLF()
	}
	if qr != nil && qr.uidValidity == m.UIDValidity {
		if err := s.qresyncReport(ctx, qr); err != nil {
			return err
		}
	}
	if readOnly {
		return okCode("READ-ONLY", cmd.name+" completed")
	}
	return okCode("READ-WRITE", cmd.name+" completed")
}

// mailboxObjectID is the RFC 8474 MAILBOXID: stable for the mailbox's
// life, unique per account (a recreated mailbox gets a new id).
func (s *session) mailboxObjectID(m meta.Mailbox) string {
	return string(s.acct.ID) + "-" + uint64String(uint64(m.ID))
}

func uint64String(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// readQresync reads "(uidvalidity modseq [known-uids [seq-match]])".
func (s *session) readQresync() (*qresyncParams, error) {
	qr := &qresyncParams{}
	if err := s.dec.Expect('('); err != nil {
		return nil, err
	}
	uv, err := s.dec.Number()
	if err != nil {
		return nil, err
	}
	qr.uidValidity = uv
	if err := s.dec.SP(); err != nil {
		return nil, err
	}
	ms, err := s.dec.Number64()
	if err != nil {
		return nil, err
	}
	qr.modseq = mail.ModSeq(ms)
	if s.dec.PeekIs(' ') {
		_ = s.dec.SP()
		if !s.dec.PeekIs('(') {
			w, err := s.dec.Word()
			if err != nil {
				return nil, err
			}
			if qr.known, err = mail.ParseUIDSet(w); err != nil {
				return nil, bad("Invalid known-uids")
			}
		}
		if s.dec.PeekIs(' ') {
			_ = s.dec.SP()
		}
		if s.dec.PeekIs('(') {
			// The sequence match data only narrows what the server
			// reports; we report exactly from the change log, so it is
			// read and not needed.
			if err := s.dec.List(func() error { _, err := s.dec.Word(); return err }); err != nil {
				return nil, err
			}
		}
	}
	if err := s.dec.Expect(')'); err != nil {
		return nil, err
	}
	return qr, nil
}

// qresyncReport sends VANISHED (EARLIER) and the changed flags since the
// client's MODSEQ (RFC 7162 3.2.5.1).
func (s *session) qresyncReport(ctx context.Context, qr *qresyncParams) error {
	v := s.sel
	cs, err := s.gw.deps.Meta.ChangesSince(ctx, s.acct.ID, v.mbox.ID, qr.modseq)
	if err != nil {
		return err
	}
	vanished := cs.Vanished
	if cs.Trimmed {
		// The log no longer reaches back: every UID the client may know
		// that no longer exists is reported.
		known := qr.known
		if known == nil {
			known = mail.UIDSet{{Start: 1, Stop: max(v.maxUID(), v.mbox.UIDNext)}}
		}
		vanished = nil
		for _, r := range known {
			stop := r.Stop
			if stop == mail.MaxUID || stop >= v.mbox.UIDNext {
				stop = v.mbox.UIDNext - 1
			}
			for u := r.Start; u <= stop && u != 0; u++ {
				if v.seqOf(u) == 0 {
					vanished = vanished.Add(u)
				}
			}
		}
	}
	// The report names only UIDs the client may know (its known-uids)
	// and must agree with the view this SELECT announced: a UID the view
	// still holds was expunged after the view was read, and is announced
	// as VANISHED at the first update point, like any later change; so
	// are flag changes above the view's MODSEQ.
	var report mail.UIDSet
	for _, r := range vanished {
		for u := r.Start; ; u++ {
			if v.seqOf(u) == 0 && (qr.known == nil || qr.known.Contains(u)) {
				report = report.Add(u)
			}
			if u == r.Stop {
				break
			}
		}
	}
	vanished = report
	if len(vanished) > 0 {
		s.enc.Raw("* VANISHED (EARLIER) ").Raw(vanished.String()).CRLF()
	}
	for _, e := range cs.Changed {
		if seq := v.seqOf(e.UID); seq > 0 && e.ModSeq <= v.modseq {
			s.writeFlagsFetch(seq, e, true)
		}
	}
	return nil
}

// unselect leaves the selected state.
func (s *session) unselect() {
	s.sel = nil
	s.state = stateAuth
	s.watch.watchMailbox(0, false)
}

func cmdClose(s *session, ctx context.Context, _ *command) error {
	if err := s.endCommand(); err != nil {
		return err
	}
	v := s.sel
	if !v.readOnly {
		if _, err := s.expungeDeleted(ctx, nil); err != nil {
			return err
		}
	}
	s.unselect()
	return nil
}

func cmdUnselect(s *session, _ context.Context, _ *command) error {
	if err := s.endCommand(); err != nil {
		return err
	}
	s.unselect()
	return nil
}

// expungeDeleted removes the entries flagged \Deleted (within only, if
// not nil) and returns their UIDs.
func (s *session) expungeDeleted(ctx context.Context, only mail.UIDSet) ([]mail.UID, error) {
	v := s.sel
	set := mail.AllUIDs()
	if only != nil {
		set = only
	}
	entries, err := s.gw.deps.Meta.ListEntries(ctx, s.acct.ID, v.mbox.ID, set, meta.FieldFlags, 0)
	if err != nil {
		return nil, err
	}
	var del mail.UIDSet
	for _, e := range entries {
		for _, f := range e.Flags {
			if f == mail.FlagDeleted {
				del = del.Add(e.UID)
				break
			}
		}
	}
	if del.Empty() {
		return nil, nil
	}
	uids, _, err := s.gw.deps.Meta.Expunge(ctx, s.acct.ID, v.mbox.ID, del)
	return uids, err
}
