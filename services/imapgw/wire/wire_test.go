package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func dec(s string) *Decoder { return NewDecoder(bufio.NewReader(strings.NewReader(s))) }

func TestDecoder(t *testing.T) {
	tests := []struct {
		name string
		in   string
		read func(d *Decoder) (string, error)
		want string
		err  bool
	}{
		{"atom", "FETCH rest", func(d *Decoder) (string, error) { return d.Atom() }, "FETCH", false},
		{"quoted", `"a \"b\" \\c" x`, func(d *Decoder) (string, error) { return d.Quoted() }, `a "b" \c`, false},
		{"quoted unterminated", "\"abc\r\n", func(d *Decoder) (string, error) { return d.Quoted() }, "", true},
		{"bad escape", `"a\b"`, func(d *Decoder) (string, error) { return d.Quoted() }, "", true},
		{"literal", "{5}\r\nhello", func(d *Decoder) (string, error) { return d.String() }, "hello", false},
		{"literal plus", "{3+}\r\nabc", func(d *Decoder) (string, error) { return d.String() }, "abc", false},
		{"literal with NUL", "{3}\r\na\x00c", func(d *Decoder) (string, error) { return d.String() }, "", true},
		{"binary literal", "~{3}\r\na\x00c", func(d *Decoder) (string, error) { return d.String() }, "a\x00c", false},
		{"astring bracket", "foo]bar x", func(d *Decoder) (string, error) { return d.AString() }, "foo]bar", false},
		{"word with section", "BODY.PEEK[HEADER.FIELDS (A B)]<0.10> x", func(d *Decoder) (string, error) { return d.Word() }, "BODY.PEEK[HEADER.FIELDS (A B)]<0.10>", false},
		{"word set", "1:3,5:* (", func(d *Decoder) (string, error) { return d.Word() }, "1:3,5:*", false},
		{"list pattern", "INBOX/% x", func(d *Decoder) (string, error) { return d.ListMailbox() }, "INBOX/%", false},
		{"tag", "a001 NOOP", func(d *Decoder) (string, error) { return d.Tag() }, "a001", false},
		{"empty atom", " x", func(d *Decoder) (string, error) { return d.Atom() }, "", true},
		{"nstring nil", "NIL", func(d *Decoder) (string, error) {
			s, ok, err := d.NString()
			if ok {
				return "", errors.New("ok for NIL")
			}
			return s, err
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read(dec(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecoderListAndLimits(t *testing.T) {
	d := dec("(\\Seen $Work \\Answered) rest\r\n")
	var items []string
	if err := d.List(func() error { s, err := d.Flag(); items = append(items, s); return err }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(items, "|") != `\Seen|$Work|\Answered` {
		t.Fatalf("items %q", items)
	}
	d = dec("()")
	n := 0
	if err := d.List(func() error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("empty list: %v %d", err, n)
	}

	d = dec(strings.Repeat("a", 100) + "\r\n")
	d.MaxLine = 10
	if _, err := d.Atom(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}

	d = dec("{100000}\r\n")
	var lt *LiteralTooLargeError
	if _, err := d.String(); !errors.As(err, &lt) || lt.NonSync {
		t.Fatalf("huge literal: %v", err)
	}
	conts := 0
	d = dec("{2}\r\nab{2+}\r\ncd")
	d.Continue = func() error { conts++; return nil }
	a, _ := d.String()
	b, _ := d.String()
	if a != "ab" || b != "cd" || conts != 1 {
		t.Fatalf("literals %q %q, continuations %d", a, b, conts)
	}
	d = dec("{5}\r\nhello")
	lit, err := d.LiteralHeader()
	if err != nil || lit.Size != 5 {
		t.Fatal(lit, err)
	}
	data, _ := io.ReadAll(d.LiteralReader(lit.Size))
	if string(data) != "hello" {
		t.Fatalf("literal reader %q", data)
	}
	if err := dec("\r\n").CRLF(); err != nil {
		t.Fatal(err)
	}
	if err := dec("\n").CRLF(); err != nil {
		t.Fatal("bare LF refused")
	}
	if err := dec("x\r\n").CRLF(); err == nil {
		t.Fatal("junk accepted as end of line")
	}
}

func TestEncoder(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	e := NewEncoder(w)
	e.Atom("*").SP().Number(3).SP().Open().String(`a"b`).SP().String("x\r\ny").SP().NString("").SP().AString("INBOX").SP().AString("a b").SP().AString("nil").Close().SP().String("é").CRLF()
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "* 3 (\"a\\\"b\" {4}\r\nx\r\ny NIL INBOX \"a b\" \"nil\") {2}\r\né\r\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	e.UTF8 = true
	e.String("é").Literal(3, strings.NewReader("a\x00c"), true)
	e.Flush()
	if buf.String() != "\"é\"~{3}\r\na\x00c" {
		t.Fatalf("got %q", buf.String())
	}
}
