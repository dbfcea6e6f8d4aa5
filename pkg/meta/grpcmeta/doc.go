// Package grpcmeta carries the metadata contract (meta.Store and
// meta.Authenticator) over gRPC: Server adapts any meta.Store to the
// MetadataService of proto/mailstore/metadata/v1, and Client is a
// meta.Store that calls it, so a gateway sees the same interface whether
// the store is in its process or behind the metadata service.
//
// Errors cross the wire as a status code plus a google.rpc.ErrorInfo whose
// reason names the sentinel (errors.go holds the one table), so
// errors.Is(err, meta.ErrNoSuchMailbox) holds on the client as it did on
// the server; a transport failure is meta.ErrUnavailable. It is the only
// package besides the generated code that knows the protobuf types.
package grpcmeta
