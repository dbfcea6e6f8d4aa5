// Package blob is the contract of the blob store, which keeps immutable
// message bodies: streaming Put and ranged Get, Stat, Delete and List for
// recovery and sweeps. Backends: fsblob (a local directory), s3blob (any S3
// API through minio-go), grpcblob (the blob service over gRPC). Every
// backend passes the conformance suite in blobtest.
//
// Object naming is the backend's business: callers deal only in an account
// id and a mail.BlobID.
package blob

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("blob not found")
	// ErrExists: Put of an id that is already stored (blobs are immutable).
	ErrExists          = errors.New("blob exists")
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTooLarge: the body exceeded the limit given to Put.
	ErrTooLarge = errors.New("blob too large")
	// ErrUnavailable: the backing store is down or timed out; retry later.
	ErrUnavailable = errors.New("blob store unavailable")
)

// Meta is the recovery metadata carried by every object, enough to rebuild
// an account's index from the blob store alone.
type Meta struct {
	Account      mail.AccountID
	InternalDate time.Time
	Mailbox      string      // mailbox name at delivery
	Flags        []mail.Flag // flags at delivery
}

// Info describes a stored blob.
type Info struct {
	ID       mail.BlobID
	Size     int64
	Modified time.Time // when stored
	Meta     Meta
}

// Range selects bytes [Offset, Offset+Length) of a blob; Length < 0 means
// to the end. The zero Range is the whole blob. A range past the end is cut
// to the end (and may be empty), never an error.
type Range struct {
	Offset int64
	Length int64
}

// Whole is the Range of a whole blob.
var Whole = Range{Offset: 0, Length: -1}

// PutOptions tune a Put.
type PutOptions struct {
	// Size is the exact size if known, or -1.
	Size int64
	// MaxSize, when > 0, makes Put fail with ErrTooLarge (storing nothing)
	// once the body exceeds it.
	MaxSize int64
}

// Store keeps blobs. Put is all-or-nothing: after an error nothing is
// visible under the id, and after success the whole body is durable.
type Store interface {
	// Put stores r under (acct, id) with m. ErrExists if id is taken.
	Put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m Meta, o PutOptions) (Info, error)
	// Get returns a reader of the range; the caller closes it.
	Get(ctx context.Context, acct mail.AccountID, id mail.BlobID, rg Range) (io.ReadCloser, error)
	// Stat returns the blob's Info, or ErrNotFound.
	Stat(ctx context.Context, acct mail.AccountID, id mail.BlobID) (Info, error)
	// Delete removes the blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, acct mail.AccountID, id mail.BlobID) error
	// List calls fn for every blob of the account (Meta filled in), in no
	// particular order, until fn returns an error, which List returns.
	List(ctx context.Context, acct mail.AccountID, fn func(Info) error) error
}

// NewBlobID returns a new random, time-ordered id: 12 hex digits of
// milliseconds since the epoch and 16 of randomness, lower case.
func NewBlobID(now time.Time) mail.BlobID {
	var b [14]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	const hexdigits = "0123456789abcdef"
	var s strings.Builder
	s.Grow(28)
	for _, c := range b {
		s.WriteByte(hexdigits[c>>4])
		s.WriteByte(hexdigits[c&15])
	}
	return mail.BlobID(s.String())
}

// ValidID reports whether id is safe as an object name component.
func ValidID(id mail.BlobID) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidAccount reports whether an account id is safe as an object name
// component.
func ValidAccount(a mail.AccountID) bool { return ValidID(mail.BlobID(a)) }
