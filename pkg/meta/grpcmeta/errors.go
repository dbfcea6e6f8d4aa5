package grpcmeta

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of this API's errors.
const ErrorDomain = "mailstore.metadata.v1"

// alsoKey is the ErrorInfo metadata key listing further reasons when an
// error wraps more than one sentinel.
const alsoKey = "also"

// errorKind maps one sentinel to its status code and ErrorInfo reason.
type errorKind struct {
	err    error
	code   codes.Code
	reason string
}

// errorTable is the one mapping between sentinels and the wire, used both
// ways. Order matters: the first sentinel an error matches gives the code
// (so an error wrapping ErrAuthFailed and ErrDisabled is Unauthenticated);
// the others ride along as "also" reasons. Reasons are part of the API:
// never change one, only add.
var errorTable = []errorKind{
	{meta.ErrNoSuchAccount, codes.NotFound, "NO_SUCH_ACCOUNT"},
	{meta.ErrNoSuchMailbox, codes.NotFound, "NO_SUCH_MAILBOX"},
	{meta.ErrNoSuchMessage, codes.NotFound, "NO_SUCH_MESSAGE"},
	{meta.ErrExists, codes.AlreadyExists, "EXISTS"},
	{meta.ErrInvalidArgument, codes.InvalidArgument, "INVALID_ARGUMENT"},
	{mail.ErrInvalidMailboxName, codes.InvalidArgument, "INVALID_MAILBOX_NAME"},
	{mail.ErrInvalidFlag, codes.InvalidArgument, "INVALID_FLAG"},
	{meta.ErrOverQuota, codes.ResourceExhausted, "OVER_QUOTA"},
	{meta.ErrLimit, codes.ResourceExhausted, "LIMIT_REACHED"},
	{meta.ErrConflict, codes.FailedPrecondition, "CONFLICT"},
	{meta.ErrLeaseHeld, codes.FailedPrecondition, "LEASE_HELD"},
	{meta.ErrLeaseLost, codes.FailedPrecondition, "LEASE_LOST"},
	{meta.ErrAuthFailed, codes.Unauthenticated, "AUTH_FAILED"},
	{meta.ErrDisabled, codes.PermissionDenied, "ACCOUNT_DISABLED"},
	{meta.ErrPermission, codes.PermissionDenied, "NOT_PERMITTED"},
	{meta.ErrUnavailable, codes.Unavailable, "UNAVAILABLE"},
}

var byReason = func() map[string]error {
	m := make(map[string]error, len(errorTable))
	for _, k := range errorTable {
		m[k.reason] = k.err
	}
	return m
}()

// internalMessage is all a client learns of an unexpected error; the
// server logs the error itself.
const internalMessage = "internal error"

// toStatus converts a store error into the status sent on the wire, and
// reports whether it is an unexpected (Internal) one that the caller should
// log. A sentinel error keeps its message (it says what was attempted and
// carries no secrets by the contract's rules); anything else is reduced to
// its code.
func toStatus(err error) (st *status.Status, internal bool) {
	var primary *errorKind
	var also []string
	for i := range errorTable {
		if !errors.Is(err, errorTable[i].err) {
			continue
		}
		if primary == nil {
			primary = &errorTable[i]
		} else {
			also = append(also, errorTable[i].reason)
		}
	}
	switch {
	case primary != nil:
		info := &errdetails.ErrorInfo{Reason: primary.reason, Domain: ErrorDomain}
		if len(also) > 0 {
			info.Metadata = map[string]string{alsoKey: strings.Join(also, ",")}
		}
		st = status.New(primary.code, err.Error())
		if withInfo, derr := st.WithDetails(info); derr == nil {
			st = withInfo
		}
		return st, false
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, err.Error()), false
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, err.Error()), false
	}
	return status.New(codes.Internal, internalMessage), true
}

// Error is an error received from the metadata service. It matches (with
// errors.Is) the sentinels named by the status's ErrorInfo reasons,
// context.DeadlineExceeded or context.Canceled for those codes, and
// meta.ErrUnavailable for a transport failure; GRPCStatus returns the
// original status, so a server relaying it keeps the code.
type Error struct {
	method string
	st     *status.Status
	errs   []error
	// remote is true when the status came from our server with a reason,
	// whose message already says what was attempted.
	remote bool
}

func (e *Error) Error() string {
	if e.remote {
		return e.st.Message()
	}
	msg := fmt.Sprintf("%s: %s", e.method, e.st.Err())
	if len(e.errs) > 0 && e.errs[0] == meta.ErrUnavailable {
		msg = meta.ErrUnavailable.Error() + ": " + msg
	}
	return msg
}

// Unwrap returns the sentinels the error stands for.
func (e *Error) Unwrap() []error { return e.errs }

// GRPCStatus returns the status as received.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// fromError converts an error returned by a gRPC call of method into one
// that matches the contract's sentinels.
func fromError(method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC (grpc-go returns statuses for every failure);
		// keep it, marked as the store being unreachable.
		return fmt.Errorf("%s: %w: %w", method, meta.ErrUnavailable, err)
	}
	e := &Error{method: method, st: st}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != ErrorDomain {
			continue
		}
		reasons := []string{info.GetReason()}
		if also := info.GetMetadata()[alsoKey]; also != "" {
			reasons = append(reasons, strings.Split(also, ",")...)
		}
		for _, r := range reasons {
			if s, ok := byReason[r]; ok {
				e.errs = append(e.errs, s)
				e.remote = true
			}
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		e.errs = append(e.errs, context.DeadlineExceeded)
	case codes.Canceled:
		e.errs = append(e.errs, context.Canceled)
	case codes.Unavailable:
		if len(e.errs) == 0 {
			// No detail: the transport failed (connection refused,
			// server stopping); the same as the service saying so.
			e.errs = append(e.errs, meta.ErrUnavailable)
		}
	}
	return e
}
