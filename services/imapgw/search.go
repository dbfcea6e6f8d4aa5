package imapgw

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/imapsearch"
)

func init() {
	register("SEARCH", handler{fn: cmdSearch, states: selectedSt, uid: true, updates: true, seqSensitive: true})
	register("SORT", handler{fn: cmdSearch, states: selectedSt, uid: true, updates: true, seqSensitive: true})
	register("THREAD", handler{fn: cmdSearch, states: selectedSt, uid: true, updates: true, seqSensitive: true})
	registerCap("ESEARCH", "SEARCHRES", "SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT")
}

// searchOptions bound one search's work.
var searchOptions = imapsearch.ParseOptions{}

// cmdSearch runs SEARCH (with ESEARCH, SEARCHRES and MODSEQ), SORT (RFC
// 5256, RFC 5957) and THREAD (RFC 5256) over the selected mailbox. Keys on
// flags, dates, sizes, UIDs and the envelope are answered from the index;
// HEADER, BODY and TEXT read the blobs, as streams.
func cmdSearch(s *session, ctx context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	var (
		prog     *imapsearch.Program
		criteria []imapsearch.SortCriterion
		alg      imapsearch.ThreadAlgorithm
		err      error
	)
	switch cmd.name {
	case "SORT":
		criteria, prog, err = imapsearch.ParseSort(s.dec, searchOptions)
	case "THREAD":
		alg, prog, err = imapsearch.ParseThread(s.dec, searchOptions)
	default:
		prog, err = imapsearch.ParseSearch(s.dec, searchOptions)
	}
	badCharset := errors.Is(err, imapsearch.ErrBadCharset)
	switch {
	case badCharset:
	case errors.Is(err, imapsearch.ErrTooComplex):
		return bad("Search too complex")
	case errors.Is(err, imapsearch.ErrBadSeqSet):
		return bad("Invalid sequence set")
	case err != nil:
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if badCharset {
		return no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset")
	}
	if prog.UsesModSeq() {
		s.condstore = true
	}
	v := s.sel
	// The envelope is needed for address, subject and date keys, for
	// SORT and THREAD; reading it for 100k messages costs, so plain flag
	// or UID searches skip it.
	fields := meta.FieldFlags | meta.FieldInfo
	if cmd.name != "SEARCH" || needsStructure(prog.String()) {
		fields |= meta.FieldStructure
	}
	entries, err := s.gw.deps.Meta.ListEntries(ctx, s.acct.ID, v.mbox.ID, mail.AllUIDs(), fields, 0)
	if err != nil {
		return err
	}
	byUID := make(map[mail.UID]*meta.Entry, len(entries))
	for i := range entries {
		byUID[entries[i].UID] = &entries[i]
	}
	msgs := make([]imapsearch.Message, len(v.uids))
	for i, u := range v.uids {
		m := imapsearch.Message{Seq: uint32(i + 1), UID: u, Recent: s.isRecent(u)}
		if e := byUID[u]; e != nil {
			m.Flags, m.InternalDate, m.Size, m.ModSeq = e.Flags, e.InternalDate, e.Size, e.ModSeq
			if len(e.Structure) > 0 {
				if st, err := mime.UnmarshalStructure(e.Structure); err == nil {
					m.Structure = st
				}
			}
		}
		msgs[i] = m
	}
	prog.Saved = s.saved
	acc := &searchAccessor{s: s, blobs: map[mail.UID]mail.BlobID{}}
	for _, e := range entries {
		acc.blobs[e.UID] = e.Blob
	}
	matched, err := prog.Eval(ctx, msgs, acc)
	if err != nil {
		return err
	}
	num := func(i int) uint32 {
		if cmd.uid {
			return uint32(msgs[i].UID)
		}
		return msgs[i].Seq
	}
	switch cmd.name {
	case "SORT":
		subset := make([]imapsearch.Message, len(matched))
		for i, idx := range matched {
			subset[i] = msgs[idx]
		}
		order, err := imapsearch.Sort(ctx, subset, criteria, acc)
		if err != nil {
			return err
		}
		nums := make([]uint32, len(order))
		for i, idx := range order {
			if cmd.uid {
				nums[i] = uint32(subset[idx].UID)
			} else {
				nums[i] = subset[idx].Seq
			}
		}
		var ms uint64
		if prog.UsesModSeq() {
			ms = imapsearch.ResultModSeq(msgs, matched, prog.Return)
		}
		imapsearch.WriteSort(s.enc, nums, ms)
		return nil
	case "THREAD":
		subset := make([]imapsearch.Message, len(matched))
		for i, idx := range matched {
			subset[i] = msgs[idx]
		}
		threads, err := imapsearch.Thread(ctx, subset, alg, acc)
		if err != nil {
			return err
		}
		imapsearch.WriteThread(s.enc, threads, func(i int) uint32 {
			if cmd.uid {
				return uint32(subset[i].UID)
			}
			return subset[i].Seq
		})
		return nil
	}
	nums := make([]uint32, len(matched))
	for i, idx := range matched {
		nums[i] = num(idx)
	}
	ret := prog.Return
	if ret.Save {
		var saved mail.UIDSet
		for _, n := range ret.SaveResult(nums) {
			if cmd.uid {
				saved = saved.Add(mail.UID(n))
			} else {
				saved = saved.Add(v.uids[n-1])
			}
		}
		s.saved = saved
	}
	var ms uint64
	if prog.UsesModSeq() {
		ms = imapsearch.ResultModSeq(msgs, matched, ret)
	}
	switch {
	case ret.ESearch() || (s.rev2 && !ret.Save):
		imapsearch.WriteESearch(s.enc, cmd.tag, cmd.uid, ret, nums, ms)
	case ret.Save:
		// SAVE alone: no result is sent (RFC 5182).
	case prog.UsesModSeq() && len(nums) > 0:
		imapsearch.WriteSearchModSeq(s.enc, nums, ms)
	default:
		imapsearch.WriteSearch(s.enc, nums)
	}
	return nil
}

// needsStructure reports whether a search program uses keys answered from
// the envelope.
func needsStructure(prog string) bool {
	for _, k := range []string{"FROM", "TO", "CC", "BCC", "SUBJECT", "SENT", "HEADER", "BODY", "TEXT"} {
		if strings.Contains(strings.ToUpper(prog), k) {
			return true
		}
	}
	return false
}

// searchAccessor reads message bytes for HEADER, BODY and TEXT keys.
type searchAccessor struct {
	s     *session
	blobs map[mail.UID]mail.BlobID
}

func (a *searchAccessor) Header(ctx context.Context, m *imapsearch.Message) ([]byte, error) {
	id := a.blobs[m.UID]
	if id == "" {
		return nil, nil // expunged meanwhile: nothing to match
	}
	n := int64(64 << 10)
	if m.Structure != nil {
		n = m.Structure.HeaderSize
	}
	r, err := a.s.gw.deps.Blobs.Get(ctx, a.s.acct.ID, id, blob.Range{Offset: 0, Length: n})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, n))
}

func (a *searchAccessor) Body(ctx context.Context, m *imapsearch.Message) (io.ReadCloser, error) {
	if a.blobs[m.UID] == "" {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return a.s.gw.deps.Blobs.Get(ctx, a.s.acct.ID, a.blobs[m.UID], blob.Whole)
}
