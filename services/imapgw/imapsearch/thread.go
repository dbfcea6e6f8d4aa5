package imapsearch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// ThreadAlgorithm names a THREAD algorithm (RFC 5256 section 3).
type ThreadAlgorithm string

// Thread algorithms.
const (
	ThreadOrderedSubject ThreadAlgorithm = "ORDEREDSUBJECT"
	ThreadReferences     ThreadAlgorithm = "REFERENCES"
)

// ThreadNode is a node of a thread tree. Index is the message's index in
// the msgs given to Thread, or -1 for a dummy (a message known only from
// references, kept where it joins siblings at the top level).
type ThreadNode struct {
	Index    int
	Children []*ThreadNode
}

// ParseThread reads the arguments of THREAD (or UID THREAD) after the
// command name and its SP: algorithm SP charset SP search-keys, up to the
// CRLF. Errors are as for ParseSearch; an unknown algorithm is a syntax
// error.
func ParseThread(d *wire.Decoder, opts ParseOptions) (ThreadAlgorithm, *Program, error) {
	a, err := d.Atom()
	if err != nil {
		return "", nil, err
	}
	alg := ThreadAlgorithm(strings.ToUpper(a))
	if alg != ThreadOrderedSubject && alg != ThreadReferences {
		return "", nil, syntaxf("unknown thread algorithm %q", a)
	}
	if err := d.SP(); err != nil {
		return "", nil, err
	}
	prog, err := parseSearchCriteria(d, opts)
	if err != nil && prog == nil {
		return "", nil, err
	}
	return alg, prog, err
}

// Thread threads msgs (normally the messages a search matched) with alg.
// REFERENCES reads each message's header through acc for its References
// field; ORDEREDSUBJECT needs only the Structure.
func Thread(ctx context.Context, msgs []Message, alg ThreadAlgorithm, acc Accessor) ([]*ThreadNode, error) {
	sts, err := structures(ctx, msgs, acc)
	if err != nil {
		return nil, err
	}
	t := &threader{msgs: msgs, sts: sts}
	switch alg {
	case ThreadOrderedSubject:
		return t.orderedSubject(), nil
	case ThreadReferences:
		return t.references(ctx, acc)
	}
	return nil, fmt.Errorf("thread: unknown algorithm %q", alg)
}

type threader struct {
	msgs []Message
	sts  []*mime.Structure
	subj map[int]subjectInfo
}

type subjectInfo struct {
	base  string // i;ascii-casemap of the base subject
	reply bool
}

func (t *threader) subject(i int) subjectInfo {
	if t.subj == nil {
		t.subj = map[int]subjectInfo{}
	}
	si, ok := t.subj[i]
	if !ok {
		b, r := BaseSubject(t.sts[i].Envelope.Subject)
		si = subjectInfo{base: asciiUpper(b), reply: r}
		t.subj[i] = si
	}
	return si
}

func (t *threader) date(i int) time.Time { return sentDate(t.sts[i], &t.msgs[i], true) }

// byDate orders message indexes by sent date, then sequence number (RFC
// 5256 section 2.2).
func (t *threader) byDate(a, b int) int {
	if r := t.date(a).Compare(t.date(b)); r != 0 {
		return r
	}
	return cmp.Compare(t.msgs[a].Seq, t.msgs[b].Seq)
}

// orderedSubject: sort by base subject then date; each run of one subject
// is a thread whose first message is the parent of all the others; the
// threads are ordered by the date of their first message.
func (t *threader) orderedSubject() []*ThreadNode {
	idx := make([]int, len(t.msgs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if r := cmp.Compare(t.subject(a).base, t.subject(b).base); r != 0 {
			return r
		}
		return t.byDate(a, b)
	})
	var roots []*ThreadNode
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && t.subject(idx[j]).base == t.subject(idx[i]).base {
			j++
		}
		root := &ThreadNode{Index: idx[i]}
		for _, k := range idx[i+1 : j] {
			root.Children = append(root.Children, &ThreadNode{Index: k})
		}
		roots = append(roots, root)
		i = j
	}
	slices.SortStableFunc(roots, func(a, b *ThreadNode) int { return t.byDate(a.Index, b.Index) })
	return roots
}

// container is a node of the REFERENCES algorithm.
type container struct {
	msg      int // -1: dummy
	parent   *container
	children []*container
}

func (c *container) isDescendantOf(a *container) bool {
	for p := c; p != nil; p = p.parent {
		if p == a {
			return true
		}
	}
	return false
}

func (c *container) unlink() {
	if p := c.parent; p != nil {
		i := slices.Index(p.children, c)
		p.children = slices.Delete(p.children, i, i+1)
		c.parent = nil
	}
}

func (c *container) adopt(child *container) {
	child.parent = c
	c.children = append(c.children, child)
}

// link makes child a child of parent unless that would create a loop.
func link(parent, child *container) {
	if parent == child || parent.isDescendantOf(child) {
		return
	}
	child.unlink()
	parent.adopt(child)
}

// references is THREAD=REFERENCES, RFC 5256 section 3, steps 1 to 6.
func (t *threader) references(ctx context.Context, acc Accessor) ([]*ThreadNode, error) {
	order := make([]int, len(t.msgs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(t.msgs[a].Seq, t.msgs[b].Seq) })

	// (1) link messages by Message-ID, References and In-Reply-To.
	ids := map[string]*container{}
	var all []*container
	get := func(id string) *container {
		c := ids[id]
		if c == nil {
			c = &container{msg: -1}
			ids[id] = c
			all = append(all, c)
		}
		return c
	}
	for _, i := range order {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("thread: %w", err)
		}
		env := &t.sts[i].Envelope
		var c *container
		if id := firstMsgID(env.MessageID); id != "" && (ids[id] == nil || ids[id].msg < 0) {
			c = get(id)
		} else { // missing or duplicate Message-ID: a unique one
			c = &container{msg: -1}
			all = append(all, c)
		}
		c.msg = i
		refs, err := t.refs(ctx, acc, i)
		if err != nil {
			return nil, err
		}
		var prev *container
		for _, r := range refs {
			rc := get(r)
			// (A) chain the references, keeping existing parents.
			if prev != nil && rc.parent == nil {
				link(prev, rc)
			}
			prev = rc
		}
		// (B) the last reference is the parent of the message.
		if c.parent != nil {
			c.unlink()
		}
		if prev != nil {
			link(prev, c)
		}
	}

	// (2) the root set; (3) prune dummies.
	var roots []*container
	for _, c := range all {
		if c.parent == nil {
			roots = append(roots, c)
		}
	}
	roots = prune(roots, true)
	for _, r := range roots {
		r.parent = nil
	}

	// (4) sort the root set by date (a dummy by its earliest child).
	for _, r := range roots {
		if r.msg < 0 {
			t.sortSiblings(r.children)
		}
	}
	t.sortSiblings(roots)

	// (5) merge threads with the same base subject.
	rootSubject := func(c *container) (subjectInfo, bool) {
		if c.msg < 0 {
			if len(c.children) == 0 {
				return subjectInfo{}, false
			}
			return t.subject(c.children[0].msg), true
		}
		return t.subject(c.msg), true
	}
	table := map[string]*container{}
	for _, c := range roots {
		si, ok := rootSubject(c)
		if !ok || si.base == "" {
			continue
		}
		old := table[si.base]
		if old == nil {
			table[si.base] = c
		} else if old.msg >= 0 && (c.msg < 0 || (t.subject(old.msg).reply && !si.reply)) {
			table[si.base] = c
		}
	}
	removed := map[*container]bool{}
	for i, c := range roots {
		si, ok := rootSubject(c)
		if !ok || si.base == "" {
			continue
		}
		old := table[si.base]
		if old == c || old == nil {
			continue
		}
		switch {
		case old.msg < 0 && c.msg < 0:
			for _, ch := range c.children {
				old.adopt(ch)
			}
			c.children = nil
			removed[c] = true
		case old.msg < 0:
			old.adopt(c)
			removed[c] = true
		case c.msg >= 0 && si.reply && !t.subject(old.msg).reply:
			old.adopt(c)
			removed[c] = true
		default:
			d := &container{msg: -1}
			j := slices.Index(roots, old)
			d.adopt(old)
			d.adopt(c)
			roots[j] = d
			removed[c] = true
			table[si.base] = d
		}
		_ = i
	}
	roots = slices.DeleteFunc(roots, func(c *container) bool { return removed[c] })

	// (6) sort all siblings by date, deepest first.
	var sortTree func(cs []*container)
	sortTree = func(cs []*container) {
		for _, c := range cs {
			sortTree(c.children)
		}
		t.sortSiblings(cs)
	}
	sortTree(roots)

	out := make([]*ThreadNode, len(roots))
	for i, r := range roots {
		out[i] = toNode(r)
	}
	return out, nil
}

// sortSiblings orders containers by date and sequence number; a dummy
// sorts as its first child.
func (t *threader) sortSiblings(cs []*container) {
	first := func(c *container) int {
		for c.msg < 0 && len(c.children) > 0 {
			c = c.children[0]
		}
		return c.msg
	}
	slices.SortStableFunc(cs, func(a, b *container) int {
		ia, ib := first(a), first(b)
		if ia < 0 || ib < 0 {
			return cmp.Compare(ia, ib)
		}
		return t.byDate(ia, ib)
	})
}

// prune removes dummies (RFC 5256 step 3): without children they go;
// with children they are replaced by them, except at the top level when
// there are two or more.
func prune(cs []*container, top bool) []*container {
	var out []*container
	for _, c := range cs {
		c.children = prune(c.children, false)
		for _, ch := range c.children {
			ch.parent = c
		}
		if c.msg >= 0 {
			out = append(out, c)
			continue
		}
		switch {
		case len(c.children) == 0:
		case !top || len(c.children) == 1:
			out = append(out, c.children...)
		default:
			out = append(out, c)
		}
	}
	return out
}

func toNode(c *container) *ThreadNode {
	n := &ThreadNode{Index: c.msg}
	for _, ch := range c.children {
		n.Children = append(n.Children, toNode(ch))
	}
	return n
}

// refs returns the message's references: the msg-ids of its References
// field, or else the first of In-Reply-To (RFC 5256 step 1).
func (t *threader) refs(ctx context.Context, acc Accessor, i int) ([]string, error) {
	h, err := acc.Header(ctx, &t.msgs[i])
	if err != nil {
		return nil, fmt.Errorf("read header of message uid %d: %w", t.msgs[i].UID, err)
	}
	var refs []string
	for _, f := range parseHeaderFields(h) {
		if strings.EqualFold(f.name, "References") {
			refs = append(refs, msgIDs(f.value)...)
		}
	}
	if len(refs) > 0 {
		return refs, nil
	}
	if id := firstMsgID(t.sts[i].Envelope.InReplyTo); id != "" {
		return []string{id}, nil
	}
	return nil, nil
}

// msgIDs extracts the "<...>" message ids of a field, with white space
// inside them removed; empty ones are skipped.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return out
		}
		v = v[i+1:]
		j := strings.IndexAny(v, "<>")
		if j < 0 {
			return out
		}
		if v[j] == '>' {
			id := strings.Join(strings.Fields(v[:j]), "")
			if id != "" {
				out = append(out, "<"+id+">")
			}
			v = v[j+1:]
		}
	}
}

func firstMsgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// WriteThread writes "* THREAD" with the threads and its CRLF (RFC 5256
// section 4), e.g. "* THREAD (2)(3 6 (4 23)(44 7 96))"; num maps a
// message index to its sequence number or UID.
func WriteThread(e *wire.Encoder, threads []*ThreadNode, num func(index int) uint32) {
	e.Raw("* THREAD")
	if len(threads) > 0 {
		e.SP()
	}
	for _, t := range threads {
		e.Open()
		writeMembers(e, t, num)
		e.Close()
	}
	e.CRLF()
}

// writeMembers writes the inside of one thread-list: a chain of single
// children as numbers, then the branches as nested lists.
func writeMembers(e *wire.Encoder, n *ThreadNode, num func(int) uint32) {
	first := true
	for {
		if n.Index >= 0 {
			if !first {
				e.SP()
			}
			e.Number(uint64(num(n.Index)))
			first = false
		}
		if len(n.Children) == 1 {
			n = n.Children[0]
			continue
		}
		if len(n.Children) > 1 {
			if !first {
				e.SP()
			}
			for _, c := range n.Children {
				e.Open()
				writeMembers(e, c, num)
				e.Close()
			}
		}
		return
	}
}
