package mime

import (
	"reflect"
	"strings"
	"testing"
)

func TestWithPrefix(t *testing.T) {
	prefix := "Return-Path: <a@example.com>\r\nDelivered-To: b+x@example.org\r\nReceived: from x\r\n\tby y; Mon, 2 Jan 2006 15:04:05 -0700\r\n"
	tests := []struct{ name, msg string }{
		{"simple", crlf("From: a@example.com\nSubject: hi\n\nbody\n")},
		{"bare LF", "From: a@example.com\nSubject: hi\n\nbody\nmore\n"},
		{"multipart", crlf("Content-Type: multipart/mixed; boundary=b\nSubject: x\n\npre\n--b\nContent-Type: text/plain\n\none\n--b\nContent-Type: multipart/alternative; boundary=c\n\n--c\n\ntwo\n--c--\n--b--\nepi\n")},
		{"rfc822", crlf("Content-Type: message/rfc822\n\nFrom: inner@example.com\nSubject: inner\nContent-Type: multipart/mixed; boundary=z\n\n--z\n\nx\n--z--\n")},
		{"empty header", crlf("\nbody only\n")},
		{"no body", crlf("Subject: only a header\n")},
		{"no line break", "Subject: cut"},
		{"empty", ""},
		{"broken", crlf("this is not a header\nContent-Type: multipart/mixed; boundary=\"unterminated\n\n--unterminated\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Scan(strings.NewReader(tt.msg), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			before, _ := MarshalStructure(st)
			got := st.WithPrefix(int64(len(prefix)))
			want, err := Scan(strings.NewReader(prefix+tt.msg), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("WithPrefix:\n got %+v\nwant %+v", got, want)
			}
			if after, _ := MarshalStructure(st); string(after) != string(before) {
				t.Error("WithPrefix changed its receiver")
			}
			if err := checkStructure([]byte(prefix+tt.msg), got); err != nil {
				t.Error(err)
			}
		})
	}
}
