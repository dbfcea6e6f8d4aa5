package imapgw

import (
	"strings"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/services/imapgw/mutf7"
)

func init() { registerCap("UTF8=ACCEPT") }

// decodeName turns a mailbox name as the client sent it into the stored
// UTF-8 name: UTF-8 for IMAP4rev2 and UTF8=ACCEPT sessions, modified UTF-7
// for the others (RFC 3501 section 5.1.3). INBOX is case-insensitive.
func (s *session) decodeName(name string) (string, error) {
	if !s.utf8 {
		dec, err := mutf7.Decode(name)
		if err != nil {
			return "", bad("Mailbox name is not valid modified UTF-7")
		}
		name = dec
	}
	n, err := mail.CanonicalMailboxName(strings.TrimSuffix(name, string(mail.Delimiter)))
	if err != nil {
		return "", err
	}
	return n, nil
}

// encodeName is the reverse of decodeName, for responses.
func (s *session) encodeName(name string) string {
	if s.utf8 {
		return name
	}
	return mutf7.Encode(name)
}

// writeName writes a mailbox name as an astring.
func (s *session) writeName(name string) {
	s.enc.AString(s.encodeName(name))
}
