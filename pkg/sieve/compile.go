package sieve

import (
	"fmt"
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
)

// supportedCaps are the capabilities "require" accepts.
var supportedCaps = map[string]bool{
	"fileinto":                   true,
	"envelope":                   true,
	"copy":                       true,
	"mailbox":                    true,
	"imap4flags":                 true,
	"subaddress":                 true,
	"body":                       true,
	"comparator-i;octet":         true,
	"comparator-i;ascii-casemap": true,
}

// sendingCaps maps extensions that send mail to the action they provide.
var sendingCaps = map[string]string{
	"vacation":         "vacation",
	"vacation-seconds": "vacation",
	"reject":           "reject",
	"ereject":          "ereject",
	"enotify":          "notify",
}

// sendingCmds are commands refused because they send mail.
var sendingCmds = map[string]bool{
	"redirect": true, "vacation": true, "reject": true, "ereject": true, "notify": true,
}

type compiler struct {
	caps map[string]bool
}

func errAt(p pos, sentinel error, format string, args ...any) error {
	return &SyntaxError{Line: p.line, Column: p.col, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

func refused(p pos, what string) error {
	return errAt(p, ErrSendsMail, "%s is not supported: this service does not send mail", what)
}

func (c *compiler) need(p pos, capability, what string) error {
	if !c.caps[capability] {
		return errAt(p, nil, "%s needs require %q", what, capability)
	}
	return nil
}

func (c *compiler) block(nodes []*cmdNode, top bool) ([]command, error) {
	var out []command
	requireAllowed := top
	for i := 0; i < len(nodes); i++ {
		n := nodes[i]
		name := strings.ToLower(n.name)
		if name == "require" {
			if !requireAllowed {
				return nil, errAt(n.pos, nil, "require must come before any other command")
			}
			if err := c.require(n); err != nil {
				return nil, err
			}
			continue
		}
		requireAllowed = false
		switch name {
		case "if":
			cmd, next, err := c.ifChain(nodes, i)
			if err != nil {
				return nil, err
			}
			out = append(out, cmd)
			i = next - 1
		case "elsif", "else":
			return nil, errAt(n.pos, nil, "%s without a preceding if", name)
		default:
			cmd, err := c.action(n, name)
			if err != nil {
				return nil, err
			}
			out = append(out, cmd)
		}
	}
	return out, nil
}

func (c *compiler) require(n *cmdNode) error {
	if err := noBlockOrTests(n); err != nil {
		return err
	}
	if len(n.args) != 1 || n.args[0].kind != argStrings {
		return errAt(n.pos, nil, "require takes one string list of capabilities")
	}
	for _, capName := range n.args[0].strs {
		lc := strings.ToLower(capName)
		if what, ok := sendingCaps[lc]; ok {
			return refused(n.args[0].pos, what)
		}
		if !supportedCaps[lc] {
			return errAt(n.args[0].pos, ErrUnsupported, "extension %q is not supported", capName)
		}
		c.caps[lc] = true
	}
	return nil
}

func noBlockOrTests(n *cmdNode) error {
	if len(n.tests) > 0 {
		return errAt(n.tests[0].pos, nil, "%s takes no test", n.name)
	}
	if n.hasBlock {
		return errAt(n.pos, nil, `%s takes no block; end it with ";"`, n.name)
	}
	return nil
}

// ifChain compiles nodes[i] (an if) and the elsif/else nodes after it, and
// returns the index of the first node after the chain.
func (c *compiler) ifChain(nodes []*cmdNode, i int) (command, int, error) {
	cmd := &ifCmd{}
	for ; i < len(nodes); i++ {
		n := nodes[i]
		name := strings.ToLower(n.name)
		if (name == "if" && len(cmd.branches) > 0) || (name != "if" && name != "elsif" && name != "else") {
			break
		}
		if !n.hasBlock {
			return nil, 0, errAt(n.pos, nil, "%s needs a block", name)
		}
		if len(n.args) > 0 {
			return nil, 0, errAt(n.args[0].pos, nil, "%s takes no arguments", name)
		}
		block, err := c.block(n.block, false)
		if err != nil {
			return nil, 0, err
		}
		if name == "else" {
			if len(n.tests) > 0 {
				return nil, 0, errAt(n.tests[0].pos, nil, "else takes no test")
			}
			cmd.elseBlock = block
			return cmd, i + 1, nil
		}
		if len(n.tests) != 1 || n.paren {
			return nil, 0, errAt(n.pos, nil, "%s needs exactly one test", name)
		}
		t, err := c.test(n.tests[0])
		if err != nil {
			return nil, 0, err
		}
		cmd.branches = append(cmd.branches, branch{test: t, block: block})
	}
	return cmd, i, nil
}

// action compiles a command that is not a control structure.
func (c *compiler) action(n *cmdNode, name string) (command, error) {
	if sendingCmds[name] {
		return nil, refused(n.pos, name)
	}
	switch name {
	case "stop", "discard", "keep", "fileinto", "setflag", "addflag", "removeflag":
	default:
		return nil, errAt(n.pos, ErrUnsupported, "unknown command %q", n.name)
	}
	if err := noBlockOrTests(n); err != nil {
		return nil, err
	}
	switch name {
	case "stop":
		return stopCmd{}, c.noArgs(n)
	case "discard":
		return discardCmd{}, c.noArgs(n)
	case "keep":
		return c.keep(n)
	case "fileinto":
		return c.fileinto(n)
	default:
		return c.flagCmd(n, name)
	}
}

func (c *compiler) noArgs(n *cmdNode) error {
	if len(n.args) > 0 {
		return errAt(n.args[0].pos, nil, "%s takes no arguments", n.name)
	}
	return nil
}

// tagHandler handles a tag specific to one command or test. It returns
// false for a tag it does not know; next yields the tag's value argument.
type tagHandler func(tag string, a arg, next func() (arg, error)) (bool, error)

// matchSpec collects the comparator and match type tags of a test.
type matchSpec struct {
	comparator string
	mt         matchType
	cmpSet     bool
	mtSet      bool
}

// scanTags consumes the leading tagged arguments of a command or test and
// returns the positional ones. m may be nil when the command takes no
// comparator or match type.
func (c *compiler) scanTags(what string, args []arg, m *matchSpec, extra tagHandler) ([]arg, error) {
	i := 0
	for ; i < len(args) && args[i].kind == argTag; i++ {
		a := args[i]
		tag := strings.ToLower(a.tag)
		next := func() (arg, error) {
			if i+1 >= len(args) || args[i+1].kind == argTag {
				return arg{}, errAt(a.pos, nil, ":%s needs a value", tag)
			}
			i++
			return args[i], nil
		}
		if m != nil {
			switch tag {
			case "is", "contains", "matches":
				if m.mtSet {
					return nil, errAt(a.pos, nil, "more than one match type in %s", what)
				}
				m.mtSet = true
				m.mt = map[string]matchType{"is": matchIs, "contains": matchContains, "matches": matchMatches}[tag]
				continue
			case "comparator":
				if m.cmpSet {
					return nil, errAt(a.pos, nil, "more than one comparator in %s", what)
				}
				v, err := next()
				if err != nil {
					return nil, err
				}
				if v.kind != argStrings || len(v.strs) != 1 {
					return nil, errAt(v.pos, nil, ":comparator takes one string")
				}
				cmp := strings.ToLower(v.strs[0])
				if cmp != cmpOctet && cmp != cmpASCIICasemap {
					return nil, errAt(v.pos, ErrUnsupported, "comparator %q is not supported", v.strs[0])
				}
				m.cmpSet, m.comparator = true, cmp
				continue
			case "count", "value", "regex":
				return nil, errAt(a.pos, ErrUnsupported, "match type :%s is not supported", tag)
			}
		}
		if extra != nil {
			ok, err := extra(tag, a, next)
			if err != nil {
				return nil, err
			}
			if ok {
				continue
			}
		}
		return nil, errAt(a.pos, ErrUnsupported, "unknown tag :%s for %s", a.tag, what)
	}
	for _, a := range args[i:] {
		if a.kind == argTag {
			return nil, errAt(a.pos, nil, "tag :%s must come before the other arguments of %s", a.tag, what)
		}
	}
	return args[i:], nil
}

// positional checks the positional arguments against kinds.
func positional(what string, at pos, args []arg, kinds ...argKind) error {
	if len(args) != len(kinds) {
		if len(args) > len(kinds) {
			at = args[len(kinds)].pos
		}
		return errAt(at, nil, "%s takes %d positional argument(s), got %d", what, len(kinds), len(args))
	}
	for i, a := range args {
		if a.kind != kinds[i] {
			want := "a string list"
			if kinds[i] == argNumber {
				want = "a number"
			}
			return errAt(a.pos, nil, "argument %d of %s must be %s", i+1, what, want)
		}
	}
	return nil
}

// flagsArg validates and canonicalises an imap4flags list: each string is
// a space-separated list of flags.
func flagsArg(a arg) ([]string, error) {
	var out []string
	for _, s := range a.strs {
		for _, f := range strings.Fields(s) {
			fl, err := mail.CanonicalFlag(f)
			if err != nil {
				return nil, errAt(a.pos, nil, "invalid flag %q", f)
			}
			out = addFlags(out, []string{string(fl)})
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func (c *compiler) flagsTag(cmdName string, flags *[]string) tagHandler {
	return func(tag string, a arg, next func() (arg, error)) (bool, error) {
		if tag != "flags" {
			return false, nil
		}
		if err := c.need(a.pos, "imap4flags", ":flags"); err != nil {
			return false, err
		}
		if *flags != nil {
			return false, errAt(a.pos, nil, "more than one :flags in %s", cmdName)
		}
		v, err := next()
		if err != nil {
			return false, err
		}
		if v.kind != argStrings {
			return false, errAt(v.pos, nil, ":flags takes a string list")
		}
		*flags, err = flagsArg(v)
		return true, err
	}
}

func (c *compiler) keep(n *cmdNode) (command, error) {
	cmd := keepCmd{}
	rest, err := c.scanTags("keep", n.args, nil, c.flagsTag("keep", &cmd.flags))
	if err != nil {
		return nil, err
	}
	return cmd, positional("keep", n.pos, rest)
}

func (c *compiler) fileinto(n *cmdNode) (command, error) {
	if err := c.need(n.pos, "fileinto", "fileinto"); err != nil {
		return nil, err
	}
	cmd := fileintoCmd{}
	flags := c.flagsTag("fileinto", &cmd.flags)
	rest, err := c.scanTags("fileinto", n.args, nil, func(tag string, a arg, next func() (arg, error)) (bool, error) {
		switch tag {
		case "copy":
			if cmd.copy {
				return false, errAt(a.pos, nil, "more than one :copy")
			}
			cmd.copy = true
			return true, c.need(a.pos, "copy", ":copy")
		case "create":
			if cmd.create {
				return false, errAt(a.pos, nil, "more than one :create")
			}
			cmd.create = true
			return true, c.need(a.pos, "mailbox", ":create")
		}
		return flags(tag, a, next)
	})
	if err != nil {
		return nil, err
	}
	if err := positional("fileinto", n.pos, rest, argStrings); err != nil {
		return nil, err
	}
	if len(rest[0].strs) != 1 {
		return nil, errAt(rest[0].pos, nil, "fileinto takes one mailbox name")
	}
	name, err := mail.CanonicalMailboxName(rest[0].strs[0])
	if err != nil {
		return nil, errAt(rest[0].pos, nil, "fileinto: %v", err)
	}
	cmd.mailbox = name
	return cmd, nil
}

func (c *compiler) flagCmd(n *cmdNode, name string) (command, error) {
	if err := c.need(n.pos, "imap4flags", name); err != nil {
		return nil, err
	}
	rest, err := c.scanTags(name, n.args, nil, nil)
	if err != nil {
		return nil, err
	}
	if len(rest) == 2 {
		return nil, errAt(rest[0].pos, ErrUnsupported, "%s with a variable name needs the variables extension, which is not supported", name)
	}
	if err := positional(name, n.pos, rest, argStrings); err != nil {
		return nil, err
	}
	flags, err := flagsArg(rest[0])
	if err != nil {
		return nil, err
	}
	op := map[string]flagOp{"setflag": flagSet, "addflag": flagAdd, "removeflag": flagRemove}[name]
	return flagCmd{op: op, flags: flags}, nil
}

func (c *compiler) tests(nodes []*testNode) ([]test, error) {
	out := make([]test, 0, len(nodes))
	for _, n := range nodes {
		t, err := c.test(n)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (c *compiler) test(n *testNode) (test, error) {
	name := strings.ToLower(n.name)
	switch name {
	case "true", "false":
		if len(n.args) > 0 || len(n.tests) > 0 {
			return nil, errAt(n.pos, nil, "%s takes no arguments", name)
		}
		return constTest(name == "true"), nil
	case "not":
		if len(n.args) > 0 || len(n.tests) != 1 || n.paren {
			return nil, errAt(n.pos, nil, "not takes exactly one test")
		}
		t, err := c.test(n.tests[0])
		return notTest{t}, err
	case "allof", "anyof":
		if len(n.args) > 0 || !n.paren {
			return nil, errAt(n.pos, nil, "%s takes a test list in parentheses", name)
		}
		ts, err := c.tests(n.tests)
		if err != nil {
			return nil, err
		}
		return listTest{all: name == "allof", tests: ts}, nil
	}
	if len(n.tests) > 0 {
		return nil, errAt(n.tests[0].pos, nil, "%s takes no nested test", name)
	}
	switch name {
	case "exists":
		rest, err := c.scanTags(name, n.args, nil, nil)
		if err != nil {
			return nil, err
		}
		if err := positional(name, n.pos, rest, argStrings); err != nil {
			return nil, err
		}
		return existsTest{names: rest[0].strs}, nil
	case "size":
		var over, under bool
		rest, err := c.scanTags(name, n.args, nil, func(tag string, a arg, _ func() (arg, error)) (bool, error) {
			if tag != "over" && tag != "under" {
				return false, nil
			}
			if over || under {
				return false, errAt(a.pos, nil, "size takes one of :over and :under")
			}
			over, under = tag == "over", tag == "under"
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if !over && !under {
			return nil, errAt(n.pos, nil, "size needs :over or :under")
		}
		if err := positional(name, n.pos, rest, argNumber); err != nil {
			return nil, err
		}
		return sizeTest{over: over, limit: rest[0].num}, nil
	case "header":
		m := &matchSpec{}
		rest, err := c.scanTags(name, n.args, m, nil)
		if err != nil {
			return nil, err
		}
		if err := positional(name, n.pos, rest, argStrings, argStrings); err != nil {
			return nil, err
		}
		return headerTest{names: rest[0].strs, m: c.matcher(m, rest[1].strs)}, nil
	case "address", "envelope":
		if name == "envelope" {
			if err := c.need(n.pos, "envelope", "envelope"); err != nil {
				return nil, err
			}
		}
		m := &matchSpec{}
		part, partSet := partAll, false
		rest, err := c.scanTags(name, n.args, m, func(tag string, a arg, _ func() (arg, error)) (bool, error) {
			p, ok := map[string]addrPart{"all": partAll, "localpart": partLocal, "domain": partDomain,
				"user": partUser, "detail": partDetail}[tag]
			if !ok {
				return false, nil
			}
			if partSet {
				return false, errAt(a.pos, nil, "more than one address part in %s", name)
			}
			if p == partUser || p == partDetail {
				if err := c.need(a.pos, "subaddress", ":"+tag); err != nil {
					return false, err
				}
			}
			part, partSet = p, true
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if err := positional(name, n.pos, rest, argStrings, argStrings); err != nil {
			return nil, err
		}
		mt := c.matcher(m, rest[1].strs)
		if name == "address" {
			return addressTest{headers: rest[0].strs, part: part, m: mt}, nil
		}
		for _, p := range rest[0].strs {
			if lp := strings.ToLower(p); lp != "from" && lp != "to" {
				return nil, errAt(rest[0].pos, ErrUnsupported, "envelope part %q is not supported", p)
			}
		}
		return envelopeTest{parts: rest[0].strs, part: part, m: mt}, nil
	case "body":
		if err := c.need(n.pos, "body", "body"); err != nil {
			return nil, err
		}
		m := &matchSpec{}
		t := bodyTest{transform: bodyText}
		transformSet := false
		rest, err := c.scanTags(name, n.args, m, func(tag string, a arg, next func() (arg, error)) (bool, error) {
			var tr bodyTransform
			switch tag {
			case "raw":
				tr = bodyRaw
			case "text":
				tr = bodyText
			case "content":
				tr = bodyContent
			default:
				return false, nil
			}
			if transformSet {
				return false, errAt(a.pos, nil, "more than one body transform")
			}
			transformSet, t.transform = true, tr
			if tr == bodyContent {
				v, err := next()
				if err != nil {
					return false, err
				}
				if v.kind != argStrings {
					return false, errAt(v.pos, nil, ":content takes a string list")
				}
				for _, ct := range v.strs {
					t.types = append(t.types, strings.ToLower(strings.TrimSpace(ct)))
				}
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if err := positional(name, n.pos, rest, argStrings); err != nil {
			return nil, err
		}
		t.m = c.matcher(m, rest[0].strs)
		return t, nil
	case "hasflag":
		if err := c.need(n.pos, "imap4flags", "hasflag"); err != nil {
			return nil, err
		}
		m := &matchSpec{}
		rest, err := c.scanTags(name, n.args, m, nil)
		if err != nil {
			return nil, err
		}
		if len(rest) == 2 {
			return nil, errAt(rest[0].pos, ErrUnsupported, "hasflag with a variable name needs the variables extension, which is not supported")
		}
		if err := positional(name, n.pos, rest, argStrings); err != nil {
			return nil, err
		}
		return hasflagTest{m: c.matcher(m, rest[0].strs)}, nil
	}
	return nil, errAt(n.pos, ErrUnsupported, "unknown test %q", n.name)
}

func (c *compiler) matcher(m *matchSpec, keys []string) *matcher {
	cmp := m.comparator
	if !m.cmpSet {
		cmp = cmpASCIICasemap
	}
	return newMatcher(cmp, m.mt, keys)
}
