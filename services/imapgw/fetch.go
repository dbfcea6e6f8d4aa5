package imapgw

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/imapbody"
)

func init() {
	register("FETCH", handler{fn: cmdFetch, states: selectedSt, uid: true, updates: true, seqSensitive: true})
	registerCap("BINARY", "OBJECTID")
}

// fetchItems is what one FETCH asks for.
type fetchItems struct {
	flags, internalDate, size, envelope, body, bodyStructure bool
	uid, modseq, emailID, threadID                           bool
	sections                                                 []imapbody.FetchAtt
	// setSeen: a section fetch without PEEK sets \Seen.
	setSeen bool
}

func (f *fetchItems) fields() meta.Fields {
	var fl meta.Fields
	if f.flags || f.setSeen {
		fl |= meta.FieldFlags
	}
	if f.internalDate || f.size || f.emailID || len(f.sections) > 0 {
		fl |= meta.FieldInfo
	}
	if f.envelope || f.body || f.bodyStructure || len(f.sections) > 0 {
		fl |= meta.FieldStructure | meta.FieldInfo
	}
	return fl
}

func (f *fetchItems) add(word string) error {
	switch strings.ToUpper(word) {
	case "ALL":
		f.flags, f.internalDate, f.size, f.envelope = true, true, true, true
	case "FAST":
		f.flags, f.internalDate, f.size = true, true, true
	case "FULL":
		f.flags, f.internalDate, f.size, f.envelope, f.body = true, true, true, true, true
	case "FLAGS":
		f.flags = true
	case "INTERNALDATE":
		f.internalDate = true
	case "RFC822.SIZE":
		f.size = true
	case "ENVELOPE":
		f.envelope = true
	case "BODY":
		f.body = true
	case "BODYSTRUCTURE":
		f.bodyStructure = true
	case "UID":
		f.uid = true
	case "MODSEQ":
		f.modseq = true
	case "EMAILID":
		f.emailID = true
	case "THREADID":
		f.threadID = true
	default:
		att, err := imapbody.ParseFetchAtt(word)
		if err != nil {
			return bad("Unknown FETCH item " + word)
		}
		f.sections = append(f.sections, att)
		if !att.Peek {
			f.setSeen = true
		}
	}
	return nil
}

// cmdFetch: RFC 9051 6.4.5, with BINARY (RFC 3516), CONDSTORE
// CHANGEDSINCE and MODSEQ (RFC 7162), QRESYNC VANISHED, OBJECTID (RFC
// 8474). FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE and BODYSTRUCTURE come
// from the index; sections are ranged reads of the blob.
func cmdFetch(s *session, ctx context.Context, cmd *command) error {
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
	var items fetchItems
	err = s.dec.ListOrOne(func() error {
		w, err := s.dec.Word()
		if err != nil {
			return err
		}
		return items.add(w)
	})
	if err != nil {
		return err
	}
	var changedSince mail.ModSeq
	vanished := false
	if s.dec.PeekIs(' ') {
		_ = s.dec.SP()
		err := s.dec.List(func() error {
			m, err := s.dec.Atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(m) {
			case "CHANGEDSINCE":
				if err := s.dec.SP(); err != nil {
					return err
				}
				n, err := s.dec.Number64()
				changedSince = mail.ModSeq(n)
				return err
			case "VANISHED":
				vanished = true
				return nil
			}
			return bad("Unknown FETCH modifier")
		})
		if err != nil {
			return err
		}
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if vanished && (!cmd.uid || !s.qresync || changedSince == 0) {
		return bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE")
	}
	if changedSince > 0 {
		s.condstore = true
		items.modseq = true
	}
	if s.condstore && items.flags {
		items.modseq = true
	}
	if cmd.uid {
		items.uid = true
	}
	v := s.sel
	if uids.Empty() {
		return nil
	}
	if vanished {
		cs, err := s.gw.deps.Meta.ChangesSince(ctx, s.acct.ID, v.mbox.ID, changedSince)
		if err != nil {
			return err
		}
		var gone mail.UIDSet
		for _, r := range cs.Vanished {
			for u := r.Start; ; u++ {
				if uids.Contains(u) || (u >= uidsMin(uids) && u <= uidsMax(uids)) {
					gone = gone.Add(u)
				}
				if u == r.Stop {
					break
				}
			}
		}
		if !gone.Empty() {
			s.enc.Raw("* VANISHED (EARLIER) ").Raw(gone.String()).CRLF()
		}
	}
	entries, err := s.gw.deps.Meta.ListEntries(ctx, s.acct.ID, v.mbox.ID, uids, items.fields(), changedSince)
	if err != nil {
		return err
	}
	seen := map[mail.UID]meta.Entry{}
	if items.setSeen && !v.readOnly {
		var unseen mail.UIDSet
		for _, e := range entries {
			if !slices.Contains(e.Flags, mail.FlagSeen) {
				unseen = unseen.Add(e.UID)
			}
		}
		if !unseen.Empty() {
			res, err := s.gw.deps.Meta.StoreFlags(ctx, s.acct.ID, v.mbox.ID, meta.FlagChange{UIDs: unseen, Op: meta.FlagsAdd, Flags: []mail.Flag{mail.FlagSeen}})
			if err != nil {
				return err
			}
			for _, e := range res.Updated {
				seen[e.UID] = e
				v.reported[e.UID] = e.ModSeq
			}
		}
	}
	for _, e := range entries {
		seq := v.seqOf(e.UID)
		if seq == 0 {
			continue
		}
		flagsChanged := false
		if u, ok := seen[e.UID]; ok {
			e.Flags, e.ModSeq, flagsChanged = u.Flags, u.ModSeq, true
		}
		if err := s.writeFetch(ctx, seq, e, &items, flagsChanged); err != nil {
			return err
		}
	}
	return nil
}

func uidsMin(s mail.UIDSet) mail.UID { return s[0].Start }
func uidsMax(s mail.UIDSet) mail.UID { return s[len(s)-1].Stop }

// writeFetch writes one "* seq FETCH (...)" response. Every section is
// opened (located, its blob range opened, BINARY decoded) before the line
// starts, so a failure is a clean NO, never half a response.
func (s *session) writeFetch(ctx context.Context, seq int, e meta.Entry, items *fetchItems, flagsChanged bool) error {
	var contents []*imapbody.Content
	defer func() {
		for _, c := range contents {
			c.Close()
		}
	}()
	if len(items.sections) > 0 {
		st, err := mime.UnmarshalStructure(e.Structure)
		if err != nil {
			return err
		}
		r := imapbody.ReadRangeFunc(func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			return s.gw.deps.Blobs.Get(ctx, s.acct.ID, e.Blob, blob.Range{Offset: off, Length: n})
		})
		for _, att := range items.sections {
			c, err := imapbody.Open(ctx, r, st, att)
			if errors.Is(err, imapbody.ErrUnknownCTE) {
				return no("UNKNOWN-CTE", "Cannot decode the part's transfer encoding")
			}
			if err != nil {
				return err
			}
			contents = append(contents, c)
		}
	}
	enc := s.enc
	enc.Raw("* ").Number(uint64(seq)).Raw(" FETCH (")
	sep := func() {}
	first := true
	sep = func() {
		if !first {
			enc.SP()
		}
		first = false
	}
	if items.uid {
		sep()
		enc.Raw("UID ").Number(uint64(e.UID))
	}
	if items.flags || flagsChanged {
		sep()
		enc.Raw("FLAGS ")
		s.writeEntryFlags(e)
	}
	if items.modseq {
		sep()
		enc.Raw("MODSEQ (").Number(uint64(e.ModSeq)).Raw(")")
	}
	if items.internalDate {
		sep()
		enc.Raw("INTERNALDATE ").String(e.InternalDate.Format(dateTimeLayout))
	}
	if items.size {
		sep()
		enc.Raw("RFC822.SIZE ").Number(uint64(e.Size))
	}
	if items.emailID {
		sep()
		enc.Raw("EMAILID (M").Raw(string(e.Blob)).Raw(")")
	}
	if items.threadID {
		sep()
		enc.Raw("THREADID NIL")
	}
	var st *mime.Structure
	if items.envelope || items.body || items.bodyStructure || len(items.sections) > 0 {
		var err error
		if st, err = mime.UnmarshalStructure(e.Structure); err != nil {
			return err
		}
	}
	if items.envelope {
		sep()
		enc.Raw("ENVELOPE ")
		imapbody.WriteEnvelope(enc, &st.Envelope)
	}
	if items.body {
		sep()
		enc.Raw("BODY ")
		imapbody.WriteBodyStructure(enc, st, false)
	}
	if items.bodyStructure {
		sep()
		enc.Raw("BODYSTRUCTURE ")
		imapbody.WriteBodyStructure(enc, st, true)
	}
	for i, att := range items.sections {
		sep()
		enc.Raw(att.Name).SP()
		if err := contents[i].Encode(enc); err != nil {
			// Bytes of a literal are on the wire already: the
			// connection cannot go on.
			return &statusError{text: "Cannot read message body", closeConn: true}
		}
	}
	enc.Raw(")").CRLF()
	return enc.Err()
}
