package meta

import "context"

// Authenticator checks a login and password. The metadata service
// implements it (argon2id hashes, failure counters shared by every
// replica); gateways reach it through the gRPC client in grpcmeta, so a
// password hash never leaves the metadata service.
type Authenticator interface {
	// Authenticate returns the account, with PasswordHash empty, for a
	// correct login and password. ErrAuthFailed for an unknown login, a
	// wrong password or a disabled account (callers must not tell these
	// apart to a client); ErrUnavailable when the store is down.
	// remoteAddr ("ip:port" of the client, may be empty) feeds the
	// per-IP failure counters.
	Authenticate(ctx context.Context, login, password, remoteAddr string) (Account, error)
}
