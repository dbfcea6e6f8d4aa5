package sieve

import "fmt"

// The grammar of RFC 5228 section 8.2:
//
//	commands  = *command
//	command   = identifier arguments (";" / block)
//	block     = "{" commands "}"
//	arguments = *argument [test / test-list]
//	argument  = string-list / number / tag
//	test      = identifier arguments
//	test-list = "(" test *("," test) ")"
//	string-list = "[" string *("," string) "]" / string

type argKind int

const (
	argStrings argKind = iota // a string or a string list
	argNumber
	argTag
)

type arg struct {
	kind argKind
	pos  pos
	strs []string // argStrings
	list bool     // argStrings written as [...]
	num  int64    // argNumber
	tag  string   // argTag, without the colon
}

type testNode struct {
	pos   pos
	name  string
	args  []arg
	tests []*testNode
	paren bool // tests came from a parenthesised test-list
}

type cmdNode struct {
	pos      pos
	name     string
	args     []arg
	tests    []*testNode
	paren    bool
	block    []*cmdNode
	hasBlock bool
}

type parser struct {
	lex        *lexer
	tok        token
	maxNesting int
}

func (p *parser) errAt(at pos, format string, args ...any) error {
	return &SyntaxError{Line: at.line, Column: at.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func parse(src []byte, maxNesting int) ([]*cmdNode, error) {
	p := &parser{lex: newLexer(src), maxNesting: maxNesting}
	if err := p.advance(); err != nil {
		return nil, err
	}
	cmds, err := p.commands(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errAt(p.tok.pos, "unexpected %s", p.tok.kind)
	}
	return cmds, nil
}

func (p *parser) commands(depth int) ([]*cmdNode, error) {
	var cmds []*cmdNode
	for p.tok.kind == tokIdentifier {
		c, err := p.command(depth)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

func (p *parser) command(depth int) (*cmdNode, error) {
	c := &cmdNode{pos: p.tok.pos, name: p.tok.text}
	if err := p.advance(); err != nil {
		return nil, err
	}
	args, tests, paren, err := p.arguments(0)
	if err != nil {
		return nil, err
	}
	c.args, c.tests, c.paren = args, tests, paren
	switch p.tok.kind {
	case tokSemicolon:
		return c, p.advance()
	case tokLBrace:
		if depth+1 > p.maxNesting {
			return nil, &SyntaxError{Line: p.tok.pos.line, Column: p.tok.pos.col,
				Msg: fmt.Sprintf("blocks nested deeper than %d", p.maxNesting), Err: ErrLimit}
		}
		open := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		block, err := p.commands(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRBrace {
			if p.tok.kind == tokEOF {
				return nil, p.errAt(open, `block is not closed with "}"`)
			}
			return nil, p.errAt(p.tok.pos, `expected a command or "}", found %s`, p.tok.kind)
		}
		c.block, c.hasBlock = block, true
		return c, p.advance()
	case tokEOF:
		return nil, p.errAt(p.tok.pos, `expected ";" after command %q, found end of script`, c.name)
	default:
		return nil, p.errAt(p.tok.pos, `expected ";" or "{" after arguments of %q, found %s`, c.name, p.tok.kind)
	}
}

// arguments reads *argument [test / test-list]. depth is the test nesting
// depth of the caller (0 for a command).
func (p *parser) arguments(depth int) (args []arg, tests []*testNode, paren bool, err error) {
	for {
		switch p.tok.kind {
		case tokString, tokLBracket:
			a, err := p.stringList()
			if err != nil {
				return nil, nil, false, err
			}
			args = append(args, a)
		case tokNumber:
			args = append(args, arg{kind: argNumber, pos: p.tok.pos, num: p.tok.num})
			if err := p.advance(); err != nil {
				return nil, nil, false, err
			}
		case tokTag:
			args = append(args, arg{kind: argTag, pos: p.tok.pos, tag: p.tok.text})
			if err := p.advance(); err != nil {
				return nil, nil, false, err
			}
		case tokIdentifier:
			t, err := p.test(depth + 1)
			if err != nil {
				return nil, nil, false, err
			}
			return args, []*testNode{t}, false, nil
		case tokLParen:
			tests, err := p.testList(depth + 1)
			return args, tests, true, err
		default:
			return args, nil, false, nil
		}
	}
}

func (p *parser) checkTestDepth(depth int) error {
	if depth > p.maxNesting {
		return &SyntaxError{Line: p.tok.pos.line, Column: p.tok.pos.col,
			Msg: fmt.Sprintf("tests nested deeper than %d", p.maxNesting), Err: ErrLimit}
	}
	return nil
}

func (p *parser) test(depth int) (*testNode, error) {
	if err := p.checkTestDepth(depth); err != nil {
		return nil, err
	}
	t := &testNode{pos: p.tok.pos, name: p.tok.text}
	if err := p.advance(); err != nil {
		return nil, err
	}
	args, tests, paren, err := p.arguments(depth)
	if err != nil {
		return nil, err
	}
	t.args, t.tests, t.paren = args, tests, paren
	return t, nil
}

func (p *parser) testList(depth int) ([]*testNode, error) {
	if err := p.checkTestDepth(depth); err != nil {
		return nil, err
	}
	open := p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	var tests []*testNode
	for {
		if p.tok.kind != tokIdentifier {
			return nil, p.errAt(p.tok.pos, "expected a test, found %s", p.tok.kind)
		}
		t, err := p.test(depth)
		if err != nil {
			return nil, err
		}
		tests = append(tests, t)
		switch p.tok.kind {
		case tokComma:
			if err := p.advance(); err != nil {
				return nil, err
			}
		case tokRParen:
			return tests, p.advance()
		case tokEOF:
			return nil, p.errAt(open, `test list is not closed with ")"`)
		default:
			return nil, p.errAt(p.tok.pos, `expected "," or ")" in test list, found %s`, p.tok.kind)
		}
	}
}

func (p *parser) stringList() (arg, error) {
	a := arg{kind: argStrings, pos: p.tok.pos}
	if p.tok.kind == tokString {
		a.strs = []string{p.tok.text}
		return a, p.advance()
	}
	a.list = true
	if err := p.advance(); err != nil {
		return arg{}, err
	}
	for {
		if p.tok.kind != tokString {
			return arg{}, p.errAt(p.tok.pos, "expected a string in string list, found %s", p.tok.kind)
		}
		a.strs = append(a.strs, p.tok.text)
		if err := p.advance(); err != nil {
			return arg{}, err
		}
		switch p.tok.kind {
		case tokComma:
			if err := p.advance(); err != nil {
				return arg{}, err
			}
		case tokRBracket:
			return a, p.advance()
		case tokEOF:
			return arg{}, p.errAt(a.pos, `string list is not closed with "]"`)
		default:
			return arg{}, p.errAt(p.tok.pos, `expected "," or "]" in string list, found %s`, p.tok.kind)
		}
	}
}
