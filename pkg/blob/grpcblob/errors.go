package grpcblob

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailstore/mailstore/pkg/blob"
)

// errorDomain is the google.rpc.ErrorInfo domain of the blob service.
const errorDomain = "blob.mailstore"

// sentinels maps the blob sentinels to gRPC codes and ErrorInfo reasons.
// ErrTooLarge is RESOURCE_EXHAUSTED (a limit was exhausted, as for a quota)
// rather than OUT_OF_RANGE (which is about reading past an end); gRPC also
// uses RESOURCE_EXHAUSTED for oversized messages, so the client trusts the
// reason, never the code alone.
var sentinels = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{blob.ErrNotFound, codes.NotFound, "NOT_FOUND"},
	{blob.ErrExists, codes.AlreadyExists, "EXISTS"},
	{blob.ErrInvalidArgument, codes.InvalidArgument, "INVALID_ARGUMENT"},
	{blob.ErrTooLarge, codes.ResourceExhausted, "TOO_LARGE"},
	{blob.ErrUnavailable, codes.Unavailable, "UNAVAILABLE"},
}

// toStatus turns a store error into a gRPC status error with a reason.
func toStatus(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			st := status.New(s.code, err.Error())
			if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: s.reason, Domain: errorDomain}); derr == nil {
				st = d
			}
			return st.Err()
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return st.Err() // a transport error from the stream itself
	}
	return status.Error(codes.Internal, err.Error())
}

// remoteError is an error that came over the wire: it reads as the
// server's message, which says what was attempted, and unwraps to the
// matching sentinel.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return "blob service: " + e.msg }
func (e *remoteError) Unwrap() error { return e.err }

// fromStatus turns an error of a call into one that errors.Is matches with
// the blob sentinels: by the ErrorInfo reason, else by code for transport
// failures (UNAVAILABLE, DEADLINE_EXCEEDED) and cancellation.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		for _, s := range sentinels {
			if info.GetReason() == s.reason {
				return &remoteError{msg: st.Message(), err: s.err}
			}
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", blob.ErrUnavailable, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w", blob.ErrUnavailable, context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("%w: %s", context.Canceled, st.Message())
	}
	return fmt.Errorf("blob service: %s: %s", st.Code(), st.Message())
}
