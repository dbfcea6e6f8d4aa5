package imapsearch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

func TestBaseSubject(t *testing.T) {
	tests := []struct {
		in, want string
		reply    bool
	}{
		{"hello", "hello", false},
		{"Re: hello", "hello", true},
		{"RE: Re: re: hello", "hello", true},
		{"Fwd: hello", "hello", true},
		{"FW: hello", "hello", true},
		{"fw : hello", "hello", true},
		{"Re[2]: hello", "hello", true},
		{"Re [2] : hello", "hello", true},
		{"Re:hello", "hello", true},
		{"[PATCH] hello", "hello", false},
		{"[PATCH]", "[PATCH]", false},
		{"[a][b] hello", "hello", false},
		{"[a] [b]", "[b]", false},
		{"[list] Re: hello", "hello", true},
		{"Re: [list] hello", "hello", true},
		{"[list] [x] Re: Fwd: [y] hello", "hello", true},
		{"hello (fwd)", "hello", true},
		{"hello (FWD) (fwd)  ", "hello", true},
		{"[Fwd: hello]", "hello", true},
		{"[fwd: Re: [x] hello (fwd)]", "hello", true},
		{"Fwd: [Fwd: Re: hello]", "hello", true},
		{"  hello\t  world  ", "hello world", false},
		{"=?utf-8?q?Re=3A_caf=C3=A9?=", "café", true},
		{"Re: ", "", true},
		{"", "", false},
		{"Reply: x", "Reply: x", false},
		{"Ref: x", "Ref: x", false},
		{"[unclosed hello", "[unclosed hello", false},
		{"Re: (fwd)", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, reply := BaseSubject(tt.in)
			if got != tt.want || reply != tt.reply {
				t.Errorf("BaseSubject(%q) = %q, %v; want %q, %v", tt.in, got, reply, tt.want, tt.reply)
			}
		})
	}
}

func TestParseSort(t *testing.T) {
	tests := []struct {
		line    string
		want    []SortCriterion
		wantErr error // nil and fail: syntax error
		fail    bool
	}{
		{line: "(REVERSE DATE SUBJECT) UTF-8 ALL", want: []SortCriterion{{SortDate, true}, {SortSubject, false}}},
		{line: "(displayfrom DisplayTo ARRIVAL CC FROM SIZE TO) US-ASCII SEEN", want: []SortCriterion{
			{SortDisplayFrom, false}, {SortDisplayTo, false}, {SortArrival, false}, {SortCc, false},
			{SortFrom, false}, {SortSize, false}, {SortTo, false}}},
		{line: "() UTF-8 ALL", fail: true},
		{line: "(REVERSE) UTF-8 ALL", fail: true},
		{line: "(REVERSE REVERSE DATE) UTF-8 ALL", fail: true},
		{line: "(FOO) UTF-8 ALL", fail: true},
		{line: "(DATE) ALL", fail: true},
		{line: "(DATE) KOI8-R ALL", fail: true, wantErr: ErrBadCharset},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			d := decoder(tt.line)
			crit, prog, err := ParseSort(d, ParseOptions{})
			if tt.fail {
				var se *wire.SyntaxError
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || tt.wantErr == nil && !errors.As(err, &se) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || prog == nil {
				t.Fatalf("ParseSort: %v", err)
			}
			if !slices.Equal(crit, tt.want) {
				t.Errorf("criteria %v, want %v", crit, tt.want)
			}
			if !d.AtEOL() {
				t.Error("not at the end of the line")
			}
		})
	}
}

func TestSort(t *testing.T) {
	tests := []struct {
		criteria string
		want     []mail.UID
	}{
		{"SUBJECT", []mail.UID{7, 2, 1, 5, 9}},
		{"REVERSE SUBJECT", []mail.UID{9, 1, 5, 2, 7}},
		{"ARRIVAL", []mail.UID{1, 2, 5, 7, 9}},
		{"REVERSE ARRIVAL", []mail.UID{9, 7, 5, 2, 1}},
		{"DATE", []mail.UID{1, 2, 5, 7, 9}},
		{"FROM", []mail.UID{1, 9, 5, 7, 2}},
		{"TO", []mail.UID{2, 5, 7, 9, 1}},
		{"CC", []mail.UID{2, 5, 7, 9, 1}},
		{"CC REVERSE ARRIVAL", []mail.UID{9, 7, 5, 2, 1}},
		{"DISPLAYFROM", []mail.UID{1, 9, 5, 7, 2}},
		{"DISPLAYTO", []mail.UID{2, 5, 7, 9, 1}},
		{"REVERSE SIZE", []mail.UID{9}}, // only the first is checked
	}
	for _, tt := range tests {
		t.Run(tt.criteria, func(t *testing.T) {
			msgs, st := fixture(t)
			crit, _, err := ParseSort(decoder("("+tt.criteria+") UTF-8 ALL"), ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			perm, err := Sort(context.Background(), msgs, crit, st)
			if err != nil {
				t.Fatal(err)
			}
			got := uidsOf(msgs, perm)
			if len(tt.want) == 1 {
				got = got[:1]
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SORT (%s) = %v, want %v", tt.criteria, got, tt.want)
			}
			if h, b := st.reads(); h+b != 0 {
				t.Errorf("read %d headers, %d bodies", h, b)
			}
		})
	}
}

// tmsg describes a message for threading tests.
type tmsg struct {
	id, refs, irt, subject string
	date                   int // minutes after a fixed time; 0: no Date header
}

func threadFixture(t *testing.T, specs []tmsg) ([]Message, *store) {
	t.Helper()
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	st := &store{raw: map[mail.UID][]byte{}}
	var msgs []Message
	for i, s := range specs {
		var sb strings.Builder
		fmt.Fprintf(&sb, "From: u%d@example.com\r\nSubject: %s\r\n", i+1, s.subject)
		if s.id != "" {
			fmt.Fprintf(&sb, "Message-ID: %s\r\n", s.id)
		}
		if s.refs != "" {
			fmt.Fprintf(&sb, "References: %s\r\n", s.refs)
		}
		if s.irt != "" {
			fmt.Fprintf(&sb, "In-Reply-To: %s\r\n", s.irt)
		}
		if s.date != 0 {
			fmt.Fprintf(&sb, "Date: %s\r\n", base.Add(time.Duration(s.date)*time.Minute).Format(time.RFC1123Z))
		}
		sb.WriteString("\r\nbody\r\n")
		raw := sb.String()
		structure, err := mime.Scan(strings.NewReader(raw), mime.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		uid := mail.UID(100 + i)
		st.raw[uid] = []byte(raw)
		msgs = append(msgs, Message{Seq: uint32(i + 1), UID: uid, InternalDate: base, Size: int64(len(raw)), Structure: structure})
	}
	return msgs, st
}

func threadString(t *testing.T, msgs []Message, threads []*ThreadNode) string {
	t.Helper()
	s := encode(func(e *wire.Encoder) {
		WriteThread(e, threads, func(i int) uint32 { return msgs[i].Seq })
	})
	return strings.TrimSuffix(strings.TrimPrefix(s, "* THREAD "), "\r\n")
}

func TestThreadReferences(t *testing.T) {
	tests := []struct {
		name  string
		specs []tmsg
		want  string
	}{
		{"chain and branch", []tmsg{
			{id: "<a@x>", subject: "x", date: 1},
			{id: "<b@x>", refs: "<a@x>", subject: "Re: x", date: 2},
			{id: "<c@x>", refs: "<a@x> <b@x>", subject: "Re: x", date: 3},
			{id: "<d@x>", refs: "<a@x>", subject: "Re: x", date: 4},
		}, "(1 (2 3)(4))"},
		{"missing parent, two replies", []tmsg{
			{id: "<b@x>", refs: "<a@x>", subject: "Re: y", date: 1},
			{id: "<c@x>", refs: "<a@x>", subject: "Re: y", date: 2},
		}, "((1)(2))"},
		{"missing parent, one reply", []tmsg{
			{id: "<b@x>", refs: "<gone@x>", subject: "z", date: 1},
		}, "(1)"},
		{"missing middle", []tmsg{
			{id: "<a@x>", subject: "m", date: 1},
			{id: "<c@x>", refs: "<a@x> <b@x>", subject: "Re: m", date: 3},
		}, "(1 2)"},
		{"truncated references", []tmsg{
			{id: "<a@x>", subject: "t", date: 1},
			{id: "<b@x>", refs: "<a@x>", subject: "Re: t", date: 2},
			{id: "<c@x>", refs: "<b@x>", subject: "Re: t", date: 3},
		}, "(1 2 3)"},
		{"loop in references", []tmsg{
			{id: "<a@x>", refs: "<b@x>", subject: "one", date: 1},
			{id: "<b@x>", refs: "<a@x>", subject: "two", date: 2},
		}, "(2 1)"},
		{"self reference", []tmsg{
			{id: "<a@x>", refs: "<a@x>", subject: "self", date: 1},
		}, "(1)"},
		{"reference cycle among dummies", []tmsg{
			{id: "<m@x>", refs: "<p@x> <q@x> <p@x>", subject: "cyc", date: 1},
		}, "(1)"},
		{"in-reply-to only", []tmsg{
			{id: "<a@x>", subject: "irt", date: 1},
			{id: "<b@x>", irt: "<a@x> <zzz@x>", subject: "something else", date: 2},
		}, "(1 2)"},
		{"same subject, different threads", []tmsg{
			{id: "<a@x>", subject: "Meeting", date: 1},
			{id: "<b@x>", subject: "Meeting", date: 2},
			{id: "<c@x>", subject: "Re: Meeting", date: 3},
		}, "((1)(2)(3))"},
		{"reply by subject", []tmsg{
			{id: "<a@x>", subject: "Lunch", date: 1},
			{id: "<b@x>", subject: "Re: lunch", date: 2},
		}, "(1 2)"},
		{"reply before original", []tmsg{
			{id: "<b@x>", subject: "Re: Lunch", date: 1},
			{id: "<a@x>", subject: "Lunch", date: 2},
		}, "(2 1)"},
		{"duplicate message-id", []tmsg{
			{id: "<a@x>", subject: "first", date: 1},
			{id: "<a@x>", subject: "second", date: 2},
			{id: "<r@x>", refs: "<a@x>", subject: "Re: first", date: 3},
		}, "(1 3)(2)"},
		{"no message-id", []tmsg{
			{subject: "p", date: 2},
			{subject: "q", date: 1},
		}, "(2)(1)"},
		{"siblings by date", []tmsg{
			{id: "<a@x>", subject: "s", date: 1},
			{id: "<b@x>", refs: "<a@x>", subject: "Re: s", date: 3},
			{id: "<c@x>", refs: "<a@x>", subject: "Re: s", date: 2},
		}, "(1 (3)(2))"},
		{"dummy root merged with subject", []tmsg{
			{id: "<b@x>", refs: "<a@x>", subject: "Re: k", date: 2},
			{id: "<c@x>", refs: "<a@x>", subject: "Re: k", date: 3},
			{id: "<d@x>", subject: "k", date: 1},
		}, "((3)(1)(2))"},
		{"empty subjects not merged", []tmsg{
			{id: "<a@x>", subject: "", date: 1},
			{id: "<b@x>", subject: "", date: 2},
		}, "(1)(2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, st := threadFixture(t, tt.specs)
			threads, err := Thread(context.Background(), msgs, ThreadReferences, st)
			if err != nil {
				t.Fatal(err)
			}
			if got := threadString(t, msgs, threads); got != tt.want {
				t.Errorf("THREAD REFERENCES = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestThreadOrderedSubject(t *testing.T) {
	tests := []struct {
		name  string
		specs []tmsg
		want  string
	}{
		{"groups", []tmsg{
			{subject: "Hello", date: 1},
			{subject: "Re: hello", date: 3},
			{subject: "Other", date: 2},
			{subject: "Re: Hello", date: 4},
		}, "(1 (2)(4))(3)"},
		{"one child", []tmsg{
			{subject: "b", date: 5},
			{subject: "a", date: 1},
			{subject: "Re: b", date: 6},
		}, "(2)(1 3)"},
		{"ties by sequence", []tmsg{
			{subject: "x"},
			{subject: "x"},
		}, "(1 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, st := threadFixture(t, tt.specs)
			threads, err := Thread(context.Background(), msgs, ThreadOrderedSubject, st)
			if err != nil {
				t.Fatal(err)
			}
			if got := threadString(t, msgs, threads); got != tt.want {
				t.Errorf("THREAD ORDEREDSUBJECT = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWriteThread(t *testing.T) {
	n := func(i int, ch ...*ThreadNode) *ThreadNode { return &ThreadNode{Index: i, Children: ch} }
	tests := []struct {
		name    string
		threads []*ThreadNode
		want    string
	}{
		{"rfc 5256 example", []*ThreadNode{
			n(2), n(3, n(6, n(4, n(23)), n(44, n(7, n(96))))),
		}, "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"},
		{"dummy root", []*ThreadNode{n(-1, n(3), n(5))}, "* THREAD ((3)(5))\r\n"},
		{"dummy with one child", []*ThreadNode{n(-1, n(3, n(4)))}, "* THREAD (3 4)\r\n"},
		{"none", nil, "* THREAD\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encode(func(e *wire.Encoder) {
				WriteThread(e, tt.threads, func(i int) uint32 { return uint32(i) })
			})
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseThread(t *testing.T) {
	d := decoder("references UTF-8 SINCE 1-Feb-1994 NOT DELETED")
	alg, prog, err := ParseThread(d, ParseOptions{})
	if err != nil || alg != ThreadReferences || prog == nil || !d.AtEOL() {
		t.Fatalf("ParseThread = %q, %v, %v", alg, prog, err)
	}
	var se *wire.SyntaxError
	if _, _, err := ParseThread(decoder("JWZ UTF-8 ALL"), ParseOptions{}); !errors.As(err, &se) {
		t.Errorf("unknown algorithm: err = %v", err)
	}
	if _, _, err := ParseThread(decoder("ORDEREDSUBJECT ISO-2022-JP ALL"), ParseOptions{}); !errors.Is(err, ErrBadCharset) {
		t.Errorf("bad charset: err = %v", err)
	}
}
