// Package imapsearch parses and evaluates IMAP SEARCH (RFC 9051 and RFC
// 3501 section 6.4.4, with ESEARCH return options of RFC 4731, SEARCHRES
// of RFC 5182 and the CONDSTORE MODSEQ key of RFC 7162), SORT and THREAD
// (RFC 5256, DISPLAYFROM/DISPLAYTO of RFC 5957), and writes their
// responses.
//
// It sits between the session, which owns the mailbox view and the
// sequence-number map, and the bytes of messages, which live in the blob
// store. A parsed Program is evaluated over the session's messages with
// the cheapest keys first (flags, numbers, sizes, dates, then envelope
// fields from the metadata index), so that bytes are read through the
// Accessor only for messages that survive them, and only when a key needs
// them (HEADER, BODY, TEXT). BODY and TEXT stream each text part through
// its transfer decoding and charset conversion into a rolling-window
// matcher: memory stays bounded whatever the message size.
package imapsearch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// ErrBadCharset: the CHARSET of a SEARCH, SORT or THREAD is neither UTF-8
// nor US-ASCII. The session answers NO [BADCHARSET (UTF-8 US-ASCII)]. The
// command was read to its end (but not its CRLF) before this is returned.
var ErrBadCharset = errors.New("unsupported search charset")

// ErrTooComplex: the search program exceeds ParseOptions limits. The
// session answers NO (or BAD); the rest of the line is unread.
var ErrTooComplex = errors.New("search program too complex")

// Defaults of ParseOptions.
const (
	DefaultMaxDepth     = 64
	DefaultMaxKeys      = 4096
	DefaultMaxTextBytes = 128 << 20
)

// ParseOptions bound the programs accepted and the work they may do.
// Zero fields take the defaults.
type ParseOptions struct {
	// MaxDepth bounds the nesting of parentheses, NOT and OR.
	MaxDepth int
	// MaxKeys bounds the number of search keys.
	MaxKeys int
	// MaxTextBytes bounds the bytes of one message read for BODY and
	// TEXT; past it the message does not match. Negative: no bound.
	MaxTextBytes int64
}

func (o ParseOptions) withDefaults() ParseOptions {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MaxTextBytes == 0 {
		o.MaxTextBytes = DefaultMaxTextBytes
	}
	return o
}

// ReturnOptions are the ESEARCH return options (RFC 4731, RFC 5182).
type ReturnOptions struct {
	// Set: the command had a RETURN clause. Without one, an IMAP4rev1
	// session answers with SEARCH and an IMAP4rev2 session with ESEARCH
	// ALL. "RETURN ()" sets All.
	Set                        bool
	Min, Max, Count, All, Save bool
}

// ESearch reports whether the answer is an ESEARCH response: a RETURN
// clause with something other than SAVE alone (RFC 5182 section 2.1:
// SAVE alone produces no response).
func (o ReturnOptions) ESearch() bool {
	return o.Set && (o.Min || o.Max || o.Count || o.All)
}

// SaveResult returns what SAVE stores from the sorted result nums (RFC
// 5182 section 2.4): only the MIN and/or MAX message when SAVE comes with
// MIN or MAX but neither ALL nor COUNT; all of nums otherwise. It returns
// nil when SAVE is not set.
func (o ReturnOptions) SaveResult(nums []uint32) []uint32 {
	if !o.Save {
		return nil
	}
	if (o.Min || o.Max) && !o.All && !o.Count && len(nums) > 0 {
		var out []uint32
		if o.Min {
			out = append(out, nums[0])
		}
		if o.Max && (!o.Min || len(nums) > 1) {
			out = append(out, nums[len(nums)-1])
		}
		return out
	}
	return append([]uint32{}, nums...)
}

// Program is a parsed search.
type Program struct {
	// Return holds the RETURN options.
	Return ReturnOptions
	// Charset is the CHARSET given, upper case, or "" when none was.
	Charset string
	// Saved is the result saved by an earlier SEARCH RETURN (SAVE), as
	// UIDs, which "$" refers to (RFC 5182). The session sets it before
	// Eval; nil means no saved result, and "$" matches nothing.
	Saved mail.UIDSet

	root         *node
	usesModSeq   bool
	usesSaved    bool
	maxTextBytes int64
}

// UsesModSeq reports whether the program has a MODSEQ key, so that the
// response carries the MODSEQ of RFC 7162 section 3.1.5 and CONDSTORE is
// enabled for the session.
func (p *Program) UsesModSeq() bool { return p.usesModSeq }

// UsesSaved reports whether the program refers to the saved result "$".
func (p *Program) UsesSaved() bool { return p.usesSaved }

// String renders the program for logs and tests (not IMAP syntax).
func (p *Program) String() string { return p.root.String() }

// op is the kind of a search node.
type op uint8

const (
	opAll op = iota
	opAnd
	opOr
	opNot
	opSeq        // set of sequence numbers
	opUID        // set of UIDs
	opFlag       // flag or keyword set
	opRecent     // \Recent
	opBefore     // internal date
	opOn         //
	opSince      //
	opSentBefore // Date header
	opSentOn     //
	opSentSince  //
	opLarger
	opSmaller
	opAddress // FROM TO CC BCC: field in name, pattern in value
	opSubject
	opHeader // HEADER name value
	opBody
	opText
	opModSeq
)

var opNames = [...]string{
	opAll: "ALL", opAnd: "AND", opOr: "OR", opNot: "NOT", opSeq: "SEQ", opUID: "UID",
	opFlag: "FLAG", opRecent: "RECENT", opBefore: "BEFORE", opOn: "ON", opSince: "SINCE",
	opSentBefore: "SENTBEFORE", opSentOn: "SENTON", opSentSince: "SENTSINCE",
	opLarger: "LARGER", opSmaller: "SMALLER", opAddress: "ADDRESS", opSubject: "SUBJECT",
	opHeader: "HEADER", opBody: "BODY", opText: "TEXT", opModSeq: "MODSEQ",
}

// Cost classes, cheapest first: what a key needs to be decided.
const (
	costIndex    = 0 // flags, numbers, sizes, internal date
	costEnvelope = 1 // the parsed Structure from the index
	costHeader   = 2 // the top-level header bytes
	costBody     = 3 // the whole message stream
)

type node struct {
	op    op
	cost  int
	sub   []*node
	set   SeqSet
	flag  mail.Flag
	day   int    // date keys: yyyymmdd
	n     uint64 // LARGER, SMALLER, MODSEQ
	name  string // HEADER field name, address field (lower case)
	value string // pattern, folded for matching
	raw   string // pattern as given, for String
}

func (n *node) String() string {
	var sb strings.Builder
	n.write(&sb)
	return sb.String()
}

func (n *node) write(sb *strings.Builder) {
	sb.WriteString(opNames[n.op])
	switch n.op {
	case opAnd, opOr, opNot:
		sb.WriteByte('(')
		for i, s := range n.sub {
			if i > 0 {
				sb.WriteByte(' ')
			}
			s.write(sb)
		}
		sb.WriteByte(')')
	case opSeq, opUID:
		sb.WriteByte(' ')
		sb.WriteString(n.set.String())
	case opFlag:
		sb.WriteByte(' ')
		sb.WriteString(string(n.flag))
	case opBefore, opOn, opSince, opSentBefore, opSentOn, opSentSince:
		fmt.Fprintf(sb, " %08d", n.day)
	case opLarger, opSmaller, opModSeq:
		fmt.Fprintf(sb, " %d", n.n)
	case opAddress, opHeader:
		fmt.Fprintf(sb, " %s %q", n.name, n.raw)
	case opSubject, opBody, opText:
		fmt.Fprintf(sb, " %q", n.raw)
	}
}

// parser carries the limits and counters of one parse.
type parser struct {
	d     *wire.Decoder
	opts  ParseOptions
	keys  int
	prog  *Program
	depth int
	// pending is a key name already read by peekWord.
	pending string
}

func syntaxf(format string, args ...any) error {
	return &wire.SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// ParseSearch reads the arguments of SEARCH (or UID SEARCH), after the
// command name and its SP: an optional RETURN clause, an optional CHARSET
// and one or more search keys, up to but not including the CRLF. Syntax
// errors are *wire.SyntaxError (BAD); an unsupported charset is
// ErrBadCharset (NO [BADCHARSET]), reported only once the whole command
// was read.
func ParseSearch(d *wire.Decoder, opts ParseOptions) (*Program, error) {
	p := newParser(d, opts)
	tok, err := p.peekWord()
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(tok, "RETURN") {
		if err := p.parseReturn(); err != nil {
			return nil, err
		}
		if tok, err = p.peekWord(); err != nil {
			return nil, err
		}
	}
	var charsetErr error
	if strings.EqualFold(tok, "CHARSET") {
		p.pending = ""
		if err := d.SP(); err != nil {
			return nil, err
		}
		if charsetErr, err = p.parseCharset(); err != nil {
			return nil, err
		}
		if err := d.SP(); err != nil {
			return nil, err
		}
	}
	if err := p.parseKeys(); err != nil {
		return nil, err
	}
	return p.prog, charsetErr
}

// parseSearchCriteria reads the mandatory charset and the keys of SORT
// and THREAD.
func parseSearchCriteria(d *wire.Decoder, opts ParseOptions) (*Program, error) {
	p := newParser(d, opts)
	charsetErr, err := p.parseCharset()
	if err != nil {
		return nil, err
	}
	if err := d.SP(); err != nil {
		return nil, err
	}
	if err := p.parseKeys(); err != nil {
		return nil, err
	}
	return p.prog, charsetErr
}

func newParser(d *wire.Decoder, opts ParseOptions) *parser {
	opts = opts.withDefaults()
	return &parser{d: d, opts: opts, prog: &Program{maxTextBytes: opts.MaxTextBytes}}
}

// peekWord returns the next token's text without consuming it, only
// when it is a plain atom ("RETURN", "CHARSET"); otherwise "".
func (p *parser) peekWord() (string, error) {
	b, err := p.d.Peek()
	if err != nil {
		return "", err
	}
	if b != 'R' && b != 'r' && b != 'C' && b != 'c' {
		return "", nil
	}
	// RETURN and CHARSET are followed by SP; a search key cannot start
	// with either word, so reading the atom and keeping it is safe.
	a, err := p.d.Atom()
	if err != nil {
		return "", err
	}
	p.pending = a
	return a, nil
}

func (p *parser) parseCharset() (error, error) {
	cs, err := p.d.AString()
	if err != nil {
		return nil, err
	}
	p.prog.Charset = strings.ToUpper(cs)
	switch p.prog.Charset {
	case "UTF-8", "US-ASCII", "UTF8":
		return nil, nil
	}
	return fmt.Errorf("%w: %q", ErrBadCharset, cs), nil
}

func (p *parser) parseReturn() error {
	p.pending = ""
	if err := p.d.SP(); err != nil {
		return err
	}
	r := &p.prog.Return
	r.Set = true
	err := p.d.List(func() error {
		a, err := p.d.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "MIN":
			r.Min = true
		case "MAX":
			r.Max = true
		case "COUNT":
			r.Count = true
		case "ALL":
			r.All = true
		case "SAVE":
			r.Save = true
		default:
			return syntaxf("unknown search return option %q", a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !r.Min && !r.Max && !r.Count && !r.All && !r.Save {
		r.All = true // RETURN () is RETURN (ALL)
	}
	return p.d.SP()
}

// parseKeys reads keys separated by SP to the end of the line.
func (p *parser) parseKeys() error {
	root := &node{op: opAnd}
	for {
		k, err := p.parseKey()
		if err != nil {
			return err
		}
		root.sub = append(root.sub, k)
		if p.d.AtEOL() {
			break
		}
		if err := p.d.SP(); err != nil {
			return err
		}
	}
	p.prog.root = optimize(root)
	return nil
}
