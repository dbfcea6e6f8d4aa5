package imapbody

import (
	"errors"
	"reflect"
	"testing"

	"github.com/mailstore/mailstore/pkg/mime"
)

func TestParseFetchAtt(t *testing.T) {
	tests := []struct {
		word    string
		kind    Kind
		peek    bool
		section Section
		partial Partial
		name    string
	}{
		{"BODY[]", KindBody, false, Section{}, Partial{}, "BODY[]"},
		{"body.peek[]", KindBody, true, Section{}, Partial{}, "BODY[]"},
		{"BODY[]<0.100>", KindBody, false, Section{}, Partial{0, 100, true}, "BODY[]<0>"},
		{"BODY.PEEK[HEADER.FIELDS (From To)]<0.100>", KindBody, true,
			Section{Text: TextHeaderFields, Fields: []string{"FROM", "TO"}}, Partial{0, 100, true},
			"BODY[HEADER.FIELDS (FROM TO)]<0>"},
		{`BODY[header.fields.not ("X-Spam" list-id)]`, KindBody, false,
			Section{Text: TextHeaderFieldsNot, Fields: []string{"X-SPAM", "LIST-ID"}}, Partial{},
			"BODY[HEADER.FIELDS.NOT (X-SPAM LIST-ID)]"},
		{"BODY[HEADER]", KindBody, false, Section{Text: TextHeader}, Partial{}, "BODY[HEADER]"},
		{"BODY[text]<5.7>", KindBody, false, Section{Text: TextText}, Partial{5, 7, true}, "BODY[TEXT]<5>"},
		{"BODY[1]", KindBody, false, Section{Part: []uint32{1}}, Partial{}, "BODY[1]"},
		{"BODY[1.2.3]", KindBody, false, Section{Part: []uint32{1, 2, 3}}, Partial{}, "BODY[1.2.3]"},
		{"BODY[1.2.mime]", KindBody, false, Section{Part: []uint32{1, 2}, Text: TextMIME}, Partial{}, "BODY[1.2.MIME]"},
		{"BODY[2.HEADER]", KindBody, false, Section{Part: []uint32{2}, Text: TextHeader}, Partial{}, "BODY[2.HEADER]"},
		{"BODY[2.TEXT]", KindBody, false, Section{Part: []uint32{2}, Text: TextText}, Partial{}, "BODY[2.TEXT]"},
		{"BODY[2.HEADER.FIELDS (subject)]", KindBody, false,
			Section{Part: []uint32{2}, Text: TextHeaderFields, Fields: []string{"SUBJECT"}}, Partial{},
			"BODY[2.HEADER.FIELDS (SUBJECT)]"},
		{"BODY[4294967295]", KindBody, false, Section{Part: []uint32{4294967295}}, Partial{}, "BODY[4294967295]"},
		{"BINARY[1]", KindBinary, false, Section{Part: []uint32{1}}, Partial{}, "BINARY[1]"},
		{"BINARY.PEEK[1.2]<10.20>", KindBinary, true, Section{Part: []uint32{1, 2}}, Partial{10, 20, true}, "BINARY[1.2]<10>"},
		{"BINARY[]", KindBinary, false, Section{}, Partial{}, "BINARY[]"},
		{"binary.size[3]", KindBinarySize, true, Section{Part: []uint32{3}}, Partial{}, "BINARY.SIZE[3]"},
		{"RFC822", KindBody, false, Section{}, Partial{}, "RFC822"},
		{"rfc822.header", KindBody, true, Section{Text: TextHeader}, Partial{}, "RFC822.HEADER"},
		{"RFC822.TEXT", KindBody, false, Section{Text: TextText}, Partial{}, "RFC822.TEXT"},
		{`BODY[HEADER.FIELDS ("a]b")]`, KindBody, false,
			Section{Text: TextHeaderFields, Fields: []string{"A]B"}}, Partial{}, `BODY[HEADER.FIELDS ("A]B")]`},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			a, err := ParseFetchAtt(tt.word)
			if err != nil {
				t.Fatalf("ParseFetchAtt: %v", err)
			}
			want := FetchAtt{Kind: tt.kind, Peek: tt.peek, Section: tt.section, Partial: tt.partial, Name: tt.name}
			if !reflect.DeepEqual(a, want) {
				t.Errorf("got %+v\nwant %+v", a, want)
			}
		})
	}
}

func TestParseFetchAttErrors(t *testing.T) {
	for _, word := range []string{
		"", "BODY", "BODYSTRUCTURE", "FLAGS", "BODY[", "BODY]", "BODY.PEEK", "BODYX[]",
		"BODY[MIME]", "BODY[0]", "BODY[01]", "BODY[1.]", "BODY[.1]", "BODY[1..2]", "BODY[1.FOO]",
		"BODY[4294967296]", "BODY[HEADER.FIELDS]", "BODY[HEADER.FIELDS ()]", "BODY[HEADER.FIELDS (A  B)]",
		"BODY[HEADER.FIELDS (A B]", "BODY[HEADER.FIELDS A]", `BODY[HEADER.FIELDS ("A)]`, "BODY[HEADER x]",
		"BODY[TEXT (A)]", "BODY[HEADER.FIELDS (A) ]", "BODY[HEADER.FIELDS (\x01)]", "BODY[HEADER.FIELDS (\xc3\xa9)]",
		"BODY[]<>", "BODY[]<0>", "BODY[]<0.0>", "BODY[]<1.>", "BODY[]<.1>", "BODY[]<-1.2>", "BODY[]<0.10", "BODY[]x",
		"BODY[]<0.4294967296>", "BINARY[HEADER]", "BINARY[1.MIME]", "BINARY[1.TEXT]", "BINARY.SIZE[1]<0.1>",
		"BINARY.SIZE.PEEK[1]", "RFC822.SIZE", "RFC822.PEEK",
	} {
		t.Run(word, func(t *testing.T) {
			a, err := ParseFetchAtt(word)
			if !errors.Is(err, ErrBadSection) {
				t.Fatalf("ParseFetchAtt(%q) = %+v, %v; want ErrBadSection", word, a, err)
			}
		})
	}
}

func TestSectionString(t *testing.T) {
	for _, s := range []string{"", "HEADER", "TEXT", "1", "1.2.MIME", "3.HEADER.FIELDS (A B)", "HEADER.FIELDS.NOT (X)", `HEADER.FIELDS ("A B")`} {
		t.Run(s, func(t *testing.T) {
			sec, err := ParseSection(s)
			if err != nil {
				t.Fatalf("ParseSection: %v", err)
			}
			if got := sec.String(); got != s {
				t.Errorf("String() = %q, want %q", got, s)
			}
		})
	}
}

// FuzzParseFetchAtt checks that parsing never panics, that the echoed
// name parses back to the same section, and that any parsed section
// resolves within the message.
func FuzzParseFetchAtt(f *testing.F) {
	for _, s := range []string{"BODY[]", "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>", "BINARY.PEEK[1]", "BINARY.SIZE[1]",
		"RFC822", "RFC822.HEADER", "BODY[2.1.MIME]", "BODY[2.HEADER.FIELDS.NOT (\"x\" y)]<5.5>", "BODY[1.2.3.TEXT]"} {
		f.Add(s)
	}
	st, err := mime.Scan(stringsReader(nested), mime.Limits{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, word string) {
		a, err := ParseFetchAtt(word)
		if err != nil {
			if !errors.Is(err, ErrBadSection) {
				t.Fatalf("error %v is not ErrBadSection", err)
			}
			return
		}
		again, err := ParseSection(a.Section.String())
		if err != nil {
			t.Fatalf("canonical section %q of %q does not parse: %v", a.Section.String(), word, err)
		}
		if again.String() != a.Section.String() {
			t.Fatalf("section %q reparses as %q", a.Section.String(), again.String())
		}
		span, err := Resolve(st, a.Section)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", a.Section.String(), err)
		}
		if span.Start < 0 || span.Start > span.End || span.End > st.Size || (span.Part == nil && span.Len() != 0) {
			t.Fatalf("Resolve(%q) = %+v outside message of %d", a.Section.String(), span, st.Size)
		}
	})
}
