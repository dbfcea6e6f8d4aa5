package meta_test

import (
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/meta"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		mailbox string
		want    bool
	}{
		{"star matches all", "*", "a/b/c", true},
		{"star matches INBOX", "*", "INBOX", true},
		{"percent matches top level", "%", "Sent", true},
		{"percent stops at delimiter", "%", "a/b", false},
		{"percent level", "a/%", "a/b", true},
		{"percent one level only", "a/%", "a/b/c", false},
		{"star crosses levels", "a/*", "a/b/c", true},
		{"star needs prefix", "a/*", "ab/c", false},
		{"parent not matched by children pattern", "a/%", "a", false},
		{"literal", "Sent", "Sent", true},
		{"literal is case-sensitive", "sent", "Sent", false},
		{"literal prefix only", "Sen", "Sent", false},
		{"inbox any case", "inbox", "INBOX", true},
		{"inbox mixed case", "InBoX", "INBOX", true},
		{"inbox prefix wildcard", "inb*", "INBOX", true},
		{"inbox children", "inbox/%", "INBOX/Lists", true},
		{"inbox child case-sensitive", "inbox/lists", "INBOX/Lists", false},
		{"not inbox", "inbox", "INBOXES", false},
		{"inboxes folded only for INBOX", "inboxes", "INBOXES", false},
		{"empty pattern", "", "INBOX", false},
		{"middle percent", "a/%/c", "a/b/c", true},
		{"middle percent one level", "a/%/c", "a/b/x/c", false},
		{"middle star", "a/*/c", "a/b/x/c", true},
		{"percent suffix", "Arch%", "Archive", true},
		{"percent inside level", "A%e", "Archive", true},
		{"percent inside level no cross", "a%c", "a/c", false},
		{"star and percent", "*/%", "a/b/c", true},
		{"utf8 literal", "Entwürfe/%", "Entwürfe/2024", true},
		{"trailing percent matches empty", "Sent%", "Sent", true},
		{"backtracking", strings.Repeat("*a", 20) + "b", strings.Repeat("a", 500), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := meta.MatchPattern(tt.pattern, tt.mailbox); got != tt.want {
				t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.mailbox, got, tt.want)
			}
		})
	}
}
