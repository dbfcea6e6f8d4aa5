package mime

import (
	"bytes"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

// crlf turns the LF line ends of a test literal into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// scanChunked scans msg written in chunks of the given sizes (cycled).
func scanChunked(t testing.TB, msg []byte, lim Limits, sizes ...int) *Structure {
	t.Helper()
	s := NewScanner(lim)
	rest := msg
	for i := 0; len(rest) > 0; i++ {
		n := len(rest)
		if len(sizes) > 0 {
			n = min(sizes[i%len(sizes)], len(rest))
		}
		if w, err := s.Write(rest[:n]); err != nil || w != n {
			t.Fatalf("Write = %d, %v", w, err)
		}
		rest = rest[n:]
	}
	st, err := s.Close()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return st
}

// checkStructure verifies the invariants every Structure keeps.
func checkStructure(msg []byte, st *Structure) error {
	if st.Size != int64(len(msg)) {
		return fmt.Errorf("Size %d, message is %d bytes", st.Size, len(msg))
	}
	if st.Root.HeaderOffset != 0 || st.Root.End != st.Size || st.HeaderSize != st.Root.BodyOffset {
		return fmt.Errorf("root spans [%d,%d,%d), HeaderSize %d", st.Root.HeaderOffset, st.Root.BodyOffset, st.Root.End, st.HeaderSize)
	}
	var walk func(p *Part, lo, hi int64, path string) error
	walk = func(p *Part, lo, hi int64, path string) error {
		if !(lo <= p.HeaderOffset && p.HeaderOffset <= p.BodyOffset && p.BodyOffset <= p.End && p.End <= hi) {
			return fmt.Errorf("part %q: [%d,%d,%d) outside [%d,%d)", path, p.HeaderOffset, p.BodyOffset, p.End, lo, hi)
		}
		if p.Size != p.End-p.BodyOffset {
			return fmt.Errorf("part %q: Size %d != End-BodyOffset %d", path, p.Size, p.End-p.BodyOffset)
		}
		body := msg[p.BodyOffset:p.End]
		lines := int64(bytes.Count(body, []byte("\n")))
		if len(body) > 0 && body[len(body)-1] != '\n' {
			lines++
		}
		if p.Lines != lines {
			return fmt.Errorf("part %q: Lines %d, body has %d", path, p.Lines, lines)
		}
		switch {
		case p.Type == "multipart" && len(p.Children) == 0:
			return fmt.Errorf("part %q: multipart without children", path)
		case p.Type != "multipart" && p.Envelope == nil && len(p.Children) > 0:
			return fmt.Errorf("part %q: %s/%s with children", path, p.Type, p.Subtype)
		case p.Envelope != nil && (len(p.Children) != 1 || p.Type != "message"):
			return fmt.Errorf("part %q: envelope on %s/%s with %d children", path, p.Type, p.Subtype, len(p.Children))
		}
		prev := p.BodyOffset
		for i := range p.Children {
			c := &p.Children[i]
			if err := walk(c, prev, p.End, fmt.Sprintf("%s.%d", path, i+1)); err != nil {
				return err
			}
			prev = c.End
		}
		return nil
	}
	return walk(&st.Root, 0, st.Size, "")
}

// partAt returns the part at a dotted path of 1-based child indexes; ""
// is the root.
func partAt(t *testing.T, st *Structure, path string) *Part {
	t.Helper()
	p := &st.Root
	if path == "" {
		return p
	}
	for _, s := range strings.Split(path, ".") {
		var i int
		fmt.Sscan(s, &i)
		if i < 1 || i > len(p.Children) {
			t.Fatalf("no part %q (have %d children)", path, len(p.Children))
		}
		p = &p.Children[i-1]
	}
	return p
}

type wantPart struct {
	path     string
	typ      string // "type/subtype"
	header   string // exact header bytes, if not ""
	body     string // exact body bytes, if body or emptyBody
	empty    bool   // body must be empty
	children int
}

func TestScan(t *testing.T) {
	simple := crlf(`From: "Alice A." <alice@example.com>
To: bob@example.org, Carol <carol@example.net>
Cc: undisclosed-recipients:;
Subject: =?utf-8?q?caf=C3=A9?=
  folded
Date: Mon, 2 Jan 2006 15:04:05 -0700
Message-ID: <1@example.com>
In-Reply-To: <0@example.com>

Hello
World
`)
	alternative := crlf(`From: a@example.com
Content-Type: multipart/alternative; boundary="alt"

preamble
--alt
Content-Type: text/plain; charset=utf-8

plain body
--alt
Content-Type: text/html

<p>html</p>
--alt--
epilogue
`)
	nested := crlf(`Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

text
--inner
Content-Type: text/html

<b>html</b>
--inner--

--outer
Content-Type: application/pdf; name="a.pdf"
Content-Disposition: attachment; filename="a b.pdf"
Content-Transfer-Encoding: base64
Content-ID: <pdf@x>
Content-Language: en, fr

JVBERi0xLjQK
--outer--
`)
	rfc822 := crlf(`Subject: outer
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

see attached
--b1
Content-Type: message/rfc822

From: Inner <inner@example.com>
Subject: inner subject
Content-Type: text/plain

inner body
line 2
--b1--
`)
	bareLF := "Subject: bare\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\none\ntwo\n--x--\n"
	noTrailing := crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\n\nbody\n--x--")
	missingFinal := crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\n\nfirst\n--x\nContent-Type: text/html\n\nsecond, never closed\n")
	eightBit := "Subject: caf\xc3\xa9 \xff\r\nFrom: J\xc3\xb6rg <j@example.com>\r\n\r\nbody \xe9\xe8\x00\r\n"
	binaryBody := "\x00\x01\r--x\r\n\xff\xfe--x\r\r\n--xy\r\n--x-- junk\r\n\x00"
	binary := crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n") + binaryBody + crlf("\n--x--\n")
	noBoundary := crlf("Content-Type: multipart/mixed\n\n--x\n\nbody\n")
	neverBoundary := crlf("Content-Type: multipart/mixed; boundary=zz\n\n--x\n\nbody\n")
	digest := crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in digest\n\nhi\n--d--\n")
	noHeader := "just a body line\r\nand another\r\n"
	emptyMsg := ""
	headerOnly := "Subject: no body"
	whitespaceDelim := crlf("Content-Type: multipart/mixed; boundary=\"a b\"\n\n--a b  \n\nx\n--a b-- \t\n")

	tests := []struct {
		name  string
		msg   string
		lim   Limits
		parts []wantPart
		check func(t *testing.T, st *Structure)
	}{
		{
			name: "simple text",
			msg:  simple,
			parts: []wantPart{
				{path: "", typ: "text/plain", body: "Hello\r\nWorld\r\n", header: simple[:strings.Index(simple, "Hello")]},
			},
			check: func(t *testing.T, st *Structure) {
				e := st.Envelope
				if e.Subject != "=?utf-8?q?caf=C3=A9?=  folded" {
					t.Errorf("Subject = %q", e.Subject)
				}
				if e.Date != "Mon, 2 Jan 2006 15:04:05 -0700" || !st.Date.Equal(time.Date(2006, 1, 2, 22, 4, 5, 0, time.UTC)) {
					t.Errorf("Date = %q, %v", e.Date, st.Date)
				}
				if e.MessageID != "<1@example.com>" || e.InReplyTo != "<0@example.com>" {
					t.Errorf("ids = %q %q", e.MessageID, e.InReplyTo)
				}
				wantFrom := []Address{{Name: "Alice A.", Mailbox: "alice", Host: "example.com"}}
				if !reflect.DeepEqual(e.From, wantFrom) || !reflect.DeepEqual(e.Sender, wantFrom) || !reflect.DeepEqual(e.ReplyTo, wantFrom) {
					t.Errorf("From/Sender/ReplyTo = %+v %+v %+v", e.From, e.Sender, e.ReplyTo)
				}
				wantTo := []Address{{Mailbox: "bob", Host: "example.org"}, {Name: "Carol", Mailbox: "carol", Host: "example.net"}}
				if !reflect.DeepEqual(e.To, wantTo) {
					t.Errorf("To = %+v", e.To)
				}
				wantCc := []Address{{Kind: AddrGroupStart, Mailbox: "undisclosed-recipients"}, {Kind: AddrGroupEnd}}
				if !reflect.DeepEqual(e.Cc, wantCc) {
					t.Errorf("Cc = %+v", e.Cc)
				}
				if e.Bcc != nil {
					t.Errorf("Bcc = %+v", e.Bcc)
				}
				if p := st.Root; !reflect.DeepEqual(p.Params, []Param{{"charset", "us-ascii"}}) || p.Encoding != "7bit" || p.Lines != 2 {
					t.Errorf("root = %+v", p)
				}
			},
		},
		{
			name: "multipart alternative",
			msg:  alternative,
			parts: []wantPart{
				{path: "", typ: "multipart/alternative", children: 2},
				{path: "1", typ: "text/plain", header: "Content-Type: text/plain; charset=utf-8\r\n\r\n", body: "plain body"},
				{path: "2", typ: "text/html", body: "<p>html</p>"},
			},
			check: func(t *testing.T, st *Structure) {
				if p := partAt(t, st, "1"); !reflect.DeepEqual(p.Params, []Param{{"charset", "utf-8"}}) || p.Lines != 1 {
					t.Errorf("part 1 = %+v", p)
				}
				if got := st.Root.Params; !reflect.DeepEqual(got, []Param{{"boundary", "alt"}}) {
					t.Errorf("root params = %+v", got)
				}
			},
		},
		{
			name: "nested multipart with attachment",
			msg:  nested,
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 2},
				{path: "1", typ: "multipart/alternative", children: 2},
				{path: "1.1", typ: "text/plain", body: "text"},
				{path: "1.2", typ: "text/html", body: "<b>html</b>"},
				{path: "2", typ: "application/pdf", body: "JVBERi0xLjQK"},
			},
			check: func(t *testing.T, st *Structure) {
				p := partAt(t, st, "2")
				if p.Disposition != "attachment" || !reflect.DeepEqual(p.DispParams, []Param{{"filename", "a b.pdf"}}) ||
					p.Encoding != "base64" || p.ID != "<pdf@x>" || !reflect.DeepEqual(p.Language, []string{"en", "fr"}) ||
					!reflect.DeepEqual(p.Params, []Param{{"name", "a.pdf"}}) {
					t.Errorf("attachment = %+v", p)
				}
				if b := partAt(t, st, "1"); string(nested[b.BodyOffset:b.End]) != crlf("--inner\nContent-Type: text/plain\n\ntext\n--inner\nContent-Type: text/html\n\n<b>html</b>\n--inner--\n") {
					t.Errorf("inner multipart body = %q", nested[b.BodyOffset:b.End])
				}
			},
		},
		{
			name: "message/rfc822 attachment",
			msg:  rfc822,
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 2},
				{path: "1", typ: "text/plain", body: "see attached"},
				{path: "2", typ: "message/rfc822", children: 1, body: crlf("From: Inner <inner@example.com>\nSubject: inner subject\nContent-Type: text/plain\n\ninner body\nline 2")},
				{path: "2.1", typ: "text/plain", header: crlf("From: Inner <inner@example.com>\nSubject: inner subject\nContent-Type: text/plain\n\n"), body: crlf("inner body\nline 2")},
			},
			check: func(t *testing.T, st *Structure) {
				p := partAt(t, st, "2")
				if p.Envelope == nil || p.Envelope.Subject != "inner subject" || len(p.Envelope.From) != 1 || p.Envelope.From[0].Mailbox != "inner" {
					t.Fatalf("embedded envelope = %+v", p.Envelope)
				}
				if p.Lines != 6 || !p.IsMessage() {
					t.Errorf("message part lines = %d", p.Lines)
				}
				if st.Envelope.Subject != "outer" {
					t.Errorf("outer subject = %q", st.Envelope.Subject)
				}
			},
		},
		{
			name: "bare LF",
			msg:  bareLF,
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 1, header: "Subject: bare\nContent-Type: multipart/mixed; boundary=x\n\n"},
				{path: "1", typ: "text/plain", header: "Content-Type: text/plain\n\n", body: "one\ntwo"},
			},
			check: func(t *testing.T, st *Structure) {
				if st.Envelope.Subject != "bare" || partAt(t, st, "1").Lines != 2 {
					t.Errorf("subject %q, lines %d", st.Envelope.Subject, partAt(t, st, "1").Lines)
				}
			},
		},
		{
			name: "no trailing CRLF",
			msg:  noTrailing,
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 1},
				{path: "1", typ: "text/plain", header: "\r\n", body: "body"},
			},
		},
		{
			name: "missing final boundary",
			msg:  missingFinal,
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 2},
				{path: "1", typ: "text/plain", body: "first"},
				{path: "2", typ: "text/html", body: "second, never closed\r\n"},
			},
		},
		{
			name: "huge header line",
			msg:  "Subject: " + strings.Repeat("x", 5000) + "\r\nFrom: a@example.com\r\nX-Big: " + strings.Repeat("y", 3000) + "\r\n\r\nbody\r\n",
			lim:  Limits{MaxHeaderBytes: 6000},
			parts: []wantPart{
				{path: "", typ: "text/plain", body: "body\r\n"},
			},
			check: func(t *testing.T, st *Structure) {
				if len(st.Envelope.Subject) != 5000 || len(st.Envelope.From) != 1 || !st.Limited {
					t.Errorf("subject len %d, from %+v, limited %v", len(st.Envelope.Subject), st.Envelope.From, st.Limited)
				}
			},
		},
		{
			name:  "8-bit",
			msg:   eightBit,
			parts: []wantPart{{path: "", typ: "text/plain", body: "body \xe9\xe8\x00\r\n"}},
			check: func(t *testing.T, st *Structure) {
				if st.Envelope.Subject != "caf\xc3\xa9 \xff" || st.Envelope.From[0].Name != "J\xc3\xb6rg" {
					t.Errorf("envelope = %+v", st.Envelope)
				}
			},
		},
		{
			name: "binary part",
			msg:  binary,
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 1},
				{path: "1", typ: "application/octet-stream", body: binaryBody},
			},
		},
		{
			name:  "multipart without boundary",
			msg:   noBoundary,
			parts: []wantPart{{path: "", typ: "text/plain", body: crlf("--x\n\nbody\n")}},
		},
		{
			name:  "boundary never appears",
			msg:   neverBoundary,
			parts: []wantPart{{path: "", typ: "text/plain", body: crlf("--x\n\nbody\n")}},
		},
		{
			name: "digest defaults to message/rfc822",
			msg:  digest,
			parts: []wantPart{
				{path: "", typ: "multipart/digest", children: 1},
				{path: "1", typ: "message/rfc822", children: 1},
				{path: "1.1", typ: "text/plain", body: "hi"},
			},
			check: func(t *testing.T, st *Structure) {
				if e := partAt(t, st, "1").Envelope; e == nil || e.Subject != "in digest" {
					t.Errorf("digest envelope = %+v", e)
				}
			},
		},
		{
			name:  "no header",
			msg:   noHeader,
			parts: []wantPart{{path: "", typ: "text/plain", header: noHeader, empty: true}},
		},
		{
			name:  "empty message",
			msg:   emptyMsg,
			parts: []wantPart{{path: "", typ: "text/plain", header: "", empty: true}},
		},
		{
			name:  "header only without newline",
			msg:   headerOnly,
			parts: []wantPart{{path: "", typ: "text/plain", header: headerOnly, empty: true}},
			check: func(t *testing.T, st *Structure) {
				if st.Envelope.Subject != "no body" {
					t.Errorf("subject = %q", st.Envelope.Subject)
				}
			},
		},
		{
			name: "delimiter with padding",
			msg:  whitespaceDelim,
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 1},
				{path: "1", typ: "text/plain", body: "x"},
			},
		},
		{
			name: "message in message ended by the outer delimiter",
			msg:  crlf("Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: deepest\n\nx\n--o--\n"),
			parts: []wantPart{
				{path: "", typ: "multipart/mixed", children: 1},
				{path: "1", typ: "message/rfc822", children: 1},
				{path: "1.1", typ: "message/rfc822", children: 1, header: "Content-Type: message/rfc822\r\n\r\n"},
				{path: "1.1.1", typ: "text/plain", header: "Subject: deepest\r\n\r\n", body: "x"},
			},
			check: func(t *testing.T, st *Structure) {
				if e := partAt(t, st, "1.1").Envelope; e == nil || e.Subject != "deepest" {
					t.Errorf("envelope = %+v", e)
				}
			},
		},
		{
			name: "garbage",
			msg:  string(garbage(1, 64<<10)),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte(tc.msg)
			st := scanChunked(t, msg, tc.lim)
			if err := checkStructure(msg, st); err != nil {
				t.Fatal(err)
			}
			// Chunking must not change anything.
			for _, sizes := range [][]int{{1}, {2, 3, 5, 7}, {4096}} {
				if other := scanChunked(t, msg, tc.lim, sizes...); !reflect.DeepEqual(other, st) {
					t.Fatalf("chunks %v: structure differs:\n%+v\n%+v", sizes, other, st)
				}
			}
			for _, w := range tc.parts {
				p := partAt(t, st, w.path)
				if got := p.Type + "/" + p.Subtype; got != w.typ {
					t.Errorf("part %q: type %s, want %s", w.path, got, w.typ)
				}
				if w.header != "" && string(msg[p.HeaderOffset:p.BodyOffset]) != w.header {
					t.Errorf("part %q: header %q, want %q", w.path, msg[p.HeaderOffset:p.BodyOffset], w.header)
				}
				if (w.body != "" || w.empty) && string(msg[p.BodyOffset:p.End]) != w.body {
					t.Errorf("part %q: body %q, want %q", w.path, msg[p.BodyOffset:p.End], w.body)
				}
				if len(p.Children) != w.children {
					t.Errorf("part %q: %d children, want %d", w.path, len(p.Children), w.children)
				}
			}
			if tc.check != nil {
				tc.check(t, st)
			}
			checkRoundTrip(t, st)
		})
	}
}

func checkRoundTrip(t testing.TB, st *Structure) {
	t.Helper()
	b, err := MarshalStructure(st)
	if err != nil {
		t.Fatalf("MarshalStructure: %v", err)
	}
	got, err := UnmarshalStructure(b)
	if err != nil {
		t.Fatalf("UnmarshalStructure: %v", err)
	}
	if !got.Date.Equal(st.Date) {
		t.Fatalf("round trip: Date %v, want %v", got.Date, st.Date)
	}
	got.Date = st.Date
	if !reflect.DeepEqual(normalize(got), normalize(st)) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, st)
	}
}

// normalize makes empty slices nil so that DeepEqual compares content.
func normalize(st *Structure) *Structure {
	c := *st
	normEnv(&c.Envelope)
	c.Root = normPart(c.Root)
	return &c
}

func normEnv(e *Envelope) {
	for _, l := range []*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		if len(*l) == 0 {
			*l = nil
		}
	}
}

func normPart(p Part) Part {
	if len(p.Params) == 0 {
		p.Params = nil
	}
	if len(p.DispParams) == 0 {
		p.DispParams = nil
	}
	if len(p.Language) == 0 {
		p.Language = nil
	}
	if p.Envelope != nil {
		e := *p.Envelope
		normEnv(&e)
		p.Envelope = &e
	}
	if len(p.Children) == 0 {
		p.Children = nil
	} else {
		cs := make([]Part, len(p.Children))
		for i := range p.Children {
			cs[i] = normPart(p.Children[i])
		}
		p.Children = cs
	}
	return p
}

func garbage(seed int64, n int) []byte {
	r := rand.New(rand.NewSource(seed))
	b := make([]byte, n)
	r.Read(b)
	// Sprinkle line breaks and delimiter-like lines.
	for i := 0; i < n/64; i++ {
		j := r.Intn(n)
		copy(b[j:], "\r\n--")
	}
	return b
}

func TestScanLimits(t *testing.T) {
	deep := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("Subject: deep\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\nleaf\r\n")
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return b.Bytes()
	}
	many := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("Content-Type: multipart/mixed; boundary=m\r\n\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "--m\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i)
		}
		b.WriteString("--m--\r\n")
		return b.Bytes()
	}
	depth := func(st *Structure) int {
		var d func(p *Part) int
		d = func(p *Part) int {
			m := 0
			for i := range p.Children {
				m = max(m, d(&p.Children[i]))
			}
			return m + 1
		}
		return d(&st.Root)
	}
	count := func(st *Structure) int {
		var c func(p *Part) int
		c = func(p *Part) int {
			n := 1
			for i := range p.Children {
				n += c(&p.Children[i])
			}
			return n
		}
		return c(&st.Root)
	}
	tests := []struct {
		name        string
		msg         []byte
		lim         Limits
		wantLimited bool
		check       func(t *testing.T, st *Structure)
	}{
		{
			name: "deep nesting within limit",
			msg:  deep(40),
			check: func(t *testing.T, st *Structure) {
				if d := depth(st); d != 41 {
					t.Errorf("depth %d, want 41", d)
				}
			},
		},
		{
			name:        "deep nesting over the limit",
			msg:         deep(200),
			wantLimited: true,
			check: func(t *testing.T, st *Structure) {
				if d := depth(st); d != DefaultMaxDepth {
					t.Errorf("depth %d, want %d", d, DefaultMaxDepth)
				}
				p := &st.Root
				for len(p.Children) > 0 {
					p = &p.Children[0]
				}
				if p.Type != "application" || p.Subtype != "octet-stream" {
					t.Errorf("deepest part %s/%s, want an opaque leaf", p.Type, p.Subtype)
				}
			},
		},
		{
			name: "9998 parts",
			msg:  many(DefaultMaxParts - 2),
			check: func(t *testing.T, st *Structure) {
				if n := count(st); n != DefaultMaxParts-1 {
					t.Errorf("%d parts", n)
				}
			},
		},
		{
			name:        "10000 parts",
			msg:         many(10000),
			wantLimited: true,
			check: func(t *testing.T, st *Structure) {
				if n := count(st); n != DefaultMaxParts {
					t.Errorf("%d parts, want %d", n, DefaultMaxParts)
				}
				last := st.Root.Children[len(st.Root.Children)-1]
				if last.Type != "application" || !strings.HasSuffix(strings.TrimRight(string(many(10000)[last.BodyOffset:last.End]), "\r\n"), "part 9999") {
					t.Errorf("last part %s/%s does not hold the rest", last.Type, last.Subtype)
				}
			},
		},
		{
			name:        "small part limit",
			msg:         many(10),
			lim:         Limits{MaxParts: 5},
			wantLimited: true,
			check: func(t *testing.T, st *Structure) {
				if n := count(st); n != 5 {
					t.Errorf("%d parts, want 5", n)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := scanChunked(t, tc.msg, tc.lim, 1000)
			if err := checkStructure(tc.msg, st); err != nil {
				t.Fatal(err)
			}
			if st.Limited != tc.wantLimited {
				t.Errorf("Limited = %v, want %v", st.Limited, tc.wantLimited)
			}
			tc.check(t, st)
			checkRoundTrip(t, st)
		})
	}
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []Address
	}{
		{"a@b", []Address{{Mailbox: "a", Host: "b"}}},
		{`"Doe, John" <john@x.org>`, []Address{{Name: "Doe, John", Mailbox: "john", Host: "x.org"}}},
		{"=?utf-8?q?J=C3=B6rg?= <j@x>", []Address{{Name: "=?utf-8?q?J=C3=B6rg?=", Mailbox: "j", Host: "x"}}},
		{"john@x.org (John Doe)", []Address{{Name: "John Doe", Mailbox: "john", Host: "x.org"}}},
		{"<@r1,@r2:a@b>", []Address{{Route: "@r1,@r2", Mailbox: "a", Host: "b"}}},
		{"team: a@x, B <b@y>; c@z", []Address{
			{Kind: AddrGroupStart, Mailbox: "team"},
			{Mailbox: "a", Host: "x"},
			{Name: "B", Mailbox: "b", Host: "y"},
			{Kind: AddrGroupEnd},
			{Mailbox: "c", Host: "z"},
		}},
		{`"a b"@x`, []Address{{Mailbox: `"a b"`, Host: "x"}}},
		{"nodomain", []Address{{Mailbox: "nodomain"}}},
		{"<>", nil},
		{`"")ax`, []Address{{Mailbox: `""ax`}}},
		{"a)b@c", []Address{{Mailbox: "ab", Host: "c"}}},
		{"Name <a@b", []Address{{Name: "Name", Mailbox: "a", Host: "b"}}},
		{",,, ;;", nil},
		{"", nil},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseAddressList(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseAddressList(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseParamsLenient(t *testing.T) {
	tests := []struct {
		in       string
		wantType string
		want     []Param
	}{
		{`text/plain; charset="utf-8"`, "text/plain", []Param{{"charset", "utf-8"}}},
		{`Text/HTML; CHARSET=utf-8; charset=latin1`, "text/html", []Param{{"charset", "utf-8"}}},
		{`multipart/mixed; boundary="abc; def`, "multipart/mixed", []Param{{"boundary", "abc; def"}}},
		{`attachment; filename*=UTF-8''caf%C3%A9.txt`, "attachment", []Param{{"filename", "café.txt"}}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			typ, ps := parseParams(tc.in)
			if typ != tc.wantType || !reflect.DeepEqual(ps, tc.want) {
				t.Errorf("parseParams(%q) = %q %+v", tc.in, typ, ps)
			}
		})
	}
}

func TestUnmarshalStructureRejects(t *testing.T) {
	st, err := Scan(strings.NewReader(crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n--x--\n")), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	good, err := MarshalStructure(st)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{99}, good[1:]...),
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 0),
		"huge count": func() []byte {
			b := append([]byte{}, good...)
			return append(b[:len(b)-1], 0xff, 0xff, 0xff, 0xff, 0x0f)
		}(),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := UnmarshalStructure(b); err == nil {
				t.Errorf("UnmarshalStructure accepted %q", b)
			}
		})
	}
	// Every prefix fails cleanly.
	for i := range good {
		if _, err := UnmarshalStructure(good[:i]); err == nil {
			t.Errorf("prefix of %d bytes accepted", i)
		}
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := NewScanner(Limits{})
	if _, err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}
