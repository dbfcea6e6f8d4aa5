package sieve

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

const testHeader = "Return-Path: <bounce@lists.example.org>\r\n" +
	"From: \"Alice Example\" <alice@Example.COM>\r\n" +
	"To: bob+lists@example.net,\r\n \"Carol, C.\" <carol@example.net>\r\n" +
	"Cc: undisclosed-recipients:;\r\n" +
	"Sender: plain-no-at\r\n" +
	"Subject: =?UTF-8?Q?Caf=C3=A9_weekly?= report\r\n" +
	"List-Id: Go Nuts <golang-nuts.googlegroups.com>\r\n" +
	"X-Spam-Flag: YES\r\n" +
	"X-Multi: one\r\n" +
	"X-Multi: two\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n"

const testBody = "Hello Bob,\r\nthis is the weekly report.\r\n"

// newMessage returns a Message over a raw message, split at the first
// blank line.
func newMessage(t testing.TB, raw string) Message {
	t.Helper()
	i := strings.Index(raw, "\r\n\r\n")
	if i < 0 {
		t.Fatalf("test message has no header end")
	}
	return MessageFromHeader([]byte(raw[:i+4]), int64(len(raw)), func() (io.Reader, error) {
		return strings.NewReader(raw), nil
	})
}

func compile(t testing.TB, src string, opts Options) *Script {
	t.Helper()
	s, err := Compile([]byte(src), opts)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return s
}

func execute(t testing.TB, src string, env Envelope, raw string) Result {
	t.Helper()
	res, err := compile(t, src, Options{}).Execute(context.Background(), env, newMessage(t, raw))
	if err != nil {
		t.Fatalf("Execute(%q): %v", src, err)
	}
	return res
}

func inboxOnly() Result { return Result{Actions: []Action{{Mailbox: "INBOX"}}} }

func to(boxes ...string) Result {
	var r Result
	for _, b := range boxes {
		r.Actions = append(r.Actions, Action{Mailbox: b})
	}
	return r
}

// ifTrue builds a script that files into "Yes" when test holds.
func ifTrue(require, test string) string {
	return `require ["fileinto"` + require + `];` + "\nif " + test + ` { fileinto "Yes"; }`
}

var defaultEnv = Envelope{From: "bounce@lists.example.org", To: "bob+lists@example.net"}

func TestActions(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   Result
	}{
		{"empty script keeps", ``, inboxOnly()},
		{"comment only keeps", "# nothing\n/* at all */", inboxOnly()},
		{"keep", `keep;`, inboxOnly()},
		{"discard", `discard;`, Result{Discarded: true}},
		{"keep after discard", `discard; keep;`, inboxOnly()},
		{"discard after keep", `keep; discard;`, inboxOnly()},
		{"fileinto cancels implicit keep", `require "fileinto"; fileinto "Lists";`, to("Lists")},
		{"fileinto copy keeps", `require ["fileinto", "copy"]; fileinto :copy "Lists";`, to("Lists", "INBOX")},
		{"fileinto then discard", `require "fileinto"; fileinto "Lists"; discard;`, to("Lists")},
		{"fileinto copy then discard", `require ["fileinto", "copy"]; fileinto :copy "Lists"; discard;`, to("Lists")},
		{"keep and fileinto", `require "fileinto"; keep; fileinto "A";`, to("INBOX", "A")},
		{"fileinto inbox any case", `require "fileinto"; fileinto "inbox";`, inboxOnly()},
		{"fileinto inbox child", `require "fileinto"; fileinto "inbox/Sub";`, to("INBOX/Sub")},
		{"fileinto utf8 hierarchy", `require "fileinto"; fileinto "Listes/Café";`, to("Listes/Café")},
		{"duplicates merge", `require "fileinto"; fileinto "A"; fileinto "A"; keep; fileinto "INBOX";`, to("A", "INBOX")},
		{"create", `require ["fileinto", "mailbox"]; fileinto :create "New/Sub";`,
			Result{Actions: []Action{{Mailbox: "New/Sub", Create: true}}}},
		{"create merges into an earlier fileinto", `require ["fileinto", "mailbox"]; fileinto "N"; fileinto :create "N";`,
			Result{Actions: []Action{{Mailbox: "N", Create: true}}}},
		{"stop", `require "fileinto"; fileinto "A"; stop; fileinto "B";`, to("A")},
		{"stop keeps implicitly", `stop; discard;`, inboxOnly()},
		{"if", `require "fileinto"; if true { fileinto "A"; }`, to("A")},
		{"elsif", `require "fileinto"; if false { fileinto "A"; } elsif true { fileinto "B"; } else { fileinto "C"; }`, to("B")},
		{"else", `require "fileinto"; if false { fileinto "A"; } elsif false { fileinto "B"; } else { fileinto "C"; }`, to("C")},
		{"two ifs", `require "fileinto"; if true { fileinto "A"; } if true { fileinto "B"; }`, to("A", "B")},
		{"nested", `require "fileinto"; if true { if false { fileinto "A"; } else { if true { fileinto "B"; } } }`, to("B")},
		{"stop inside block", `require "fileinto"; if true { stop; } fileinto "A";`, inboxOnly()},
		{"case-insensitive identifiers", `REQUIRE "fileinto"; IF TRUE { FileInto "A"; }`, to("A")},
	}
	raw := testHeader + testBody
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := execute(t, tt.script, defaultEnv, raw)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTests(t *testing.T) {
	tests := []struct {
		name    string
		require string // extra capabilities, e.g. `, "envelope"`
		test    string
		env     *Envelope
		want    bool
	}{
		{"true", "", `true`, nil, true},
		{"false", "", `false`, nil, false},
		{"not", "", `not false`, nil, true},
		{"allof true", "", `allof (true, true)`, nil, true},
		{"allof false", "", `allof (true, false)`, nil, false},
		{"anyof true", "", `anyof (false, true)`, nil, true},
		{"anyof false", "", `anyof (false, false)`, nil, false},
		{"exists", "", `exists ["From", "x-spam-flag"]`, nil, true},
		{"exists one missing", "", `exists ["From", "X-None"]`, nil, false},
		{"size over", "", `size :over 100`, nil, true},
		{"size over K", "", `size :over 1K`, nil, false},
		{"size under M", "", `size :under 1M`, nil, true},
		{"size under exact", "", `size :under 10`, nil, false},

		// header and match types, comparators
		{"header is casemap", "", `header :is "x-spam-flag" "yes"`, nil, true},
		{"header is octet", "", `header :comparator "i;octet" :is "X-Spam-Flag" "yes"`, nil, false},
		{"header is octet exact", "", `header :is :comparator "i;octet" "X-Spam-Flag" "YES"`, nil, true},
		{"header default is :is", "", `header "Subject" "weekly"`, nil, false},
		{"header contains", "", `header :contains "Subject" "WEEKLY"`, nil, true},
		{"header contains rfc2047", "", `header :contains "Subject" "Café"`, nil, true},
		{"header contains empty", "", `header :contains "Subject" ""`, nil, true},
		{"header missing", "", `header :contains "X-None" ""`, nil, false},
		{"header key list", "", `header :contains "Subject" ["nope", "report"]`, nil, true},
		{"header name list", "", `header :is ["X-None", "X-Spam-Flag"] "YES"`, nil, true},
		{"header second value", "", `header :is "X-Multi" "two"`, nil, true},
		{"header matches", "", `header :matches "Subject" "Caf? *report"`, nil, true},
		{"header matches anchored", "", `header :matches "Subject" "weekly*"`, nil, false},
		{"header matches escape", "", `header :matches "X-Spam-Flag" "Y\\*S"`, nil, false},
		{"header matches utf8 ?", "", `header :matches "Subject" "Caf? weekly report"`, nil, true},
		{"header matches octet", "", `header :matches :comparator "i;octet" "Subject" "caf*"`, nil, false},
		{"header ascii-casemap only ascii", "", `header :contains "Subject" "CAFÉ"`, nil, false},

		// address
		{"address all", "", `address :all "From" "alice@example.com"`, nil, true},
		{"address default all", "", `address "From" "ALICE@EXAMPLE.COM"`, nil, true},
		{"address localpart", "", `address :localpart "From" "alice"`, nil, true},
		{"address domain", "", `address :domain "From" "example.com"`, nil, true},
		{"address display name ignored", "", `address :contains "From" "Example\""`, nil, false},
		{"address second in list", "", `address :is "To" "carol@example.net"`, nil, true},
		{"address quoted comma", "", `address :localpart "To" "carol"`, nil, true},
		{"address group empty", "", `address :contains "Cc" ""`, nil, false},
		{"address no at all", "", `address :all "Sender" "plain-no-at"`, nil, true},
		{"address no at localpart", "", `address :localpart "Sender" "plain-no-at"`, nil, false},
		{"address domain matches", "", `address :domain :matches "From" "*.com"`, nil, true},
		{"address user", `, "subaddress"`, `address :user "To" "bob"`, nil, true},
		{"address detail", `, "subaddress"`, `address :detail "To" "lists"`, nil, true},
		{"address localpart with detail", "", `address :localpart "To" "bob+lists"`, nil, true},
		{"address detail absent", `, "subaddress"`, `address :detail :matches "From" "*"`, nil, false},

		// envelope
		{"envelope from", `, "envelope"`, `envelope :domain "from" "lists.example.org"`, nil, true},
		{"envelope to all", `, "envelope"`, `envelope "to" "bob+lists@example.net"`, nil, true},
		{"envelope to user", `, "envelope", "subaddress"`, `envelope :user "to" "bob"`, nil, true},
		{"envelope to detail", `, "envelope", "subaddress"`, `envelope :detail "to" "LISTS"`, nil, true},
		{"envelope part list", `, "envelope"`, `envelope :localpart ["from", "to"] "bob+lists"`, nil, true},
		{"envelope detail empty", `, "envelope", "subaddress"`, `envelope :detail "to" ""`,
			&Envelope{To: "bob+@example.net"}, true},
		{"envelope detail none", `, "envelope", "subaddress"`, `envelope :detail :matches "to" "*"`,
			&Envelope{To: "bob@example.net"}, false},
		{"envelope null sender", `, "envelope"`, `envelope :localpart "from" ""`, &Envelope{To: "bob@example.net"}, true},
		{"envelope angle brackets", `, "envelope"`, `envelope :domain "to" "example.net"`, &Envelope{To: "<bob@example.net>"}, true},

		// body (:text is the default)
		{"body default text", `, "body"`, `body :contains "weekly report"`, nil, true},
		{"body text not header", `, "body"`, `body :contains "X-Spam-Flag"`, nil, false},
		{"body raw", `, "body"`, "body :raw :matches text:\nHello Bob,\n*\n.\n", nil, true},
		{"body content text", `, "body"`, `body :content "text" :contains "hello"`, nil, true},
		{"body content other", `, "body"`, `body :content "image" :contains "hello"`, nil, false},
	}
	raw := testHeader + testBody
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := defaultEnv
			if tt.env != nil {
				env = *tt.env
			}
			got := execute(t, ifTrue(tt.require, tt.test), env, raw)
			want := to("INBOX")
			if tt.want {
				want = to("Yes")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("test %s: got %+v, want match=%v", tt.test, got, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []Action
	}{
		{"setflag applies to implicit keep", `setflag "\\seen";`,
			[]Action{{Mailbox: "INBOX", Flags: []string{`\Seen`}}}},
		{"space separated and keyword case kept", `setflag "\\Flagged $MyKeyword";`,
			[]Action{{Mailbox: "INBOX", Flags: []string{`\Flagged`, "$MyKeyword"}}}},
		{"addflag dedups case-insensitively", `addflag ["A", "b"]; addflag "a B c";`,
			[]Action{{Mailbox: "INBOX", Flags: []string{"A", "b", "c"}}}},
		{"removeflag", `addflag "A B C"; removeflag ["b", "x"];`,
			[]Action{{Mailbox: "INBOX", Flags: []string{"A", "C"}}}},
		{"setflag replaces", `addflag "A"; setflag "B";`,
			[]Action{{Mailbox: "INBOX", Flags: []string{"B"}}}},
		{"setflag empty clears", `addflag "A"; setflag "";`,
			[]Action{{Mailbox: "INBOX"}}},
		{"flags at time of action", `addflag "A"; fileinto "X"; addflag "B"; keep;`,
			[]Action{{Mailbox: "X", Flags: []string{"A"}}, {Mailbox: "INBOX", Flags: []string{"A", "B"}}}},
		{"fileinto :flags is for that action only", `addflag "A"; fileinto :flags "\\Seen" "X"; keep;`,
			[]Action{{Mailbox: "X", Flags: []string{`\Seen`}}, {Mailbox: "INBOX", Flags: []string{"A"}}}},
		{"keep :flags", `keep :flags ["\\answered", "\\draft"];`,
			[]Action{{Mailbox: "INBOX", Flags: []string{`\Answered`, `\Draft`}}}},
		{"keep :flags empty", `addflag "A"; keep :flags "";`,
			[]Action{{Mailbox: "INBOX"}}},
		{"merged deliveries union flags", `fileinto :flags "A" "X"; fileinto :flags "B" "X";`,
			[]Action{{Mailbox: "X", Flags: []string{"A", "B"}}}},
		{"copy with implicit keep flags", `fileinto :copy :flags "A" "X"; addflag "B";`,
			[]Action{{Mailbox: "X", Flags: []string{"A"}}, {Mailbox: "INBOX", Flags: []string{"B"}}}},
		{"hasflag", `addflag "$Junk"; if hasflag "$junk" { fileinto "Junk"; }`,
			[]Action{{Mailbox: "Junk", Flags: []string{"$Junk"}}}},
		{"hasflag contains", `addflag "\\Seen $Work"; if hasflag :contains "work" { fileinto "W"; }`,
			[]Action{{Mailbox: "W", Flags: []string{`\Seen`, "$Work"}}}},
		{"hasflag false", `if hasflag :is "$Junk" { fileinto "Junk"; }`,
			[]Action{{Mailbox: "INBOX"}}},
		{"discard drops flags", `addflag "A"; discard;`, nil},
	}
	raw := testHeader + testBody
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := `require ["imap4flags", "fileinto", "copy"];` + "\n" + tt.script
			got := execute(t, script, defaultEnv, raw)
			want := Result{Actions: tt.want, Discarded: len(tt.want) == 0}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

const multipartMessage = "From: a@example.com\r\n" +
	"Subject: parts\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n" +
	"\r\n" +
	"preamble text\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=\"inner\"\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Pr=E9sentation du projet\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"\r\n" +
	"<html><body><p>Big&nbsp;<b>Sale</b></p></body></html>\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"c2VjcmV0IGF0dGFjaG1lbnQ=\r\n" +
	"--outer\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"forwarded words\r\n" +
	"--outer--\r\n"

func TestBody(t *testing.T) {
	tests := []struct {
		name string
		test string
		want bool
	}{
		{"text decodes qp and charset", `body :contains "Présentation"`, true},
		{"text strips html", `body :text :contains "Big Sale"`, true},
		{"text skips attachments", `body :contains "secret"`, false},
		{"text descends into message/rfc822", `body :contains "forwarded words"`, true},
		{"text is whole part", `body :is "forwarded words"`, true},
		{"text is not a substring", "body :is \"forwarded\"", false},
		{"raw sees encoded", `body :raw :contains "Pr=E9sentation"`, true},
		{"raw sees base64", `body :raw :contains "c2VjcmV0"`, true},
		{"raw not decoded", `body :raw :contains "secret attachment"`, false},
		{"content application decodes base64", `body :content "application/octet-stream" :contains "secret attachment"`, true},
		{"content type only", `body :content "application" :is "secret attachment"`, true},
		{"content html keeps tags", `body :content "text/html" :contains "<b>Sale</b>"`, true},
		{"content any", `body :content "" :contains "secret"`, true},
		{"content no match", `body :content "image/png" :contains ""`, false},
		{"matches", `body :matches "*Sale*"`, true},
		{"octet comparator", `body :comparator "i;octet" :contains "big sale"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := execute(t, ifTrue(`, "body"`, tt.test), defaultEnv, multipartMessage)
			if matched := reflect.DeepEqual(got, to("Yes")); matched != tt.want {
				t.Errorf("%s: got %+v, want match=%v", tt.test, got, tt.want)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 64
	prefix := strings.Repeat("x", limit-len("needle"))
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"needle ends at the limit", prefix + "needle" + "tail", true},
		{"needle crosses the limit", prefix + "xneedle", false},
		{"needle beyond the limit", strings.Repeat("y", 10*limit) + "needle", false},
	}
	for _, tr := range []string{":raw", ":text"} {
		for _, tt := range tests {
			t.Run(tr+"/"+tt.name, func(t *testing.T) {
				s := compile(t, ifTrue(`, "body"`, `body `+tr+` :contains "needle"`), Options{MaxBodyBytes: limit})
				raw := "Subject: big\r\n\r\n" + tt.body
				got, err := s.Execute(context.Background(), defaultEnv, newMessage(t, raw))
				if err != nil {
					t.Fatal(err)
				}
				if matched := reflect.DeepEqual(got, to("Yes")); matched != tt.want {
					t.Errorf("got %+v, want match=%v", got, tt.want)
				}
			})
		}
	}
}

// countingReader counts what the body test reads.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestBodyReadsAtMostLimit(t *testing.T) {
	const limit = 1 << 10
	hdr := "Subject: big\r\n\r\n"
	raw := hdr + strings.Repeat("z", 1<<20)
	var cr *countingReader
	msg := MessageFromHeader([]byte(hdr), int64(len(raw)), func() (io.Reader, error) {
		cr = &countingReader{r: strings.NewReader(raw)}
		return cr, nil
	})
	s := compile(t, `require "body"; if body :raw :contains "needle" { discard; }`, Options{MaxBodyBytes: limit})
	if _, err := s.Execute(context.Background(), defaultEnv, msg); err != nil {
		t.Fatal(err)
	}
	// bufio reads ahead by at most its buffer.
	if max := int64(len(hdr) + limit + 4096); cr.n > max {
		t.Errorf("read %d bytes, want at most %d", cr.n, max)
	}
}

func TestBodyOnlyReadOnce(t *testing.T) {
	opens := 0
	raw := testHeader + testBody
	msg := MessageFromHeader([]byte(testHeader), int64(len(raw)), func() (io.Reader, error) {
		opens++
		return strings.NewReader(raw), nil
	})
	s := compile(t, `require "body"; if anyof(body :raw :contains "x1", body :text :contains "x2", body :contains "x3") { discard; }`, Options{})
	if _, err := s.Execute(context.Background(), defaultEnv, msg); err != nil {
		t.Fatal(err)
	}
	if opens != 1 {
		t.Errorf("Body opened %d times, want 1", opens)
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		line, col int
		msg       string
	}{
		{"missing semicolon", "keep\n", 2, 1, `expected ";" after command "keep", found end of script`},
		{"missing semicolon before next", "keep\ndiscard;", 2, 1, `keep takes no test`},
		{"missing semicolon after string", "require \"fileinto\";\nfileinto \"A\"\n}", 3, 1, `expected ";" or "{" after arguments of "fileinto", found "}"`},
		{"unterminated string", "require \"fileinto;\n", 1, 9, "unterminated string"},
		{"unterminated comment", "keep;\n  /* open", 2, 3, "unterminated comment"},
		{"bad character", "keep;\n\tkeep @;", 2, 7, `unexpected character '@'`},
		{"column counts characters", "# é\nif header \"Subject\" \"é\" €", 2, 25, `unexpected character '€'`},
		{"unclosed block", "if true {\n keep;\n", 1, 9, `block is not closed with "}"`},
		{"stray close", "keep; }", 1, 7, `unexpected "}"`},
		{"unclosed string list", "require [\"fileinto\"", 1, 9, `string list is not closed with "]"`},
		{"empty string list", "require [];", 1, 10, `expected a string in string list, found "]"`},
		{"unclosed test list", "if anyof (true, false {", 1, 23, `expected "," or ")" in test list, found "{"`},
		{"tag without name", "keep :;", 1, 6, `expected a tag name after ":"`},
		{"number suffix", "if size :over 10X { }", 1, 17, `unexpected character 'X' after number`},
		{"number too large", "if size :over 99999999999999999999 { }", 1, 15, "number too large"},
		{"multi-line unterminated", "require \"fileinto\";\nfileinto text:\nfoo\n", 2, 10, `unterminated multi-line string (missing "." line)`},
		{"multi-line junk after text:", "fileinto text: x\n.\n", 1, 16, `expected a line break after "text:"`},
		{"missing require", "\n  fileinto \"A\";", 2, 3, `fileinto needs require "fileinto"`},
		{"missing require envelope", "if envelope \"to\" \"a\" {}", 1, 4, `envelope needs require "envelope"`},
		{"missing require copy", "require \"fileinto\";\nfileinto :copy \"A\";", 2, 10, `:copy needs require "copy"`},
		{"missing require mailbox", "require \"fileinto\";\nfileinto :create \"A\";", 2, 10, `:create needs require "mailbox"`},
		{"missing require imap4flags", "keep :flags \"A\";", 1, 6, `:flags needs require "imap4flags"`},
		{"missing require subaddress", "if address :detail \"to\" \"x\" {}", 1, 12, `:detail needs require "subaddress"`},
		{"missing require body", "if body :contains \"x\" {}", 1, 4, `body needs require "body"`},
		{"require late", "keep;\nrequire \"fileinto\";", 2, 1, "require must come before any other command"},
		{"require in block", "if true { require \"fileinto\"; }", 1, 11, "require must come before any other command"},
		{"elsif alone", "elsif true { }", 1, 1, "elsif without a preceding if"},
		{"else after else", "if true {} else {} else {}", 1, 20, "else without a preceding if"},
		{"if without block", "if true;", 1, 1, "if needs a block"},
		{"if without test", "if { }", 1, 1, "if needs exactly one test"},
		{"keep with block", "keep { }", 1, 1, `keep takes no block; end it with ";"`},
		{"keep with argument", "keep \"x\";", 1, 6, `keep takes 0 positional argument(s), got 1`},
		{"stop with argument", "stop 1;", 1, 6, "stop takes no arguments"},
		{"fileinto two names", "require \"fileinto\"; fileinto [\"a\", \"b\"];", 1, 30, "fileinto takes one mailbox name"},
		{"fileinto bad name", "require \"fileinto\"; fileinto \"a//b\";", 1, 30, `fileinto: invalid mailbox name: "a//b": empty hierarchy level`},
		{"bad flag", "require \"imap4flags\"; setflag \"\\\\Bogus\";", 1, 31, `invalid flag "\\Bogus"`},
		{"size without tag", "if size 10 {}", 1, 4, "size needs :over or :under"},
		{"size with string", "if size :over \"10\" {}", 1, 15, "argument 1 of size must be a number"},
		{"two match types", "if header :is :contains \"a\" \"b\" {}", 1, 15, "more than one match type in header"},
		{"header one arg", "if header \"a\" {}", 1, 4, "header takes 2 positional argument(s), got 1"},
		{"tag after positional", "if header \"a\" :is \"b\" {}", 1, 15, "tag :is must come before the other arguments of header"},
		{"not two tests", "if not (true, false) {}", 1, 4, "not takes exactly one test"},
		{"allof without parens", "if allof true {}", 1, 4, "allof takes a test list in parentheses"},
		{"comparator without value", "if header :comparator :is \"a\" \"b\" {}", 1, 11, ":comparator needs a value"},
		{"unknown tag", "if header :foo \"a\" \"b\" {}", 1, 11, "unknown tag :foo for header"},
		{"not utf8", "keep;\n# \xff\n", 2, 3, "script is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]byte(tt.script), Options{})
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile(%q) = %v, want a *SyntaxError", tt.script, err)
			}
			if se.Line != tt.line || se.Column != tt.col || se.Msg != tt.msg {
				t.Errorf("got line %d, column %d, %q; want line %d, column %d, %q",
					se.Line, se.Column, se.Msg, tt.line, tt.col, tt.msg)
			}
			if want := "line " + itoa(tt.line) + ", column " + itoa(tt.col) + ": " + tt.msg; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}

func TestRefusedAndUnsupported(t *testing.T) {
	tests := []struct {
		name   string
		script string
		is     error
		msg    string
	}{
		{"redirect", `redirect "a@example.com";`, ErrSendsMail, "redirect is not supported: this service does not send mail"},
		{"redirect copy", `require "copy"; if true { redirect :copy "a@example.com"; }`, ErrSendsMail, "redirect is not supported: this service does not send mail"},
		{"vacation require", `require "vacation"; vacation "away";`, ErrSendsMail, "vacation is not supported: this service does not send mail"},
		{"vacation without require", `vacation "away";`, ErrSendsMail, "vacation is not supported: this service does not send mail"},
		{"reject", `require "reject"; reject "no";`, ErrSendsMail, "reject is not supported: this service does not send mail"},
		{"reject command", `reject "no";`, ErrSendsMail, "reject is not supported: this service does not send mail"},
		{"ereject", `require ["ereject"];`, ErrSendsMail, "ereject is not supported: this service does not send mail"},
		{"enotify", `require "enotify";`, ErrSendsMail, "notify is not supported: this service does not send mail"},
		{"notify", `notify "mailto:a@example.com";`, ErrSendsMail, "notify is not supported: this service does not send mail"},
		{"variables", `require "variables";`, ErrUnsupported, `extension "variables" is not supported`},
		{"regex", `if header :regex "a" "b" {}`, ErrUnsupported, "match type :regex is not supported"},
		{"relational count", `if header :count "gt" "a" "1" {}`, ErrUnsupported, "match type :count is not supported"},
		{"comparator numeric", `if header :comparator "i;ascii-numeric" "a" "1" {}`, ErrUnsupported, `comparator "i;ascii-numeric" is not supported`},
		{"unknown command", `frobnicate;`, ErrUnsupported, `unknown command "frobnicate"`},
		{"unknown test", `if frob {}`, ErrUnsupported, `unknown test "frob"`},
		{"envelope auth", `require "envelope"; if envelope "auth" "x" {}`, ErrUnsupported, `envelope part "auth" is not supported`},
		{"setflag variable", `require "imap4flags"; setflag "v" "A";`, ErrUnsupported, "setflag with a variable name needs the variables extension, which is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]byte(tt.script), Options{})
			if !errors.Is(err, tt.is) {
				t.Fatalf("Compile(%q) = %v, want %v", tt.script, err, tt.is)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.Msg != tt.msg {
				t.Errorf("got %v, want message %q", err, tt.msg)
			}
		})
	}
}

func TestNestingLimit(t *testing.T) {
	nestedBlocks := func(n int) string {
		return strings.Repeat("if true {", n) + "keep;" + strings.Repeat("}", n)
	}
	nestedTests := func(n int) string {
		return "if " + strings.Repeat("not ", n-1) + "false { keep; }"
	}
	tests := []struct {
		name   string
		script string
		ok     bool
	}{
		{"blocks at limit", nestedBlocks(4), true},
		{"blocks over limit", nestedBlocks(5), false},
		{"tests at limit", nestedTests(4), true},
		{"tests over limit", nestedTests(5), false},
		{"test lists over limit", "if anyof(allof(anyof(allof(anyof(true))))) {}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]byte(tt.script), Options{MaxNesting: 4})
			if tt.ok && err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrLimit) {
				t.Fatalf("Compile = %v, want ErrLimit", err)
			}
		})
	}
	// The default bounds a hostile script too.
	if _, err := Compile([]byte(nestedBlocks(10000)), Options{}); !errors.Is(err, ErrLimit) {
		t.Errorf("deep script: %v, want ErrLimit", err)
	}
}

func TestActionLimit(t *testing.T) {
	fileintos := func(n int, copy bool) string {
		var b strings.Builder
		b.WriteString(`require ["fileinto", "copy"];`)
		for i := 0; i < n; i++ {
			if copy {
				b.WriteString(`fileinto :copy "M` + itoa(i) + `";`)
			} else {
				b.WriteString(`fileinto "M` + itoa(i) + `";`)
			}
		}
		return b.String()
	}
	raw := testHeader + testBody
	tests := []struct {
		name    string
		script  string
		actions int // -1: error
	}{
		{"at limit", fileintos(3, false), 3},
		{"over limit", fileintos(4, false), -1},
		{"duplicates do not count", `require "fileinto"; fileinto "A"; fileinto "A"; fileinto "A"; fileinto "A"; keep;`, 2},
		{"implicit keep may exceed", fileintos(3, true), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := compile(t, tt.script, Options{MaxActions: 3})
			res, err := s.Execute(context.Background(), defaultEnv, newMessage(t, raw))
			if tt.actions < 0 {
				if !errors.Is(err, ErrLimit) {
					t.Fatalf("Execute = %+v, %v; want ErrLimit", res, err)
				}
				return
			}
			if err != nil || len(res.Actions) != tt.actions {
				t.Fatalf("Execute = %+v, %v; want %d actions", res, err, tt.actions)
			}
		})
	}
}

type failingBody struct{ Message }

var errDisk = errors.New("disk on fire")

func (failingBody) Body() (io.Reader, error) { return nil, errDisk }

func TestRuntimeErrors(t *testing.T) {
	raw := testHeader + testBody
	t.Run("body unreadable", func(t *testing.T) {
		s := compile(t, `require "body"; if body :contains "x" { discard; }`, Options{})
		_, err := s.Execute(context.Background(), defaultEnv, failingBody{newMessage(t, raw)})
		if !errors.Is(err, errDisk) {
			t.Fatalf("Execute = %v, want %v", err, errDisk)
		}
	})
	t.Run("body not read unless tested", func(t *testing.T) {
		s := compile(t, `require "body"; if false { if body :contains "x" { discard; } }`, Options{})
		if _, err := s.Execute(context.Background(), defaultEnv, failingBody{newMessage(t, raw)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := compile(t, `keep;`, Options{}).Execute(ctx, defaultEnv, newMessage(t, raw))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Execute = %v, want context.Canceled", err)
		}
	})
	t.Run("slow match cancelled", func(t *testing.T) {
		// A pathological :matches over a large body is bounded by ctx.
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		body := strings.Repeat("a", 1<<20)
		key := strings.Repeat("*a", 200) + "*b"
		s := compile(t, `require "body"; if body :raw :matches "`+key+`" { discard; }`, Options{})
		msg := newMessage(t, "Subject: x\r\n\r\n"+body)
		cancel()
		// The first command already sees the cancelled ctx; check the
		// matcher on its own too.
		if _, err := s.Execute(ctx, defaultEnv, msg); !errors.Is(err, context.Canceled) {
			t.Fatalf("Execute = %v, want context.Canceled", err)
		}
		if _, err := globMatch(ctx, compileGlob(key), body); !errors.Is(err, context.Canceled) {
			t.Fatalf("globMatch = %v, want context.Canceled", err)
		}
	})
}

func TestLexStrings(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"quoted escapes", `"a\"b\\c\d"`, `a"b\cd`},
		{"quoted multi-line", "\"a\r\nb\"", "a\r\nb"},
		{"text", "text:\nline 1\r\nline 2\n.\n", "line 1\r\nline 2\r\n"},
		{"text dot-stuffed", "text: # comment\n..dots\n.x\n.\r\n", ".dots\r\nx\r\n"},
		{"text empty", "TEXT:  \n.\n", ""},
		{"text keeps escapes", "text:\na\\b\n.\n", "a\\b\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := newLexer([]byte(tt.src)).next()
			if err != nil || tok.kind != tokString || tok.text != tt.want {
				t.Errorf("lex(%q) = %v %q, %v; want string %q", tt.src, tok.kind, tok.text, err, tt.want)
			}
		})
	}
}

func TestLexNumbers(t *testing.T) {
	tests := []struct {
		src  string
		want int64
	}{
		{"0", 0}, {"42", 42}, {"1K", 1024}, {"2k", 2048}, {"3M", 3 << 20}, {"1G", 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tok, err := newLexer([]byte(tt.src)).next()
			if err != nil || tok.kind != tokNumber || tok.num != tt.want {
				t.Errorf("lex(%q) = %v %d, %v; want %d", tt.src, tok.kind, tok.num, err, tt.want)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "é", true},
		{"??", "é", false},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"*a*b", "xaxxb", true},
		{"*a*b", "xaxxbx", false},
		{"a?c*", "abcdef", true},
		{`a\*c`, "a*c", true},
		{`a\*c`, "abc", false},
		{`a\?`, "a?", true},
		{`a\\`, `a\`, true},
		{"**x", "x", true},
		{"*ab", "aab", true},
		{"*aab", "aaab", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.s, func(t *testing.T) {
			got, err := globMatch(context.Background(), compileGlob(tt.pattern), tt.s)
			if err != nil || got != tt.want {
				t.Errorf("globMatch(%q, %q) = %v, %v; want %v", tt.pattern, tt.s, got, err, tt.want)
			}
		})
	}
}

func TestExtractAddresses(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a@b", []string{"a@b"}},
		{"Alice <a@b>", []string{"a@b"}},
		{`"Doe, John" <j@d>, k@e`, []string{"j@d", "k@e"}},
		{"a@b (comment, with comma)", []string{"a@b"}},
		{"team: x@y, z@w;, last@v", []string{"x@y", "z@w", "last@v"}},
		{"undisclosed-recipients:;", nil},
		{"<@route,@r2:u@h>", []string{"u@h"}},
		{`"q u"@h`, []string{`"q u"@h`}},
		{"", nil},
		{"<>", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := extractAddresses(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("extractAddresses(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if p, ok := addressPart(`"q u"@h`, partLocal); !ok || p != "q u" {
		t.Errorf("quoted local part = %q, %v", p, ok)
	}
}

func TestMessageFromHeader(t *testing.T) {
	hdr := []byte("Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= aus\r\n\tBerlin\r\n" +
		"X-A: 1\r\nX-B: b\r\nx-a: 2\r\n" +
		"X-Bad: =?unknown-charset?Q?abc?=\r\n")
	m := MessageFromHeader(hdr, 42, nil)
	tests := []struct {
		name string
		want []string
	}{
		{"Subject", []string{"Grüße aus Berlin"}},
		{"x-a", []string{"1", "2"}},
		{"X-Bad", []string{"=?unknown-charset?Q?abc?="}},
		{"X-None", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Header(tt.name); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Header(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	if m.Size() != 42 {
		t.Errorf("Size = %d", m.Size())
	}
	r, err := m.Body()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("nil body func gave %q", b)
	}
}

func TestConcurrentExecute(t *testing.T) {
	s := compile(t, `require ["fileinto", "imap4flags", "body"]; addflag "A"; if body :contains "weekly" { fileinto "W"; }`, Options{})
	raw := testHeader + testBody
	done := make(chan Result, 8)
	for i := 0; i < cap(done); i++ {
		go func() {
			res, _ := s.Execute(context.Background(), defaultEnv, newMessage(t, raw))
			done <- res
		}()
	}
	want := Result{Actions: []Action{{Mailbox: "W", Flags: []string{"A"}}}}
	for i := 0; i < cap(done); i++ {
		if got := <-done; !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

func FuzzCompile(f *testing.F) {
	seeds := []string{
		``,
		`keep;`,
		`require ["fileinto", "copy", "mailbox", "imap4flags", "envelope", "subaddress", "body"];
if anyof (header :contains "Subject" "x", address :detail "to" "y", envelope :user "from" "z") {
	fileinto :copy :create :flags "\\Seen" "A/B";
} elsif body :content "text" :matches "*a?b*" { addflag "$x"; keep :flags "y"; }
else { discard; stop; }`,
		"fileinto text:\n..x\n.\n;",
		`if size :over 1G { discard; }`,
		`/* c */ # d` + "\n" + `redirect "a@b";`,
		`if not allof(true, false, exists ["a", "b"]) {}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	raw := testHeader + testBody
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Compile(src, Options{MaxBodyBytes: 1 << 10})
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile error %T %v is not a *SyntaxError", err, err)
			}
			if se.Line < 1 || se.Column < 1 {
				t.Fatalf("bad position in %v", err)
			}
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res, err := s.Execute(ctx, defaultEnv, newMessage(t, raw))
		if err != nil {
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("Execute: %v", err)
			}
			return
		}
		if len(res.Actions) == 0 != res.Discarded {
			t.Fatalf("inconsistent result %+v", res)
		}
	})
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"crlf", "Subject: x\r\n\r\nbody\r\n", "body\r\n"},
		{"lf only", "Subject: x\n\nbody\n", "body\n"},
		{"no header", "\r\nbody", "body"},
		{"no blank line", "Subject: x\r\n", ""},
		{"long header line", "X-Long: " + strings.Repeat("a", 10000) + "\r\n\r\nbody", "body"},
		{"blank-looking tail of a long line", "X-Long: " + strings.Repeat("a", 4096-len("X-Long: ")) + "\r\nX: y\r\n\r\nbody", "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := MessageFromHeader(nil, int64(len(tt.raw)), func() (io.Reader, error) {
				return strings.NewReader(tt.raw), nil
			})
			r := &run{script: &Script{opts: Options{}.withDefaults()}, msg: msg}
			b, err := r.readBody()
			if err != nil || string(b.raw) != tt.want {
				t.Errorf("readBody = %q, %v; want %q", b.raw, err, tt.want)
			}
		})
	}
}
