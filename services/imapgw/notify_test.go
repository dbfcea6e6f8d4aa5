package imapgw

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailstore/mailstore/pkg/mail"
)

// idle starts IDLE and waits for the continuation.
func (r *raw) idle(tag string) {
	r.t.Helper()
	r.send(tag + " IDLE\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+ ") {
		r.t.Fatalf("IDLE: %q", l)
	}
}

// done ends IDLE and returns the lines sent before the tagged OK.
func (r *raw) done(tag string) []string {
	r.t.Helper()
	r.send("DONE\r\n")
	lines, tagged := r.until(tag)
	if !strings.Contains(tagged, " OK") {
		r.t.Fatalf("IDLE end: %s", tagged)
	}
	return lines
}

// expectLine reads one line and checks its start.
func (r *raw) expectLine(prefix string) string {
	r.t.Helper()
	l := r.line()
	if !strings.HasPrefix(l, prefix) {
		r.t.Fatalf("got %q, want a line starting %q", l, prefix)
	}
	return l
}

func appendMsg(t *testing.T, c *raw, mailbox, subject string) {
	t.Helper()
	body := "Subject: " + subject + "\r\n\r\nx\r\n"
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	c.send(fmt.Sprintf("%s APPEND %s {%d+}\r\n%s\r\n", tag, mailbox, len(body), body))
	if _, tagged := c.until(tag); !strings.Contains(tagged, "OK") {
		t.Fatalf("APPEND %s: %s", mailbox, tagged)
	}
}

func TestNotifyOtherMailboxesDuringIdle(t *testing.T) {
	e := newEnv(t)
	a := e.account("notify@example.com")
	e.deliver(a, mail.Inbox, msg1)
	gw1, gw2 := e.gateway(nil), e.gateway(nil)

	watcher := login(t, gw2, "notify@example.com")
	if lines := watcher.ok("CAPABILITY"); !has(lines, " NOTIFY") {
		t.Fatalf("NOTIFY not announced: %q", lines)
	}
	watcher.ok("SELECT INBOX")
	lines := watcher.ok("NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge FlagChange)) (PERSONAL (MessageNew MessageExpunge FlagChange MailboxName))")
	if !has(lines, "* STATUS Archive (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ") || !has(lines, "HIGHESTMODSEQ ") {
		t.Errorf("initial STATUS: %q", lines)
	}
	if has(lines, "STATUS INBOX") {
		t.Errorf("initial STATUS of the selected mailbox: %q", lines)
	}

	writer := login(t, gw1, "notify@example.com")
	watcher.idle("i1")
	appendMsg(t, writer, "Archive", "archived")
	watcher.expectLine("* STATUS Archive (MESSAGES 1 UIDNEXT 2 UNSEEN 1 HIGHESTMODSEQ ")

	writer.ok("SELECT Archive")
	writer.ok(`STORE 1 +FLAGS (\Seen)`)
	watcher.expectLine("* STATUS Archive (MESSAGES 1 UIDNEXT 2 UNSEEN 0 HIGHESTMODSEQ ")
	writer.ok(`STORE 1 +FLAGS (\Flagged)`)
	watcher.expectLine("* STATUS Archive (MESSAGES 1 UIDNEXT 2 UNSEEN 0 HIGHESTMODSEQ ")
	writer.ok(`STORE 1 +FLAGS (\Deleted)`)
	watcher.expectLine("* STATUS Archive (")
	writer.ok("EXPUNGE")
	watcher.expectLine("* STATUS Archive (MESSAGES 0 UIDNEXT 2 UNSEEN 0 ")

	writer.ok("CREATE Projects")
	watcher.expectLine(`* LIST () "/" Projects`)
	writer.ok("RENAME Projects Work")
	watcher.expectLine(`* LIST () "/" Work ("OLDNAME" (Projects))`)
	writer.ok("DELETE Work")
	watcher.expectLine(`* LIST (\NonExistent) "/" Work`)

	// The selected mailbox keeps the usual updates.
	appendMsg(t, writer, "INBOX", "new")
	watcher.expectLine("* 2 EXISTS")
	watcher.expectLine("* 2 RECENT") // the only IMAP4rev1 session on INBOX
	if lines := watcher.done("i1"); len(lines) != 0 {
		t.Errorf("unexpected lines: %q", lines)
	}

	// Outside IDLE, notifications come at the end of a command.
	appendMsg(t, writer, "Archive", "second")
	var got []string
	waitFor(t, func() bool {
		got = append(got, watcher.ok("NOOP")...)
		return has(got, "* STATUS Archive (MESSAGES 1 UIDNEXT 3 UNSEEN 1")
	})

	// NOTIFY NONE stops them; the selected mailbox still gets EXISTS. The
	// Archive event precedes the INBOX one on the account's stream.
	watcher.ok("NOTIFY NONE")
	watcher.idle("i2")
	appendMsg(t, writer, "Archive", "third")
	writer.ok("CREATE Quiet")
	appendMsg(t, writer, "INBOX", "new again")
	watcher.expectLine("* 3 EXISTS")
	watcher.expectLine("* 3 RECENT")
	if lines := watcher.done("i2"); len(lines) != 0 {
		t.Errorf("notifications after NOTIFY NONE: %q", lines)
	}
	if lines := watcher.ok("NOOP"); has(lines, "STATUS") || has(lines, "LIST") {
		t.Errorf("notifications after NOTIFY NONE: %q", lines)
	}
}

func TestNotifySubscriptionsFiltersAndFetch(t *testing.T) {
	e := newEnv(t)
	e.account("notify2@example.com")
	gw := e.gateway(nil)
	watcher := login(t, gw, "notify2@example.com")
	other := login(t, gw, "notify2@example.com")

	watcher.ok("SELECT INBOX")
	// Every mailbox but Trash; SubscriptionChange everywhere; the fetch
	// attributes of new messages in the selected mailbox.
	watcher.ok("NOTIFY SET (SELECTED-DELAYED (MessageNew (UID FLAGS) MessageExpunge)) " +
		"(PERSONAL (MessageNew MessageExpunge SubscriptionChange)) (MAILBOXES Trash NONE)")
	watcher.idle("i1")
	appendMsg(t, other, "Trash", "ignored")
	other.ok("SUBSCRIBE Archive")
	watcher.expectLine(`* LIST (\Subscribed) "/" Archive`)
	other.ok("UNSUBSCRIBE Archive")
	watcher.expectLine(`* LIST () "/" Archive`)
	appendMsg(t, other, "Sent", "sent")
	watcher.expectLine("* STATUS Sent (MESSAGES 1 UIDNEXT 2 UNSEEN 1)")
	appendMsg(t, other, "INBOX", "hello")
	watcher.expectLine("* 1 EXISTS")
	watcher.expectLine("* 1 RECENT")
	watcher.expectLine(`* 1 FETCH (UID 1 FLAGS (\Recent))`)
	if lines := watcher.done("i1"); len(lines) != 0 {
		t.Errorf("unexpected lines: %q", lines)
	}

	// SUBTREE and SUBSCRIBED filters.
	watcher.ok("NOTIFY SET (SUBTREE Projects (MessageNew MessageExpunge MailboxName)) (SUBSCRIBED (MailboxName))")
	watcher.ok("SUBSCRIBE Sent")
	watcher.idle("i2")
	other.ok("CREATE Elsewhere")
	other.ok("CREATE Projects/A")
	watcher.expectLine(`* LIST () "/" Projects`)
	watcher.expectLine(`* LIST () "/" Projects/A`)
	other.ok("RENAME Sent Sent2")
	watcher.expectLine(`* LIST (\Sent) "/" Sent2 ("OLDNAME" (Sent))`)
	watcher.done("i2")
}

func TestNotifyAnswers(t *testing.T) {
	e := newEnv(t)
	e.account("notify3@example.com")
	c := login(t, e.gateway(nil), "notify3@example.com")
	const badEvent = "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
	many := make([]string, maxNotifyNames+1)
	for i := range many {
		many[i] = fmt.Sprintf("m%d", i)
	}
	for _, tc := range []struct {
		name, args, want string
	}{
		{"none", "NONE", "OK"},
		{"status", "SET STATUS (PERSONAL (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))", "OK"},
		{"selected only", "SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge FlagChange))", "OK"},
		{"explicit none", "SET (INBOXES NONE) (MAILBOXES (Sent Drafts) (MailboxName))", "OK"},
		{"new without expunge", "SET (PERSONAL (MessageNew))", "BAD"},
		{"expunge without new", "SET (SELECTED (MessageExpunge))", "BAD"},
		{"flags alone", "SET (PERSONAL (FlagChange))", "BAD"},
		{"flags without expunge", "SET (PERSONAL (MessageNew FlagChange))", "BAD"},
		{"two selected filters", "SET (SELECTED NONE) (SELECTED-DELAYED NONE)", "BAD"},
		{"fetch outside selected", "SET (PERSONAL (MessageNew (UID) MessageExpunge))", "BAD"},
		{"unknown filter", "SET (EVERYWHERE (MailboxName))", "BAD"},
		{"empty events", "SET (PERSONAL ())", "BAD"},
		{"unknown verb", "MAYBE", "BAD"},
		{"annotation", "SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))", badEvent},
		{"mailbox metadata", "SET (PERSONAL (MailboxMetadataChange))", badEvent},
		{"server metadata", "SET (SELECTED (ServerMetadataChange))", badEvent},
		{"unknown event", "SET (PERSONAL (MailboxName SomethingNew))", badEvent},
		{"too many mailboxes", "SET (MAILBOXES (" + strings.Join(many, " ") + ") (MailboxName))", "NO [NOTIFICATIONOVERFLOW]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tagged := c.cmd("NOTIFY %s", tc.args)
			if !strings.Contains(tagged, " "+tc.want) {
				t.Errorf("NOTIFY %s: %s, want %s", tc.args, tagged, tc.want)
			}
			// The session is still in step.
			c.ok("NOOP")
		})
	}
}

// TestNotifyWithoutSelection: with no mailbox selected INBOX is one of the
// others; a refused NOTIFY leaves the previous settings in force.
func TestNotifyWithoutSelection(t *testing.T) {
	e := newEnv(t)
	e.account("notify4@example.com")
	gw := e.gateway(nil)
	watcher := login(t, gw, "notify4@example.com")
	other := login(t, e.gateway(nil), "notify4@example.com")

	watcher.ok("NOTIFY SET (INBOXES (MessageNew MessageExpunge))")
	if _, tagged := watcher.cmd("NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))"); !strings.Contains(tagged, "NO [BADEVENT") {
		t.Fatalf("refused NOTIFY: %s", tagged)
	}
	watcher.idle("i1")
	appendMsg(t, other, "Archive", "not an inbox")
	appendMsg(t, other, "INBOX", "hello")
	watcher.expectLine("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 1)")
	if lines := watcher.done("i1"); len(lines) != 0 {
		t.Errorf("unexpected lines: %q", lines)
	}
}
