package imapbody

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

func TestWriteEnvelope(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		utf8 bool
		want string
	}{
		{
			// RFC 9051 section 7.5.2, with the ABNF's juxtaposed
			// addresses (the RFC's example text puts a space between
			// the two Cc addresses; "1*address" has none).
			name: "rfc9051 example",
			raw:  rfcExample,
			want: `("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" ` +
				`(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ` +
				`(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ` +
				`((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL ` +
				`"<B27397-0100000@cac.washington.edu>")`,
		},
		{
			name: "groups, quoting, folding, missing host",
			raw:  simple,
			want: `("Tue, 1 Jul 2003 10:52:37 +0200" "Hello  world" ` +
				`(("Joe Q. Public" NIL "john.q.public" "example.com")) ` +
				`((NIL NIL "sender" "example.com")) ` +
				`(("Joe Q. Public" NIL "john.q.public" "example.com")) ` +
				`(("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "example.org")("Who?" NIL "one" "y.test")) ` +
				`((NIL NIL "boss" "nil.test")("Giant; \"Big\" Box" NIL "sysservices" "example.net")) ` +
				`((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)(NIL NIL "team" NIL)(NIL NIL "ann" "t.test")` +
				`(NIL NIL "bob" "t.test")(NIL NIL NIL NIL)(NIL NIL "localonly" "MISSING_DOMAIN")) ` +
				`"<parent@example.com>" "<5678.21-Nov-1997@example.com>")`,
		},
		{
			name: "8-bit subject as literal",
			raw:  encoded,
			want: "(NIL {7}\r\nGrüße ((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"example.com\")) " +
				"((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"example.com\")) " +
				"((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"example.com\")) NIL NIL NIL NIL NIL)",
		},
		{
			name: "8-bit subject quoted under UTF8",
			raw:  encoded,
			utf8: true,
			want: "(NIL \"Grüße\" ((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"example.com\")) " +
				"((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"example.com\")) " +
				"((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"example.com\")) NIL NIL NIL NIL NIL)",
		},
		{
			name: "no header",
			raw:  "\r\nbody",
			want: `(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := scan(t, tt.raw)
			got := render(t, tt.utf8, func(e *wire.Encoder) { WriteEnvelope(e, &st.Envelope) })
			if got != tt.want {
				t.Errorf("envelope\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		got := render(t, false, func(e *wire.Encoder) { WriteEnvelope(e, nil) })
		if want := `(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)`; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("address without mailbox", func(t *testing.T) {
		env := &mime.Envelope{From: []mime.Address{{Name: "Postmaster", Host: "example.com"}}}
		got := render(t, false, func(e *wire.Encoder) { WriteEnvelope(e, env) })
		want := `(NIL NIL (("Postmaster" NIL "MISSING_MAILBOX" "example.com")) NIL NIL NIL NIL NIL NIL NIL)`
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

func TestWriteBodyStructure(t *testing.T) {
	type tc struct {
		name     string
		raw      string
		extended bool
		utf8     bool
		want     string
	}
	var tests []tc

	// RFC 9051 section 7.5.2's example (a BODY: no extension data), in
	// the lower case our structures hold.
	tests = append(tests, tc{
		name: "rfc9051 example",
		raw:  rfcExample,
		want: `(("text" "plain" ("charset" "US-ASCII") NIL NIL "7bit" 1152 23)` +
			`("text" "plain" ("charset" "US-ASCII" "name" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "base64" 4554 73) "mixed")`,
	}, tc{
		name:     "rfc9051 example extended",
		raw:      rfcExample,
		extended: true,
		want: `(("text" "plain" ("charset" "US-ASCII") NIL NIL "7bit" 1152 23 NIL NIL NIL NIL)` +
			`("text" "plain" ("charset" "US-ASCII" "name" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "base64" 4554 73 NIL NIL NIL NIL)` +
			` "mixed" ("boundary" "b1") NIL NIL NIL)`,
	})

	sb := between(t, simple, "Body line 1", 1, "")
	tests = append(tests, tc{
		name:     "single text part",
		raw:      simple,
		extended: true,
		want:     fmt.Sprintf(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d NIL NIL NIL NIL)`, len(sb), lines(sb)),
	}, tc{
		name: "single text part body",
		raw:  simple,
		want: fmt.Sprintf(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d)`, len(sb), lines(sb)),
	})

	inner := between(t, nested, `From: "Inner Sender"`, 1, "\r\n--outer")
	qp := between(t, nested, "caf=E9", 1, "\r\n--inner")
	innerEnv := `("Tue, 8 Feb 1994 10:00:00 +0000" "inner" (("Inner Sender" NIL "inner" "example.org")) ` +
		`(("Inner Sender" NIL "inner" "example.org")) (("Inner Sender" NIL "inner" "example.org")) NIL NIL NIL NIL NIL)`
	tests = append(tests, tc{
		name:     "nested extended",
		raw:      nested,
		extended: true,
		want: `(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 1 NIL NIL NIL NIL)` +
			fmt.Sprintf(`("message" "rfc822" NIL NIL "forwarded" "7bit" %d %s `, len(inner), innerEnv) +
			fmt.Sprintf(`(("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable" %d %d NIL NIL NIL NIL)`, len(qp), lines(qp)) +
			`("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 8 1 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)` +
			fmt.Sprintf(` %d NIL NIL NIL NIL)`, lines(inner)) +
			`("application" "octet-stream" ("name" "blob.bin") "<blob@example.com>" NIL "base64" 14 "Q2hlY2sgSW50ZWdyaXR5IQ==" ` +
			`("attachment" ("filename" "blob.bin")) ("en" "de") "http://example.com/blob.bin")` +
			`("application" "x-thing" NIL NIL NIL "x-uuencode" 11 NIL NIL NIL NIL)` +
			` "mixed" ("boundary" "outer") NIL NIL NIL)`,
	}, tc{
		name: "nested body",
		raw:  nested,
		want: `(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 1)` +
			fmt.Sprintf(`("message" "rfc822" NIL NIL "forwarded" "7bit" %d %s `, len(inner), innerEnv) +
			fmt.Sprintf(`(("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable" %d %d)`, len(qp), lines(qp)) +
			`("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 8 1) "alternative")` +
			fmt.Sprintf(` %d)`, lines(inner)) +
			`("application" "octet-stream" ("name" "blob.bin") "<blob@example.com>" NIL "base64" 14)` +
			`("application" "x-thing" NIL NIL NIL "x-uuencode" 11)` +
			` "mixed")`,
	})

	eqp := between(t, encoded, "Gr=C3", 1, "\r\n--e")
	tests = append(tests, tc{
		name:     "rfc2231 value as literal",
		raw:      encoded,
		extended: true,
		want: fmt.Sprintf(`(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" %d %d NIL ("attachment" ("filename" {7}`+"\r\n"+`€.txt)) NIL NIL)`, len(eqp), lines(eqp)) +
			`("application" "octet-stream" NIL NIL NIL "binary" 4 NIL NIL NIL NIL) "mixed" ("boundary" "e") NIL NIL NIL)`,
	}, tc{
		name:     "rfc2231 value quoted under UTF8",
		raw:      encoded,
		extended: true,
		utf8:     true,
		want: fmt.Sprintf(`(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" %d %d NIL ("attachment" ("filename" "€.txt")) NIL NIL)`, len(eqp), lines(eqp)) +
			`("application" "octet-stream" NIL NIL NIL "binary" 4 NIL NIL NIL NIL) "mixed" ("boundary" "e") NIL NIL NIL)`,
	})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := scan(t, tt.raw)
			got := render(t, tt.utf8, func(e *wire.Encoder) { WriteBodyStructure(e, st, tt.extended) })
			if got != tt.want {
				t.Errorf("body structure\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestWriteBodyStructureDefensive covers trees the scanner never makes
// but an old or hand-built structure might hold.
func TestWriteBodyStructureDefensive(t *testing.T) {
	tests := []struct {
		name string
		root mime.Part
		want string
	}{
		{"message without envelope", mime.Part{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 3},
			`("application" "octet-stream" NIL NIL NIL "7bit" 3)`},
		{"multipart without children", mime.Part{Type: "multipart", Subtype: "mixed", Size: 2, Lines: 1},
			`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 1)`},
		{"text with other params", mime.Part{Type: "text", Subtype: "html", Params: []mime.Param{{Name: "format", Value: "flowed"}}, Encoding: "8bit"},
			`("text" "html" ("format" "flowed" "charset" "us-ascii") NIL NIL "8bit" 0 0)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &mime.Structure{Root: tt.root}
			got := render(t, false, func(e *wire.Encoder) { WriteBodyStructure(e, st, false) })
			if got != tt.want {
				t.Errorf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// tenParts builds a multipart message with ten small parts.
func tenParts() string {
	var b strings.Builder
	b.WriteString(crlf("From: a@example.com\nSubject: ten\nContent-Type: multipart/mixed; boundary=x\n\n"))
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "--x\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Disposition: inline; filename=\"part%d.txt\"\r\n\r\nbody %d\r\n", i, i)
	}
	b.WriteString("--x--\r\n")
	return b.String()
}
