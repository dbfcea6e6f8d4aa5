package imapsearch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

func parse(t *testing.T, line string, opts ParseOptions) *Program {
	t.Helper()
	d := decoder(line)
	p, err := ParseSearch(d, opts)
	if err != nil {
		t.Fatalf("ParseSearch(%q): %v", line, err)
	}
	if !d.AtEOL() {
		t.Fatalf("ParseSearch(%q) stopped before the end of the line", line)
	}
	return p
}

func TestSearchKeys(t *testing.T) {
	all := []mail.UID{1, 2, 5, 7, 9}
	tests := []struct {
		query string
		want  []mail.UID
		// reads: headers and bodies read at most (-1: don't check).
		maxHeaders, maxBodies int
	}{
		{"ALL", all, 0, 0},
		{"ANSWERED", []mail.UID{1}, 0, 0},
		{"UNANSWERED", []mail.UID{2, 5, 7, 9}, 0, 0},
		{"DELETED", []mail.UID{5}, 0, 0},
		{"UNDELETED", []mail.UID{1, 2, 7, 9}, 0, 0},
		{"DRAFT", []mail.UID{5}, 0, 0},
		{"UNDRAFT", []mail.UID{1, 2, 7, 9}, 0, 0},
		{"FLAGGED", []mail.UID{2}, 0, 0},
		{"UNFLAGGED", []mail.UID{1, 5, 7, 9}, 0, 0},
		{"SEEN", []mail.UID{1, 9}, 0, 0},
		{"unseen", []mail.UID{2, 5, 7}, 0, 0},
		{"KEYWORD $important", []mail.UID{2}, 0, 0},
		{"UNKEYWORD $Important", []mail.UID{1, 5, 7, 9}, 0, 0},
		{"RECENT", []mail.UID{2, 9}, 0, 0},
		{"NEW", []mail.UID{2}, 0, 0},
		{"OLD", []mail.UID{1, 5, 7}, 0, 0},
		{"BEFORE 11-Jan-2024", []mail.UID{1}, 0, 0},
		{"ON 12-Jan-2024", []mail.UID{5, 7}, 0, 0},
		{`SINCE "12-jan-2024"`, []mail.UID{5, 7, 9}, 0, 0},
		{"SENTBEFORE 2-Feb-1994", []mail.UID{1}, 0, 0},
		{"SENTON 1-Feb-1994", []mail.UID{1}, 0, 0}, // its own zone, not UTC
		{"SENTON 3-Feb-1994", []mail.UID{5}, 0, 0},
		{"SENTSINCE 2-Feb-1994", []mail.UID{2, 5, 7, 9}, 0, 0},
		{"SENTON 12-Jan-2024", []mail.UID{7}, 0, 0}, // bad Date: internal date
		{"LARGER 100000", []mail.UID{9}, 0, 0},
		{"SMALLER 100000", []mail.UID{1, 2, 5, 7}, 0, 0},
		{"FROM alice", []mail.UID{1}, 0, 0},
		{`FROM "alice example"`, []mail.UID{1}, 0, 0},
		{`FROM "MÜLLER"`, []mail.UID{2}, 0, 0},
		{"TO alice@example.com", []mail.UID{2, 5, 7, 9}, 0, 0},
		{"TO team", []mail.UID{5}, 0, 0},
		{"TO frank", []mail.UID{5}, 0, 0},
		{"CC carol", []mail.UID{1}, 0, 0},
		{"BCC secret-bcc", []mail.UID{5}, 0, 0},
		{"SUBJECT hello", []mail.UID{1, 5}, 0, 0},
		{`SUBJECT "grüße"`, []mail.UID{2}, 0, 0},
		{`SUBJECT "日本語"`, []mail.UID{2}, 0, 0},
		{"SUBJECT {5}\r\nHELLO", []mail.UID{1, 5}, 0, 0},
		{"HEADER X-Priority 1", []mail.UID{1}, 5, 0},
		{`HEADER x-priority ""`, []mail.UID{1}, 5, 0},
		{"HEADER Message-ID m5@", []mail.UID{5}, 5, 0},
		{`HEADER Subject "grüße"`, []mail.UID{2}, 5, 0},
		{"BODY needle", []mail.UID{1}, 0, 5},
		{`BODY "münchen"`, []mail.UID{2}, 0, 5},
		{`BODY "straßenname"`, []mail.UID{2}, 0, 5},
		{"BODY swordfish", []mail.UID{5}, 0, 5},
		{`BODY "ünïcödé"`, []mail.UID{5}, 0, 5},
		{"BODY zebra", []mail.UID{}, 0, 5}, // attachments are not text
		{`BODY "nested body"`, []mail.UID{7}, 0, 5},
		{`BODY "inner subject"`, []mail.UID{7}, 0, 5},
		{`BODY "tail marker"`, []mail.UID{9}, 0, 5},
		{"BODY hello", []mail.UID{}, 0, 5},
		{`BODY ""`, all, 0, 0},
		{"TEXT hello", []mail.UID{1, 5}, 0, 5},
		{"TEXT needle", []mail.UID{1}, 0, 5},
		{`TEXT "日本語"`, []mail.UID{2}, 0, 5},
		{"TEXT x-priority", []mail.UID{1}, 0, 5},
		{"1:2", []mail.UID{1, 2}, 0, 0},
		{"2,4:*", []mail.UID{2, 7, 9}, 0, 0},
		{"*", []mail.UID{9}, 0, 0},
		{"*:4", []mail.UID{7, 9}, 0, 0},
		{"UID 5:*", []mail.UID{5, 7, 9}, 0, 0},
		{"UID 8", []mail.UID{}, 0, 0},
		{"UID *", []mail.UID{9}, 0, 0},
		{"UID 6:3", []mail.UID{5}, 0, 0},
		{"UID 10:*", []mail.UID{9}, 0, 0},
		{"OR SEEN FLAGGED", []mail.UID{1, 2, 9}, 0, 0},
		{"NOT SEEN", []mail.UID{2, 5, 7}, 0, 0},
		{"NOT NOT SEEN", []mail.UID{1, 9}, 0, 0},
		{"NOT (SEEN FLAGGED)", all, 0, 0},
		{"(OR ANSWERED DELETED) NOT DRAFT", []mail.UID{1}, 0, 0},
		{"OR OR ANSWERED DRAFT FLAGGED", []mail.UID{1, 2, 5}, 0, 0},
		{"OR (FROM alice SEEN) (BODY swordfish UID 5)", []mail.UID{1, 5}, 0, 1},
		{"BODY needle SEEN", []mail.UID{1}, 0, 2},
		{"SEEN ((UNANSWERED)) 1:*", []mail.UID{9}, 0, 0},
		{"MODSEQ 30", []mail.UID{5, 7, 9}, 0, 0},
		{`MODSEQ "/flags/\\draft" all 35`, []mail.UID{7, 9}, 0, 0},
		{`CHARSET UTF-8 SUBJECT "grüße"`, []mail.UID{2}, 0, 0},
		{"CHARSET us-ascii ALL", all, 0, 0},
		{"RETURN (MIN) CHARSET UTF-8 CC carol", []mail.UID{1}, 0, 0},
		{"RETURN () RECENT", []mail.UID{2, 9}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			msgs, st := fixture(t)
			p := parse(t, tt.query, ParseOptions{})
			idx, err := p.Eval(context.Background(), msgs, st)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if got := uidsOf(msgs, idx); !slices.Equal(got, tt.want) {
				t.Errorf("%s (%s) = %v, want %v", tt.query, p, got, tt.want)
			}
			h, b := st.reads()
			if h > tt.maxHeaders || b > tt.maxBodies {
				t.Errorf("read %d headers and %d bodies, want at most %d and %d", h, b, tt.maxHeaders, tt.maxBodies)
			}
		})
	}
}

// TestTextAcrossChunks runs the body searches with tiny reads, so that
// every pattern and many UTF-8 sequences straddle a chunk boundary.
func TestTextAcrossChunks(t *testing.T) {
	for _, size := range []int{1, 2, 3, 7, 64} {
		old := chunkSize
		chunkSize = size
		t.Cleanup(func() { chunkSize = old })
		for _, tt := range []struct {
			query string
			want  mail.UID
		}{
			{`BODY "münchen"`, 2},
			{"BODY swordfish", 5},
			{`BODY "ünïcödé"`, 5},
			{`BODY "tail marker"`, 9},
			{"BODY needle", 1},
			{`TEXT "日本語"`, 2},
		} {
			t.Run(tt.query, func(t *testing.T) {
				msgs, st := fixture(t)
				idx, err := parse(t, tt.query, ParseOptions{}).Eval(context.Background(), msgs, st)
				if err != nil {
					t.Fatal(err)
				}
				if got := uidsOf(msgs, idx); !slices.Equal(got, []mail.UID{tt.want}) {
					t.Errorf("chunk %d: %s = %v, want [%d]", size, tt.query, got, tt.want)
				}
			})
		}
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		name   string
		needle string
		chunks []string
		want   bool
	}{
		{"split needle", "needle", []string{"a nee", "dle b"}, true},
		{"split rune", "grüße", []string{"gr\xc3", "\xbc\xc3", "\x9fe"}, true},
		{"case folded", fold("ÄBC"), []string{"xx", "äbc"}, true},
		{"no match", "abc", []string{"ab", "xc"}, false},
		{"invalid utf-8 kept", "a\xffb", []string{"za\xff", "bz"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMatcher(tt.needle)
			for _, c := range tt.chunks {
				_, _ = m.Write([]byte(c))
			}
			m.end()
			if m.found != tt.want {
				t.Errorf("found = %v, want %v", m.found, tt.want)
			}
		})
	}
}

func TestTextLimit(t *testing.T) {
	msgs, st := fixture(t)
	p := parse(t, `BODY "tail marker"`, ParseOptions{MaxTextBytes: 4096})
	idx, err := p.Eval(context.Background(), msgs, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx) != 0 {
		t.Errorf("matched %v past the byte limit", uidsOf(msgs, idx))
	}
}

func TestSavedResult(t *testing.T) {
	msgs, st := fixture(t)
	for _, q := range []string{"$", "UID $", "$ ALL"} {
		t.Run(q, func(t *testing.T) {
			p := parse(t, q, ParseOptions{})
			if !p.UsesSaved() {
				t.Error("UsesSaved = false")
			}
			idx, _ := p.Eval(context.Background(), msgs, st)
			if len(idx) != 0 {
				t.Errorf("no saved result: got %v", idx)
			}
			p.Saved = mail.NewUIDSet(2, 7, 100)
			idx, _ = p.Eval(context.Background(), msgs, st)
			if got := uidsOf(msgs, idx); !slices.Equal(got, []mail.UID{2, 7}) {
				t.Errorf("got %v, want [2 7]", got)
			}
		})
	}
}

func TestParseReturnAndModSeq(t *testing.T) {
	p := parse(t, "RETURN (MIN MAX COUNT ALL SAVE) MODSEQ 5", ParseOptions{})
	want := ReturnOptions{Set: true, Min: true, Max: true, Count: true, All: true, Save: true}
	if p.Return != want {
		t.Errorf("Return = %+v", p.Return)
	}
	if !p.UsesModSeq() {
		t.Error("UsesModSeq = false")
	}
	if p := parse(t, "RETURN () ALL", ParseOptions{}); !p.Return.All || !p.Return.ESearch() {
		t.Errorf("RETURN () = %+v", p.Return)
	}
	if p := parse(t, "RETURN (SAVE) ALL", ParseOptions{}); p.Return.ESearch() {
		t.Error("SAVE alone must not give an ESEARCH response")
	}
	if p := parse(t, "CHARSET UTF-8 ALL", ParseOptions{}); p.Charset != "UTF-8" || p.Return.Set {
		t.Errorf("charset %q return %+v", p.Charset, p.Return)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, query string
		want        error // nil: a *wire.SyntaxError or a read error
	}{
		{"empty", "", nil},
		{"unknown key", "FOO", nil},
		{"open group", "SEEN (", nil},
		{"empty group", "()", nil},
		{"zero", "UID 0", nil},
		{"bad set", "1:2:3", nil},
		{"dollar in set", "1,$", nil},
		{"bad date", "BEFORE 32-Jan-2024", nil},
		{"bad month", "BEFORE 1-Foo-2024", nil},
		{"bad return", "RETURN (BOGUS) ALL", nil},
		{"return without keys", "RETURN (MIN)", nil},
		{"short or", "OR SEEN", nil},
		{"bad modseq entry", `MODSEQ "/foo" all 3`, nil},
		{"bad modseq type", `MODSEQ "/flags/\\seen" mine 3`, nil},
		{"empty header name", `HEADER "" x`, nil},
		{"trailing space", "ALL ", nil},
		{"bad charset", "CHARSET KOI8-R SUBJECT x", ErrBadCharset},
		{"deep nesting", strings.Repeat("NOT ", 100) + "ALL", ErrTooComplex},
		{"deep parens", strings.Repeat("(", 100) + "ALL" + strings.Repeat(")", 100), ErrTooComplex},
		{"too many keys", strings.TrimSpace(strings.Repeat("ALL ", 5000)), ErrTooComplex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decoder(tt.query)
			p, err := ParseSearch(d, ParseOptions{})
			if err == nil {
				t.Fatalf("ParseSearch(%q) = %s, want an error", tt.query, p)
			}
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			}
			var se *wire.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want a syntax error", err, err)
			}
		})
	}
	t.Run("bad charset reads the line", func(t *testing.T) {
		d := decoder("CHARSET KOI8-R SUBJECT {3}\r\nabc SEEN")
		_, err := ParseSearch(d, ParseOptions{})
		if !errors.Is(err, ErrBadCharset) || !d.AtEOL() {
			t.Fatalf("err = %v, at end of line %v", err, d.AtEOL())
		}
	})
}

func TestSeqSet(t *testing.T) {
	tests := []struct {
		set  string
		max  uint32
		in   []uint32
		out  []uint32
		text string
	}{
		{"1:3,5", 10, []uint32{1, 2, 3, 5}, []uint32{4, 6}, "1:3,5"},
		{"5:3", 10, []uint32{3, 4, 5}, []uint32{2, 6}, "5:3"},
		{"7:*", 5, []uint32{5, 6, 7}, []uint32{4, 8}, "7:*"},
		{"*", 5, []uint32{5}, []uint32{4}, "*"},
		{"*", 0, nil, []uint32{0, 1}, "*"},
		{"1,1:2,2:4", 10, []uint32{1, 2, 3, 4}, []uint32{5}, "1,1:2,2:4"},
		{"4294967295", 1, []uint32{4294967295}, []uint32{1}, "4294967295"},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			s, err := ParseSeqSet(tt.set)
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tt.text {
				t.Errorf("String = %q", s.String())
			}
			r := s.Resolve(tt.max)
			for _, n := range tt.in {
				if !r.Contains(n) {
					t.Errorf("%d not in %s (max %d)", n, tt.set, tt.max)
				}
			}
			for _, n := range tt.out {
				if r.Contains(n) {
					t.Errorf("%d in %s (max %d)", n, tt.set, tt.max)
				}
			}
		})
	}
	for _, bad := range []string{"", "0", "1:", ":1", "a", "1,,2", "4294967296", "-1", "+1", "$,1"} {
		if _, err := ParseSeqSet(bad); !errors.Is(err, ErrBadSeqSet) {
			t.Errorf("ParseSeqSet(%q) err = %v", bad, err)
		}
	}
}

func encode(f func(e *wire.Encoder)) string {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	e := wire.NewEncoder(w)
	f(e)
	_ = e.Flush()
	return buf.String()
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name string
		f    func(e *wire.Encoder)
		want string
	}{
		{"search", func(e *wire.Encoder) { WriteSearch(e, []uint32{1, 2, 3}) }, "* SEARCH 1 2 3\r\n"},
		{"search empty", func(e *wire.Encoder) { WriteSearch(e, nil) }, "* SEARCH\r\n"},
		{"search modseq", func(e *wire.Encoder) { WriteSearchModSeq(e, []uint32{2, 5}, 917162500) }, "* SEARCH 2 5 (MODSEQ 917162500)\r\n"},
		{"search modseq empty", func(e *wire.Encoder) { WriteSearchModSeq(e, nil, 0) }, "* SEARCH\r\n"},
		{"sort", func(e *wire.Encoder) { WriteSort(e, []uint32{5, 3, 4}, 0) }, "* SORT 5 3 4\r\n"},
		{"esearch all", func(e *wire.Encoder) {
			WriteESearch(e, "a1", true, ReturnOptions{Set: true, Min: true, Max: true, Count: true, All: true}, []uint32{9, 1, 2, 3}, 0)
		}, `* ESEARCH (TAG "a1") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9` + "\r\n"},
		{"esearch no match", func(e *wire.Encoder) {
			WriteESearch(e, "a2", false, ReturnOptions{Set: true, Min: true, Count: true, All: true}, nil, 0)
		}, `* ESEARCH (TAG "a2") COUNT 0` + "\r\n"},
		{"esearch rev2 default", func(e *wire.Encoder) {
			WriteESearch(e, "t", false, ReturnOptions{}, []uint32{4, 5, 6, 8, 10, 11}, 0)
		}, `* ESEARCH (TAG "t") ALL 4:6,8,10:11` + "\r\n"},
		{"esearch modseq", func(e *wire.Encoder) {
			WriteESearch(e, "a3", true, ReturnOptions{Set: true, Min: true}, []uint32{7}, 42)
		}, `* ESEARCH (TAG "a3") UID MIN 7 MODSEQ 42` + "\r\n"},
		{"esearch quoted tag", func(e *wire.Encoder) {
			WriteESearch(e, `a"b`, false, ReturnOptions{Set: true, Count: true}, []uint32{1}, 0)
		}, `* ESEARCH (TAG "a\"b") COUNT 1` + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encode(tt.f); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSaveAndModSeqResult(t *testing.T) {
	msgs, _ := fixture(t)
	matched := []int{1, 2, 3} // modseqs 20, 30, 40
	nums := []uint32{2, 3, 4}
	tests := []struct {
		name   string
		opts   ReturnOptions
		save   []uint32
		modseq uint64
	}{
		{"all", ReturnOptions{Set: true, All: true, Save: true}, []uint32{2, 3, 4}, 40},
		{"min", ReturnOptions{Set: true, Min: true, Save: true}, []uint32{2}, 20},
		{"max", ReturnOptions{Set: true, Max: true, Save: true}, []uint32{4}, 40},
		{"min max", ReturnOptions{Set: true, Min: true, Max: true, Save: true}, []uint32{2, 4}, 40},
		{"min count", ReturnOptions{Set: true, Min: true, Count: true, Save: true}, []uint32{2, 3, 4}, 40},
		{"no save", ReturnOptions{Set: true, Min: true}, nil, 20},
		{"no return", ReturnOptions{}, nil, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.opts.SaveResult(nums); !slices.Equal(got, tt.save) {
				t.Errorf("SaveResult = %v, want %v", got, tt.save)
			}
			if got := ResultModSeq(msgs, matched, tt.opts); got != tt.modseq {
				t.Errorf("ResultModSeq = %d, want %d", got, tt.modseq)
			}
		})
	}
	if got := ResultModSeq(msgs, nil, ReturnOptions{}); got != 0 {
		t.Errorf("ResultModSeq of nothing = %d", got)
	}
	if got := (ReturnOptions{Set: true, Min: true, Max: true, Save: true}).SaveResult([]uint32{5}); !slices.Equal(got, []uint32{5}) {
		t.Errorf("SaveResult min=max = %v", got)
	}
}

func TestEvalErrors(t *testing.T) {
	msgs, st := fixture(t)
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := parse(t, "ALL", ParseOptions{}).Eval(ctx, msgs, st); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("missing blob", func(t *testing.T) {
		st := &store{raw: map[mail.UID][]byte{}}
		if _, err := parse(t, "BODY x", ParseOptions{}).Eval(context.Background(), msgs, st); err == nil {
			t.Error("no error for an unreadable body")
		}
	})
	t.Run("no structure", func(t *testing.T) {
		bare := slices.Clone(msgs)
		for i := range bare {
			bare[i].Structure = nil
		}
		idx, err := parse(t, `FROM alice OR BODY swordfish SUBJECT "grüße"`, ParseOptions{}).Eval(context.Background(), bare, st)
		if err != nil {
			t.Fatal(err)
		}
		if got := uidsOf(bare, idx); !slices.Equal(got, []mail.UID{}) {
			t.Errorf("got %v", got)
		}
		idx, _ = parse(t, "OR FROM alice BODY swordfish", ParseOptions{}).Eval(context.Background(), bare, st)
		if got := uidsOf(bare, idx); !slices.Equal(got, []mail.UID{1}) {
			// swordfish is base64 and, without a structure, the raw
			// stream is matched: only FROM alice matches.
			t.Errorf("got %v, want [1]", got)
		}
	})
}
