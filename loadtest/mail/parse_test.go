package mail

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"go.k6.io/k6/js/modulestest"
)

func TestParseFetchItems(t *testing.T) {
	tests := []struct {
		item string
		want any // the section, or the FetchOptions for plain items
	}{
		{"BODY[]", &imap.FetchItemBodySection{}},
		{"body.peek[]", &imap.FetchItemBodySection{Peek: true}},
		{"BODY[HEADER]", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}},
		{"BODY.PEEK[1.2.TEXT]<10.20>", &imap.FetchItemBodySection{Part: []int{1, 2}, Specifier: imap.PartSpecifierText, Peek: true, Partial: &imap.SectionPartial{Offset: 10, Size: 20}}},
		{"BODY[2.MIME]", &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME}},
		{"BODY.PEEK[HEADER.FIELDS (Subject From)]", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "From"}, Peek: true}},
		{"BODY[HEADER.FIELDS.NOT (X-A)]", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"X-A"}}},
		{"RFC822.HEADER", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}},
		{"BINARY.PEEK[1]<0.5>", &imap.FetchItemBinarySection{Part: []int{1}, Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: 5}}},
		{"BINARY.SIZE[1.1]", &imap.FetchItemBinarySectionSize{Part: []int{1, 1}}},
		{"ALL", &imap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true, Envelope: true}},
		{"BODY", &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}}},
	}
	for _, tt := range tests {
		t.Run(tt.item, func(t *testing.T) {
			fo, secs, err := parseFetchItems([]string{tt.item})
			if err != nil {
				t.Fatal(err)
			}
			var got any = fo
			if len(secs) == 1 {
				s := secs[0]
				switch {
				case s.body != nil:
					got = s.body
				case s.binary != nil:
					got = s.binary
				default:
					got = s.size
				}
				if s.name != tt.item {
					t.Errorf("section named %q, want %q", s.name, tt.item)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"BODY[", "BODY[FOO]", "BODY[MIME]", "BODY[1]<5>", "BODY[HEADER.FIELDS]", "BINARY.SIZE[1]<0.1>", "BINARY[x]", "X-GM-MSGID"} {
		if _, _, err := parseFetchItems([]string{bad}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseNumSet(t *testing.T) {
	tests := []struct {
		in   string
		uid  bool
		want imap.NumSet
	}{
		{"1", false, imap.SeqSet{{Start: 1, Stop: 1}}},
		{"1:*", false, imap.SeqSet{{Start: 1, Stop: 0}}},
		{"2,4:6,*", true, imap.UIDSet{{Start: 2, Stop: 2}, {Start: 4, Stop: 6}, {Start: 0, Stop: 0}}},
	}
	for _, tt := range tests {
		got, err := parseNumSet(tt.in, tt.uid)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseNumSet(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "0", "1:", "a", "1,,2", "-1"} {
		if _, err := parseNumSet(bad, false); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(map[string]any{"tls": true, "timeout": int64(1500), "serverName": "mx", "insecureSkipVerify": true, "lhlo": "me"})
	if err != nil || !o.tls || o.timeout != 1500*time.Millisecond || o.serverName != "mx" || !o.insecureSkipVerify || o.lhlo != "me" {
		t.Fatalf("got %+v, %v", o, err)
	}
	if o, err := parseOptions(map[string]any{"timeout": "2m"}); err != nil || o.timeout != 2*time.Minute {
		t.Fatalf("duration string: %+v, %v", o, err)
	}
	if o, err := parseOptions(nil); err != nil || o.timeout != defaultTimeout {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
}

// TestInitContext: connecting while the script is being initialised is
// refused with a clear message, as k6 has no dialer there yet.
func TestInitContext(t *testing.T) {
	rt := modulestest.NewRuntime(t)
	mi := new(RootModule).NewModuleInstance(rt.VU)
	if err := rt.VU.Runtime().Set("mail", mi.Exports().Default); err != nil {
		t.Fatal(err)
	}
	for _, js := range []string{`mail.imap.connect("127.0.0.1:1")`, `mail.pop3.connect("127.0.0.1:1")`, `mail.lmtp.deliver("127.0.0.1:1", "a@b", ["c@d"], "x")`} {
		_, err := rt.VU.Runtime().RunString(js)
		if err == nil || !strings.Contains(err.Error(), "init context") {
			t.Errorf("%s: %v, want an init context error", js, err)
		}
	}
}
