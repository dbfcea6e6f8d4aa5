package imapsearch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/mime"
)

// Message is what a search, a sort or a threading sees of one message of
// the selected mailbox: the index entry, the session's sequence number
// and \Recent, and the parsed structure.
type Message struct {
	Seq          uint32
	UID          mail.UID
	Flags        []mail.Flag
	InternalDate time.Time
	Size         int64
	ModSeq       mail.ModSeq
	// Recent is \Recent as this session sees it (RFC 3501).
	Recent bool
	// Structure is the parse stored in the index. When nil, the header is
	// read and scanned for keys that need the envelope, and BODY/TEXT
	// match the raw stream.
	Structure *mime.Structure
}

// Accessor reads the bytes of a message, for the keys that need them.
type Accessor interface {
	// Header returns the top-level header, BODY[HEADER].
	Header(ctx context.Context, msg *Message) ([]byte, error)
	// Body streams the whole message, BODY[].
	Body(ctx context.Context, msg *Message) (io.ReadCloser, error)
}

// Eval returns the indexes in msgs of the messages that match, in order.
// msgs must be the whole selected mailbox in sequence order, since "*"
// stands for its last message; each message's bytes are read through acc
// only when a key needs them and the cheaper keys did not decide. An
// error from acc or ctx ends the search.
func (p *Program) Eval(ctx context.Context, msgs []Message, acc Accessor) ([]int, error) {
	var maxSeq uint32
	var maxUID mail.UID
	for i := range msgs {
		maxSeq = max(maxSeq, msgs[i].Seq)
		maxUID = max(maxUID, msgs[i].UID)
	}
	sets := map[*node]Resolved{}
	var resolve func(n *node)
	resolve = func(n *node) {
		switch n.op {
		case opSeq:
			sets[n] = n.set.Resolve(maxSeq)
		case opUID:
			sets[n] = n.set.Resolve(uint32(maxUID))
		}
		for _, s := range n.sub {
			resolve(s)
		}
	}
	resolve(p.root)
	var out []int
	for i := range msgs {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("search: %w", err)
			}
		}
		e := msgEval{ctx: ctx, p: p, acc: acc, sets: sets, m: &msgs[i]}
		ok, err := e.eval(p.root)
		if err != nil {
			return nil, fmt.Errorf("search message uid %d: %w", msgs[i].UID, err)
		}
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// msgEval evaluates a program on one message, reading and caching what
// the keys need.
type msgEval struct {
	ctx  context.Context
	p    *Program
	acc  Accessor
	sets map[*node]Resolved
	m    *Message

	st       *mime.Structure
	hdr      []byte
	hdrRead  bool
	fields   []headerField
	fieldsOK bool
}

func (e *msgEval) eval(n *node) (bool, error) {
	m := e.m
	switch n.op {
	case opAll:
		return true, nil
	case opAnd:
		for _, s := range n.sub {
			if ok, err := e.eval(s); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	case opOr:
		for _, s := range n.sub {
			if ok, err := e.eval(s); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	case opNot:
		ok, err := e.eval(n.sub[0])
		return !ok && err == nil, err
	case opSeq, opUID:
		if n.set.Saved {
			return e.p.Saved.Contains(m.UID), nil
		}
		if n.op == opSeq {
			return e.sets[n].Contains(m.Seq), nil
		}
		return e.sets[n].Contains(uint32(m.UID)), nil
	case opFlag:
		for _, f := range m.Flags {
			if strings.EqualFold(string(f), string(n.flag)) {
				return true, nil
			}
		}
		return false, nil
	case opRecent:
		return m.Recent, nil
	case opBefore:
		return dayOf(m.InternalDate.UTC()) < n.day, nil
	case opOn:
		return dayOf(m.InternalDate.UTC()) == n.day, nil
	case opSince:
		return dayOf(m.InternalDate.UTC()) >= n.day, nil
	case opSentBefore, opSentOn, opSentSince:
		st, err := e.structure()
		if err != nil {
			return false, err
		}
		d := dayOf(sentDate(st, m, false))
		switch n.op {
		case opSentBefore:
			return d < n.day, nil
		case opSentOn:
			return d == n.day, nil
		}
		return d >= n.day, nil
	case opLarger:
		return m.Size > 0 && uint64(m.Size) > n.n, nil
	case opSmaller:
		return m.Size < 0 || uint64(m.Size) < n.n, nil
	case opModSeq:
		return uint64(m.ModSeq) >= n.n, nil
	case opSubject:
		st, err := e.structure()
		if err != nil {
			return false, err
		}
		return strings.Contains(fold(decodeHeader(st.Envelope.Subject)), n.value), nil
	case opAddress:
		st, err := e.structure()
		if err != nil {
			return false, err
		}
		return strings.Contains(fold(addressText(addressField(&st.Envelope, n.name))), n.value), nil
	case opHeader:
		fields, err := e.headerFields()
		if err != nil {
			return false, err
		}
		for _, f := range fields {
			if strings.EqualFold(f.name, n.name) && (n.value == "" || strings.Contains(fold(decodeHeader(f.value)), n.value)) {
				return true, nil
			}
		}
		return false, nil
	case opBody, opText:
		return e.matchText(n.value, n.op == opText)
	}
	return false, fmt.Errorf("search: unknown operation %d", n.op)
}

func (e *msgEval) header() ([]byte, error) {
	if !e.hdrRead {
		h, err := e.acc.Header(e.ctx, e.m)
		if err != nil {
			return nil, fmt.Errorf("read header: %w", err)
		}
		e.hdr, e.hdrRead = h, true
	}
	return e.hdr, nil
}

func (e *msgEval) headerFields() ([]headerField, error) {
	if !e.fieldsOK {
		h, err := e.header()
		if err != nil {
			return nil, err
		}
		e.fields, e.fieldsOK = parseHeaderFields(h), true
	}
	return e.fields, nil
}

// structure returns the message's Structure, scanning its header when the
// index had none.
func (e *msgEval) structure() (*mime.Structure, error) {
	if e.m.Structure != nil {
		return e.m.Structure, nil
	}
	if e.st == nil {
		h, err := e.header()
		if err != nil {
			return nil, err
		}
		e.st = scanHeader(h)
	}
	return e.st, nil
}

// scanHeader parses a header alone into a Structure (for its envelope).
func scanHeader(h []byte) *mime.Structure {
	st, err := mime.Scan(bytes.NewReader(h), mime.Limits{})
	if err != nil || st == nil {
		return &mime.Structure{}
	}
	return st
}

func dayOf(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// sentDate is the date of the Date header: in its own time zone for
// SENT* (RFC 3501: "disregarding time and timezone"), in UTC for SORT and
// THREAD (utc set). When the header is missing or unparseable, it is the
// internal date, as RFC 5256 section 2.2 says for sorting.
func sentDate(st *mime.Structure, m *Message, utc bool) time.Time {
	if !utc && st.Envelope.Date != "" {
		if t, err := netmail.ParseDate(st.Envelope.Date); err == nil {
			return t
		}
	}
	if !st.Date.IsZero() {
		return st.Date.UTC()
	}
	return m.InternalDate.UTC()
}

func addressField(env *mime.Envelope, name string) []mime.Address {
	switch name {
	case "from":
		return env.From
	case "to":
		return env.To
	case "cc":
		return env.Cc
	case "bcc":
		return env.Bcc
	}
	return nil
}

// addressText renders an address list back to header-like text with the
// display names decoded: `Name <local@host>, group: ...;`. FROM, TO, CC
// and BCC match on it, so that the envelope in the index decides them
// without reading the header from the blob store.
func addressText(as []mime.Address) string {
	var sb strings.Builder
	for i, a := range as {
		if i > 0 && a.Kind != mime.AddrGroupEnd {
			sb.WriteString(", ")
		}
		switch a.Kind {
		case mime.AddrGroupStart:
			sb.WriteString(decodeHeader(a.Mailbox))
			sb.WriteByte(':')
		case mime.AddrGroupEnd:
			sb.WriteByte(';')
		default:
			name := decodeHeader(a.Name)
			if name != "" {
				sb.WriteString(name)
				sb.WriteString(" <")
			}
			sb.WriteString(a.Mailbox)
			if a.Host != "" {
				sb.WriteByte('@')
				sb.WriteString(a.Host)
			}
			if name != "" {
				sb.WriteByte('>')
			}
		}
	}
	return sb.String()
}
