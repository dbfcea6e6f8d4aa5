package meta_test

import (
	"errors"
	"testing"

	"github.com/mailstore/mailstore/pkg/meta"
)

func TestParsePOP3Keep(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    meta.POP3Policy
		wantErr bool
	}{
		{"none", "none", meta.POP3Policy{Mode: meta.POP3Delete}, false},
		{"delete alias", "delete", meta.POP3Policy{Mode: meta.POP3Delete}, false},
		{"forever", "forever", meta.POP3Policy{Mode: meta.POP3KeepForever}, false},
		{"default", "default", meta.POP3Policy{Mode: meta.POP3Default}, false},
		{"empty is default", "", meta.POP3Policy{Mode: meta.POP3Default}, false},
		{"one day", "1d", meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 1}, false},
		{"fourteen days", "14d", meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 14}, false},
		{"maximum", "36500d", meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 36500}, false},
		{"leading zero", "030d", meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 30}, false},
		{"zero days", "0d", meta.POP3Policy{}, true},
		{"too many days", "36501d", meta.POP3Policy{}, true},
		{"overflow", "99999999999999999999d", meta.POP3Policy{}, true},
		{"no number", "d", meta.POP3Policy{}, true},
		{"no unit", "14", meta.POP3Policy{}, true},
		{"sign", "+3d", meta.POP3Policy{}, true},
		{"negative", "-3d", meta.POP3Policy{}, true},
		{"other unit", "3w", meta.POP3Policy{}, true},
		{"upper case", "FOREVER", meta.POP3Policy{}, true},
		{"space", " 3d", meta.POP3Policy{}, true},
		{"junk", "days", meta.POP3Policy{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := meta.ParsePOP3Keep(tc.in)
			if tc.wantErr {
				if !errors.Is(err, meta.ErrInvalidArgument) {
					t.Fatalf("ParsePOP3Keep(%q) = %+v, %v; want ErrInvalidArgument", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePOP3Keep(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestPOP3PolicyKeepString(t *testing.T) {
	tests := []struct {
		name string
		p    meta.POP3Policy
		want string
	}{
		{"default", meta.POP3Policy{}, ""},
		{"delete", meta.POP3Policy{Mode: meta.POP3Delete}, "none"},
		{"forever", meta.POP3Policy{Mode: meta.POP3KeepForever}, "forever"},
		{"days", meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 14}, "14d"},
		{"login delay ignored", meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 3, LoginDelay: 60}, "3d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.p.KeepString()
			if s != tc.want {
				t.Fatalf("KeepString of %+v = %q, want %q", tc.p, s, tc.want)
			}
			// Round trip: parsing the string gives the policy back
			// (without the login delay, which it does not carry).
			back, err := meta.ParsePOP3Keep(s)
			want := tc.p
			want.LoginDelay = 0
			if err != nil || back != want {
				t.Fatalf("ParsePOP3Keep(%q) = %+v, %v; want %+v", s, back, err, want)
			}
		})
	}
}
