// Package imapbody renders what IMAP FETCH says about a message's content:
// ENVELOPE, BODY and BODYSTRUCTURE from the mime.Structure computed at
// ingest, and BODY[section]<partial>, BINARY[part] and BINARY.SIZE[part]
// from ranged reads of the blob. It holds no session state, so the FETCH
// command of the gateway only parses attributes with ParseFetchAtt and
// hands each message's structure and a BlobReader to the functions here.
//
// Why ranged reads: the structure records the byte offsets of every part,
// so a section, a partial, a MIME header or a HEADER.FIELDS filter reads
// only the bytes it needs from the blob store, never the whole blob.
//
// Memory stays bounded: a literal needs its length before its bytes, so
// content whose length is only known after processing it (decoded BINARY,
// filtered HEADER.FIELDS) is spooled, in memory up to 1 MiB and in a
// temporary file past that, and then sent from the spool. Raw sections
// (BODY[...] other than HEADER.FIELDS) stream straight from the blob.
//
// Choices where the RFCs leave room, following Dovecot:
//   - BODY and BODYSTRUCTURE write type, subtype, encoding and parameter
//     names as the structure holds them (lower case), which is what Dovecot
//     sends for the usual lower-case header; text/* parts without a charset
//     get ("charset" "us-ascii").
//   - An address without a host (or without a mailbox) gets
//     "MISSING_DOMAIN" ("MISSING_MAILBOX"), since a NIL host would read as
//     group syntax.
//   - A part number that does not exist, and HEADER/TEXT after a part that
//     is not message/rfc822, are sent as an empty string; N.MIME of a
//     message/rfc822 part is its MIME header; 1.MIME of a non-multipart
//     message is the message header.
//   - BODY[...] sends the stored bytes untouched, even a NUL (Dovecot
//     would replace it), because bytes out must equal bytes in; only
//     BINARY uses literal8, when the decoded content holds a NUL.
package imapbody

import (
	"context"
	"errors"
	"io"
)

// ErrBadSection is a malformed section or fetch attribute; the session
// answers BAD.
var ErrBadSection = errors.New("bad fetch section")

// ErrUnknownCTE is returned for BINARY of a part whose
// Content-Transfer-Encoding we cannot decode; the session answers
// NO [UNKNOWN-CTE] (RFC 3516).
var ErrUnknownCTE = errors.New("unknown content transfer encoding")

// BlobReader reads bytes [offset, offset+length) of one message's blob.
// The reader must return exactly length bytes (the section offsets come
// from the blob itself, so they lie within it).
type BlobReader interface {
	ReadRange(ctx context.Context, offset, length int64) (io.ReadCloser, error)
}

// ReadRangeFunc adapts a function to BlobReader, e.g. a closure over
// blob.Store.Get with the account and blob ID.
type ReadRangeFunc func(ctx context.Context, offset, length int64) (io.ReadCloser, error)

// ReadRange calls f.
func (f ReadRangeFunc) ReadRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	return f(ctx, offset, length)
}
