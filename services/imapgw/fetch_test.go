package imapgw

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstore/mailstore/pkg/mail"
)

// literalRE finds a literal announced at the end of a response line.
var literalRE = regexp.MustCompile(`~?\{(\d+)\}$`)

// fetchBody sends a command whose answer holds one literal and returns
// the literal's bytes and the tagged line.
func (r *raw) fetchLiteral(format string, args ...any) ([]byte, string) {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	var data []byte
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return data, l
		}
		if m := literalRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			data = make([]byte, n)
			if _, err := io.ReadFull(r.r, data); err != nil {
				r.t.Fatal(err)
			}
		}
	}
}

// corpus holds messages that must round-trip byte for byte.
var corpus = map[string]string{
	"simple":            "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n",
	"no trailing crlf":  "Subject: x\r\n\r\nno newline at the end",
	"bare lf":           "Subject: lf\n\nline one\nline two\n",
	"8bit":              "Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncafé naïve — ünïcödé\r\n",
	"binary part":       "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x01\x02\xff\xfe\x80 raw\r\n--b--\r\n",
	"huge header":       "Subject: " + strings.Repeat("long ", 4000) + "\r\nX-Folded: a\r\n b\r\n\tc\r\n\r\nbody\r\n",
	"deep nesting":      nested(30),
	"malformed mime":    "Content-Type: multipart/mixed; boundary=\"never\"\r\n\r\n--wrong\r\nContent-Type: text/plain\r\n\r\nno end\r\n",
	"empty body":        "Subject: empty\r\n\r\n",
	"dots and from":     "Subject: dots\r\n\r\n.\r\n..\r\nFrom the start\r\n.\r\n",
	"message/rfc822":    "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: in@example.org\r\n\r\ninner body\r\n",
	"attachment base64": "Content-Type: multipart/mixed; boundary=xyz\r\n\r\npreamble\r\n--xyz\r\nContent-Type: text/plain\r\n\r\ntext\r\n--xyz\r\nContent-Type: image/png; name=\"a.png\"\r\nContent-Disposition: attachment; filename=\"a.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--xyz--\r\nepilogue\r\n",
}

func nested(depth int) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nleaf\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

func TestRoundTripCorpus(t *testing.T) {
	e := newEnv(t)
	e.account("rt@example.com")
	c := login(t, e.gateway(nil), "rt@example.com")
	c.ok("SELECT INBOX")
	for name, body := range corpus {
		t.Run(name, func(t *testing.T) {
			c.t = t
			c.n++
			tag := fmt.Sprintf("t%d", c.n)
			c.send(fmt.Sprintf("%s APPEND INBOX {%d+}\r\n%s\r\n", tag, len(body), body))
			_, tagged := c.until(tag)
			m := regexp.MustCompile(`APPENDUID \d+ (\d+)`).FindStringSubmatch(tagged)
			if m == nil {
				t.Fatalf("APPEND: %s", tagged)
			}
			got, tagged := c.fetchLiteral("UID FETCH %s BODY.PEEK[]", m[1])
			if !strings.Contains(tagged, "OK") {
				t.Fatalf("FETCH: %s", tagged)
			}
			if string(got) != body {
				t.Fatalf("BODY[] differs:\n got %q\nwant %q", got, body)
			}
			size, tagged := c.cmd("UID FETCH %s RFC822.SIZE", m[1])
			if !has(size, fmt.Sprintf("RFC822.SIZE %d", len(body))) {
				t.Fatalf("RFC822.SIZE: %q %s", size, tagged)
			}
			if _, tagged := c.cmd("UID FETCH %s (BODYSTRUCTURE ENVELOPE)", m[1]); !strings.Contains(tagged, "OK") {
				t.Fatalf("BODYSTRUCTURE: %s", tagged)
			}
		})
	}
}

// TestFetchWithGoIMAP drives the gateway with the go-imap v2 client.
func TestFetchWithGoIMAP(t *testing.T) {
	e := newEnv(t)
	a := e.account("goimap@example.com")
	msg := "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Greetings\r\nMessage-ID: <1@example.org>\r\nDate: Mon, 02 Jun 2025 10:00:00 +0000\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nplain text\r\n--zz\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>h=C3=A9llo</p>\r\n--zz--\r\n"
	e.deliver(a, mail.Inbox, msg)
	c, err := imapclient.DialInsecure(e.gateway(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("goimap@example.com", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("select: %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		Envelope: true, Flags: true, UID: true, RFC822Size: true, InternalDate: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true},
			{Part: []int{2}, Peek: true},
			{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 0, Size: 5}, Peek: true},
		},
		BinarySection: []*imap.FetchItemBinarySection{{Part: []int{2}, Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.Envelope == nil || m.Envelope.Subject != "Greetings" || len(m.Envelope.From) != 1 || m.Envelope.From[0].Name != "Alice" || m.Envelope.MessageID != "1@example.org" {
		t.Errorf("envelope: %+v", m.Envelope)
	}
	if m.RFC822Size != int64(len(msg)) || m.UID != 1 {
		t.Errorf("size %d uid %d", m.RFC822Size, m.UID)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "alternative" && mp.Subtype != "ALTERNATIVE" || len(mp.Children) != 2 {
		t.Errorf("bodystructure: %#v", m.BodyStructure)
	}
	if len(m.BodySection) != 4 || len(m.BinarySection) != 1 {
		t.Fatalf("%d body sections, %d binary sections", len(m.BodySection), len(m.BinarySection))
	}
	for _, b := range m.BodySection {
		sec, data := b.Section, b.Bytes
		switch {
		case sec.Specifier == imap.PartSpecifierHeader:
			if strings.TrimSpace(string(data)) != "Subject: Greetings" {
				t.Errorf("HEADER.FIELDS: %q", data)
			}
		case len(sec.Part) == 1 && sec.Part[0] == 2:
			if string(data) != "<p>h=C3=A9llo</p>" {
				t.Errorf("BODY[2]: %q", data)
			}
		case len(sec.Part) == 1 && sec.Part[0] == 1:
			if string(data) != "plain" {
				t.Errorf("BODY[1]<0.5>: %q", data)
			}
		case len(sec.Part) == 0:
			if string(data) != msg {
				t.Errorf("BODY[]: %q", data)
			}
		}
	}
	for _, b := range m.BinarySection {
		if data := b.Bytes; string(data) != "<p>héllo</p>" {
			t.Errorf("BINARY[2]: %q", data)
		}
	}
	// The session selected the mailbox first: its messages are \Recent.
	if len(m.Flags) != 1 || m.Flags[0] != `\Recent` {
		t.Errorf("PEEK set flags: %v", m.Flags)
	}
	// A fetch without PEEK sets \Seen and reports it.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Part: []int{1}}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs[0].Flags) != 2 || msgs[0].Flags[0] != imap.FlagSeen || msgs[0].Flags[1] != `\Recent` {
		t.Errorf("BODY[1] without PEEK: flags %v", msgs[0].Flags)
	}
}
