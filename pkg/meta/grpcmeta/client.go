package grpcmeta

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	pb "github.com/mailstore/mailstore/proto/mailstore/metadata/v1"
)

// Client is a meta.Store and a meta.Authenticator over the
// MetadataService. It is safe for concurrent use.
type Client struct {
	rpc  pb.MetadataServiceClient
	opts []grpc.CallOption
}

var (
	_ meta.Store         = (*Client)(nil)
	_ meta.Authenticator = (*Client)(nil)
)

// New returns a client over cc (usually a *grpc.ClientConn), which the
// caller owns and closes.
func New(cc grpc.ClientConnInterface) *Client {
	return &Client{
		rpc:  pb.NewMetadataServiceClient(cc),
		opts: []grpc.CallOption{grpc.MaxCallRecvMsgSize(MaxMessageSize)},
	}
}

// Close does nothing: the connection belongs to the caller of New, who may
// share it with other clients.
func (c *Client) Close() error { return nil }

// ---- Authentication ----

// Authenticate checks login and password on the metadata service. The
// account comes back without a password hash.
func (c *Client) Authenticate(ctx context.Context, login, password, remoteAddr string) (meta.Account, error) {
	if err := badArgs("authenticate", remoteAddr); err != nil {
		return meta.Account{}, err
	}
	resp, err := c.rpc.Authenticate(ctx, &pb.AuthenticateRequest{Login: []byte(login), Password: []byte(password), RemoteAddress: remoteAddr}, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("Authenticate", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

// ---- Accounts ----

// CreateAccount sends the password hash (write-only on the wire); the
// returned record, like every record from this client, has none.
func (c *Client) CreateAccount(ctx context.Context, a meta.NewAccount) (meta.Account, error) {
	if err := badArgs("create account", a.Login, a.PasswordHash); err != nil {
		return meta.Account{}, err
	}
	resp, err := c.rpc.CreateAccount(ctx, &pb.CreateAccountRequest{
		Login:        a.Login,
		PasswordHash: a.PasswordHash,
		Quota:        &pb.Quota{LimitBytes: a.Quota.LimitBytes, LimitMessages: a.Quota.LimitMessages},
	}, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("CreateAccount", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

func (c *Client) Account(ctx context.Context, id mail.AccountID) (meta.Account, error) {
	if err := badAccount("get account", id); err != nil {
		return meta.Account{}, err
	}
	resp, err := c.rpc.GetAccount(ctx, &pb.GetAccountRequest{AccountId: string(id)}, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("GetAccount", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

func (c *Client) LookupLogin(ctx context.Context, login string) (meta.Account, error) {
	if !utf8.ValidString(login) {
		// A login that cannot exist is simply unknown.
		return meta.Account{}, fmt.Errorf("look up login: %w", meta.ErrNoSuchAccount)
	}
	resp, err := c.rpc.LookupLogin(ctx, &pb.LookupLoginRequest{Login: login}, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("LookupLogin", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

func (c *Client) ListAccounts(ctx context.Context) ([]meta.Account, error) {
	resp, err := c.rpc.ListAccounts(ctx, &pb.ListAccountsRequest{}, c.opts...)
	if err != nil {
		return nil, fromError("ListAccounts", err)
	}
	return accountsFromProto(resp.GetAccounts()), nil
}

func (c *Client) UpdateAccount(ctx context.Context, id mail.AccountID, u meta.AccountUpdate) (meta.Account, error) {
	if err := cmp.Or(badAccount("update account", id), badUpdate(u)); err != nil {
		return meta.Account{}, err
	}
	req := &pb.UpdateAccountRequest{
		AccountId:     string(id),
		PasswordHash:  u.PasswordHash,
		LimitBytes:    u.LimitBytes,
		LimitMessages: u.LimitMsgs,
		Disabled:      u.Disabled,
		SieveScript:   u.SieveScript,
	}
	if u.POP3 != nil {
		req.Pop3 = pop3ToProto(*u.POP3)
	}
	resp, err := c.rpc.UpdateAccount(ctx, req, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("UpdateAccount", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

func (c *Client) DeleteAccount(ctx context.Context, id mail.AccountID) error {
	if err := badAccount("delete account", id); err != nil {
		return err
	}
	_, err := c.rpc.DeleteAccount(ctx, &pb.DeleteAccountRequest{AccountId: string(id)}, c.opts...)
	return fromError("DeleteAccount", err)
}

func (c *Client) ResetIndex(ctx context.Context, id mail.AccountID) error {
	if err := badAccount("reset index", id); err != nil {
		return err
	}
	_, err := c.rpc.ResetIndex(ctx, &pb.ResetIndexRequest{AccountId: string(id)}, c.opts...)
	return fromError("ResetIndex", err)
}

func (c *Client) AddAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	if err := cmp.Or(badAccount("add alias", id), badArgs("add alias", alias)); err != nil {
		return meta.Account{}, err
	}
	resp, err := c.rpc.AddAlias(ctx, &pb.AddAliasRequest{AccountId: string(id), Alias: alias}, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("AddAlias", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

func (c *Client) RemoveAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	if err := badAccount("remove alias", id); err != nil {
		return meta.Account{}, err
	}
	if !utf8.ValidString(alias) {
		return meta.Account{}, fmt.Errorf("remove alias %q: %w: not an alias of this account", alias, meta.ErrInvalidArgument)
	}
	resp, err := c.rpc.RemoveAlias(ctx, &pb.RemoveAliasRequest{AccountId: string(id), Alias: alias}, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("RemoveAlias", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

func (c *Client) LookupAddress(ctx context.Context, addr string) (meta.Account, error) {
	if !utf8.ValidString(addr) {
		// An address that cannot exist is simply unknown.
		return meta.Account{}, fmt.Errorf("look up address: %w", meta.ErrNoSuchAccount)
	}
	resp, err := c.rpc.LookupAddress(ctx, &pb.LookupAddressRequest{Address: addr}, c.opts...)
	if err != nil {
		return meta.Account{}, fromError("LookupAddress", err)
	}
	return accountFromProto(resp.GetAccount()), nil
}

// ---- Mailboxes ----

func (c *Client) CreateMailbox(ctx context.Context, acct mail.AccountID, name, specialUse string) (meta.Mailbox, error) {
	if err := cmp.Or(badAccount("create mailbox", acct), badNames("create mailbox", name), badArgs("create mailbox", specialUse)); err != nil {
		return meta.Mailbox{}, err
	}
	resp, err := c.rpc.CreateMailbox(ctx, &pb.CreateMailboxRequest{AccountId: string(acct), Name: name, SpecialUse: specialUse}, c.opts...)
	if err != nil {
		return meta.Mailbox{}, fromError("CreateMailbox", err)
	}
	return mailboxFromProto(resp.GetMailbox()), nil
}

func (c *Client) DeleteMailbox(ctx context.Context, acct mail.AccountID, name string) error {
	if err := cmp.Or(badAccount("delete mailbox", acct), badNames("delete mailbox", name)); err != nil {
		return err
	}
	_, err := c.rpc.DeleteMailbox(ctx, &pb.DeleteMailboxRequest{AccountId: string(acct), Name: name}, c.opts...)
	return fromError("DeleteMailbox", err)
}

func (c *Client) RenameMailbox(ctx context.Context, acct mail.AccountID, oldName, newName string) error {
	if err := cmp.Or(badAccount("rename mailbox", acct), badNames("rename mailbox", oldName, newName)); err != nil {
		return err
	}
	_, err := c.rpc.RenameMailbox(ctx, &pb.RenameMailboxRequest{AccountId: string(acct), OldName: oldName, NewName: newName}, c.opts...)
	return fromError("RenameMailbox", err)
}

func (c *Client) Mailbox(ctx context.Context, acct mail.AccountID, name string) (meta.Mailbox, error) {
	if err := cmp.Or(badAccount("get mailbox", acct), badNames("get mailbox", name)); err != nil {
		return meta.Mailbox{}, err
	}
	return c.getMailbox(ctx, &pb.GetMailboxRequest{AccountId: string(acct), Mailbox: &pb.GetMailboxRequest_Name{Name: name}})
}

func (c *Client) MailboxByID(ctx context.Context, acct mail.AccountID, id mail.MailboxID) (meta.Mailbox, error) {
	if err := badAccount("get mailbox", acct); err != nil {
		return meta.Mailbox{}, err
	}
	return c.getMailbox(ctx, &pb.GetMailboxRequest{AccountId: string(acct), Mailbox: &pb.GetMailboxRequest_Id{Id: uint64(id)}})
}

func (c *Client) getMailbox(ctx context.Context, req *pb.GetMailboxRequest) (meta.Mailbox, error) {
	resp, err := c.rpc.GetMailbox(ctx, req, c.opts...)
	if err != nil {
		return meta.Mailbox{}, fromError("GetMailbox", err)
	}
	return mailboxFromProto(resp.GetMailbox()), nil
}

func (c *Client) ListMailboxes(ctx context.Context, acct mail.AccountID) ([]meta.Mailbox, error) {
	if err := badAccount("list mailboxes", acct); err != nil {
		return nil, err
	}
	return c.listMailboxes(ctx, &pb.ListMailboxesRequest{AccountId: string(acct)})
}

// ListMailboxesMatching returns the mailboxes whose names match an IMAP
// LIST pattern (see meta.MatchPattern), filtered by the server so that a
// LIST of one level of a large tree does not fetch the whole tree. It is
// not part of meta.Store; a gateway finds it by type assertion and falls
// back to ListMailboxes and meta.MatchPattern.
func (c *Client) ListMailboxesMatching(ctx context.Context, acct mail.AccountID, pattern string) ([]meta.Mailbox, error) {
	if err := cmp.Or(badAccount("list mailboxes", acct), badArgs("list mailboxes", pattern)); err != nil {
		return nil, err
	}
	return c.listMailboxes(ctx, &pb.ListMailboxesRequest{AccountId: string(acct), Pattern: &pattern})
}

func (c *Client) listMailboxes(ctx context.Context, req *pb.ListMailboxesRequest) ([]meta.Mailbox, error) {
	resp, err := c.rpc.ListMailboxes(ctx, req, c.opts...)
	if err != nil {
		return nil, fromError("ListMailboxes", err)
	}
	ms := resp.GetMailboxes()
	if len(ms) == 0 {
		return nil, nil
	}
	out := make([]meta.Mailbox, len(ms))
	for i, m := range ms {
		out[i] = mailboxFromProto(m)
	}
	return out, nil
}

func (c *Client) SetSubscribed(ctx context.Context, acct mail.AccountID, name string, subscribed bool) error {
	if err := cmp.Or(badAccount("set subscribed", acct), badNames("set subscribed", name)); err != nil {
		return err
	}
	_, err := c.rpc.SetSubscribed(ctx, &pb.SetSubscribedRequest{AccountId: string(acct), Name: name, Subscribed: subscribed}, c.opts...)
	return fromError("SetSubscribed", err)
}

func (c *Client) Subscriptions(ctx context.Context, acct mail.AccountID) ([]string, error) {
	if err := badAccount("list subscriptions", acct); err != nil {
		return nil, err
	}
	resp, err := c.rpc.ListSubscriptions(ctx, &pb.ListSubscriptionsRequest{AccountId: string(acct)}, c.opts...)
	if err != nil {
		return nil, fromError("ListSubscriptions", err)
	}
	return resp.GetNames(), nil
}

func (c *Client) ClaimRecent(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, upTo mail.UID) (mail.UID, error) {
	if err := badAccount("claim recent", acct); err != nil {
		return 0, err
	}
	resp, err := c.rpc.ClaimRecent(ctx, &pb.ClaimRecentRequest{AccountId: string(acct), MailboxId: uint64(mbox), UpTo: uint32(upTo)}, c.opts...)
	if err != nil {
		return 0, fromError("ClaimRecent", err)
	}
	return mail.UID(resp.GetPrevious()), nil
}

// ---- Messages ----

func (c *Client) AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) (meta.Appended, error) {
	if err := cmp.Or(badAccount("append entry", acct), badFlags("append entry", e.Flags), badArgs("append entry", string(e.Blob))); err != nil {
		return meta.Appended{}, err
	}
	resp, err := c.rpc.AppendEntry(ctx, &pb.AppendEntryRequest{
		AccountId:    string(acct),
		MailboxId:    uint64(mbox),
		Flags:        flagsToProto(e.Flags),
		InternalDate: timeToProto(e.InternalDate),
		Size:         e.Size,
		BlobId:       string(e.Blob),
		Structure:    e.Structure,
	}, c.opts...)
	if err != nil {
		return meta.Appended{}, fromError("AppendEntry", err)
	}
	return meta.Appended{
		Mailbox:     mail.MailboxID(resp.GetMailboxId()),
		UIDValidity: resp.GetUidValidity(),
		UID:         mail.UID(resp.GetUid()),
		ModSeq:      mail.ModSeq(resp.GetModSeq()),
	}, nil
}

func (c *Client) ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, changedSince mail.ModSeq) ([]meta.Entry, error) {
	if err := badAccount("list entries", acct); err != nil {
		return nil, err
	}
	// The stream lives no longer than this call, whatever happens.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.ListEntries(ctx, &pb.ListEntriesRequest{
		AccountId:    string(acct),
		MailboxId:    uint64(mbox),
		Uids:         uidSetToProto(uids),
		Fields:       fieldsToProto(f),
		ChangedSince: uint64(changedSince),
	}, c.opts...)
	if err != nil {
		return nil, fromError("ListEntries", err)
	}
	var out []meta.Entry
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fromError("ListEntries", err)
		}
		out = appendEntriesFromProto(out, resp.GetEntries())
	}
}

func (c *Client) StoreFlags(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, fc meta.FlagChange) (meta.FlagResult, error) {
	if err := cmp.Or(badAccount("store flags", acct), badFlags("store flags", fc.Flags)); err != nil {
		return meta.FlagResult{}, err
	}
	op, err := flagOpToProto(fc.Op)
	if err != nil {
		return meta.FlagResult{}, fmt.Errorf("store flags: %w", err)
	}
	resp, err := c.rpc.StoreFlags(ctx, &pb.StoreFlagsRequest{
		AccountId:      string(acct),
		MailboxId:      uint64(mbox),
		Uids:           uidSetToProto(fc.UIDs),
		Op:             op,
		Flags:          flagsToProto(fc.Flags),
		UnchangedSince: uint64(fc.UnchangedSince),
	}, c.opts...)
	if err != nil {
		return meta.FlagResult{}, fromError("StoreFlags", err)
	}
	return meta.FlagResult{
		Updated:   appendEntriesFromProto(nil, resp.GetUpdated()),
		Unchanged: appendEntriesFromProto(nil, resp.GetUnchanged()),
		Modified:  uidSetFromProto(resp.GetModified()),
	}, nil
}

func (c *Client) Expunge(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet) ([]mail.UID, mail.ModSeq, error) {
	if err := badAccount("expunge", acct); err != nil {
		return nil, 0, err
	}
	resp, err := c.rpc.Expunge(ctx, &pb.ExpungeRequest{AccountId: string(acct), MailboxId: uint64(mbox), Uids: uidSetToProto(uids)}, c.opts...)
	if err != nil {
		return nil, 0, fromError("Expunge", err)
	}
	return uidsFromProto(resp.GetUids()), mail.ModSeq(resp.GetModSeq()), nil
}

func (c *Client) MarkRetrieved(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, at time.Time) error {
	if err := badAccount("mark retrieved", acct); err != nil {
		return err
	}
	if at.UnixMilli() <= 0 {
		// timeToProto would send a zero time as unset.
		return fmt.Errorf("mark retrieved: %w: time %v not after the epoch", meta.ErrInvalidArgument, at)
	}
	_, err := c.rpc.MarkRetrieved(ctx, &pb.MarkRetrievedRequest{AccountId: string(acct), MailboxId: uint64(mbox), Uids: uidSetToProto(uids), At: timeToProto(at)}, c.opts...)
	return fromError("MarkRetrieved", err)
}

func (c *Client) Copy(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	if err := badAccount("copy", acct); err != nil {
		return meta.Copied{}, err
	}
	resp, err := c.rpc.Copy(ctx, &pb.CopyRequest{
		AccountId:            string(acct),
		SourceMailboxId:      uint64(src),
		Uids:                 uidSetToProto(uids),
		DestinationMailboxId: uint64(dst),
	}, c.opts...)
	if err != nil {
		return meta.Copied{}, fromError("Copy", err)
	}
	return copiedFromProto(resp.GetCopied()), nil
}

func (c *Client) Move(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	if err := badAccount("move", acct); err != nil {
		return meta.Copied{}, err
	}
	resp, err := c.rpc.Move(ctx, &pb.MoveRequest{
		AccountId:            string(acct),
		SourceMailboxId:      uint64(src),
		Uids:                 uidSetToProto(uids),
		DestinationMailboxId: uint64(dst),
	}, c.opts...)
	if err != nil {
		return meta.Copied{}, fromError("Move", err)
	}
	return copiedFromProto(resp.GetCopied()), nil
}

// ---- Changes and events ----

func (c *Client) ChangesSince(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, since mail.ModSeq) (meta.ChangeSet, error) {
	if err := badAccount("changes since", acct); err != nil {
		return meta.ChangeSet{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.ChangesSince(ctx, &pb.ChangesSinceRequest{AccountId: string(acct), MailboxId: uint64(mbox), Since: uint64(since)}, c.opts...)
	if err != nil {
		return meta.ChangeSet{}, fromError("ChangesSince", err)
	}
	var cs meta.ChangeSet
	for first := true; ; first = false {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if first {
				return meta.ChangeSet{}, fmt.Errorf("ChangesSince: stream ended before its header: %w", meta.ErrUnavailable)
			}
			return cs, nil
		}
		if err != nil {
			return meta.ChangeSet{}, fromError("ChangesSince", err)
		}
		if first {
			cs.HighestModSeq = mail.ModSeq(resp.GetHighestModSeq())
			cs.Vanished = uidSetFromProto(resp.GetVanished())
			cs.Trimmed = resp.GetTrimmed()
		}
		cs.Changed = appendEntriesFromProto(cs.Changed, resp.GetChanged())
	}
}

// watchBuffer is how many events a subscription holds for a slow reader
// before it stops reading the stream (and gRPC flow control pushes back
// to the server). It is small on purpose: a gateway holds one watch per
// account with sessions, turns events into coalescing signals at once, and
// 256 buffered events cost 18 KiB per account for nothing.
const watchBuffer = 16

// Watch subscribes to the account's events and returns once the server has
// subscribed, so every event committed after Watch returns is delivered.
// ctx bounds the subscription's whole life, not only the call: when it is
// done the subscription ends with Err reporting ctx's error. When the
// stream breaks (server gone, draining, network), C is closed and Err
// wraps meta.ErrUnavailable; after Close, Err is nil.
func (c *Client) Watch(ctx context.Context, acct mail.AccountID) (meta.Subscription, error) {
	if err := badAccount("watch", acct); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.Watch(ctx, &pb.WatchRequest{AccountId: string(acct)}, c.opts...)
	if err != nil {
		cancel()
		return nil, fromError("Watch", err)
	}
	ready, err := stream.Recv()
	if err != nil {
		cancel()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("Watch: stream ended before ready: %w", meta.ErrUnavailable)
		}
		return nil, fromError("Watch", err)
	}
	sub := &subscription{
		cancel:  cancel,
		ch:      make(chan meta.Event, watchBuffer),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if ev := ready.GetEvent(); ev != nil {
		// A server that skips the ready message still works, late.
		sub.ch <- eventFromProto(ev)
	}
	go sub.run(stream)
	return sub, nil
}

// subscription is a meta.Subscription over a Watch stream. One goroutine
// (run) reads the stream and owns ch; Close stops it and waits for it.
type subscription struct {
	cancel    context.CancelFunc
	ch        chan meta.Event
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	done      chan struct{} // closed when run returns, after ch

	mu  sync.Mutex
	err error
}

func (s *subscription) run(stream grpc.ServerStreamingClient[pb.WatchResponse]) {
	defer close(s.done)
	defer close(s.ch) // after err is set: C's readers then see Err
	for {
		resp, err := stream.Recv()
		if err != nil {
			s.end(err)
			return
		}
		ev := resp.GetEvent()
		if ev == nil {
			continue
		}
		select {
		case s.ch <- eventFromProto(ev):
		case <-s.closing:
			return
		}
	}
}

// end records why the stream ended, unless Close ended it.
func (s *subscription) end(err error) {
	select {
	case <-s.closing:
		return
	default:
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("Watch: stream ended by the server: %w", meta.ErrUnavailable)
	} else {
		err = fromError("Watch", err)
	}
	if !errors.Is(err, meta.ErrUnavailable) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		// Whatever broke the stream, the remedy is the same: catch up
		// and watch again.
		err = fmt.Errorf("%w: %w", meta.ErrUnavailable, err)
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *subscription) C() <-chan meta.Event { return s.ch }

func (s *subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription and waits until C is closed.
func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
	})
	<-s.done
	return nil
}

// ---- Leases ----

func (c *Client) AcquireLease(ctx context.Context, acct mail.AccountID, name, holder string, ttl time.Duration) (meta.Lease, error) {
	if err := cmp.Or(badAccount("acquire lease", acct), badArgs("acquire lease", name, holder)); err != nil {
		return meta.Lease{}, err
	}
	resp, err := c.rpc.AcquireLease(ctx, &pb.AcquireLeaseRequest{AccountId: string(acct), Name: name, Holder: holder, Ttl: durationToProto(ttl)}, c.opts...)
	if err != nil {
		return meta.Lease{}, fromError("AcquireLease", err)
	}
	return leaseFromProto(resp.GetLease()), nil
}

func (c *Client) RenewLease(ctx context.Context, acct mail.AccountID, name string, token uint64, ttl time.Duration) (meta.Lease, error) {
	if err := cmp.Or(badAccount("renew lease", acct), badArgs("renew lease", name)); err != nil {
		return meta.Lease{}, err
	}
	resp, err := c.rpc.RenewLease(ctx, &pb.RenewLeaseRequest{AccountId: string(acct), Name: name, Token: token, Ttl: durationToProto(ttl)}, c.opts...)
	if err != nil {
		return meta.Lease{}, fromError("RenewLease", err)
	}
	return leaseFromProto(resp.GetLease()), nil
}

func (c *Client) ReleaseLease(ctx context.Context, acct mail.AccountID, name string, token uint64) error {
	if err := cmp.Or(badAccount("release lease", acct), badArgs("release lease", name)); err != nil {
		return err
	}
	_, err := c.rpc.ReleaseLease(ctx, &pb.ReleaseLeaseRequest{AccountId: string(acct), Name: name, Token: token}, c.opts...)
	return fromError("ReleaseLease", err)
}

// ---- Counters ----

func (c *Client) IncrCounter(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	if err := badArgs("increment counter", key); err != nil {
		return 0, err
	}
	resp, err := c.rpc.IncrCounter(ctx, &pb.IncrCounterRequest{Key: key, Delta: delta, Window: durationToProto(window)}, c.opts...)
	if err != nil {
		return 0, fromError("IncrCounter", err)
	}
	return resp.GetValue(), nil
}

func (c *Client) Counter(ctx context.Context, key string) (int64, error) {
	if err := badArgs("get counter", key); err != nil {
		return 0, err
	}
	resp, err := c.rpc.GetCounter(ctx, &pb.GetCounterRequest{Key: key}, c.opts...)
	if err != nil {
		return 0, fromError("GetCounter", err)
	}
	return resp.GetValue(), nil
}

// ---- Slots ----

// AcquireSlot answers ErrLimit with the total when the server says the
// limit was reached (acquired = false): a refusal is an answer, not an
// error status, so the total crosses the wire.
func (c *Client) AcquireSlot(ctx context.Context, key, holder string, limit int64, ttl time.Duration) (int64, error) {
	if err := badArgs("acquire slot", key, holder); err != nil {
		return 0, err
	}
	resp, err := c.rpc.AcquireSlot(ctx, &pb.AcquireSlotRequest{Key: key, Holder: holder, Limit: limit, Ttl: durationToProto(ttl)}, c.opts...)
	if err != nil {
		return 0, fromError("AcquireSlot", err)
	}
	if !resp.GetAcquired() {
		return resp.GetTotal(), fmt.Errorf("acquire slot %q: %w (%d of %d)", key, meta.ErrLimit, resp.GetTotal(), limit)
	}
	return resp.GetTotal(), nil
}

func (c *Client) ReleaseSlot(ctx context.Context, key, holder string) error {
	if err := badArgs("release slot", key, holder); err != nil {
		return err
	}
	_, err := c.rpc.ReleaseSlot(ctx, &pb.ReleaseSlotRequest{Key: key, Holder: holder}, c.opts...)
	return fromError("ReleaseSlot", err)
}

func (c *Client) RefreshSlots(ctx context.Context, holder string, keys []string, ttl time.Duration) error {
	if err := cmp.Or(badArgs("refresh slots", holder), badArgs("refresh slots", keys...)); err != nil {
		return err
	}
	_, err := c.rpc.RefreshSlots(ctx, &pb.RefreshSlotsRequest{Holder: holder, Keys: keys, Ttl: durationToProto(ttl)}, c.opts...)
	return fromError("RefreshSlots", err)
}

func (c *Client) SlotTotal(ctx context.Context, key string) (int64, error) {
	if err := badArgs("slot total", key); err != nil {
		return 0, err
	}
	resp, err := c.rpc.GetSlotTotal(ctx, &pb.GetSlotTotalRequest{Key: key}, c.opts...)
	if err != nil {
		return 0, fromError("GetSlotTotal", err)
	}
	return resp.GetTotal(), nil
}

// ---- Blobs ----

func (c *Client) PendingBlobs(ctx context.Context, acct mail.AccountID, olderThan time.Time, limit int) ([]mail.BlobID, error) {
	if err := badAccount("pending blobs", acct); err != nil {
		return nil, err
	}
	resp, err := c.rpc.PendingBlobs(ctx, &pb.PendingBlobsRequest{
		AccountId: string(acct),
		OlderThan: timeToProto(olderThan),
		Limit:     int32(min(max(limit, math.MinInt32), math.MaxInt32)),
	}, c.opts...)
	if err != nil {
		return nil, fromError("PendingBlobs", err)
	}
	return blobIDsFromProto(resp.GetBlobIds()), nil
}

func (c *Client) ForgetBlobs(ctx context.Context, acct mail.AccountID, ids []mail.BlobID) error {
	if err := cmp.Or(badAccount("forget blobs", acct), badBlobs("forget blobs", ids)); err != nil {
		return err
	}
	_, err := c.rpc.ForgetBlobs(ctx, &pb.ForgetBlobsRequest{AccountId: string(acct), BlobIds: blobIDsToProto(ids)}, c.opts...)
	return fromError("ForgetBlobs", err)
}

func (c *Client) BlobReferenced(ctx context.Context, acct mail.AccountID, id mail.BlobID) (bool, error) {
	if err := cmp.Or(badAccount("blob referenced", acct), badArgs("blob referenced", string(id))); err != nil {
		return false, err
	}
	resp, err := c.rpc.BlobReferenced(ctx, &pb.BlobReferencedRequest{AccountId: string(acct), BlobId: string(id)}, c.opts...)
	if err != nil {
		return false, fromError("BlobReferenced", err)
	}
	return resp.GetReferenced(), nil
}
