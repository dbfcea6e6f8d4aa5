package mutf7

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name, utf8, wire string
	}{
		{"ascii", "INBOX/Sent Items", "INBOX/Sent Items"},
		{"empty", "", ""},
		{"ampersand", "Tom & Jerry", "Tom &- Jerry"},
		{"only ampersand", "&", "&-"},
		{"rfc 3501 example", "~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"rfc 3501 merged shift", "台北日本語", "&U,BTF2XlZyyKng-"},
		{"latin", "Entwürfe", "Entw&APw-rfe"},
		{"dash after shift", "é-x", "&AOk--x"},
		{"ampersand after shift", "é&", "&AOk-&-"},
		{"astral plane", "mail 😀", "mail &2D3eAA-"},
		{"control char", "a\tb", "a&AAk-b"},
		{"comma and plus", "a,b+c", "a,b+c"},
		{"three bytes", "ü", "&APw-"},
		{"two units", "üü", "&APwA,A-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Encode(tt.utf8); got != tt.wire {
				t.Errorf("Encode(%q) = %q, want %q", tt.utf8, got, tt.wire)
			}
			got, err := Decode(tt.wire)
			if err != nil {
				t.Fatalf("Decode(%q): %v", tt.wire, err)
			}
			if got != tt.utf8 {
				t.Errorf("Decode(%q) = %q, want %q", tt.wire, got, tt.utf8)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []struct{ name, in string }{
		{"unterminated shift", "&Jjo"},
		{"unterminated at end", "abc&"},
		{"adjacent shifts (rfc 3501)", "&U,BTFw-&ZeVnLIqe-"},
		{"encoded printable ascii", "&AGE-"},
		{"encoded ampersand", "&ACY-"},
		{"8-bit byte", "caf\xc3\xa9"},
		{"control char", "a\tb"},
		{"DEL", "a\x7fb"},
		{"bad base64 char", "&AO/-"},
		{"padding bits set", "&AOl-"},
		{"excess sextet", "&AOkA-"},
		{"one sextet", "&A-"},
		{"odd bytes", "&AOkA6-"},
		{"lone high surrogate", "&2D0-"},
		{"lone low surrogate", "&3gA-"},
		{"high surrogate then BMP", "&2D0A6Q-"},
		{"standard base64 slash", "&U/BTFw-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			}
		})
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "INBOX", "台北/日本語", "a&b", "😀-&", "Entwürfe", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := Encode(s)
		dec, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%q)) = %q: %v", s, enc, err)
		}
		if utf8.ValidString(s) && dec != s {
			t.Fatalf("round trip of %q via %q gave %q", s, enc, dec)
		}
		// Anything Decode accepts must be canonical: encoding it again
		// gives the same wire form.
		if back, err := Decode(s); err == nil && Encode(back) != s {
			t.Fatalf("Decode accepted non-canonical %q (-> %q -> %q)", s, back, Encode(back))
		}
	})
}
