package redismeta

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// Paging of big reads: ListEntries and ChangesSince never send one command
// that walks a whole big mailbox.
const (
	// listPage is how many UIDs one ZRANGE ... BYSCORE LIMIT returns.
	listPage = 4000
	// hmgetChunk is how many fields one HMGET asks for.
	hmgetChunk = 1000
	// directLookupMax: a finite UID set of at most this many UIDs is read
	// with HMGET directly, without walking the uids zset.
	directLookupMax = 4 * hmgetChunk
)

func validBlob(b mail.BlobID) bool {
	if len(b) == 0 || len(b) > 1024 {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func mbArg(m mail.MailboxID) string { return strconv.FormatUint(uint64(m), 10) }

// AppendEntry adds one entry in one script: quota check, UID and MODSEQ
// allocation, counters, usage, blob reference, event.
func (s *Store) AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) (meta.Appended, error) {
	if !validAccountID(acct) {
		return meta.Appended{}, fmt.Errorf("append to mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	flags, err := canonicalFlags(e.Flags)
	if err != nil {
		return meta.Appended{}, fmt.Errorf("append to mailbox %d: %w", mbox, err)
	}
	if e.Size < 0 || !validBlob(e.Blob) {
		return meta.Appended{}, fmt.Errorf("append to mailbox %d: %w: bad size or blob id", mbox, meta.ErrInvalidArgument)
	}
	seen := "0"
	if slices.Contains(flags, mail.FlagSeen) {
		seen = "1"
	}
	info := packInfo(e.InternalDate, e.Size, e.Blob, e.Structure)
	res, err := scriptAppend.Run(ctx, s.sc, []string{s.k.base(acct)},
		mbArg(mbox), joinFlags(flags), info, string(e.Blob), e.Size, seen, meta.AppendReplayWindow.Milliseconds()).Int64Slice()
	if err != nil {
		return meta.Appended{}, wrap(err, "append to mailbox %d", mbox)
	}
	return meta.Appended{Mailbox: mbox, UID: mail.UID(res[0]), ModSeq: mail.ModSeq(res[1]), UIDValidity: uint32(res[2])}, nil
}

// ListEntries reads entries in UID order. A small finite UID set is read
// with HMGET directly; otherwise the uids zset is paged with ZRANGE BYSCORE
// LIMIT and each page is fetched with HMGETs of hmgetChunk fields, pipelined
// together with the ZRANGE of the next page (one round trip per page). With
// changedSince, candidates come from the modseq zset instead.
func (s *Store) ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, changedSince mail.ModSeq) ([]meta.Entry, error) {
	if !validAccountID(acct) {
		return nil, fmt.Errorf("list entries of mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	var (
		out []meta.Entry
		err error
	)
	switch {
	case changedSince > 0:
		out, err = s.listChanged(ctx, acct, mbox, uids, f, changedSince)
	case uids.Empty() || (uids[len(uids)-1].Stop != mail.MaxUID && uids.Count() <= directLookupMax):
		out, err = s.listDirect(ctx, acct, mbox, uids, f)
	default:
		out, err = s.listPaged(ctx, acct, mbox, uids, f)
	}
	if err != nil {
		return nil, fmt.Errorf("list entries of mailbox %d: %w", mbox, err)
	}
	return out, nil
}

func (s *Store) listDirect(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields) ([]meta.Entry, error) {
	var check func() error
	var fc fetchCmds
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		check = s.queueCheck(ctx, p, acct, mbox)
		fc = s.queueFetch(ctx, p, acct, mbox, uids.UIDs(), f)
		return nil
	}); err != nil {
		return nil, wrap(err, "read")
	}
	if err := check(); err != nil {
		return nil, err
	}
	return fc.entries(f, 0, nil)
}

func (s *Store) listChanged(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, since mail.ModSeq) ([]meta.Entry, error) {
	var check func() error
	var changed *redis.StringSliceCmd
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		check = s.queueCheck(ctx, p, acct, mbox)
		changed = p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.k.mbModSeq(acct, mbox), ByScore: true,
			Start: "(" + strconv.FormatUint(uint64(since), 10), Stop: "+inf"})
		return nil
	}); err != nil {
		return nil, wrap(err, "read")
	}
	if err := check(); err != nil {
		return nil, err
	}
	var cand []mail.UID
	for _, v := range changed.Val() {
		u, err := strconv.ParseUint(v, 10, 32)
		if err == nil && uids.Contains(mail.UID(u)) {
			cand = append(cand, mail.UID(u))
		}
	}
	slices.Sort(cand)
	return s.fetch(ctx, acct, mbox, cand, f, since)
}

func (s *Store) listPaged(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields) ([]meta.Entry, error) {
	zkey := s.k.mbUIDs(acct, mbox)
	ri, start := 0, uids[0].Start
	query := func(p redis.Pipeliner) *redis.StringSliceCmd {
		return p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: zkey, ByScore: true,
			Start: uint64(start), Stop: uint64(uids[ri].Stop), Count: int64(s.page)})
	}
	var check func() error
	var pageCmd *redis.StringSliceCmd
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		check = s.queueCheck(ctx, p, acct, mbox)
		pageCmd = query(p)
		return nil
	}); err != nil {
		return nil, wrap(err, "read")
	}
	if err := check(); err != nil {
		return nil, err
	}
	var out []meta.Entry
	for {
		page := make([]mail.UID, 0, len(pageCmd.Val()))
		for _, v := range pageCmd.Val() {
			u, _ := strconv.ParseUint(v, 10, 32)
			page = append(page, mail.UID(u))
		}
		// Advance to what the next ZRANGE asks for.
		more := true
		if len(page) == s.page && page[len(page)-1] < uids[ri].Stop {
			start = page[len(page)-1] + 1
		} else if ri++; ri < len(uids) {
			start = uids[ri].Start
		} else {
			more = false
		}
		if len(page) == 0 && !more {
			return out, nil
		}
		var fc fetchCmds
		pageCmd = nil
		if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			fc = s.queueFetch(ctx, p, acct, mbox, page, f)
			if more {
				pageCmd = query(p)
			}
			return nil
		}); err != nil {
			return nil, wrap(err, "read")
		}
		var err error
		if out, err = fc.entries(f, 0, out); err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
	}
}

// queueCheck queues existence checks of the account and the mailbox; the
// returned function reports the result once the pipeline ran.
func (s *Store) queueCheck(ctx context.Context, p redis.Pipeliner, acct mail.AccountID, mbox mail.MailboxID) func() error {
	a := p.Exists(ctx, s.k.account(acct))
	m := p.Exists(ctx, s.k.mailbox(acct, mbox))
	return func() error {
		switch {
		case a.Val() == 0:
			return meta.ErrNoSuchAccount
		case m.Val() == 0:
			return meta.ErrNoSuchMailbox
		}
		return nil
	}
}

// fetch reads entries of ascending uids in pipelined chunks.
func (s *Store) fetch(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids []mail.UID, f meta.Fields, since mail.ModSeq) ([]meta.Entry, error) {
	var out []meta.Entry
	const perPipeline = 8 * hmgetChunk
	for part := range slices.Chunk(uids, perPipeline) {
		var fc fetchCmds
		if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			fc = s.queueFetch(ctx, p, acct, mbox, part, f)
			return nil
		}); err != nil {
			return nil, wrap(err, "read")
		}
		var err error
		if out, err = fc.entries(f, since, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fetchCmds are queued HMGETs of flags (always: they carry the MODSEQ)
// and, when asked for, info (and with FieldInfo the retrieval marks),
// chunk by chunk.
type fetchCmds struct {
	uids  []mail.UID
	flags []*redis.SliceCmd
	info  []*redis.SliceCmd
	retr  []*redis.SliceCmd
}

func (s *Store) queueFetch(ctx context.Context, p redis.Pipeliner, acct mail.AccountID, mbox mail.MailboxID, uids []mail.UID, f meta.Fields) fetchCmds {
	fc := fetchCmds{uids: uids}
	fk, ik, rk := s.k.mbFlags(acct, mbox), s.k.mbInfo(acct, mbox), s.k.mbRetrieved(acct, mbox)
	for chunk := range slices.Chunk(uids, hmgetChunk) {
		fields := make([]string, len(chunk))
		for i, u := range chunk {
			fields[i] = strconv.FormatUint(uint64(u), 10)
		}
		fc.flags = append(fc.flags, p.HMGet(ctx, fk, fields...))
		if f&(meta.FieldInfo|meta.FieldStructure) != 0 {
			fc.info = append(fc.info, p.HMGet(ctx, ik, fields...))
		}
		if f&meta.FieldInfo != 0 {
			fc.retr = append(fc.retr, p.HMGet(ctx, rk, fields...))
		}
	}
	return fc
}

// entries decodes the replies, skipping UIDs that do not exist (or were
// expunged meanwhile) and, with since > 0, entries not changed after it.
func (fc fetchCmds) entries(f meta.Fields, since mail.ModSeq, out []meta.Entry) ([]meta.Entry, error) {
	for ci, fcmd := range fc.flags {
		base := ci * hmgetChunk
		fv := fcmd.Val()
		var iv, rv []any
		if fc.info != nil {
			iv = fc.info[ci].Val()
		}
		if fc.retr != nil {
			rv = fc.retr[ci].Val()
		}
		for i, x := range fv {
			v, ok := x.(string)
			if !ok {
				continue
			}
			ms, flags := parseFlagValue(v)
			if ms <= since {
				continue
			}
			e := meta.Entry{UID: fc.uids[base+i], ModSeq: ms}
			if f&meta.FieldFlags != 0 {
				e.Flags = flags
			}
			if iv != nil {
				info, ok := iv[i].(string)
				if !ok {
					continue
				}
				if err := unpackInfo(info, &e, f&meta.FieldStructure != 0); err != nil {
					return nil, fmt.Errorf("uid %d: %w", e.UID, err)
				}
				if f&meta.FieldInfo == 0 {
					e.Size, e.Blob, e.InternalDate = 0, "", time.Time{}
				}
			}
			if rv != nil {
				if r, ok := rv[i].(string); ok {
					ms, err := strconv.ParseInt(r, 10, 64)
					if err != nil {
						return nil, fmt.Errorf("uid %d: bad retrieval mark %q", e.UID, r)
					}
					e.Retrieved = time.UnixMilli(ms).UTC()
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// StoreFlags changes flags in one script. All entries updated by one call
// get the same new MODSEQ.
func (s *Store) StoreFlags(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, c meta.FlagChange) (meta.FlagResult, error) {
	if !validAccountID(acct) {
		return meta.FlagResult{}, fmt.Errorf("store flags in mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	flags, err := canonicalFlags(c.Flags)
	if err != nil {
		return meta.FlagResult{}, fmt.Errorf("store flags in mailbox %d: %w", mbox, err)
	}
	var op string
	switch c.Op {
	case meta.FlagsReplace:
		op = "r"
	case meta.FlagsAdd:
		op = "a"
	case meta.FlagsRemove:
		op = "d"
	default:
		return meta.FlagResult{}, fmt.Errorf("store flags in mailbox %d: %w: op %d", mbox, meta.ErrInvalidArgument, c.Op)
	}
	args := []any{mbArg(mbox), op, uint64(c.UnchangedSince), rangesArg(c.UIDs)}
	for _, f := range flags {
		args = append(args, string(f))
	}
	res, err := scriptStoreFlags.Run(ctx, s.sc, []string{s.k.base(acct)}, args...).Slice()
	if err != nil {
		return meta.FlagResult{}, wrap(err, "store flags in mailbox %d", mbox)
	}
	ms := mail.ModSeq(res[0].(int64))
	var r meta.FlagResult
	upd, _ := res[1].([]any)
	for i := 0; i+1 < len(upd); i += 2 {
		uid, _ := upd[i].(int64)
		fs, _ := upd[i+1].(string)
		r.Updated = append(r.Updated, meta.Entry{UID: mail.UID(uid), ModSeq: ms, Flags: splitFlags(fs)})
	}
	mod, _ := res[2].([]any)
	for _, x := range mod {
		uid, _ := x.(int64)
		r.Modified = r.Modified.Add(mail.UID(uid))
	}
	same, _ := res[3].([]any)
	for i := 0; i+2 < len(same); i += 3 {
		uid, _ := same[i].(int64)
		ems, _ := same[i+1].(int64)
		fs, _ := same[i+2].(string)
		r.Unchanged = append(r.Unchanged, meta.Entry{UID: mail.UID(uid), ModSeq: mail.ModSeq(ems), Flags: splitFlags(fs)})
	}
	return r, nil
}

// Expunge removes entries in one script, logging them as vanished.
func (s *Store) Expunge(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet) ([]mail.UID, mail.ModSeq, error) {
	if !validAccountID(acct) {
		return nil, 0, fmt.Errorf("expunge mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	res, err := scriptExpunge.Run(ctx, s.sc, []string{s.k.base(acct)}, mbArg(mbox), rangesArg(uids), s.logMax).Slice()
	if err != nil {
		return nil, 0, wrap(err, "expunge mailbox %d", mbox)
	}
	return uidList(res[1]), mail.ModSeq(res[0].(int64)), nil
}

func uidList(x any) []mail.UID {
	l, _ := x.([]any)
	out := make([]mail.UID, 0, len(l))
	for _, v := range l {
		n, _ := v.(int64)
		out = append(out, mail.UID(n))
	}
	return out
}

// Copy copies entries in one script, checking quota.
func (s *Store) Copy(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	return s.copy(ctx, acct, src, uids, dst, false)
}

// Move copies and expunges in one script. It does not check quota: the
// account's usage does not change.
func (s *Store) Move(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	return s.copy(ctx, acct, src, uids, dst, true)
}

func (s *Store) copy(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID, move bool) (meta.Copied, error) {
	what, mv := "copy", "0"
	if move {
		what, mv = "move", "1"
	}
	if !validAccountID(acct) {
		return meta.Copied{}, fmt.Errorf("%s from mailbox %d to %d: %w", what, src, dst, meta.ErrNoSuchAccount)
	}
	res, err := scriptCopy.Run(ctx, s.sc, []string{s.k.base(acct)}, mbArg(src), mbArg(dst), rangesArg(uids), mv, s.logMax).Slice()
	if err != nil {
		return meta.Copied{}, wrap(err, "%s from mailbox %d to %d", what, src, dst)
	}
	c := meta.Copied{UIDValidity: uint32(res[0].(int64)), ModSeq: mail.ModSeq(res[1].(int64))}
	if l := uidList(res[2]); len(l) > 0 {
		c.Source, c.Dest = l, uidList(res[3])
	}
	return c, nil
}

// ChangesSince reads the mailbox counters and both logs in one MULTI (one
// slot), then the flags of the changed entries in pipelined chunks.
func (s *Store) ChangesSince(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, since mail.ModSeq) (meta.ChangeSet, error) {
	if !validAccountID(acct) {
		return meta.ChangeSet{}, fmt.Errorf("changes of mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	after := "(" + strconv.FormatUint(uint64(since), 10)
	var hm *redis.SliceCmd
	var changed, vanished *redis.StringSliceCmd
	var acctExists *redis.IntCmd
	if _, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		acctExists = p.Exists(ctx, s.k.account(acct))
		hm = p.HMGet(ctx, s.k.mailbox(acct, mbox), "hms", "vtrim")
		changed = p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.k.mbModSeq(acct, mbox), ByScore: true, Start: after, Stop: "+inf"})
		vanished = p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.k.mbVanished(acct, mbox), ByScore: true, Start: after, Stop: "+inf"})
		return nil
	}); err != nil {
		return meta.ChangeSet{}, wrap(err, "changes of mailbox %d", mbox)
	}
	if acctExists.Val() == 0 {
		return meta.ChangeSet{}, fmt.Errorf("changes of mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	v := hm.Val()
	hmsStr, ok := v[0].(string)
	if !ok {
		return meta.ChangeSet{}, fmt.Errorf("changes of mailbox %d: %w", mbox, meta.ErrNoSuchMailbox)
	}
	hms, _ := strconv.ParseUint(hmsStr, 10, 64)
	vtrimStr, _ := v[1].(string)
	vtrim, _ := strconv.ParseUint(vtrimStr, 10, 64)
	cs := meta.ChangeSet{HighestModSeq: mail.ModSeq(hms), Trimmed: uint64(since) < vtrim}
	var uids []mail.UID
	for _, x := range changed.Val() {
		u, _ := strconv.ParseUint(x, 10, 32)
		uids = append(uids, mail.UID(u))
	}
	slices.Sort(uids)
	var err error
	if cs.Changed, err = s.fetch(ctx, acct, mbox, uids, meta.FieldFlags, since); err != nil {
		return meta.ChangeSet{}, fmt.Errorf("changes of mailbox %d: %w", mbox, err)
	}
	var gone []mail.UID
	for _, x := range vanished.Val() {
		u, _ := strconv.ParseUint(x, 10, 32)
		gone = append(gone, mail.UID(u))
	}
	slices.Sort(gone)
	for _, u := range gone {
		cs.Vanished = cs.Vanished.AddRange(u, u)
	}
	return cs, nil
}
