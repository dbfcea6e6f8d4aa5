// Package mail holds the value types shared by every layer of mailstore:
// account and mailbox identifiers, UIDs, MODSEQs, flags, UID sets and
// mailbox names. It has no dependencies on storage or protocols.
package mail

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// AccountID identifies an account. It is opaque to every layer but the
// metadata backends, which allocate it; it is safe to use in object keys and
// Redis hash tags (only [0-9a-z]).
type AccountID string

// MailboxID identifies a mailbox within its account. It is never reused
// within an account, so a recreated mailbox gets a new id.
type MailboxID uint64

// UID is an IMAP unique identifier, strictly increasing within a mailbox.
type UID uint32

// ModSeq is a CONDSTORE modification sequence, per mailbox.
type ModSeq uint64

// BlobID names an immutable message body within its account. It is
// allocated at ingest (see NewBlobID) and is safe to use in object keys.
type BlobID string

// Flag is an IMAP flag or keyword, e.g. `\Seen` or `$Forwarded`. System
// flags are kept in their canonical case; keywords as given.
type Flag string

// System flags.
const (
	FlagSeen     Flag = `\Seen`
	FlagAnswered Flag = `\Answered`
	FlagFlagged  Flag = `\Flagged`
	FlagDeleted  Flag = `\Deleted`
	FlagDraft    Flag = `\Draft`
	// FlagRecent is never stored; the IMAP gateway derives it per session.
	FlagRecent Flag = `\Recent`
)

var systemFlags = map[string]Flag{
	`\seen`: FlagSeen, `\answered`: FlagAnswered, `\flagged`: FlagFlagged,
	`\deleted`: FlagDeleted, `\draft`: FlagDraft, `\recent`: FlagRecent,
}

// ErrInvalidFlag is returned for a flag that cannot be stored.
var ErrInvalidFlag = errors.New("invalid flag")

// CanonicalFlag returns f with a system flag in its canonical case, or
// ErrInvalidFlag for an unknown backslash flag, \Recent, or a keyword with
// characters IMAP does not allow in an atom.
func CanonicalFlag(f string) (Flag, error) {
	if f == "" || len(f) > 255 {
		return "", fmt.Errorf("%w: %q", ErrInvalidFlag, f)
	}
	if f[0] == '\\' {
		sf, ok := systemFlags[strings.ToLower(f)]
		if !ok || sf == FlagRecent {
			return "", fmt.Errorf("%w: %q", ErrInvalidFlag, f)
		}
		return sf, nil
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return "", fmt.Errorf("%w: %q", ErrInvalidFlag, f)
		}
	}
	return Flag(f), nil
}

// Delimiter is the hierarchy delimiter of mailbox names.
const Delimiter = '/'

// Inbox is the canonical name of the INBOX.
const Inbox = "INBOX"

// ErrInvalidMailboxName is returned for a name that cannot be stored.
var ErrInvalidMailboxName = errors.New("invalid mailbox name")

// MaxMailboxNameLen bounds a mailbox name in bytes.
const MaxMailboxNameLen = 1024

// CanonicalMailboxName validates a UTF-8 mailbox name and returns it with
// INBOX (and an INBOX/ prefix) in canonical case. Names are rejected when
// empty, not valid UTF-8, with control characters, with an empty hierarchy
// level (leading, trailing or doubled delimiter), or longer than
// MaxMailboxNameLen.
func CanonicalMailboxName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q: %s", ErrInvalidMailboxName, name, why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > MaxMailboxNameLen {
		return bad("too long")
	}
	if !utf8.ValidString(name) {
		return bad("not UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("control character")
		}
	}
	for _, level := range strings.Split(name, string(Delimiter)) {
		if level == "" {
			return bad("empty hierarchy level")
		}
	}
	if strings.EqualFold(name, Inbox) {
		return Inbox, nil
	}
	if len(name) > len(Inbox) && strings.EqualFold(name[:len(Inbox)+1], Inbox+string(Delimiter)) {
		return Inbox + name[len(Inbox):], nil
	}
	return name, nil
}

// SpecialUse attributes (RFC 6154).
const (
	SpecialAll     = `\All`
	SpecialArchive = `\Archive`
	SpecialDrafts  = `\Drafts`
	SpecialFlagged = `\Flagged`
	SpecialJunk    = `\Junk`
	SpecialSent    = `\Sent`
	SpecialTrash   = `\Trash`
)

// DefaultMailboxes are created with every account, with their special use.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{Inbox, ""},
	{"Drafts", SpecialDrafts},
	{"Sent", SpecialSent},
	{"Trash", SpecialTrash},
	{"Junk", SpecialJunk},
	{"Archive", SpecialArchive},
}
