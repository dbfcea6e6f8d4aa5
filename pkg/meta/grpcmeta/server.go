package grpcmeta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	pb "github.com/mailstore/mailstore/proto/mailstore/metadata/v1"
)

// Streams send entries in chunks bounded by count and by encoded size, so
// that no message nears gRPC's default 4 MiB receive limit even with large
// structures.
const (
	maxChunkEntries = 500
	maxChunkBytes   = 1 << 20
)

// MaxMessageSize is the largest request the server should accept
// (grpc.MaxRecvMsgSize): an AppendEntry carries a message's structure,
// which for a message with thousands of parts can pass gRPC's 4 MiB
// default. The client accepts responses up to the same size.
const MaxMessageSize = 64 << 20

// Server serves the MetadataService over a meta.Store. It holds no state
// of its own but the drain signal for Watch streams.
type Server struct {
	pb.UnimplementedMetadataServiceServer

	store  meta.Store
	auth   meta.Authenticator
	logger *slog.Logger

	drainOnce sync.Once
	draining  chan struct{}
}

var _ pb.MetadataServiceServer = (*Server)(nil)

// NewServer returns a server over store. auth may be nil: Authenticate
// then answers Unimplemented.
func NewServer(store meta.Store, auth meta.Authenticator, logger *slog.Logger) *Server {
	return &Server{store: store, auth: auth, logger: logger, draining: make(chan struct{})}
}

// Register registers the service on s (a *grpc.Server).
func (s *Server) Register(r grpc.ServiceRegistrar) {
	pb.RegisterMetadataServiceServer(r, s)
}

// Drain ends every Watch stream, now and later, with Unavailable so that
// clients resubscribe elsewhere; call it before grpc.Server.GracefulStop,
// which otherwise waits for Watch streams that never end by themselves.
func (s *Server) Drain() {
	s.drainOnce.Do(func() { close(s.draining) })
}

// fail converts a store error for the wire; an unexpected error is logged
// here, since the client gets only its code.
func (s *Server) fail(ctx context.Context, err error) error {
	st, internal := toStatus(err)
	if internal {
		method, _ := grpc.Method(ctx)
		s.logger.ErrorContext(ctx, "metadata request failed", "method", method, "err", err)
	}
	return st.Err()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), meta.ErrInvalidArgument)
}

// ---- Authentication ----

func (s *Server) Authenticate(ctx context.Context, req *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if s.auth == nil {
		return nil, status.Error(codes.Unimplemented, "authentication is not configured on this metadata server")
	}
	a, err := s.auth.Authenticate(ctx, string(req.GetLogin()), string(req.GetPassword()), req.GetRemoteAddress())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.AuthenticateResponse{Account: accountToProto(a)}, nil
}

// ---- Accounts ----

func (s *Server) CreateAccount(ctx context.Context, req *pb.CreateAccountRequest) (*pb.CreateAccountResponse, error) {
	q := quotaFromProto(req.GetQuota())
	a, err := s.store.CreateAccount(ctx, meta.NewAccount{
		Login:        req.GetLogin(),
		PasswordHash: req.GetPasswordHash(),
		Quota:        meta.Quota{LimitBytes: q.LimitBytes, LimitMessages: q.LimitMessages},
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.CreateAccountResponse{Account: accountToProto(a)}, nil
}

func (s *Server) GetAccount(ctx context.Context, req *pb.GetAccountRequest) (*pb.GetAccountResponse, error) {
	a, err := s.store.Account(ctx, mail.AccountID(req.GetAccountId()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetAccountResponse{Account: accountToProto(a)}, nil
}

func (s *Server) LookupLogin(ctx context.Context, req *pb.LookupLoginRequest) (*pb.LookupLoginResponse, error) {
	a, err := s.store.LookupLogin(ctx, req.GetLogin())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.LookupLoginResponse{Account: accountToProto(a)}, nil
}

func (s *Server) ListAccounts(ctx context.Context, _ *pb.ListAccountsRequest) (*pb.ListAccountsResponse, error) {
	as, err := s.store.ListAccounts(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &pb.ListAccountsResponse{Accounts: make([]*pb.Account, len(as))}
	for i, a := range as {
		resp.Accounts[i] = accountToProto(a)
	}
	return resp, nil
}

func (s *Server) UpdateAccount(ctx context.Context, req *pb.UpdateAccountRequest) (*pb.UpdateAccountResponse, error) {
	u := meta.AccountUpdate{
		PasswordHash: req.PasswordHash,
		LimitBytes:   req.LimitBytes,
		LimitMsgs:    req.LimitMessages,
		Disabled:     req.Disabled,
		SieveScript:  req.SieveScript,
	}
	if req.Pop3 != nil {
		p := pop3FromProto(req.Pop3)
		u.POP3 = &p
	}
	a, err := s.store.UpdateAccount(ctx, mail.AccountID(req.GetAccountId()), u)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.UpdateAccountResponse{Account: accountToProto(a)}, nil
}

func (s *Server) DeleteAccount(ctx context.Context, req *pb.DeleteAccountRequest) (*pb.DeleteAccountResponse, error) {
	if err := s.store.DeleteAccount(ctx, mail.AccountID(req.GetAccountId())); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.DeleteAccountResponse{}, nil
}

func (s *Server) ResetIndex(ctx context.Context, req *pb.ResetIndexRequest) (*pb.ResetIndexResponse, error) {
	if err := s.store.ResetIndex(ctx, mail.AccountID(req.GetAccountId())); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.ResetIndexResponse{}, nil
}

func (s *Server) AddAlias(ctx context.Context, req *pb.AddAliasRequest) (*pb.AddAliasResponse, error) {
	a, err := s.store.AddAlias(ctx, mail.AccountID(req.GetAccountId()), req.GetAlias())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.AddAliasResponse{Account: accountToProto(a)}, nil
}

func (s *Server) RemoveAlias(ctx context.Context, req *pb.RemoveAliasRequest) (*pb.RemoveAliasResponse, error) {
	a, err := s.store.RemoveAlias(ctx, mail.AccountID(req.GetAccountId()), req.GetAlias())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.RemoveAliasResponse{Account: accountToProto(a)}, nil
}

func (s *Server) LookupAddress(ctx context.Context, req *pb.LookupAddressRequest) (*pb.LookupAddressResponse, error) {
	a, err := s.store.LookupAddress(ctx, req.GetAddress())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.LookupAddressResponse{Account: accountToProto(a)}, nil
}

// ---- Mailboxes ----

func (s *Server) CreateMailbox(ctx context.Context, req *pb.CreateMailboxRequest) (*pb.CreateMailboxResponse, error) {
	m, err := s.store.CreateMailbox(ctx, mail.AccountID(req.GetAccountId()), req.GetName(), req.GetSpecialUse())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.CreateMailboxResponse{Mailbox: mailboxToProto(m)}, nil
}

func (s *Server) DeleteMailbox(ctx context.Context, req *pb.DeleteMailboxRequest) (*pb.DeleteMailboxResponse, error) {
	if err := s.store.DeleteMailbox(ctx, mail.AccountID(req.GetAccountId()), req.GetName()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.DeleteMailboxResponse{}, nil
}

func (s *Server) RenameMailbox(ctx context.Context, req *pb.RenameMailboxRequest) (*pb.RenameMailboxResponse, error) {
	if err := s.store.RenameMailbox(ctx, mail.AccountID(req.GetAccountId()), req.GetOldName(), req.GetNewName()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.RenameMailboxResponse{}, nil
}

func (s *Server) GetMailbox(ctx context.Context, req *pb.GetMailboxRequest) (*pb.GetMailboxResponse, error) {
	acct := mail.AccountID(req.GetAccountId())
	var (
		m   meta.Mailbox
		err error
	)
	switch sel := req.GetMailbox().(type) {
	case *pb.GetMailboxRequest_Name:
		m, err = s.store.Mailbox(ctx, acct, sel.Name)
	case *pb.GetMailboxRequest_Id:
		m, err = s.store.MailboxByID(ctx, acct, mail.MailboxID(sel.Id))
	default:
		err = invalid("get mailbox: neither name nor id")
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetMailboxResponse{Mailbox: mailboxToProto(m)}, nil
}

func (s *Server) ListMailboxes(ctx context.Context, req *pb.ListMailboxesRequest) (*pb.ListMailboxesResponse, error) {
	ms, err := s.store.ListMailboxes(ctx, mail.AccountID(req.GetAccountId()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &pb.ListMailboxesResponse{Mailboxes: make([]*pb.Mailbox, 0, len(ms))}
	for _, m := range ms {
		if req.Pattern == nil || meta.MatchPattern(*req.Pattern, m.Name) {
			resp.Mailboxes = append(resp.Mailboxes, mailboxToProto(m))
		}
	}
	return resp, nil
}

func (s *Server) SetSubscribed(ctx context.Context, req *pb.SetSubscribedRequest) (*pb.SetSubscribedResponse, error) {
	if err := s.store.SetSubscribed(ctx, mail.AccountID(req.GetAccountId()), req.GetName(), req.GetSubscribed()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.SetSubscribedResponse{}, nil
}

func (s *Server) ListSubscriptions(ctx context.Context, req *pb.ListSubscriptionsRequest) (*pb.ListSubscriptionsResponse, error) {
	names, err := s.store.Subscriptions(ctx, mail.AccountID(req.GetAccountId()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.ListSubscriptionsResponse{Names: names}, nil
}

func (s *Server) ClaimRecent(ctx context.Context, req *pb.ClaimRecentRequest) (*pb.ClaimRecentResponse, error) {
	prev, err := s.store.ClaimRecent(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetMailboxId()), mail.UID(req.GetUpTo()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.ClaimRecentResponse{Previous: uint32(prev)}, nil
}

// ---- Messages ----

func (s *Server) AppendEntry(ctx context.Context, req *pb.AppendEntryRequest) (*pb.AppendEntryResponse, error) {
	a, err := s.store.AppendEntry(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetMailboxId()), meta.NewEntry{
		Flags:        flagsFromProto(req.GetFlags()),
		InternalDate: timeFromProto(req.GetInternalDate()),
		Size:         req.GetSize(),
		Blob:         mail.BlobID(req.GetBlobId()),
		Structure:    req.GetStructure(),
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.AppendEntryResponse{
		MailboxId:   uint64(a.Mailbox),
		UidValidity: a.UIDValidity,
		Uid:         uint32(a.UID),
		ModSeq:      uint64(a.ModSeq),
	}, nil
}

func (s *Server) ListEntries(req *pb.ListEntriesRequest, stream grpc.ServerStreamingServer[pb.ListEntriesResponse]) error {
	ctx := stream.Context()
	es, err := s.store.ListEntries(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetMailboxId()),
		uidSetFromProto(req.GetUids()), fieldsFromProto(req.GetFields()), mail.ModSeq(req.GetChangedSince()))
	if err != nil {
		return s.fail(ctx, err)
	}
	return sendChunks(es, func(chunk []*pb.Entry) error {
		return stream.Send(&pb.ListEntriesResponse{Entries: chunk})
	})
}

// sendChunks sends es in chunks of at most maxChunkEntries entries and
// about maxChunkBytes bytes; nothing when es is empty.
func sendChunks(es []meta.Entry, send func([]*pb.Entry) error) error {
	var (
		chunk []*pb.Entry
		size  int
	)
	for _, e := range es {
		pe := entryToProto(e)
		n := proto.Size(pe)
		if len(chunk) > 0 && (len(chunk) == maxChunkEntries || size+n > maxChunkBytes) {
			if err := send(chunk); err != nil {
				return err
			}
			chunk, size = nil, 0
		}
		chunk = append(chunk, pe)
		size += n
	}
	if len(chunk) > 0 {
		return send(chunk)
	}
	return nil
}

func (s *Server) StoreFlags(ctx context.Context, req *pb.StoreFlagsRequest) (*pb.StoreFlagsResponse, error) {
	op, err := flagOpFromProto(req.GetOp())
	if err != nil {
		return nil, s.fail(ctx, fmt.Errorf("store flags: %w", err))
	}
	r, err := s.store.StoreFlags(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetMailboxId()), meta.FlagChange{
		UIDs:           uidSetFromProto(req.GetUids()),
		Op:             op,
		Flags:          flagsFromProto(req.GetFlags()),
		UnchangedSince: mail.ModSeq(req.GetUnchangedSince()),
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.StoreFlagsResponse{Updated: entriesToProto(r.Updated), Unchanged: entriesToProto(r.Unchanged), Modified: uidSetToProto(r.Modified)}, nil
}

func (s *Server) Expunge(ctx context.Context, req *pb.ExpungeRequest) (*pb.ExpungeResponse, error) {
	uids, ms, err := s.store.Expunge(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetMailboxId()), uidSetFromProto(req.GetUids()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.ExpungeResponse{Uids: uidsToProto(uids), ModSeq: uint64(ms)}, nil
}

func (s *Server) MarkRetrieved(ctx context.Context, req *pb.MarkRetrievedRequest) (*pb.MarkRetrievedResponse, error) {
	err := s.store.MarkRetrieved(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetMailboxId()),
		uidSetFromProto(req.GetUids()), timeFromProto(req.GetAt()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.MarkRetrievedResponse{}, nil
}

func (s *Server) Copy(ctx context.Context, req *pb.CopyRequest) (*pb.CopyResponse, error) {
	c, err := s.store.Copy(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetSourceMailboxId()),
		uidSetFromProto(req.GetUids()), mail.MailboxID(req.GetDestinationMailboxId()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.CopyResponse{Copied: copiedToProto(c)}, nil
}

func (s *Server) Move(ctx context.Context, req *pb.MoveRequest) (*pb.MoveResponse, error) {
	c, err := s.store.Move(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetSourceMailboxId()),
		uidSetFromProto(req.GetUids()), mail.MailboxID(req.GetDestinationMailboxId()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.MoveResponse{Copied: copiedToProto(c)}, nil
}

// ---- Changes and events ----

func (s *Server) ChangesSince(req *pb.ChangesSinceRequest, stream grpc.ServerStreamingServer[pb.ChangesSinceResponse]) error {
	ctx := stream.Context()
	cs, err := s.store.ChangesSince(ctx, mail.AccountID(req.GetAccountId()), mail.MailboxID(req.GetMailboxId()), mail.ModSeq(req.GetSince()))
	if err != nil {
		return s.fail(ctx, err)
	}
	first := &pb.ChangesSinceResponse{
		HighestModSeq: uint64(cs.HighestModSeq),
		Vanished:      uidSetToProto(cs.Vanished),
		Trimmed:       cs.Trimmed,
	}
	err = sendChunks(cs.Changed, func(chunk []*pb.Entry) error {
		if first != nil {
			first.Changed = chunk
			m := first
			first = nil
			return stream.Send(m)
		}
		return stream.Send(&pb.ChangesSinceResponse{Changed: chunk})
	})
	if err != nil {
		return err
	}
	if first != nil { // nothing changed: the header alone
		return stream.Send(first)
	}
	return nil
}

func (s *Server) Watch(req *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchResponse]) error {
	ctx := stream.Context()
	acct := mail.AccountID(req.GetAccountId())
	select {
	case <-s.draining:
		return drainingStatus()
	default:
	}
	sub, err := s.store.Watch(ctx, acct)
	if err != nil {
		return s.fail(ctx, err)
	}
	defer sub.Close()
	// Subscribed: tell the client, whose Watch returns on this message.
	if err := stream.Send(&pb.WatchResponse{}); err != nil {
		return err
	}
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return s.fail(ctx, s.watchEnded(ctx, acct, sub.Err()))
			}
			if err := stream.Send(&pb.WatchResponse{Event: eventToProto(ev)}); err != nil {
				return err
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.draining:
			return drainingStatus()
		}
	}
}

// watchEnded says why a store subscription ended, as the client should
// see it: whatever broke, the client resubscribes and catches up, so every
// end but the call's own is Unavailable.
func (s *Server) watchEnded(ctx context.Context, acct mail.AccountID, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, meta.ErrUnavailable):
		return err
	case err != nil:
		s.logger.WarnContext(ctx, "watch subscription broke", "account", acct, "err", err)
	}
	return fmt.Errorf("watch account %s: subscription ended: %w", acct, meta.ErrUnavailable)
}

func drainingStatus() error {
	st := status.New(codes.Unavailable, "metadata server draining")
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: "UNAVAILABLE", Domain: ErrorDomain}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// ---- Leases ----

func (s *Server) AcquireLease(ctx context.Context, req *pb.AcquireLeaseRequest) (*pb.AcquireLeaseResponse, error) {
	l, err := s.store.AcquireLease(ctx, mail.AccountID(req.GetAccountId()), req.GetName(), req.GetHolder(), durationFromProto(req.GetTtl()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.AcquireLeaseResponse{Lease: leaseToProto(l)}, nil
}

func (s *Server) RenewLease(ctx context.Context, req *pb.RenewLeaseRequest) (*pb.RenewLeaseResponse, error) {
	l, err := s.store.RenewLease(ctx, mail.AccountID(req.GetAccountId()), req.GetName(), req.GetToken(), durationFromProto(req.GetTtl()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.RenewLeaseResponse{Lease: leaseToProto(l)}, nil
}

func (s *Server) ReleaseLease(ctx context.Context, req *pb.ReleaseLeaseRequest) (*pb.ReleaseLeaseResponse, error) {
	if err := s.store.ReleaseLease(ctx, mail.AccountID(req.GetAccountId()), req.GetName(), req.GetToken()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.ReleaseLeaseResponse{}, nil
}

// ---- Counters ----

func (s *Server) IncrCounter(ctx context.Context, req *pb.IncrCounterRequest) (*pb.IncrCounterResponse, error) {
	v, err := s.store.IncrCounter(ctx, req.GetKey(), req.GetDelta(), durationFromProto(req.GetWindow()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.IncrCounterResponse{Value: v}, nil
}

func (s *Server) GetCounter(ctx context.Context, req *pb.GetCounterRequest) (*pb.GetCounterResponse, error) {
	v, err := s.store.Counter(ctx, req.GetKey())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetCounterResponse{Value: v}, nil
}

// ---- Slots ----

// AcquireSlot answers a refusal at the limit as acquired = false with the
// total, not as an error status (see the client).
func (s *Server) AcquireSlot(ctx context.Context, req *pb.AcquireSlotRequest) (*pb.AcquireSlotResponse, error) {
	n, err := s.store.AcquireSlot(ctx, req.GetKey(), req.GetHolder(), req.GetLimit(), durationFromProto(req.GetTtl()))
	if errors.Is(err, meta.ErrLimit) {
		return &pb.AcquireSlotResponse{Acquired: false, Total: n}, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.AcquireSlotResponse{Acquired: true, Total: n}, nil
}

func (s *Server) ReleaseSlot(ctx context.Context, req *pb.ReleaseSlotRequest) (*pb.ReleaseSlotResponse, error) {
	if err := s.store.ReleaseSlot(ctx, req.GetKey(), req.GetHolder()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.ReleaseSlotResponse{}, nil
}

func (s *Server) RefreshSlots(ctx context.Context, req *pb.RefreshSlotsRequest) (*pb.RefreshSlotsResponse, error) {
	if err := s.store.RefreshSlots(ctx, req.GetHolder(), req.GetKeys(), durationFromProto(req.GetTtl())); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.RefreshSlotsResponse{}, nil
}

func (s *Server) GetSlotTotal(ctx context.Context, req *pb.GetSlotTotalRequest) (*pb.GetSlotTotalResponse, error) {
	n, err := s.store.SlotTotal(ctx, req.GetKey())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetSlotTotalResponse{Total: n}, nil
}

// ---- Blobs ----

func (s *Server) PendingBlobs(ctx context.Context, req *pb.PendingBlobsRequest) (*pb.PendingBlobsResponse, error) {
	ids, err := s.store.PendingBlobs(ctx, mail.AccountID(req.GetAccountId()), timeFromProto(req.GetOlderThan()), int(req.GetLimit()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.PendingBlobsResponse{BlobIds: blobIDsToProto(ids)}, nil
}

func (s *Server) ForgetBlobs(ctx context.Context, req *pb.ForgetBlobsRequest) (*pb.ForgetBlobsResponse, error) {
	if err := s.store.ForgetBlobs(ctx, mail.AccountID(req.GetAccountId()), blobIDsFromProto(req.GetBlobIds())); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.ForgetBlobsResponse{}, nil
}

func (s *Server) BlobReferenced(ctx context.Context, req *pb.BlobReferencedRequest) (*pb.BlobReferencedResponse, error) {
	ok, err := s.store.BlobReferenced(ctx, mail.AccountID(req.GetAccountId()), mail.BlobID(req.GetBlobId()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.BlobReferencedResponse{Referenced: ok}, nil
}
