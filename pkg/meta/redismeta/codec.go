package redismeta

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// Packed entry info, the value of mb:<M>:info. Fixed offsets up front, so
// that the Lua scripts read size and blob id with string.byte (infosize in
// luaLib, 1-based offsets there):
//
//	[0]          version (infoVersion)
//	[1:9]        internal date, Unix seconds (int64 BE)
//	[9:17]       size (uint64 BE)                  Lua bytes 10..17
//	[17:19]      blob id length n (uint16 BE)      Lua bytes 18..19
//	[19:19+n]    blob id
//	[19+n:23+n]  internal date, nanoseconds (uint32 BE)
//	[23+n:]      structure bytes (opaque)
const infoVersion = 1

func packInfo(date time.Time, size int64, blob mail.BlobID, structure []byte) []byte {
	b := make([]byte, 0, 19+len(blob)+4+len(structure))
	b = append(b, infoVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(date.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint16(b, uint16(len(blob)))
	b = append(b, blob...)
	b = binary.BigEndian.AppendUint32(b, uint32(date.Nanosecond()))
	return append(b, structure...)
}

func unpackInfo(v string, e *meta.Entry, withStructure bool) error {
	if len(v) < 19 || v[0] != infoVersion {
		return fmt.Errorf("bad entry info")
	}
	sec := int64(binary.BigEndian.Uint64([]byte(v[1:9])))
	e.Size = int64(binary.BigEndian.Uint64([]byte(v[9:17])))
	n := int(binary.BigEndian.Uint16([]byte(v[17:19])))
	if len(v) < 19+n+4 {
		return fmt.Errorf("bad entry info")
	}
	e.Blob = mail.BlobID(v[19 : 19+n])
	nsec := int64(binary.BigEndian.Uint32([]byte(v[19+n : 23+n])))
	e.InternalDate = time.Unix(sec, nsec).UTC()
	if withStructure && len(v) > 23+n {
		e.Structure = []byte(v[23+n:])
	}
	return nil
}

// canonicalFlags validates flags and returns them sorted and unique.
// \Recent is never stored and is dropped.
func canonicalFlags(in []mail.Flag) ([]mail.Flag, error) {
	out := make([]mail.Flag, 0, len(in))
	for _, f := range in {
		if strings.EqualFold(string(f), string(mail.FlagRecent)) {
			continue
		}
		cf, err := mail.CanonicalFlag(string(f))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", meta.ErrInvalidArgument, err)
		}
		out = append(out, cf)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// parseFlagValue parses "modseq flag flag..." (mb:<M>:flags).
func parseFlagValue(v string) (mail.ModSeq, []mail.Flag) {
	ms, rest, _ := strings.Cut(v, " ")
	n, _ := strconv.ParseUint(ms, 10, 64)
	return mail.ModSeq(n), splitFlags(rest)
}

// splitFlags splits space-separated flags and sorts them (scripts keep
// them unordered).
func splitFlags(s string) []mail.Flag {
	if s == "" {
		return []mail.Flag{}
	}
	parts := strings.Fields(s)
	out := make([]mail.Flag, len(parts))
	for i, p := range parts {
		out[i] = mail.Flag(p)
	}
	slices.Sort(out)
	return out
}

func joinFlags(fs []mail.Flag) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(f))
	}
	return b.String()
}

// rangesArg formats a UID set for the scripts: "a:b,c" with numbers only.
func rangesArg(s mail.UIDSet) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r.Start), 10))
		if r.Stop != r.Start {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(r.Stop), 10))
		}
	}
	return b.String()
}

// decodeEvent parses a published event
// "<mailbox> <kind> <modseq> <uids> <commit ms>" (the uid set may be
// empty). It also reads the encoding of before the commit time,
// "<mailbox> <kind> <modseq> <uids>", whose events get a zero Time.
func decodeEvent(acct mail.AccountID, payload string) (meta.Event, error) {
	f := strings.SplitN(payload, " ", 6)
	if len(f) < 3 || len(f) > 5 {
		return meta.Event{}, fmt.Errorf("bad event %q", payload)
	}
	mb, err1 := strconv.ParseUint(f[0], 10, 64)
	kind, err2 := strconv.ParseUint(f[1], 10, 8)
	ms, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return meta.Event{}, fmt.Errorf("bad event %q", payload)
	}
	ev := meta.Event{Account: acct, Mailbox: mail.MailboxID(mb), Kind: meta.EventKind(kind), ModSeq: mail.ModSeq(ms)}
	if len(f) >= 4 && f[3] != "" {
		u, err := mail.ParseUIDSet(f[3])
		if err != nil {
			return meta.Event{}, fmt.Errorf("bad event %q: %w", payload, err)
		}
		ev.UIDs = u
	}
	if len(f) == 5 {
		at, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil || at <= 0 {
			return meta.Event{}, fmt.Errorf("bad event %q: bad commit time", payload)
		}
		ev.Time = time.UnixMilli(at).UTC()
	}
	return ev, nil
}
