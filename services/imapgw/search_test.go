package imapgw

import (
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
)

func TestSearchSortThread(t *testing.T) {
	e := newEnv(t)
	a := e.account("search@example.com")
	e.deliver(a, mail.Inbox, "From: Zed <zed@example.org>\r\nSubject: Budget 2026\r\nDate: Tue, 03 Jun 2025 10:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nThe budget is attached.\r\n", mail.FlagSeen)
	e.deliver(a, mail.Inbox, "From: Amy <amy@example.org>\r\nSubject: Re: Budget 2026\r\nDate: Wed, 04 Jun 2025 10:00:00 +0000\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <a@x>\r\nContent-Transfer-Encoding: base64\r\n\r\nbG9va3MgZmluZSB0byBtZQ==\r\n")
	e.deliver(a, mail.Inbox, "From: Bob <bob@example.org>\r\nSubject: lunch\r\nDate: Mon, 02 Jun 2025 10:00:00 +0000\r\nMessage-ID: <c@x>\r\n\r\nPizza?\r\n", mail.FlagFlagged)
	c := login(t, e.gateway(nil), "search@example.com")
	c.ok("SELECT INBOX")
	tests := []struct {
		cmd, want string
	}{
		{"SEARCH ALL", "* SEARCH 1 2 3"},
		{"SEARCH UNSEEN", "* SEARCH 2 3"},
		{"SEARCH FLAGGED", "* SEARCH 3"},
		{`SEARCH FROM "amy"`, "* SEARCH 2"},
		{`SEARCH SUBJECT budget`, "* SEARCH 1 2"},
		{`SEARCH BODY "fine to me"`, "* SEARCH 2"},
		{`SEARCH TEXT pizza`, "* SEARCH 3"},
		{`SEARCH OR FLAGGED SEEN`, "* SEARCH 1 3"},
		{`SEARCH NOT SEEN SUBJECT budget`, "* SEARCH 2"},
		{`SEARCH HEADER Message-ID "<c@x>"`, "* SEARCH 3"},
		{`SEARCH SENTBEFORE 3-Jun-2025`, "* SEARCH 3"},
		{`UID SEARCH 2:*`, "* SEARCH 2 3"},
		{`SEARCH RETURN (MIN MAX COUNT) ALL`, `* ESEARCH (TAG "`},
		{`SORT (DATE) UTF-8 ALL`, "* SORT 3 1 2"},
		{`SORT (REVERSE SUBJECT) UTF-8 ALL`, "* SORT 3 1 2"},
		{`SORT (FROM) UTF-8 ALL`, "* SORT 2 3 1"},
		{`THREAD REFERENCES UTF-8 ALL`, "* THREAD (3)(1 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			c.t = t
			lines := c.ok("%s", tt.cmd)
			if !has(lines, tt.want) {
				t.Fatalf("%s: %q, want %q", tt.cmd, lines, tt.want)
			}
		})
	}
	c.t = t
	if _, tagged := c.cmd("SEARCH CHARSET KOI8-R ALL"); !strings.Contains(tagged, "NO [BADCHARSET") {
		t.Fatalf("bad charset: %s", tagged)
	}
	if _, tagged := c.cmd("SEARCH FROB"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("bad key: %s", tagged)
	}
	// SEARCHRES: save, then use $.
	c.ok("SEARCH RETURN (SAVE) SUBJECT budget")
	lines := c.ok(`FETCH $ (UID)`)
	if !has(lines, "* 1 FETCH (UID 1)") || !has(lines, "* 2 FETCH (UID 2)") || has(lines, "* 3 FETCH") {
		t.Fatalf("FETCH $: %q", lines)
	}
}
