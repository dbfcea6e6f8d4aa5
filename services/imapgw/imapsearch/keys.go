package imapsearch

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
)

// parseKey reads one search key (RFC 9051 search-key, RFC 7162 MODSEQ,
// RFC 5182 "$").
func (p *parser) parseKey() (*node, error) {
	p.keys++
	if p.keys > p.opts.MaxKeys {
		return nil, fmt.Errorf("%w: more than %d keys", ErrTooComplex, p.opts.MaxKeys)
	}
	name := p.pending
	p.pending = ""
	if name == "" {
		b, err := p.d.Peek()
		if err != nil {
			return nil, err
		}
		switch {
		case b == '(':
			return p.parseGroup()
		case b >= '0' && b <= '9', b == '*', b == '$':
			return p.parseSet(opSeq)
		}
		if name, err = p.d.Atom(); err != nil {
			return nil, err
		}
	}
	switch key := strings.ToUpper(name); key {
	case "ALL":
		return &node{op: opAll}, nil
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		return flagNode(mail.Flag(`\` + key[:1] + strings.ToLower(key[1:]))), nil
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		return not(flagNode(mail.Flag(`\` + key[2:3] + strings.ToLower(key[3:])))), nil
	case "KEYWORD", "UNKEYWORD":
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		f, err := p.d.Flag()
		if err != nil {
			return nil, err
		}
		n := flagNode(mail.Flag(f))
		if key == "UNKEYWORD" {
			return not(n), nil
		}
		return n, nil
	case "RECENT":
		return &node{op: opRecent}, nil
	case "NEW":
		return &node{op: opAnd, sub: []*node{{op: opRecent}, not(flagNode(mail.FlagSeen))}}, nil
	case "OLD":
		return not(&node{op: opRecent}), nil
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		s, err := p.d.AString()
		if err != nil {
			return nil, err
		}
		day, err := parseDate(s)
		if err != nil {
			return nil, err
		}
		return &node{op: dateOps[key], day: day}, nil
	case "LARGER", "SMALLER":
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		n, err := p.d.Number64()
		if err != nil {
			return nil, err
		}
		o := opLarger
		if key == "SMALLER" {
			o = opSmaller
		}
		return &node{op: o, n: n}, nil
	case "FROM", "TO", "CC", "BCC", "SUBJECT", "BODY", "TEXT":
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		s, err := p.d.AString()
		if err != nil {
			return nil, err
		}
		n := &node{op: opAddress, name: strings.ToLower(key), value: fold(s), raw: s}
		switch key {
		case "SUBJECT":
			n.op = opSubject
		case "BODY":
			n.op = opBody
		case "TEXT":
			n.op = opText
		}
		return n, nil
	case "HEADER":
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		field, err := p.d.AString()
		if err != nil {
			return nil, err
		}
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		s, err := p.d.AString()
		if err != nil {
			return nil, err
		}
		if field == "" || strings.ContainsAny(field, ": \t\r\n") {
			return nil, syntaxf("bad header field name %q", field)
		}
		return &node{op: opHeader, name: strings.ToLower(field), value: fold(s), raw: s}, nil
	case "UID":
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		return p.parseSet(opUID)
	case "NOT":
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		k, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		return not(k), nil
	case "OR":
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		n := &node{op: opOr}
		for range 2 {
			if err := p.d.SP(); err != nil {
				return nil, err
			}
			k, err := p.parseKey()
			if err != nil {
				return nil, err
			}
			n.sub = append(n.sub, k)
		}
		return n, nil
	case "MODSEQ":
		return p.parseModSeq()
	default:
		return nil, syntaxf("unknown search key %q", name)
	}
}

var dateOps = map[string]op{
	"BEFORE": opBefore, "ON": opOn, "SINCE": opSince,
	"SENTBEFORE": opSentBefore, "SENTON": opSentOn, "SENTSINCE": opSentSince,
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > p.opts.MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrTooComplex, p.opts.MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseGroup reads "(" search-key *(SP search-key) ")".
func (p *parser) parseGroup() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if err := p.d.Expect('('); err != nil {
		return nil, err
	}
	n := &node{op: opAnd}
	for {
		k, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		n.sub = append(n.sub, k)
		if !p.d.PeekIs(' ') {
			break
		}
		_ = p.d.SP()
	}
	if err := p.d.Expect(')'); err != nil {
		return nil, err
	}
	return n, nil
}

func (p *parser) parseSet(o op) (*node, error) {
	w, err := p.d.Word()
	if err != nil {
		return nil, err
	}
	set, err := ParseSeqSet(w)
	if err != nil {
		return nil, syntaxf("%v", err)
	}
	if set.Saved {
		p.prog.usesSaved = true
	}
	return &node{op: o, set: set}, nil
}

// parseModSeq reads the rest of "MODSEQ" [SP entry-name SP entry-type-req]
// SP mod-sequence-valzer (RFC 7162 section 3.1.5). Per-flag mod-sequences
// are not kept, so the entry is checked and then ignored: the message's
// MODSEQ stands for all of them, which RFC 7162 allows.
func (p *parser) parseModSeq() (*node, error) {
	if err := p.d.SP(); err != nil {
		return nil, err
	}
	if p.d.PeekIs('"') {
		entry, err := p.d.Quoted()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(strings.ToLower(entry), "/flags/") || len(entry) == len("/flags/") {
			return nil, syntaxf("bad MODSEQ entry name %q", entry)
		}
		if err := p.d.SP(); err != nil {
			return nil, err
		}
		typ, err := p.d.Atom()
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(typ) {
		case "priv", "shared", "all":
		default:
			return nil, syntaxf("bad MODSEQ entry type %q", typ)
		}
		if err := p.d.SP(); err != nil {
			return nil, err
		}
	}
	n, err := p.d.Number64()
	if err != nil {
		return nil, err
	}
	p.prog.usesModSeq = true
	return &node{op: opModSeq, n: n}, nil
}

func flagNode(f mail.Flag) *node {
	if c, err := mail.CanonicalFlag(string(f)); err == nil {
		f = c
	}
	return &node{op: opFlag, flag: f}
}

func not(n *node) *node {
	if n.op == opNot {
		return n.sub[0]
	}
	return &node{op: opNot, sub: []*node{n}}
}

var months = map[string]int{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}

// parseDate reads an IMAP date "1-Feb-1994" (day of one or two digits)
// into yyyymmdd.
func parseDate(s string) (int, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 || len(parts[0]) < 1 || len(parts[0]) > 2 || len(parts[2]) != 4 {
		return 0, syntaxf("bad date %q", s)
	}
	d, err1 := strconv.Atoi(parts[0])
	y, err2 := strconv.Atoi(parts[2])
	m, ok := months[strings.ToLower(parts[1])]
	if err1 != nil || err2 != nil || !ok || d < 1 || d > daysIn(m, y) || parts[0][0] == '+' || parts[2][0] == '+' || parts[2][0] == '-' {
		return 0, syntaxf("bad date %q", s)
	}
	return y*10000 + m*100 + d, nil
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// optimize flattens nested ANDs, computes costs and orders the operands of
// AND and OR cheapest first, so evaluation reads bytes last.
func optimize(n *node) *node {
	for i, s := range n.sub {
		n.sub[i] = optimize(s)
	}
	switch n.op {
	case opAnd:
		var flat []*node
		for _, s := range n.sub {
			if s.op == opAnd {
				flat = append(flat, s.sub...)
			} else if s.op != opAll || len(n.sub) == 1 {
				flat = append(flat, s)
			}
		}
		if len(flat) == 0 {
			return &node{op: opAll}
		}
		if len(flat) == 1 {
			return flat[0]
		}
		n.sub = flat
		sort.SliceStable(n.sub, func(i, j int) bool { return n.sub[i].cost < n.sub[j].cost })
		n.cost = n.sub[len(n.sub)-1].cost
	case opOr:
		sort.SliceStable(n.sub, func(i, j int) bool { return n.sub[i].cost < n.sub[j].cost })
		n.cost = n.sub[len(n.sub)-1].cost
	case opNot:
		n.cost = n.sub[0].cost
	case opSentBefore, opSentOn, opSentSince, opAddress, opSubject:
		n.cost = costEnvelope
	case opHeader:
		n.cost = costHeader
	case opBody, opText:
		n.cost = costBody
	default:
		n.cost = costIndex
	}
	return n
}
