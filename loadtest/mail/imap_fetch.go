package mail

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Fetch sends FETCH (UID FETCH with {uid: true}) for items, which are IMAP
// fetch attributes as a client writes them: FLAGS, UID, RFC822.SIZE,
// INTERNALDATE, ENVELOPE, BODYSTRUCTURE, BODY, MODSEQ, the macros FAST,
// ALL and FULL, RFC822, RFC822.HEADER, RFC822.TEXT, and sections such as
// BODY[], BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.512>, BINARY.PEEK[1]
// and BINARY.SIZE[1]. Each message comes back as an object with seq and
// the requested attributes; section contents are strings under
// sections[item as given].
func (c *IMAPClient) Fetch(set string, items []string, opts map[string]any) ([]map[string]any, error) {
	ns, uid, err := numSetArg(set, opts)
	if err != nil {
		return nil, fmt.Errorf("imap FETCH: %w", err)
	}
	fo, secs, err := parseFetchItems(items)
	if err != nil {
		return nil, fmt.Errorf("imap FETCH: %w", err)
	}
	var msgs []*imapclient.FetchMessageBuffer
	err = c.do(cmdName("FETCH", uid), func() error {
		var err error
		msgs, err = c.c.Fetch(ns, fo).Collect()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, fetchResult(m, fo, secs))
	}
	return out, nil
}

// Store changes flags: op is FLAGS, +FLAGS or -FLAGS, each optionally
// .SILENT. It returns the updated messages' {seq, uid, flags} (none when
// silent).
func (c *IMAPClient) Store(set, op string, flags []string, opts map[string]any) ([]map[string]any, error) {
	ns, uid, err := numSetArg(set, opts)
	if err != nil {
		return nil, fmt.Errorf("imap STORE: %w", err)
	}
	sf := &imap.StoreFlags{Flags: toFlags(flags)}
	o := strings.ToUpper(op)
	o, sf.Silent = strings.CutSuffix(o, ".SILENT")
	switch o {
	case "FLAGS":
		sf.Op = imap.StoreFlagsSet
	case "+FLAGS":
		sf.Op = imap.StoreFlagsAdd
	case "-FLAGS":
		sf.Op = imap.StoreFlagsDel
	default:
		return nil, fmt.Errorf("imap STORE: unknown operation %q (want FLAGS, +FLAGS or -FLAGS, optionally .SILENT)", op)
	}
	var msgs []*imapclient.FetchMessageBuffer
	err = c.do(cmdName("STORE", uid), func() error {
		var err error
		msgs, err = c.c.Store(ns, sf, nil).Collect()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		r := map[string]any{"seq": m.SeqNum, "flags": flagStrings(m.Flags)}
		if m.UID != 0 {
			r["uid"] = uint32(m.UID)
		}
		out = append(out, r)
	}
	return out, nil
}

// namedSection ties a requested section to the name the script gave it.
type namedSection struct {
	name   string
	body   *imap.FetchItemBodySection
	binary *imap.FetchItemBinarySection
	size   *imap.FetchItemBinarySectionSize
}

func parseFetchItems(items []string) (*imap.FetchOptions, []namedSection, error) {
	fo := &imap.FetchOptions{}
	var secs []namedSection
	for _, raw := range items {
		it := strings.TrimSpace(raw)
		up := strings.ToUpper(it)
		switch up {
		case "FLAGS":
			fo.Flags = true
		case "UID":
			fo.UID = true
		case "RFC822.SIZE":
			fo.RFC822Size = true
		case "INTERNALDATE":
			fo.InternalDate = true
		case "ENVELOPE":
			fo.Envelope = true
		case "BODYSTRUCTURE":
			fo.BodyStructure = &imap.FetchItemBodyStructure{Extended: true}
		case "BODY":
			fo.BodyStructure = &imap.FetchItemBodyStructure{}
		case "MODSEQ":
			fo.ModSeq = true
		case "FAST", "ALL", "FULL":
			fo.Flags, fo.InternalDate, fo.RFC822Size = true, true, true
			if up != "FAST" {
				fo.Envelope = true
			}
			if up == "FULL" {
				fo.BodyStructure = &imap.FetchItemBodyStructure{}
			}
		case "RFC822":
			secs = append(secs, namedSection{name: it, body: &imap.FetchItemBodySection{}})
		case "RFC822.HEADER":
			secs = append(secs, namedSection{name: it, body: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}})
		case "RFC822.TEXT":
			secs = append(secs, namedSection{name: it, body: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}})
		default:
			ns, err := parseSectionItem(it)
			if err != nil {
				return nil, nil, err
			}
			secs = append(secs, ns)
		}
	}
	for _, s := range secs {
		switch {
		case s.body != nil:
			fo.BodySection = append(fo.BodySection, s.body)
		case s.binary != nil:
			fo.BinarySection = append(fo.BinarySection, s.binary)
		case s.size != nil:
			fo.BinarySectionSize = append(fo.BinarySectionSize, s.size)
		}
	}
	return fo, secs, nil
}

// parseSectionItem reads BODY[...], BODY.PEEK[...], BINARY[...],
// BINARY.PEEK[...] and BINARY.SIZE[...], each with an optional <o.n>.
func parseSectionItem(it string) (namedSection, error) {
	ns := namedSection{name: it}
	open := strings.IndexByte(it, '[')
	closeAt := strings.LastIndexByte(it, ']')
	if open < 0 || closeAt < open {
		return ns, fmt.Errorf("unknown fetch item %q", it)
	}
	kind := strings.ToUpper(it[:open])
	spec := it[open+1 : closeAt]
	partial, err := parsePartial(it[closeAt+1:])
	if err != nil {
		return ns, fmt.Errorf("fetch item %q: %w", it, err)
	}
	switch kind {
	case "BODY", "BODY.PEEK":
		sec, err := parseSectionSpec(spec)
		if err != nil {
			return ns, fmt.Errorf("fetch item %q: %w", it, err)
		}
		sec.Peek = kind == "BODY.PEEK"
		sec.Partial = partial
		ns.body = sec
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		part, err := parsePart(spec)
		if err != nil {
			return ns, fmt.Errorf("fetch item %q: %w", it, err)
		}
		if kind == "BINARY.SIZE" {
			if partial != nil {
				return ns, fmt.Errorf("fetch item %q: BINARY.SIZE takes no partial", it)
			}
			ns.size = &imap.FetchItemBinarySectionSize{Part: part}
		} else {
			ns.binary = &imap.FetchItemBinarySection{Part: part, Peek: kind == "BINARY.PEEK", Partial: partial}
		}
	default:
		return ns, fmt.Errorf("unknown fetch item %q", it)
	}
	return ns, nil
}

// parseSectionSpec reads "", "1.2", "HEADER", "1.TEXT", "2.MIME",
// "HEADER.FIELDS (A B)" and "HEADER.FIELDS.NOT (A B)".
func parseSectionSpec(spec string) (*imap.FetchItemBodySection, error) {
	sec := &imap.FetchItemBodySection{}
	name, fields, hasFields := strings.Cut(spec, " ")
	var words []string
	for w := range strings.SplitSeq(name, ".") {
		if w != "" {
			words = append(words, w)
		}
	}
	for len(words) > 0 {
		n, err := strconv.Atoi(words[0])
		if err != nil {
			break
		}
		if n <= 0 {
			return nil, fmt.Errorf("bad part number %q", words[0])
		}
		sec.Part = append(sec.Part, n)
		words = words[1:]
	}
	specifier := strings.ToUpper(strings.Join(words, "."))
	switch specifier {
	case "":
	case "HEADER":
		sec.Specifier = imap.PartSpecifierHeader
	case "TEXT":
		sec.Specifier = imap.PartSpecifierText
	case "MIME":
		if len(sec.Part) == 0 {
			return nil, fmt.Errorf("MIME needs a part number")
		}
		sec.Specifier = imap.PartSpecifierMIME
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		sec.Specifier = imap.PartSpecifierHeader
		list := strings.Fields(strings.Trim(strings.TrimSpace(fields), "()"))
		if len(list) == 0 {
			return nil, fmt.Errorf("%s needs a field list", specifier)
		}
		if specifier == "HEADER.FIELDS" {
			sec.HeaderFields = list
		} else {
			sec.HeaderFieldsNot = list
		}
		return sec, nil
	default:
		return nil, fmt.Errorf("unknown section %q", spec)
	}
	if hasFields {
		return nil, fmt.Errorf("unexpected %q in section", fields)
	}
	return sec, nil
}

func parsePart(spec string) ([]int, error) {
	var part []int
	if spec == "" {
		return nil, nil
	}
	for w := range strings.SplitSeq(spec, ".") {
		n, err := strconv.Atoi(w)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad part number %q", w)
		}
		part = append(part, n)
	}
	return part, nil
}

// parsePartial reads "<offset.size>" (or nothing).
func parsePartial(s string) (*imap.SectionPartial, error) {
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "<") || !strings.HasSuffix(s, ">") {
		return nil, fmt.Errorf("bad partial %q", s)
	}
	off, size, ok := strings.Cut(s[1:len(s)-1], ".")
	o, err1 := strconv.ParseInt(off, 10, 64)
	n, err2 := strconv.ParseInt(size, 10, 64)
	if !ok || err1 != nil || err2 != nil || o < 0 || n <= 0 {
		return nil, fmt.Errorf("bad partial %q", s)
	}
	return &imap.SectionPartial{Offset: o, Size: n}, nil
}

func fetchResult(m *imapclient.FetchMessageBuffer, fo *imap.FetchOptions, secs []namedSection) map[string]any {
	r := map[string]any{"seq": m.SeqNum}
	if fo.UID || m.UID != 0 {
		r["uid"] = uint32(m.UID)
	}
	if fo.Flags {
		r["flags"] = flagStrings(m.Flags)
	}
	if fo.RFC822Size {
		r["size"] = m.RFC822Size
	}
	if fo.InternalDate {
		r["internalDate"] = m.InternalDate.UTC().Format(time.RFC3339)
	}
	if fo.ModSeq {
		r["modseq"] = m.ModSeq
	}
	if fo.Envelope && m.Envelope != nil {
		r["envelope"] = envelopeResult(m.Envelope)
	}
	if fo.BodyStructure != nil && m.BodyStructure != nil {
		r["bodyStructure"] = bodyStructureResult(m.BodyStructure)
	}
	if len(secs) > 0 {
		sections := make(map[string]any, len(secs))
		for _, s := range secs {
			switch {
			case s.body != nil:
				sections[s.name] = string(m.FindBodySection(s.body))
			case s.binary != nil:
				sections[s.name] = string(m.FindBinarySection(s.binary))
			case s.size != nil:
				for _, bs := range m.BinarySectionSize {
					if intsEqual(bs.Part, s.size.Part) {
						sections[s.name] = bs.Size
					}
				}
			}
		}
		r["sections"] = sections
	}
	return r
}

func intsEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func envelopeResult(e *imap.Envelope) map[string]any {
	addrs := func(as []imap.Address) []string {
		out := make([]string, 0, len(as))
		for _, a := range as {
			out = append(out, a.Addr())
		}
		return out
	}
	r := map[string]any{
		"subject": e.Subject, "messageId": e.MessageID, "inReplyTo": e.InReplyTo,
		"from": addrs(e.From), "sender": addrs(e.Sender), "replyTo": addrs(e.ReplyTo),
		"to": addrs(e.To), "cc": addrs(e.Cc), "bcc": addrs(e.Bcc),
	}
	if !e.Date.IsZero() {
		r["date"] = e.Date.UTC().Format(time.RFC3339)
	}
	return r
}

// bodyStructureResult keeps the shape a load test checks: the MIME type,
// the size of single parts and the children of multiparts.
func bodyStructureResult(bs imap.BodyStructure) map[string]any {
	r := map[string]any{"type": strings.ToLower(bs.MediaType())}
	switch b := bs.(type) {
	case *imap.BodyStructureSinglePart:
		r["size"] = b.Size
		r["encoding"] = strings.ToLower(b.Encoding)
	case *imap.BodyStructureMultiPart:
		parts := make([]map[string]any, 0, len(b.Children))
		for _, ch := range b.Children {
			parts = append(parts, bodyStructureResult(ch))
		}
		r["parts"] = parts
	}
	return r
}
