package imapgw

import (
	"context"
	"errors"
	"slices"
	"sort"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// view is a session's picture of its selected mailbox: the
// sequence-number map, and the changes it has learned of but not yet
// announced. Sequence numbers never leave the gateway.
//
// Invariants: uids is strictly increasing; it still holds UIDs that were
// expunged by others but not yet announced (pendingExpunge), because the
// client's sequence numbers must not shift until EXPUNGE is sent; modseq is
// the highest MODSEQ whose changes have been read (not necessarily sent).
type view struct {
	mbox     meta.Mailbox
	readOnly bool
	uids     []mail.UID
	modseq   mail.ModSeq
	// exists is the message count the client was last told.
	exists int
	// pendingExpunge: UIDs gone from the store, still in uids.
	pendingExpunge map[mail.UID]bool
	// withheldBelow, while pendingExpunge is not empty, is a MODSEQ below
	// every withheld expunge's: the highest a QRESYNC client may
	// resynchronise from, sent as HIGHESTMODSEQ after FETCHes whose MODSEQ
	// is above the expunges' (RFC 7162 3.2).
	withheldBelow mail.ModSeq
	// pendingFlags: UIDs whose flags changed, to announce with FETCH.
	pendingFlags map[mail.UID]meta.Entry
	// reported: flag changes this session announced itself (in a STORE
	// answer), so the catch-up does not repeat them.
	reported map[mail.UID]mail.ModSeq
	// recent: the UIDs that are \Recent in this session (IMAP4rev1, RFC
	// 3501 2.3.2). They were claimed from the store (Meta.ClaimRecent), so
	// no other session on any pod has them. claimed is the UID up to which
	// this view has claimed; a read-only view never claims.
	recent  map[mail.UID]bool
	claimed mail.UID
}

func newView(m meta.Mailbox, readOnly bool, entries []meta.Entry) *view {
	v := &view{
		mbox: m, readOnly: readOnly, modseq: m.HighestModSeq,
		pendingExpunge: map[mail.UID]bool{}, pendingFlags: map[mail.UID]meta.Entry{}, reported: map[mail.UID]mail.ModSeq{},
		recent: map[mail.UID]bool{},
	}
	v.uids = make([]mail.UID, len(entries))
	for i, e := range entries {
		v.uids[i] = e.UID
	}
	v.exists = len(v.uids)
	return v
}

// seqOf returns the sequence number of uid, or 0.
func (v *view) seqOf(uid mail.UID) int {
	i, ok := slices.BinarySearch(v.uids, uid)
	if !ok {
		return 0
	}
	return i + 1
}

// maxUID is the largest UID the view holds, 0 if empty.
func (v *view) maxUID() mail.UID {
	if len(v.uids) == 0 {
		return 0
	}
	return v.uids[len(v.uids)-1]
}

// seqSetToUIDs resolves a sequence set (as mail.UIDSet of sequence
// numbers, with MaxUID for "*") to UIDs. ok is false when a number is
// out of range (the caller answers BAD).
func (v *view) seqSetToUIDs(set mail.UIDSet) (mail.UIDSet, bool) {
	n := uint32(len(v.uids))
	var out mail.UIDSet
	for _, r := range set {
		start, stop := uint32(r.Start), uint32(r.Stop)
		if stop == uint32(mail.MaxUID) {
			stop = n
		}
		if start == uint32(mail.MaxUID) {
			start = n
		}
		if start > stop {
			start, stop = stop, start
		}
		if n == 0 || start == 0 || stop > n {
			return nil, false
		}
		for seq := start; seq <= stop; seq++ {
			out = out.Add(v.uids[seq-1])
		}
	}
	return out, true
}

// resolveUIDSet turns a client's UID set into one within the view: "*"
// means the largest UID (RFC 9051: "*" is the largest UID in use, and a
// range n:* includes it even when n is greater).
func (v *view) resolveUIDSet(set mail.UIDSet) mail.UIDSet {
	max := v.maxUID()
	var out mail.UIDSet
	for _, r := range set {
		start, stop := r.Start, r.Stop
		if start == mail.MaxUID {
			start = max
		}
		if stop == mail.MaxUID {
			stop = max
		}
		out = out.AddRange(start, stop)
	}
	return out
}

// apply folds a change set read from the store into the view.
func (v *view) apply(cs meta.ChangeSet) {
	max := v.maxUID()
	for _, e := range cs.Changed {
		switch {
		case e.UID > max:
			v.uids = append(v.uids, e.UID)
			max = e.UID
		case v.seqOf(e.UID) > 0:
			if v.reported[e.UID] == e.ModSeq {
				continue
			}
			v.pendingFlags[e.UID] = e
		}
	}
	var silent []mail.UID
	before := v.modseq
	for _, r := range cs.Vanished {
		for _, u := range v.uidsIn(r) {
			delete(v.pendingFlags, u)
			if v.seqOf(u) > v.exists {
				// Never announced: it leaves without an EXPUNGE.
				silent = append(silent, u)
				continue
			}
			if len(v.pendingExpunge) == 0 {
				// The change set holds changes above the view's MODSEQ
				// only: the expunge's is above it.
				v.withheldBelow = before
			}
			v.pendingExpunge[u] = true
		}
	}
	if len(silent) > 0 {
		v.uids = slices.DeleteFunc(v.uids, func(u mail.UID) bool { return slices.Contains(silent, u) })
		for _, u := range silent {
			delete(v.recent, u)
		}
	}
	if cs.HighestModSeq > v.modseq {
		v.modseq = cs.HighestModSeq
	}
	clear(v.reported)
}

// uidsIn returns the view's UIDs within r.
func (v *view) uidsIn(r mail.UIDRange) []mail.UID {
	lo := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= r.Start })
	hi := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] > r.Stop })
	return v.uids[lo:hi]
}

// resync replaces a change set the log could not give (trimmed) by a
// comparison of UID lists.
func (v *view) resync(entries []meta.Entry, highest mail.ModSeq) {
	have := make(map[mail.UID]bool, len(entries))
	cs := meta.ChangeSet{HighestModSeq: highest}
	for _, e := range entries {
		have[e.UID] = true
		if e.ModSeq > v.modseq || e.UID > v.maxUID() {
			cs.Changed = append(cs.Changed, e)
		}
	}
	for _, u := range v.uids {
		if !have[u] {
			cs.Vanished = cs.Vanished.Add(u)
		}
	}
	v.apply(cs)
}

// removeExpunged drops announced expunges from the map and returns their
// sequence numbers, highest first is not required: they are returned in
// the order EXPUNGE responses must be sent (each number valid after the
// previous removal).
func (v *view) removeExpunged() (seqs []int, uids mail.UIDSet) {
	if len(v.pendingExpunge) == 0 {
		return nil, nil
	}
	kept := v.uids[:0]
	removed := 0
	for i, u := range v.uids {
		if v.pendingExpunge[u] {
			// Sequence number after the earlier removals.
			seqs = append(seqs, i+1-removed)
			removed++
			uids = uids.Add(u)
			delete(v.recent, u)
			continue
		}
		kept = append(kept, u)
	}
	v.uids = kept
	clear(v.pendingExpunge)
	v.exists -= removed
	return seqs, uids
}

// catchUp reads what changed since the view's MODSEQ.
func (s *session) catchUp(ctx context.Context) error {
	v := s.sel
	cs, err := s.gw.deps.Meta.ChangesSince(ctx, s.acct.ID, v.mbox.ID, v.modseq)
	if err != nil {
		return err
	}
	if cs.Trimmed {
		entries, err := s.gw.deps.Meta.ListEntries(ctx, s.acct.ID, v.mbox.ID, mail.AllUIDs(), meta.FieldFlags, 0)
		if err != nil {
			return err
		}
		v.resync(entries, cs.HighestModSeq)
	} else {
		v.apply(cs)
	}
	// New messages are \Recent here if this session is the first to claim
	// them. A failed claim is retried at the next catch-up: claimed has not
	// moved.
	return s.claimRecent(ctx, v)
}

// claimRecent claims \Recent for the view's UIDs above what it claimed
// before. Only IMAP4rev1 sessions with a read-write view claim: IMAP4rev2
// has no \Recent, and EXAMINE must not change it (RFC 3501 6.3.2).
func (s *session) claimRecent(ctx context.Context, v *view) error {
	top := v.maxUID()
	if s.rev2 || v.readOnly || top <= v.claimed {
		return nil
	}
	prev, err := s.gw.deps.Meta.ClaimRecent(ctx, s.acct.ID, v.mbox.ID, top)
	if err != nil {
		return err
	}
	if prev < top {
		for _, u := range v.uidsIn(mail.UIDRange{Start: prev + 1, Stop: top}) {
			v.recent[u] = true
		}
	}
	v.claimed = top
	return nil
}

// isRecent reports whether uid is \Recent in this session.
func (s *session) isRecent(uid mail.UID) bool {
	return !s.rev2 && s.sel != nil && s.sel.recent[uid]
}

// sendUpdates reads pending changes when the hub signalled some, and
// writes them: EXPUNGE (or VANISHED) when allowed, EXISTS, and FETCH
// FLAGS. Errors reading changes are logged and retried at the next point.
func (s *session) sendUpdates(ctx context.Context, allowExpunge bool) {
	v := s.sel
	if v == nil {
		return
	}
	select {
	case <-s.watch.C:
		err := s.catchUp(ctx)
		switch {
		case errors.Is(err, meta.ErrNoSuchMailbox):
			// Another session deleted (or renamed INBOX away from) the
			// mailbox under us: there is no view to keep.
			s.enc.Raw("* BYE Selected mailbox was deleted").CRLF()
			s.state = stateLogout
			s.sel = nil
			return
		case err != nil:
			s.logger.Warn("catch up with mailbox changes", "err", err)
			s.watch.signal() // try again at the next point
		}
	default:
	}
	s.writeUpdates(allowExpunge)
}

// writeUpdates writes what the view has learned and not yet announced.
func (s *session) writeUpdates(allowExpunge bool) {
	v := s.sel
	if allowExpunge {
		seqs, uids := v.removeExpunged()
		if s.qresync && len(uids) > 0 {
			s.enc.Raw("* VANISHED ").Raw(uids.String()).CRLF()
		} else {
			for _, seq := range seqs {
				s.enc.Raw("* ").Number(uint64(seq)).Raw(" EXPUNGE").CRLF()
			}
		}
	}
	if len(v.uids) > v.exists {
		v.exists = len(v.uids)
		s.enc.Raw("* ").Number(uint64(v.exists)).Raw(" EXISTS").CRLF()
		if !s.rev2 {
			s.enc.Raw("* ").Number(uint64(len(v.recent))).Raw(" RECENT").CRLF()
		}
	}
	if len(v.pendingFlags) > 0 {
		uids := make([]mail.UID, 0, len(v.pendingFlags))
		for u := range v.pendingFlags {
			uids = append(uids, u)
		}
		slices.Sort(uids)
		for _, u := range uids {
			e := v.pendingFlags[u]
			seq := v.seqOf(u)
			if seq == 0 || v.pendingExpunge[u] {
				continue
			}
			s.writeFlagsFetch(seq, e, true)
		}
		clear(v.pendingFlags)
	}
}

// writeFlagsFetch writes "* seq FETCH (FLAGS (...) UID n [MODSEQ (m)])".
func (s *session) writeFlagsFetch(seq int, e meta.Entry, withUID bool) {
	s.enc.Raw("* ").Number(uint64(seq)).Raw(" FETCH (FLAGS ")
	s.writeEntryFlags(e)
	if withUID {
		s.enc.Raw(" UID ").Number(uint64(e.UID))
	}
	if s.condstore {
		s.enc.Raw(" MODSEQ (").Number(uint64(e.ModSeq)).Raw(")")
	}
	s.enc.Raw(")").CRLF()
}

// writeEntryFlags writes the flags of e, with \Recent if it is recent in
// this session (the store never holds \Recent).
func (s *session) writeEntryFlags(e meta.Entry) {
	if !s.isRecent(e.UID) {
		s.writeFlags(e.Flags)
		return
	}
	s.writeFlags(append(slices.Clip(e.Flags), mail.FlagRecent))
}

// writeFlags writes a parenthesized flag list.
func (s *session) writeFlags(flags []mail.Flag) {
	s.enc.Open()
	for i, f := range flags {
		if i > 0 {
			s.enc.SP()
		}
		s.enc.Atom(string(f))
	}
	s.enc.Close()
}
