package imapgw

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func init() {
	register("STORE", handler{fn: cmdStore, states: selectedSt, uid: true, updates: true, seqSensitive: true})
	register("COPY", handler{fn: cmdCopy, states: selectedSt, uid: true, updates: true})
	register("MOVE", handler{fn: cmdCopy, states: selectedSt, uid: true, updates: true})
	register("EXPUNGE", handler{fn: cmdExpunge, states: selectedSt, uid: true, updates: true})
	registerCap("UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC")
}

// readSet reads a sequence set (or, for UID commands, a UID set) and
// returns the UIDs it names in the view. "$" is the saved search result
// (RFC 5182). Sequence numbers out of range are an error (BAD); UIDs that
// do not exist are simply not there.
func (s *session) readSet(cmd *command) (mail.UIDSet, error) {
	w, err := s.dec.Word()
	if err != nil {
		return nil, err
	}
	return s.parseSet(w, cmd.uid)
}

func (s *session) parseSet(w string, uid bool) (mail.UIDSet, error) {
	if w == "$" {
		return s.saved, nil
	}
	set, err := mail.ParseUIDSet(w)
	if err != nil {
		return nil, bad("Invalid sequence set")
	}
	if uid {
		return s.sel.resolveUIDSet(set), nil
	}
	uids, ok := s.sel.seqSetToUIDs(set)
	if !ok {
		return nil, bad("Invalid sequence number")
	}
	return uids, nil
}

// formatSet writes UIDs as UIDs, or as sequence numbers for a non-UID
// command.
func (s *session) formatSet(uids mail.UIDSet, asUID bool) string {
	if asUID {
		return uids.String()
	}
	var seqs mail.UIDSet
	for _, r := range uids {
		for _, u := range s.sel.uidsIn(r) {
			seqs = seqs.Add(mail.UID(s.sel.seqOf(u)))
		}
	}
	return seqs.String()
}

// readFlagList reads "(flag ...)" or "flag flag ..." up to the end.
func (s *session) readFlagList() ([]mail.Flag, error) {
	var flags []mail.Flag
	add := func() error {
		f, err := s.dec.Flag()
		if err != nil {
			return err
		}
		cf, err := mail.CanonicalFlag(f)
		if err != nil {
			if strings.EqualFold(f, `\Recent`) {
				return nil // not settable; ignored as other servers do
			}
			return bad("Invalid flag " + f)
		}
		if !slices.Contains(flags, cf) {
			flags = append(flags, cf)
		}
		return nil
	}
	if s.dec.PeekIs('(') {
		return flags, s.dec.List(add)
	}
	for {
		if err := add(); err != nil {
			return nil, err
		}
		if !s.dec.PeekIs(' ') {
			return flags, nil
		}
		_ = s.dec.SP()
	}
}

// cmdStore: RFC 9051 6.4.6 with CONDSTORE UNCHANGEDSINCE (RFC 7162).
func cmdStore(s *session, ctx context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	uids, err := s.readSet(cmd)
	if err != nil {
		return err
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	var unchangedSince mail.ModSeq
	conditional := false
	if s.dec.PeekIs('(') {
		err := s.dec.List(func() error {
			m, err := s.dec.Atom()
			if err != nil {
				return err
			}
			if !strings.EqualFold(m, "UNCHANGEDSINCE") {
				return bad("Unknown STORE modifier")
			}
			if err := s.dec.SP(); err != nil {
				return err
			}
			n, err := s.dec.Number64()
			unchangedSince, conditional = mail.ModSeq(n), true
			return err
		})
		if err != nil {
			return err
		}
		if err := s.dec.SP(); err != nil {
			return err
		}
		s.condstore = true
	}
	item, err := s.dec.Atom()
	if err != nil {
		return err
	}
	item = strings.ToUpper(item)
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")
	var op meta.FlagOp
	switch item {
	case "FLAGS":
		op = meta.FlagsReplace
	case "+FLAGS":
		op = meta.FlagsAdd
	case "-FLAGS":
		op = meta.FlagsRemove
	default:
		return bad("Unknown STORE item")
	}
	if err := s.dec.SP(); err != nil {
		return err
	}
	flags, err := s.readFlagList()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	v := s.sel
	if v.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	if uids.Empty() {
		return nil
	}
	if conditional && unchangedSince == 0 {
		// Every message has a MODSEQ above 0, so UNCHANGEDSINCE 0 fails
		// for all of them (RFC 7162 3.1.3).
		return okCode("MODIFIED "+s.formatSet(uids, cmd.uid), "Conditional STORE failed")
	}
	change := meta.FlagChange{UIDs: uids, Op: op, Flags: flags, UnchangedSince: unchangedSince}
	res, err := s.gw.deps.Meta.StoreFlags(ctx, s.acct.ID, v.mbox.ID, change)
	if err != nil {
		return err
	}
	updated := map[mail.UID]meta.Entry{}
	for _, e := range res.Updated {
		updated[e.UID] = e
		v.reported[e.UID] = e.ModSeq
	}
	s.watch.signal()
	if !silent || conditional {
		// Every message the STORE named gets its flags, changed or not
		// (RFC 9051 6.4.6); the unchanged ones as the store read them in
		// the same step, so the answer is the state the STORE acted on.
		if !silent {
			for _, e := range res.Unchanged {
				updated[e.UID] = e
			}
		}
		keys := make([]mail.UID, 0, len(updated))
		for u := range updated {
			keys = append(keys, u)
		}
		slices.Sort(keys)
		for _, u := range keys {
			if seq := v.seqOf(u); seq > 0 {
				s.writeFlagsFetch(seq, updated[u], cmd.uid)
			}
		}
	}
	if !res.Modified.Empty() {
		return okCode("MODIFIED "+s.formatSet(res.Modified, cmd.uid), "Conditional STORE failed")
	}
	return nil
}

// cmdCopy: COPY (RFC 9051 6.4.7) and MOVE (RFC 6851), with COPYUID
// (RFC 4315).
func cmdCopy(s *session, ctx context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	uids, err := s.readSet(cmd)
	if err != nil {
		return err
	}
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
	v := s.sel
	dst, err := s.gw.deps.Meta.Mailbox(ctx, s.acct.ID, name)
	if errors.Is(err, meta.ErrNoSuchMailbox) {
		return no("TRYCREATE", "No such mailbox")
	}
	if err != nil {
		return err
	}
	if cmd.name == "MOVE" && v.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	if uids.Empty() {
		if cmd.uid {
			return nil
		}
		return no("", "No messages")
	}
	var res meta.Copied
	if cmd.name == "MOVE" {
		res, err = s.gw.deps.Meta.Move(ctx, s.acct.ID, v.mbox.ID, uids, dst.ID)
	} else {
		res, err = s.gw.deps.Meta.Copy(ctx, s.acct.ID, v.mbox.ID, uids, dst.ID)
	}
	if err != nil {
		return err
	}
	s.watch.signal()
	code := ""
	if len(res.Source) > 0 {
		code = "COPYUID " + strconv.FormatUint(uint64(res.UIDValidity), 10) + " " +
			mail.NewUIDSet(res.Source...).String() + " " + uidList(res.Dest)
	}
	if cmd.name == "MOVE" {
		if code != "" {
			s.enc.Raw("* OK [").Raw(code).Raw("] Moved").CRLF()
		}
		for _, u := range res.Source {
			v.pendingExpunge[u] = true
		}
		s.writeUpdates(true)
		return nil
	}
	if code == "" {
		return nil
	}
	return okCode(code, "COPY completed")
}

// uidList formats destination UIDs in the order of the source UIDs,
// compressing runs (COPYUID keeps the pairing by order).
func uidList(uids []mail.UID) string {
	var b strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}

// cmdExpunge: EXPUNGE and UID EXPUNGE (RFC 4315).
func cmdExpunge(s *session, ctx context.Context, cmd *command) error {
	var only mail.UIDSet
	if cmd.uid {
		if err := s.dec.SP(); err != nil {
			return err
		}
		set, err := s.readSet(cmd)
		if err != nil {
			return err
		}
		if set.Empty() {
			return s.endCommand()
		}
		only = set
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	v := s.sel
	if v.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	gone, err := s.expungeDeleted(ctx, only)
	if err != nil {
		return err
	}
	for _, u := range gone {
		if v.seqOf(u) > 0 {
			v.pendingExpunge[u] = true
		}
	}
	s.watch.signal()
	s.writeUpdates(true)
	return nil
}
