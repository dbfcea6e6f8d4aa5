// Package sasllogin is the server side of the obsolete but widespread SASL
// LOGIN mechanism (draft-murchison-sasl-login), which Outlook and older
// clients still use with IMAP and POP3. go-sasl ships only its client, so
// this implements go-sasl's Server interface.
package sasllogin

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// loginServer asks two challenges, "Username:" and "Password:".
type loginServer struct {
	step     int
	username string
	auth     func(username, password string) error
}

var _ sasl.Server = (*loginServer)(nil)

// NewServer returns a LOGIN server that calls auth with the credentials.
func NewServer(auth func(username, password string) error) sasl.Server {
	return &loginServer{auth: auth}
}

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step++
		if len(response) > 0 {
			// An initial response carries the username (SASL-IR).
			s.username = string(response)
			s.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		s.username = string(response)
		s.step++
		return []byte("Password:"), false, nil
	case 2:
		s.step++
		return nil, true, s.auth(s.username, string(response))
	}
	return nil, false, errors.New("sasl login: unexpected response")
}
