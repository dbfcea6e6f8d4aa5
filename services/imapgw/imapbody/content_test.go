package imapbody

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/services/imapgw/wire"
)

type sectionCase struct {
	word string
	want string // the section's bytes; "" for an empty section
	// lit8 expects a literal8; size expects a BINARY.SIZE number.
	lit8 bool
	size bool
	// bound is the most bytes the fetch may read from the blob.
	bound int
	err   error
}

// sectionCases returns the cases for one message, expectations taken
// from the raw text.
func sectionCases(t *testing.T, raw string) []sectionCase {
	t.Helper()
	switch raw {
	case nested:
		header := between(t, nested, "From: a@", 1, "preamble")
		text := between(t, nested, "preamble", 1, "")
		inner := between(t, nested, `From: "Inner`, 1, "\r\n--outer")
		innerHeader := between(t, nested, `From: "Inner`, 1, "--inner\r\n")
		innerText := between(t, nested, "--inner\r\nContent-Type: text/plain", 1, "\r\n--outer")
		qp := between(t, nested, "caf=E9", 1, "\r\n--inner")
		att := "AAECAwBh\r\nYmM="
		fields := "From: a@example.com\r\nTo: b@example.com\r\n\r\n"
		n := len(nested)
		return []sectionCase{
			{word: "BODY[]", want: nested, bound: n},
			{word: "RFC822", want: nested, bound: n},
			{word: "BODY[HEADER]", want: header, bound: len(header)},
			{word: "RFC822.HEADER", want: header, bound: len(header)},
			{word: "BODY[TEXT]", want: text, bound: len(text)},
			{word: "RFC822.TEXT", want: text, bound: len(text)},
			{word: "BODY[1]", want: "hello", bound: 5},
			{word: "BODY[1.MIME]", want: between(t, nested, "Content-Type: text/plain; charset=utf-8", 1, "hello"), bound: 200},
			{word: "BODY[2]", want: inner, bound: len(inner)},
			{word: "BODY[2.MIME]", want: between(t, nested, "Content-Type: message/rfc822", 1, `From: "Inner`), bound: 200},
			{word: "BODY[2.HEADER]", want: innerHeader, bound: len(innerHeader)},
			{word: "BODY[2.TEXT]", want: innerText, bound: len(innerText)},
			{word: "BODY[2.1]", want: qp, bound: len(qp)},
			{word: "BODY[2.1.MIME]", want: between(t, nested, "Content-Type: text/plain; charset=iso", 1, "caf="), bound: 200},
			{word: "BODY[2.2]", want: "<p>x</p>", bound: 8},
			{word: "BODY[2.3]"},
			{word: "BODY[2.1.HEADER]"},
			{word: "BODY[2.1.2]"},
			{word: "BODY[1.TEXT]"},
			{word: "BODY[1.1]"},
			{word: "BODY[3]", want: att, bound: len(att)},
			{word: "BODY[9]"},
			{word: "BODY[9.1.MIME]"},
			{word: "BODY[2.HEADER.FIELDS (SUBJECT date)]", want: "Subject: inner\r\nDate: Tue, 8 Feb 1994 10:00:00 +0000\r\n\r\n", bound: len(innerHeader)},
			{word: "BODY[HEADER.FIELDS (to from)]", want: fields, bound: len(header)},
			{word: "BODY[HEADER.FIELDS (nope)]", want: "\r\n", bound: len(header)},
			{word: "BODY[HEADER.FIELDS.NOT (from to subject date message-id mime-version)]", want: "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n", bound: len(header)},
			{word: "BODY[2.1.HEADER.FIELDS (subject)]"},
			{word: "BODY[]<0.10>", want: nested[:10], bound: 10},
			{word: "BODY.PEEK[]<10.20>", want: nested[10:30], bound: 20},
			{word: "BODY[]<100000.5>"},
			{word: fmt.Sprintf("BODY[]<%d.5>", n-2), want: nested[n-2:], bound: 2},
			{word: "BODY[2.TEXT]<5.1000000>", want: innerText[5:], bound: len(innerText) - 5},
			{word: "BODY[HEADER.FIELDS (to from)]<5.10>", want: fields[5:15], bound: len(header)},
			{word: "BODY[HEADER.FIELDS (to from)]<500.10>", bound: len(header)},
			{word: "BINARY[3]", want: "\x00\x01\x02\x03\x00abc", lit8: true, bound: len(att)},
			{word: "BINARY.PEEK[3]<2.3>", want: "\x02\x03\x00", lit8: true, bound: len(att)},
			{word: "BINARY[3]<7.100>", want: "c", bound: len(att)},
			{word: "BINARY[3]<8.1>", bound: len(att)},
			{word: "BINARY[2.1]", want: "caf\xe9 softbreak", bound: len(qp)},
			{word: "BINARY[2.1]<4.6>", want: " softb", bound: len(qp)},
			{word: "BINARY[1]", want: "hello", bound: 5},
			{word: "BINARY[1]<1.2>", want: "el", bound: 2},
			{word: "BINARY[2]", want: inner, bound: len(inner)},
			{word: "BINARY[]", want: nested, bound: n},
			{word: "BINARY[9]"},
			{word: "BINARY[4]", err: ErrUnknownCTE},
			{word: "BINARY.SIZE[3]", want: "8", size: true, bound: len(att)},
			{word: "BINARY.SIZE[2.1]", want: "14", size: true, bound: len(qp)},
			{word: "BINARY.SIZE[1]", want: "5", size: true},
			{word: "BINARY.SIZE[2]", want: fmt.Sprint(len(inner)), size: true},
			{word: "BINARY.SIZE[9]", want: "0", size: true},
			{word: "BINARY.SIZE[4]", err: ErrUnknownCTE},
		}
	case simple:
		header := between(t, simple, "Date:", 1, "Body line 1")
		body := between(t, simple, "Body line 1", 1, "")
		return []sectionCase{
			{word: "BODY[1]", want: body, bound: len(body)},
			{word: "BODY[TEXT]", want: body, bound: len(body)},
			{word: "BODY[1.MIME]", want: header, bound: len(header)},
			{word: "BODY[2]"},
			{word: "BODY[1.1]"},
			{word: "BODY[1.HEADER]"},
			{word: "BODY[HEADER.FIELDS (x-folded Received)]",
				want:  "X-Folded: a\r\n b\r\n\tc\r\nReceived: first\r\nReceived: second\r\n continued\r\n\r\n",
				bound: len(header)},
			{word: "BODY[HEADER.FIELDS.NOT (x-folded received from to cc bcc sender date message-id in-reply-to)]",
				want: "Subject: Hello\r\n  world\r\n\r\n", bound: len(header)},
			{word: "BINARY[1]", want: body, bound: len(body)},
			{word: "BINARY.SIZE[1]", want: fmt.Sprint(len(body)), size: true},
		}
	case encoded:
		return []sectionCase{
			{word: "BINARY[1]", want: "Grüße\r\nline two= end", bound: 60},
			{word: "BINARY.SIZE[1]", want: fmt.Sprint(len("Grüße\r\nline two= end")), size: true, bound: 60},
			{word: "BINARY[2]", want: "A\x00B\xff", lit8: true, bound: 4},
			{word: "BINARY[]", want: encoded, lit8: true, bound: len(encoded)},
			{word: "BODY[2]", want: "A\x00B\xff", bound: 4},
		}
	}
	t.Fatal("no cases for message")
	return nil
}

func TestWriteSection(t *testing.T) {
	for _, msg := range []struct{ name, raw string }{{"nested", nested}, {"simple", simple}, {"encoded", encoded}} {
		t.Run(msg.name, func(t *testing.T) {
			st := scan(t, msg.raw)
			blob := &memBlob{data: []byte(msg.raw)}
			for _, tt := range sectionCases(t, msg.raw) {
				t.Run(tt.word, func(t *testing.T) {
					att, err := ParseFetchAtt(tt.word)
					if err != nil {
						t.Fatalf("ParseFetchAtt: %v", err)
					}
					var got string
					werr := error(nil)
					got = render(t, false, func(e *wire.Encoder) {
						werr = WriteSection(context.Background(), e, blob, st, att)
					})
					read := blob.read()
					if tt.err != nil {
						if !errors.Is(werr, tt.err) {
							t.Fatalf("WriteSection error %v, want %v", werr, tt.err)
						}
						if got != "" {
							t.Errorf("wrote %q before failing", got)
						}
						return
					}
					if werr != nil {
						t.Fatalf("WriteSection: %v", werr)
					}
					want := `""`
					switch {
					case tt.size:
						want = tt.want
					case tt.lit8:
						want = "~" + literal(tt.want)
					case tt.want != "":
						want = literal(tt.want)
					}
					if got != want {
						t.Errorf("got  %q\nwant %q", got, want)
					}
					total := 0
					for _, r := range read {
						total += int(r[1] - r[0])
					}
					if total > tt.bound {
						t.Errorf("read %d bytes %v, want at most %d", total, read, tt.bound)
					}
				})
			}
		})
	}
}

func TestResolve(t *testing.T) {
	st := scan(t, nested)
	tests := []struct {
		section string
		want    string
		found   bool
	}{
		{"", nested, true},
		{"1", "hello", true},
		{"2.1", between(t, nested, "caf=E9", 1, "\r\n--inner"), true},
		{"2.HEADER.FIELDS (X)", between(t, nested, `From: "Inner`, 1, "--inner\r\n"), true},
		{"7", "", false},
		{"1.HEADER", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			sec, err := ParseSection(tt.section)
			if err != nil {
				t.Fatal(err)
			}
			span, err := Resolve(st, sec)
			if err != nil {
				t.Fatal(err)
			}
			if got := nested[span.Start:span.End]; got != tt.want {
				t.Errorf("span %q, want %q", got, tt.want)
			}
			if (span.Part != nil) != tt.found {
				t.Errorf("Part = %v, want found %v", span.Part, tt.found)
			}
		})
	}
	t.Run("bad sections", func(t *testing.T) {
		for _, sec := range []Section{{Text: TextMIME}, {Part: []uint32{0}}} {
			if _, err := Resolve(st, sec); !errors.Is(err, ErrBadSection) {
				t.Errorf("Resolve(%+v) = %v, want ErrBadSection", sec, err)
			}
		}
	})
}

func TestFilterHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string
		fields []string
		not    bool
		want   string
	}{
		{"folded kept whole", "A: 1\r\nB: 2\r\n  2b\r\n\t2c\r\nC: 3\r\n\r\n", []string{"B"}, false, "B: 2\r\n  2b\r\n\t2c\r\n\r\n"},
		{"case-insensitive, header order", "Subject: s\r\nfrom: f\r\nTO: t\r\n\r\n", []string{"TO", "FROM"}, false, "from: f\r\nTO: t\r\n\r\n"},
		{"repeated fields", "R: 1\r\nX: x\r\nR: 2\r\n\r\n", []string{"R"}, false, "R: 1\r\nR: 2\r\n\r\n"},
		{"not drops continuations", "A: 1\r\n 1b\r\nB: 2\r\n\r\n", []string{"a"}, true, "B: 2\r\n\r\n"},
		{"none match", "A: 1\r\n\r\n", []string{"Z"}, false, "\r\n"},
		{"space before colon", "A : 1\r\nAB: 2\r\n\r\n", []string{"A"}, false, "A : 1\r\n\r\n"},
		{"prefix is not a match", "Subject-X: 1\r\n\r\n", []string{"SUBJECT"}, false, "\r\n"},
		{"no blank line, no final break", "A: 1\r\nB: 2", []string{"B"}, false, "B: 2\r\n\r\n"},
		{"bare LF", "A: 1\nB: 2\n\n", []string{"A"}, false, "A: 1\n\n"},
		{"bytes after the blank line ignored", "A: 1\r\n\r\nA: 2\r\n", []string{"A"}, false, "A: 1\r\n\r\n"},
		{"malformed line kept by NOT", "junk line\r\nA: 1\r\n\r\n", []string{"A"}, true, "junk line\r\n\r\n"},
		{"malformed line dropped by FIELDS", "junk line\r\nA: 1\r\n\r\n", []string{"JUNK LINE"}, false, "\r\n"},
		{"empty header", "", []string{"A"}, false, "\r\n"},
		{"long line", "A: " + strings.Repeat("x", 10000) + "\r\nB: 2\r\n\r\n", []string{"A"}, false, "A: " + strings.Repeat("x", 10000) + "\r\n\r\n"},
		{"long line dropped", "A: " + strings.Repeat("x", 10000) + "\r\n" + strings.Repeat(" y", 5000) + "\r\nB: 2\r\n\r\n", []string{"B"}, false, "B: 2\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(FilterHeader([]byte(tt.header), tt.fields, tt.not)); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestBase64Reader(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "aGVsbG8gd29ybGQ=", "hello world"},
		{"line breaks and spaces", "aGVs\r\nbG8g \r\nd29y\tbGQ=\r\n", "hello world"},
		{"garbage skipped", "aGVs!bG8*", "hello"},
		{"no padding", "aGVsbG8", "hello"},
		{"concatenated", "aGk=aGk=", "hihi"},
		{"one stray sextet", "aGVsbA", "hell"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(newBase64Reader(strings.NewReader(tt.in)))
			if err != nil || string(got) != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("large matches stdlib", func(t *testing.T) {
		data := make([]byte, 300000)
		for i := range data {
			data[i] = byte(i * 7)
		}
		enc := base64.StdEncoding.EncodeToString(data)
		var wrapped strings.Builder
		for len(enc) > 76 {
			wrapped.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		wrapped.WriteString(enc)
		got, err := io.ReadAll(iotestOneByte(newBase64Reader(strings.NewReader(wrapped.String()))))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("decoded %d bytes, %v; want %d equal bytes", len(got), err, len(data))
		}
	})
}

func TestQPReader(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"escapes", "caf=E9 =c3=a9", "caf\xe9 \xc3\xa9"},
		{"soft break CRLF", "soft=\r\nbreak", "softbreak"},
		{"soft break LF", "soft=\nbreak", "softbreak"},
		{"soft break with trailing space", "soft=  \r\nbreak", "softbreak"},
		{"soft break at end", "end=", "end"},
		{"trailing space dropped", "a  \r\nb\t\nc  ", "a\r\nb\nc"},
		{"inner space kept", "a  b", "a  b"},
		{"bad escape literal", "a=ZZ b=\x01", "a=ZZ b=\x01"},
		{"equals before CR only", "a=\rb", "a=\rb"},
		{"control and 8-bit pass", "\x00\xff\x0c", "\x00\xff\x0c"},
		{"bare CR", "a\rb", "a\rb"},
		{"long line", strings.Repeat("x", 10000) + "=41", strings.Repeat("x", 10000) + "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(newQPReader(strings.NewReader(tt.in)))
			if err != nil || string(got) != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
			got, err = io.ReadAll(iotestOneByte(newQPReader(iotestOneByte(strings.NewReader(tt.in)))))
			if err != nil || string(got) != tt.want {
				t.Errorf("byte by byte: got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// iotestOneByte reads one byte at a time (testing/iotest.OneByteReader).
func iotestOneByte(r io.Reader) io.Reader { return oneByte{r} }

type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// The lines of bigMessage's quoted-printable part: mostly plain text, as
// in real mail, ending in soft line breaks.
const (
	qpLine        = "Caf=C3=A9 cr=C3=A8me: plain text runs dominate real quoted-printable mail =3D ok=\r\n"
	qpDecodedLine = "Caf\xc3\xa9 cr\xc3\xa8me: plain text runs dominate real quoted-printable mail = ok"
	qpLines       = 1 << 15
)

// bigMessage has a 3 MiB base64 part, a 1 MiB text part and a 2 MiB
// quoted-printable part.
func bigMessage() (raw string, data []byte) {
	data = make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>9)
	}
	var b strings.Builder
	b.WriteString(crlf("Subject: big\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"))
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString(crlf("\n--zz\nContent-Type: text/plain\n\n"))
	b.WriteString(strings.Repeat(strings.Repeat("t", 62)+"\r\n", 1<<14))
	b.WriteString(crlf("\n--zz\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"))
	b.WriteString(strings.Repeat(qpLine, qpLines))
	b.WriteString(crlf("\n--zz--\n"))
	return b.String(), data
}

func TestLargeParts(t *testing.T) {
	raw, data := bigMessage()
	st := scan(t, raw)
	blob := &memBlob{data: []byte(raw)}
	ctx := context.Background()
	spoolMemory = 64 << 10 // force the temporary file
	t.Cleanup(func() { spoolMemory = 1 << 20 })

	t.Run("binary whole part spools to a file", func(t *testing.T) {
		att, _ := ParseFetchAtt("BINARY[1]")
		c, err := Open(ctx, blob, st, att)
		if err != nil {
			t.Fatal(err)
		}
		if c.sp == nil || c.sp.f == nil {
			t.Fatal("content not spooled to a file")
		}
		name := c.sp.f.Name()
		if c.Size() != int64(len(data)) || !c.Literal8() {
			t.Errorf("size %d literal8 %v; want %d true", c.Size(), c.Literal8(), len(data))
		}
		got := render(t, false, func(e *wire.Encoder) {
			if err := c.Encode(e); err != nil {
				t.Fatal(err)
			}
		})
		if want := fmt.Sprintf("~{%d}\r\n", len(data)) + string(data); got != want {
			t.Errorf("literal differs (got %d bytes, want %d)", len(got), len(want))
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Errorf("spool file %s still there: %v", name, err)
		}
		part := st.Root.Children[0]
		for _, r := range blob.read() {
			if r[0] < part.BodyOffset || r[1] > part.End {
				t.Errorf("read [%d,%d) outside the part [%d,%d)", r[0], r[1], part.BodyOffset, part.End)
			}
		}
	})
	t.Run("binary partial reads only a chunk", func(t *testing.T) {
		att, _ := ParseFetchAtt("BINARY.PEEK[1]<1000.100>")
		var werr error
		got := render(t, false, func(e *wire.Encoder) { werr = WriteSection(ctx, e, blob, st, att) })
		if werr != nil {
			t.Fatal(werr)
		}
		w := data[1000:1100]
		want := literal(string(w))
		if bytes.IndexByte(w, 0) >= 0 {
			want = "~" + want
		}
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		read := blob.read()
		if len(read) != 1 || read[0][1]-read[0][0] != firstChunk {
			t.Errorf("reads %v, want one of %d bytes", read, firstChunk)
		}
	})
	t.Run("binary partial deep in the part", func(t *testing.T) {
		att, _ := ParseFetchAtt("BINARY[1]<3000000.100>")
		var werr error
		got := render(t, false, func(e *wire.Encoder) { werr = WriteSection(ctx, e, blob, st, att) })
		if werr != nil {
			t.Fatal(werr)
		}
		if !strings.HasSuffix(got, string(data[3000000:3000100])) {
			t.Errorf("wrong window")
		}
		total := int64(0)
		for _, r := range blob.read() {
			total += r[1] - r[0]
		}
		if part := st.Root.Children[0]; total > part.Size {
			t.Errorf("read %d bytes, part is %d", total, part.Size)
		}
	})
	t.Run("binary size of quoted-printable", func(t *testing.T) {
		att, _ := ParseFetchAtt("BINARY.SIZE[3]")
		got := render(t, false, func(e *wire.Encoder) {
			if err := WriteSection(ctx, e, blob, st, att); err != nil {
				t.Fatal(err)
			}
		})
		if want := fmt.Sprint(len(qpDecodedLine) * qpLines); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("body part partial is one exact read", func(t *testing.T) {
		blob.read()
		att, _ := ParseFetchAtt("BODY.PEEK[2]<60.10>")
		got := render(t, false, func(e *wire.Encoder) {
			if err := WriteSection(ctx, e, blob, st, att); err != nil {
				t.Fatal(err)
			}
		})
		if want := literal("tt\r\ntttttt"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		part := st.Root.Children[1]
		if read := blob.read(); len(read) != 1 || read[0] != [2]int64{part.BodyOffset + 60, part.BodyOffset + 70} {
			t.Errorf("reads %v, want [%d,%d)", read, part.BodyOffset+60, part.BodyOffset+70)
		}
	})
}

func TestWriteSectionErrors(t *testing.T) {
	st := scan(t, nested)
	ctx := context.Background()
	t.Run("blob error writes nothing", func(t *testing.T) {
		boom := errors.New("boom")
		blob := &memBlob{data: []byte(nested), fail: boom}
		for _, word := range []string{"BODY[1]", "BODY[HEADER.FIELDS (A)]", "BINARY[3]", "BINARY.SIZE[2.1]"} {
			att, _ := ParseFetchAtt(word)
			var werr error
			got := render(t, false, func(e *wire.Encoder) { werr = WriteSection(ctx, e, blob, st, att) })
			if !errors.Is(werr, boom) || got != "" {
				t.Errorf("%s: wrote %q, error %v; want nothing and boom", word, got, werr)
			}
		}
	})
	t.Run("short blob breaks the encoder", func(t *testing.T) {
		short := ReadRangeFunc(func(_ context.Context, off, n int64) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(nested[off : off+n/2])), nil
		})
		att, _ := ParseFetchAtt("BODY[]")
		var buf bytes.Buffer
		e := wire.NewEncoder(bufio.NewWriter(&buf))
		if err := WriteSection(ctx, e, short, st, att); err == nil || e.Err() == nil {
			t.Errorf("WriteSection = %v, encoder error %v; want both set", err, e.Err())
		}
	})
}

func BenchmarkWriteBodyStructure(b *testing.B) {
	st := scan(b, tenParts())
	bw := bufio.NewWriter(io.Discard)
	e := wire.NewEncoder(bw)
	b.ReportAllocs()
	for b.Loop() {
		WriteBodyStructure(e, st, true)
	}
	if err := e.Flush(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkWriteSection(b *testing.B) {
	raw, _ := bigMessage()
	st := scan(b, raw)
	blob := &memBlob{data: []byte(raw)}
	ctx := context.Background()
	for _, word := range []string{"BODY[2]", "BINARY[1]", "BINARY[3]"} {
		b.Run(word, func(b *testing.B) {
			att, err := ParseFetchAtt(word)
			if err != nil {
				b.Fatal(err)
			}
			span, _ := Resolve(st, att.Section)
			e := wire.NewEncoder(bufio.NewWriter(io.Discard))
			b.SetBytes(span.Len())
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteSection(ctx, e, blob, st, att); err != nil {
					b.Fatal(err)
				}
				blob.read()
			}
		})
	}
}

func TestResolveEncapsulatedRoot(t *testing.T) {
	raw := crlf("Subject: outer\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n")
	st := scan(t, raw)
	tests := []struct{ section, want string }{
		{"1", between(t, raw, "Subject: inner", 1, "")},
		{"1.HEADER", "Subject: inner\r\n\r\n"},
		{"1.TEXT", "inner body\r\n"},
		{"1.1", "inner body\r\n"},
		{"1.1.MIME", "Subject: inner\r\n\r\n"},
		{"1.MIME", between(t, raw, "Subject: outer", 1, "Subject: inner")},
		{"1.2", ""},
		{"1.1.1", ""},
		{"2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			sec, err := ParseSection(tt.section)
			if err != nil {
				t.Fatal(err)
			}
			span, err := Resolve(st, sec)
			if err != nil {
				t.Fatal(err)
			}
			if got := raw[span.Start:span.End]; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzDecoders checks that the decoders never fail on content and decode
// the same whatever the read sizes, and that base64 agrees with the
// standard library on what it accepts.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{"aGVsbG8=", "caf=E9 soft=\r\nx", "a=\r", "==\n=", "aGk=aGk", "=4", " \t\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// A slice, not a map: a random iteration order would make the
		// coverage flaky and stall the fuzzer's minimization.
		for _, d := range []struct {
			name string
			mk   func(io.Reader) io.Reader
		}{
			{"base64", func(r io.Reader) io.Reader { return newBase64Reader(r) }},
			{"qp", func(r io.Reader) io.Reader { return newQPReader(r) }},
		} {
			name, mk := d.name, d.mk
			whole, err := io.ReadAll(mk(bytes.NewReader(in)))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			slow, err := io.ReadAll(iotestOneByte(mk(iotestOneByte(bytes.NewReader(in)))))
			if err != nil || !bytes.Equal(whole, slow) {
				t.Fatalf("%s: %q whole, %q byte by byte (%v)", name, whole, slow, err)
			}
			if len(whole) > len(in) {
				t.Fatalf("%s: decoded %d bytes from %d", name, len(whole), len(in))
			}
		}
		if std, err := base64.StdEncoding.DecodeString(string(in)); err == nil {
			got, _ := io.ReadAll(newBase64Reader(bytes.NewReader(in)))
			if !bytes.Equal(got, std) {
				t.Fatalf("base64 %q: got %q, stdlib %q", in, got, std)
			}
		}
	})
}
