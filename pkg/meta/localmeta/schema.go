package localmeta

// Bucket schema of the bbolt file.
//
// Integers in keys are big-endian and fixed width, so a cursor walks them in
// numeric order: the entries of a mailbox in UID order, the MODSEQ index and
// the vanished log in MODSEQ order, the blob GC queue in time order. Values
// are compact binary records (encoding/binary varints, length-prefixed
// strings), never JSON. Mailbox names, logins, flags and blob ids are data:
// they appear as keys only in the lookup buckets below (names, subs, refs,
// logins), never as bucket names.
//
//	meta/                         store-wide values
//	  "version"     -> u32 schema version (schemaVersion)
//	  "lease_token" -> u64 highest fencing token reserved (tokens are handed
//	                   out in memory from blocks reserved here, so they stay
//	                   monotonic across restarts)
//	logins/
//	  <login, lower case> -> account id
//	aliases/
//	  <alias, lower case> -> account id   (disjoint from logins/; the
//	                   account record lists the same aliases). A bare
//	                   local part is looked up with a cursor over the keys
//	                   "<local part>@..." of logins/ and aliases/: both are
//	                   sorted, so that costs the matching keys, not the
//	                   accounts. Created when missing: files older than it
//	                   simply have no aliases.
//	accounts/                     (account ids: 64 random bits in base 36)
//	  <account id>/               one bucket per account
//	    "rec"   -> account record (encodeAccount)
//	    "quota" -> u64 limit bytes, u64 limit messages, u64 used bytes,
//	               u64 used messages (rewritten on every change of usage,
//	               kept apart from "rec" so that is not re-encoded)
//	    "ctr"   -> u64 next mailbox id, u32 last UIDVALIDITY issued
//	    names/  <mailbox name> -> u64 mailbox id
//	    subs/   <mailbox name> -> ""    subscriptions, existing or not
//	    refs/   <blob id> -> uvarint reference count (absent means zero)
//	    mboxes/
//	      <u64 mailbox id>/
//	        "rec" -> mailbox record (encodeMailbox): name, UIDVALIDITY,
//	                 UIDNEXT, HIGHESTMODSEQ, messages, unseen, size, special
//	                 use, vanished-log trim point and length
//	        "recent" -> u32 \Recent mark: the highest UID handed out by
//	                 ClaimRecent (absent means 0; kept apart from "rec" so
//	                 a claim does not re-encode the record)
//	        e/    <u32 uid> -> packed entry (packEntry)
//	        m/    <u64 modseq><u32 uid> -> ""   MODSEQ index of live entries
//	        v/    <u64 modseq><u32 uid> -> ""   vanished log (expunged UIDs)
//	        r/    <u32 uid> -> u64 unix milliseconds: first POP3 retrieval
//	              (MarkRetrieved). Apart from e/ so that marking neither
//	              re-encodes the entry nor touches its MODSEQ, and so that
//	              COPY/MOVE (which copy e/ values) do not carry it. Created
//	              on the first mark (files older than it have none); keys
//	              go with their entry at expunge.
//	        a/    <blob id> -> <u32 uid><u64 modseq><u64 unix ms>: the
//	              entry AppendEntry made with that blob, so that a repeat
//	              of the append answers the same (meta.AppendReplayWindow);
//	              kept after the entry is expunged, until it ages out
//	        at/   <u64 unix ms><blob id> -> ""   a/ in time order: each
//	              append drops a few that aged out. Both created on the
//	              first append (files older than them have none).
//	blobgc/
//	  <account id>/               outside accounts/ so it survives
//	                              DeleteAccount until the sweeper forgets
//	    q/ <u64 unix nanos><blob id> -> ""     queue in time order
//	    i/ <blob id> -> u64 unix nanos        index for ForgetBlobs / re-reference
//
// Packed entry (the value in e/), laid out so that the hot reads stop early:
// the MODSEQ and \Seen test read fixed offsets, FieldFlags decodes only the
// flag section, and the structure is never parsed (it is the tail):
//
//	[0:8]   u64 modseq
//	[8]     system flag bits (sysFlags order)
//	uvarint keyword count, then each keyword as uvarint length + bytes,
//	        sorted, unique
//	---- tail (copied verbatim by COPY/MOVE and by flag changes) ----
//	varint  internal date, unix seconds; uvarint nanoseconds
//	uvarint size
//	uvarint blob id length + blob id
//	rest    structure
//
// The vanished log is trimmed to Config.ChangeLogMax UIDs per mailbox,
// oldest first; the mailbox record keeps the MODSEQ up to which it was
// trimmed, and ChangesSince reports Trimmed for any older "since".

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

const schemaVersion = 1

// Bucket names and fixed keys.
var (
	bktMeta     = []byte("meta")
	bktLogins   = []byte("logins")
	bktAliases  = []byte("aliases")
	bktAccounts = []byte("accounts")
	bktGC       = []byte("blobgc")

	keyVersion    = []byte("version")
	keyLeaseToken = []byte("lease_token")

	keyRec    = []byte("rec")
	keyQuota  = []byte("quota")
	keyCtr    = []byte("ctr")
	keyRecent = []byte("recent")

	bktNames  = []byte("names")
	bktSubs   = []byte("subs")
	bktRefs   = []byte("refs")
	bktMboxes = []byte("mboxes")

	bktEntries   = []byte("e")
	bktModSeqs   = []byte("m")
	bktVanished  = []byte("v")
	bktRetrieved = []byte("r")
	bktAppended  = []byte("a")
	bktAppendAt  = []byte("at")

	bktGCQueue = []byte("q")
	bktGCIndex = []byte("i")

	emptyValue = []byte{}
)

var errCorrupt = errors.New("corrupt record")

func u32Key(v uint32) []byte {
	k := make([]byte, 4)
	binary.BigEndian.PutUint32(k, v)
	return k
}

func u64Key(v uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, v)
	return k
}

func uidKey(u mail.UID) []byte { return u32Key(uint32(u)) }

func mboxKey(id mail.MailboxID) []byte { return u64Key(uint64(id)) }

// modSeqKey is the key of the MODSEQ index and of the vanished log.
func modSeqKey(ms mail.ModSeq, u mail.UID) []byte {
	k := make([]byte, 12)
	binary.BigEndian.PutUint64(k, uint64(ms))
	binary.BigEndian.PutUint32(k[8:], uint32(u))
	return k
}

func splitModSeqKey(k []byte) (mail.ModSeq, mail.UID) {
	return mail.ModSeq(binary.BigEndian.Uint64(k)), mail.UID(binary.BigEndian.Uint32(k[8:]))
}

func gcKey(t uint64, blob mail.BlobID) []byte {
	k := make([]byte, 8+len(blob))
	binary.BigEndian.PutUint64(k, t)
	copy(k[8:], blob)
	return k
}

// ---- encoder / decoder ----

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) uvarint(v uint64) {
	e.b = binary.AppendUvarint(e.b, v)
}
func (e *encoder) varint(v int64) { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// decoder reads what encoder wrote; the first short read sets err and
// every later read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) u8() uint8 {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw returns the next length-prefixed bytes, aliasing the input.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) boolean() bool { return d.u8() != 0 }

// ---- account records ----

// accountRec is the "rec" value of an account: everything but the quota
// and the counters.
type accountRec struct {
	Login        string
	PasswordHash string
	POP3         meta.POP3Policy
	Disabled     bool
	Created      time.Time
	SieveScript  string
	// Aliases, sorted. Encoded after the Sieve script as a count and the
	// strings; records written before aliases existed end earlier and
	// decode with none.
	Aliases []string
}

func encodeAccount(r accountRec) []byte {
	e := encoder{b: make([]byte, 0, 64+len(r.PasswordHash)+len(r.SieveScript))}
	e.u8(1) // record version
	e.str(r.Login)
	e.str(r.PasswordHash)
	e.str(r.POP3.Mode)
	e.varint(int64(r.POP3.KeepDays))
	e.varint(int64(r.POP3.LoginDelay))
	e.boolean(r.Disabled)
	e.varint(r.Created.Unix())
	e.uvarint(uint64(r.Created.Nanosecond()))
	e.str(r.SieveScript)
	if len(r.Aliases) > 0 {
		e.uvarint(uint64(len(r.Aliases)))
		for _, a := range r.Aliases {
			e.str(a)
		}
	}
	return e.b
}

func decodeAccount(v []byte) (accountRec, error) {
	d := decoder{b: v}
	var r accountRec
	if d.u8() != 1 {
		return r, fmt.Errorf("account record: %w", errCorrupt)
	}
	r.Login = d.str()
	r.PasswordHash = d.str()
	r.POP3.Mode = d.str()
	r.POP3.KeepDays = int(d.varint())
	r.POP3.LoginDelay = int(d.varint())
	r.Disabled = d.boolean()
	sec := d.varint()
	nsec := d.uvarint()
	r.Created = time.Unix(sec, int64(nsec)).UTC()
	r.SieveScript = d.str()
	if d.err == nil && len(d.b) > 0 {
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.fail()
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			r.Aliases = append(r.Aliases, d.str())
		}
	}
	if d.err != nil {
		return r, fmt.Errorf("account record: %w", d.err)
	}
	return r, nil
}

type quotaRec struct {
	LimitBytes, LimitMessages, UsedBytes, UsedMessages int64
}

func encodeQuota(q quotaRec) []byte {
	e := encoder{b: make([]byte, 0, 32)}
	e.u64(uint64(q.LimitBytes))
	e.u64(uint64(q.LimitMessages))
	e.u64(uint64(q.UsedBytes))
	e.u64(uint64(q.UsedMessages))
	return e.b
}

func decodeQuota(v []byte) (quotaRec, error) {
	d := decoder{b: v}
	q := quotaRec{
		LimitBytes:    int64(d.u64()),
		LimitMessages: int64(d.u64()),
		UsedBytes:     int64(d.u64()),
		UsedMessages:  int64(d.u64()),
	}
	if d.err != nil {
		return q, fmt.Errorf("quota record: %w", d.err)
	}
	return q, nil
}

type ctrRec struct {
	NextMailbox     uint64
	LastUIDValidity uint32
}

func encodeCtr(c ctrRec) []byte {
	e := encoder{b: make([]byte, 0, 12)}
	e.u64(c.NextMailbox)
	e.u32(c.LastUIDValidity)
	return e.b
}

func decodeCtr(v []byte) (ctrRec, error) {
	d := decoder{b: v}
	c := ctrRec{NextMailbox: d.u64(), LastUIDValidity: d.u32()}
	if d.err != nil {
		return c, fmt.Errorf("counter record: %w", d.err)
	}
	return c, nil
}

// ---- mailbox records ----

type mboxRec struct {
	Name          string
	SpecialUse    string
	UIDValidity   uint32
	UIDNext       mail.UID
	HighestModSeq mail.ModSeq
	Messages      int64
	Unseen        int64
	Size          int64
	// VanishedFloor: the vanished log holds every UID expunged with a
	// MODSEQ greater than this; older ones may have been trimmed.
	VanishedFloor mail.ModSeq
	// VanishedCount is the number of keys in the vanished log.
	VanishedCount int64
}

func encodeMailbox(r *mboxRec) []byte {
	e := encoder{b: make([]byte, 0, 48+len(r.Name))}
	e.u8(1) // record version
	e.str(r.Name)
	e.str(r.SpecialUse)
	e.u32(r.UIDValidity)
	e.u32(uint32(r.UIDNext))
	e.u64(uint64(r.HighestModSeq))
	e.varint(r.Messages)
	e.varint(r.Unseen)
	e.varint(r.Size)
	e.u64(uint64(r.VanishedFloor))
	e.varint(r.VanishedCount)
	return e.b
}

func decodeMailbox(v []byte) (mboxRec, error) {
	d := decoder{b: v}
	var r mboxRec
	if d.u8() != 1 {
		return r, fmt.Errorf("mailbox record: %w", errCorrupt)
	}
	r.Name = d.str()
	r.SpecialUse = d.str()
	r.UIDValidity = d.u32()
	r.UIDNext = mail.UID(d.u32())
	r.HighestModSeq = mail.ModSeq(d.u64())
	r.Messages = d.varint()
	r.Unseen = d.varint()
	r.Size = d.varint()
	r.VanishedFloor = mail.ModSeq(d.u64())
	r.VanishedCount = d.varint()
	if d.err != nil {
		return r, fmt.Errorf("mailbox record: %w", d.err)
	}
	return r, nil
}

// ---- flags ----

// sysFlags lists the storable system flags in sorted (byte) order; bit i of
// the flag byte is sysFlags[i].
var sysFlags = [...]mail.Flag{mail.FlagAnswered, mail.FlagDeleted, mail.FlagDraft, mail.FlagFlagged, mail.FlagSeen}

const seenBit = 1 << 4 // sysFlags[4] is \Seen

func sysBit(f mail.Flag) (uint8, bool) {
	for i, sf := range sysFlags {
		if f == sf {
			return 1 << i, true
		}
	}
	return 0, false
}

// flagSet is a decoded flag list: system flags as bits, keywords sorted and
// unique.
type flagSet struct {
	sys uint8
	kw  []string
}

// parseFlags canonicalizes flags given by a caller. \Recent is dropped (it
// is never stored); any other invalid flag is ErrInvalidArgument.
func parseFlags(flags []mail.Flag) (flagSet, error) {
	var fs flagSet
	for _, f := range flags {
		if equalFoldASCII(string(f), string(mail.FlagRecent)) {
			continue
		}
		cf, err := mail.CanonicalFlag(string(f))
		if err != nil {
			return fs, fmt.Errorf("%w: %w", meta.ErrInvalidArgument, err)
		}
		if bit, ok := sysBit(cf); ok {
			fs.sys |= bit
			continue
		}
		fs.kw = append(fs.kw, string(cf))
	}
	sort.Strings(fs.kw)
	fs.kw = dedupSorted(fs.kw)
	return fs, nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func dedupSorted(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

func (fs flagSet) equal(o flagSet) bool {
	if fs.sys != o.sys || len(fs.kw) != len(o.kw) {
		return false
	}
	for i := range fs.kw {
		if fs.kw[i] != o.kw[i] {
			return false
		}
	}
	return true
}

// apply returns fs changed by op with arg.
func (fs flagSet) apply(op meta.FlagOp, arg flagSet) flagSet {
	switch op {
	case meta.FlagsAdd:
		out := flagSet{sys: fs.sys | arg.sys}
		out.kw = mergeSorted(fs.kw, arg.kw)
		return out
	case meta.FlagsRemove:
		out := flagSet{sys: fs.sys &^ arg.sys}
		for _, k := range fs.kw {
			if i := sort.SearchStrings(arg.kw, k); i < len(arg.kw) && arg.kw[i] == k {
				continue
			}
			out.kw = append(out.kw, k)
		}
		return out
	default:
		return flagSet{sys: arg.sys, kw: arg.kw}
	}
}

func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// list returns the flags sorted by byte order: keywords below '\\', the
// system flags, then the other keywords. Nil when there are none.
func (fs flagSet) list() []mail.Flag {
	if fs.sys == 0 && len(fs.kw) == 0 {
		return nil
	}
	out := make([]mail.Flag, 0, len(fs.kw)+5)
	split := sort.Search(len(fs.kw), func(i int) bool { return fs.kw[i] > `\` })
	for _, k := range fs.kw[:split] {
		out = append(out, mail.Flag(k))
	}
	for i, sf := range sysFlags {
		if fs.sys&(1<<i) != 0 {
			out = append(out, sf)
		}
	}
	for _, k := range fs.kw[split:] {
		out = append(out, mail.Flag(k))
	}
	return out
}

// ---- packed entries ----

// packEntry builds an entry value from its MODSEQ, flags and tail.
func packEntry(ms mail.ModSeq, fs flagSet, tail []byte) []byte {
	n := 9 + binary.MaxVarintLen32 + len(tail)
	for _, k := range fs.kw {
		n += binary.MaxVarintLen32 + len(k)
	}
	e := encoder{b: make([]byte, 0, n)}
	e.u64(uint64(ms))
	e.u8(fs.sys)
	e.uvarint(uint64(len(fs.kw)))
	for _, k := range fs.kw {
		e.str(k)
	}
	e.b = append(e.b, tail...)
	return e.b
}

// packTail encodes the immutable part of an entry.
func packTail(idate time.Time, size int64, blob mail.BlobID, structure []byte) []byte {
	e := encoder{b: make([]byte, 0, 24+len(blob)+len(structure))}
	e.varint(idate.Unix())
	e.uvarint(uint64(idate.Nanosecond()))
	e.uvarint(uint64(size))
	e.str(string(blob))
	e.b = append(e.b, structure...)
	return e.b
}

func entryModSeq(v []byte) mail.ModSeq {
	if len(v) < 8 {
		return 0
	}
	return mail.ModSeq(binary.BigEndian.Uint64(v))
}

func entrySeen(v []byte) bool { return len(v) > 8 && v[8]&seenBit != 0 }

// entryKeywords returns the raw keyword section (count and keywords) and
// the offset of the tail.
func entryTailOffset(v []byte) (int, error) {
	if len(v) < 9 {
		return 0, errCorrupt
	}
	d := decoder{b: v[9:]}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		d.raw()
	}
	if d.err != nil {
		return 0, d.err
	}
	return len(v) - len(d.b), nil
}

// entryFlags decodes the flag section of v.
func entryFlags(v []byte) (flagSet, error) {
	if len(v) < 9 {
		return flagSet{}, errCorrupt
	}
	fs := flagSet{sys: v[8]}
	d := decoder{b: v[9:]}
	n := d.uvarint()
	if n > 0 && d.err == nil {
		fs.kw = make([]string, 0, min(n, 64))
		for i := uint64(0); i < n && d.err == nil; i++ {
			fs.kw = append(fs.kw, d.str())
		}
	}
	return fs, d.err
}

// tailInfo is the decoded head of an entry tail (all but the structure).
type tailInfo struct {
	InternalDate time.Time
	Size         int64
	Blob         []byte // aliases the value
	Structure    []byte // aliases the value
}

func decodeTail(t []byte) (tailInfo, error) {
	d := decoder{b: t}
	sec := d.varint()
	nsec := d.uvarint()
	size := d.uvarint()
	blob := d.raw()
	if d.err != nil || size > math.MaxInt64 {
		return tailInfo{}, errCorrupt
	}
	return tailInfo{
		InternalDate: time.Unix(sec, int64(nsec)).UTC(),
		Size:         int64(size),
		Blob:         blob,
		Structure:    d.b,
	}, nil
}

// entryDecoder decodes entries for ListEntries, sharing allocations across
// entries: flags go into one backing array and keywords are interned.
type entryDecoder struct {
	fields   meta.Fields
	flagBuf  []mail.Flag
	keywords map[string]mail.Flag
}

func (ed *entryDecoder) decode(u mail.UID, v []byte) (meta.Entry, error) {
	e := meta.Entry{UID: u, ModSeq: entryModSeq(v)}
	if len(v) < 9 {
		return e, errCorrupt
	}
	if ed.fields&(meta.FieldInfo|meta.FieldStructure|meta.FieldFlags) == 0 {
		return e, nil
	}
	sys := v[8]
	d := decoder{b: v[9:]}
	n := d.uvarint()
	if ed.fields&meta.FieldFlags != 0 {
		var err error
		if e.Flags, err = ed.flags(sys, n, &d); err != nil {
			return e, err
		}
	} else {
		for i := uint64(0); i < n && d.err == nil; i++ {
			d.raw()
		}
	}
	if d.err != nil {
		return e, d.err
	}
	if ed.fields&(meta.FieldInfo|meta.FieldStructure) == 0 {
		return e, nil
	}
	ti, err := decodeTail(d.b)
	if err != nil {
		return e, err
	}
	if ed.fields&meta.FieldInfo != 0 {
		e.InternalDate = ti.InternalDate
		e.Size = ti.Size
		e.Blob = mail.BlobID(ti.Blob)
	}
	if ed.fields&meta.FieldStructure != 0 && len(ti.Structure) > 0 {
		e.Structure = append([]byte(nil), ti.Structure...)
	}
	return e, nil
}

func (ed *entryDecoder) flags(sys uint8, n uint64, d *decoder) ([]mail.Flag, error) {
	if sys == 0 && n == 0 {
		return nil, nil
	}
	if cap(ed.flagBuf)-len(ed.flagBuf) < int(n)+len(sysFlags) {
		ed.flagBuf = make([]mail.Flag, 0, max(4096, int(n)+len(sysFlags)))
	}
	start := len(ed.flagBuf)
	buf := ed.flagBuf
	sysDone := false
	addSys := func() {
		for i, sf := range sysFlags {
			if sys&(1<<i) != 0 {
				buf = append(buf, sf)
			}
		}
		sysDone = true
	}
	for i := uint64(0); i < n; i++ {
		k := d.raw()
		if d.err != nil {
			return nil, d.err
		}
		if !sysDone && len(k) > 0 && k[0] > '\\' {
			addSys()
		}
		f, ok := ed.keywords[string(k)]
		if !ok {
			if ed.keywords == nil {
				ed.keywords = make(map[string]mail.Flag)
			}
			f = mail.Flag(k)
			ed.keywords[string(f)] = f
		}
		buf = append(buf, f)
	}
	if !sysDone {
		addSys()
	}
	ed.flagBuf = buf
	return buf[start:len(buf):len(buf)], nil
}
