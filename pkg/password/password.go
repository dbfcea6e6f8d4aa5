// Package password hashes and verifies account passwords with argon2id,
// stored as PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash"), so
// parameters can be raised later without breaking stored hashes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// Default follows the OWASP recommendation for argon2id (19 MiB, 2
// passes, 1 lane): costly for an attacker, cheap enough for a login storm.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Fast is for tests only.
var Fast = Params{Memory: 64, Time: 1, Threads: 1}

// ErrMismatch is returned by Verify for a wrong password.
var ErrMismatch = errors.New("password mismatch")

// ErrMalformed is returned for a hash that is not an argon2id PHC string.
var ErrMalformed = errors.New("malformed password hash")

const (
	saltLen = 16
	keyLen  = 32
	// MaxLen bounds the password length accepted for hashing and checking.
	MaxLen = 1024
)

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of pw with a fresh random salt.
func Hash(pw string, p Params) (string, error) {
	if len(pw) > MaxLen {
		return "", fmt.Errorf("hash password: longer than %d bytes", MaxLen)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks pw against a PHC string, in constant time for the key
// comparison. It returns nil, ErrMismatch or ErrMalformed.
func Verify(pw, phc string) error {
	if len(pw) > MaxLen {
		return ErrMismatch
	}
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return ErrMalformed
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return ErrMalformed
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 4<<20 || p.Time > 64 {
		return ErrMalformed
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return ErrMalformed
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 128 {
		return ErrMalformed
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}
