package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse", Fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("unexpected PHC string %q", h)
	}
	h2, _ := Hash("correct horse", Fast)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	tests := []struct {
		name string
		pw   string
		phc  string
		want error
	}{
		{"right", "correct horse", h, nil},
		{"wrong", "correct horsE", h, ErrMismatch},
		{"empty", "", h, ErrMismatch},
		{"too long", strings.Repeat("x", MaxLen+1), h, ErrMismatch},
		{"not phc", "x", "plaintext", ErrMalformed},
		{"other algorithm", "x", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ErrMalformed},
		{"bad params", "x", "$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ErrMalformed},
		{"huge memory", "x", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.pw, tt.phc); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h, err := Hash("secret", Default)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := Verify("secret", h); err != nil {
			b.Fatal(err)
		}
	}
}
