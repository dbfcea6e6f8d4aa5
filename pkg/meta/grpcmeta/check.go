package grpcmeta

import (
	"fmt"
	"unicode/utf8"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// Proto3 strings must be UTF-8: a request with anything else fails to
// marshal in the client, which gRPC reports as Internal. These checks
// answer such arguments before the call with the error a store gives them,
// so the contract holds over the wire too. (Authenticate carries login and
// password as bytes and needs none.)

// badAccount: no account can have a non-UTF-8 id.
func badAccount(op string, acct mail.AccountID) error {
	if utf8.ValidString(string(acct)) {
		return nil
	}
	return fmt.Errorf("%s: account %q: %w", op, acct, meta.ErrNoSuchAccount)
}

func badNames(op string, names ...string) error {
	for _, n := range names {
		if !utf8.ValidString(n) {
			return fmt.Errorf("%s: %w: %w: %q: not UTF-8", op, meta.ErrInvalidArgument, mail.ErrInvalidMailboxName, n)
		}
	}
	return nil
}

func badFlags(op string, flags []mail.Flag) error {
	for _, f := range flags {
		if !utf8.ValidString(string(f)) {
			return fmt.Errorf("%s: %w: %w: %q", op, meta.ErrInvalidArgument, mail.ErrInvalidFlag, f)
		}
	}
	return nil
}

func badArgs(op string, values ...string) error {
	for _, v := range values {
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s: %q: not UTF-8: %w", op, v, meta.ErrInvalidArgument)
		}
	}
	return nil
}

func badBlobs(op string, ids []mail.BlobID) error {
	for _, id := range ids {
		if err := badArgs(op, string(id)); err != nil {
			return err
		}
	}
	return nil
}

func badUpdate(u meta.AccountUpdate) error {
	var vs []string
	if u.PasswordHash != nil {
		vs = append(vs, *u.PasswordHash)
	}
	if u.SieveScript != nil {
		vs = append(vs, *u.SieveScript)
	}
	if u.POP3 != nil {
		vs = append(vs, u.POP3.Mode)
	}
	return badArgs("update account", vs...)
}
