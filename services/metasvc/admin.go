package metasvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	adminv1 "github.com/mailstore/mailstore/proto/mailstore/admin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/password"
	"github.com/mailstore/mailstore/pkg/sieve"
)

// admin implements the admin API over the metadata store and, for
// recovery, the blob store.
type admin struct {
	adminv1.UnimplementedAdminServiceServer
	store     meta.Store
	blobs     blob.Store
	params    password.Params
	recoverer *recoverer
	logger    *slog.Logger
}

func (a *admin) account(ctx context.Context, login string) (meta.Account, error) {
	if login == "" {
		return meta.Account{}, status.Error(codes.InvalidArgument, "login is required")
	}
	acct, err := a.store.LookupLogin(ctx, login)
	if err != nil {
		return meta.Account{}, a.toStatus(fmt.Errorf("look up %q: %w", login, err))
	}
	return acct, nil
}

func (a *admin) hash(pw string) (string, error) {
	if pw == "" {
		return "", status.Error(codes.InvalidArgument, "password is empty")
	}
	if len(pw) > password.MaxLen {
		return "", status.Errorf(codes.InvalidArgument, "password is longer than %d bytes", password.MaxLen)
	}
	h, err := password.Hash(pw, a.params)
	if err != nil {
		return "", status.Error(codes.Internal, "hash password")
	}
	return h, nil
}

func (a *admin) AddAccount(ctx context.Context, r *adminv1.AddAccountRequest) (*adminv1.Account, error) {
	if r.LimitBytes < 0 || r.LimitMessages < 0 {
		return nil, status.Error(codes.InvalidArgument, "quota limits must not be negative")
	}
	h, err := a.hash(r.Password)
	if err != nil {
		return nil, err
	}
	acct, err := a.store.CreateAccount(ctx, meta.NewAccount{
		Login: r.Login, PasswordHash: h,
		Quota: meta.Quota{LimitBytes: r.LimitBytes, LimitMessages: r.LimitMessages},
	})
	if err != nil {
		return nil, a.toStatus(fmt.Errorf("add account %q: %w", r.Login, err))
	}
	a.logger.Info("account added", "account", acct.ID, "login", acct.Login)
	return accountToProto(acct), nil
}

func (a *admin) ListAccounts(ctx context.Context, _ *adminv1.ListAccountsRequest) (*adminv1.ListAccountsResponse, error) {
	accts, err := a.store.ListAccounts(ctx)
	if err != nil {
		return nil, a.toStatus(fmt.Errorf("list accounts: %w", err))
	}
	resp := &adminv1.ListAccountsResponse{}
	for _, acct := range accts {
		resp.Accounts = append(resp.Accounts, accountToProto(acct))
	}
	return resp, nil
}

func (a *admin) GetAccount(ctx context.Context, r *adminv1.AccountRef) (*adminv1.Account, error) {
	acct, err := a.account(ctx, r.Login)
	if err != nil {
		return nil, err
	}
	return accountToProto(acct), nil
}

func (a *admin) DeleteAccount(ctx context.Context, r *adminv1.AccountRef) (*adminv1.Empty, error) {
	acct, err := a.account(ctx, r.Login)
	if err != nil {
		return nil, err
	}
	if err := a.store.DeleteAccount(ctx, acct.ID); err != nil {
		return nil, a.toStatus(fmt.Errorf("delete account %q: %w", r.Login, err))
	}
	// The index is gone, so nothing can read the bodies any more, and the
	// sweeper, which walks the accounts that exist, would never reach
	// them: delete them now. A failure here leaves garbage, not a broken
	// account, so it is logged and the delete still succeeds.
	if a.blobs != nil {
		n, err := deleteAllBlobs(ctx, a.store, a.blobs, acct.ID)
		if err != nil {
			a.logger.Warn("delete blobs of deleted account", "account", acct.ID, "deleted", n, "err", err)
		}
	}
	a.logger.Info("account deleted", "account", acct.ID, "login", acct.Login)
	return &adminv1.Empty{}, nil
}

// deleteAllBlobs deletes every blob of a deleted account and forgets the
// ones the store had queued.
func deleteAllBlobs(ctx context.Context, store meta.Store, blobs blob.Store, acct mail.AccountID) (int, error) {
	var ids []mail.BlobID
	if err := blobs.List(ctx, acct, func(i blob.Info) error {
		ids = append(ids, i.ID)
		return nil
	}); err != nil {
		return 0, err
	}
	for i, id := range ids {
		if err := blobs.Delete(ctx, acct, id); err != nil {
			return i, err
		}
	}
	for {
		pending, err := store.PendingBlobs(ctx, acct, time.Now().Add(24*time.Hour), 1000)
		if err != nil || len(pending) == 0 {
			// A backend may answer ErrNoSuchAccount once the account is
			// gone; there is then nothing left to forget.
			return len(ids), nil
		}
		if err := store.ForgetBlobs(ctx, acct, pending); err != nil {
			return len(ids), nil
		}
		if len(pending) < 1000 {
			return len(ids), nil
		}
	}
}

func (a *admin) update(ctx context.Context, login string, u meta.AccountUpdate) (meta.Account, error) {
	acct, err := a.account(ctx, login)
	if err != nil {
		return meta.Account{}, err
	}
	acct, err = a.store.UpdateAccount(ctx, acct.ID, u)
	if err != nil {
		return meta.Account{}, a.toStatus(fmt.Errorf("update account %q: %w", login, err))
	}
	return acct, nil
}

func (a *admin) SetPassword(ctx context.Context, r *adminv1.SetPasswordRequest) (*adminv1.Empty, error) {
	h, err := a.hash(r.Password)
	if err != nil {
		return nil, err
	}
	if _, err := a.update(ctx, r.Login, meta.AccountUpdate{PasswordHash: &h}); err != nil {
		return nil, err
	}
	return &adminv1.Empty{}, nil
}

func (a *admin) SetDisabled(ctx context.Context, r *adminv1.SetDisabledRequest) (*adminv1.Account, error) {
	acct, err := a.update(ctx, r.Login, meta.AccountUpdate{Disabled: &r.Disabled})
	if err != nil {
		return nil, err
	}
	return accountToProto(acct), nil
}

func (a *admin) SetQuota(ctx context.Context, r *adminv1.SetQuotaRequest) (*adminv1.Account, error) {
	if r.LimitBytes < 0 || r.LimitMessages < 0 {
		return nil, status.Error(codes.InvalidArgument, "quota limits must not be negative")
	}
	acct, err := a.update(ctx, r.Login, meta.AccountUpdate{LimitBytes: &r.LimitBytes, LimitMsgs: &r.LimitMessages})
	if err != nil {
		return nil, err
	}
	return accountToProto(acct), nil
}

func (a *admin) SetPOP3Policy(ctx context.Context, r *adminv1.SetPOP3PolicyRequest) (*adminv1.Account, error) {
	p := r.GetPolicy()
	pol := meta.POP3Policy{Mode: p.GetMode(), KeepDays: int(p.GetKeepDays()), LoginDelay: int(p.GetLoginDelaySeconds())}
	switch {
	case pol.Mode != meta.POP3Default && pol.Mode != meta.POP3Delete && pol.Mode != meta.POP3KeepForever && pol.Mode != meta.POP3KeepDays:
		return nil, status.Errorf(codes.InvalidArgument, "unknown POP3 policy mode %q", pol.Mode)
	case pol.Mode == meta.POP3KeepDays && (pol.KeepDays < 1 || pol.KeepDays > 36500):
		return nil, status.Error(codes.InvalidArgument, "keep days must be between 1 and 36500")
	case pol.Mode != meta.POP3KeepDays && pol.KeepDays != 0:
		return nil, status.Error(codes.InvalidArgument, "keep days only go with mode \"days\"")
	case pol.LoginDelay < 0 || pol.LoginDelay > 86400:
		return nil, status.Error(codes.InvalidArgument, "login delay must be between 0 and 86400 seconds")
	}
	acct, err := a.update(ctx, r.Login, meta.AccountUpdate{POP3: &pol})
	if err != nil {
		return nil, err
	}
	return accountToProto(acct), nil
}

// MaxSieveScript bounds a stored Sieve script.
const MaxSieveScript = 256 << 10

func (a *admin) SetSieveScript(ctx context.Context, r *adminv1.SetSieveScriptRequest) (*adminv1.Empty, error) {
	if len(r.Script) > MaxSieveScript {
		return nil, status.Errorf(codes.InvalidArgument, "sieve script is larger than %d bytes", MaxSieveScript)
	}
	// A script is checked when it is set, so a mistake is reported to the
	// one who made it (with line and column), not found at delivery. The
	// empty script removes the account's script.
	if r.Script != "" {
		if _, err := sieve.Compile([]byte(r.Script), sieve.Options{}); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "sieve script: %v", err)
		}
	}
	if _, err := a.update(ctx, r.Login, meta.AccountUpdate{SieveScript: &r.Script}); err != nil {
		return nil, err
	}
	return &adminv1.Empty{}, nil
}

func (a *admin) GetSieveScript(ctx context.Context, r *adminv1.AccountRef) (*adminv1.SieveScript, error) {
	acct, err := a.account(ctx, r.Login)
	if err != nil {
		return nil, err
	}
	return &adminv1.SieveScript{Script: acct.SieveScript}, nil
}

func (a *admin) AddAlias(ctx context.Context, r *adminv1.AliasRequest) (*adminv1.Account, error) {
	acct, err := a.aliasTarget(ctx, r)
	if err != nil {
		return nil, err
	}
	acct, err = a.store.AddAlias(ctx, acct.ID, r.Alias)
	if err != nil {
		return nil, a.toStatus(fmt.Errorf("add alias %q to %q: %w", r.Alias, r.Login, err))
	}
	a.logger.Info("alias added", "account", acct.ID, "alias", r.Alias)
	return accountToProto(acct), nil
}

func (a *admin) RemoveAlias(ctx context.Context, r *adminv1.AliasRequest) (*adminv1.Account, error) {
	acct, err := a.aliasTarget(ctx, r)
	if err != nil {
		return nil, err
	}
	acct, err = a.store.RemoveAlias(ctx, acct.ID, r.Alias)
	if err != nil {
		return nil, a.toStatus(fmt.Errorf("remove alias %q of %q: %w", r.Alias, r.Login, err))
	}
	a.logger.Info("alias removed", "account", acct.ID, "alias", r.Alias)
	return accountToProto(acct), nil
}

// aliasTarget checks an AliasRequest and finds its account by login.
func (a *admin) aliasTarget(ctx context.Context, r *adminv1.AliasRequest) (meta.Account, error) {
	if strings.TrimSpace(r.Alias) == "" {
		return meta.Account{}, status.Error(codes.InvalidArgument, "alias is required")
	}
	return a.account(ctx, r.Login)
}

func (a *admin) ListMailboxes(ctx context.Context, r *adminv1.AccountRef) (*adminv1.ListMailboxesResponse, error) {
	acct, err := a.account(ctx, r.Login)
	if err != nil {
		return nil, err
	}
	mboxes, err := a.store.ListMailboxes(ctx, acct.ID)
	if err != nil {
		return nil, a.toStatus(fmt.Errorf("list mailboxes of %q: %w", r.Login, err))
	}
	subs, err := a.store.Subscriptions(ctx, acct.ID)
	if err != nil {
		return nil, a.toStatus(fmt.Errorf("list subscriptions of %q: %w", r.Login, err))
	}
	subscribed := make(map[string]bool, len(subs))
	for _, s := range subs {
		subscribed[s] = true
	}
	resp := &adminv1.ListMailboxesResponse{}
	for _, m := range mboxes {
		resp.Mailboxes = append(resp.Mailboxes, &adminv1.Mailbox{
			Name: m.Name, UidValidity: m.UIDValidity, UidNext: uint32(m.UIDNext),
			HighestModseq: uint64(m.HighestModSeq), Messages: m.Messages, Unseen: m.Unseen,
			Size: m.Size, SpecialUse: m.SpecialUse, Subscribed: m.Subscribed || subscribed[m.Name],
		})
	}
	return resp, nil
}

func (a *admin) Recover(ctx context.Context, r *adminv1.AccountRef) (*adminv1.RecoverResponse, error) {
	acct, err := a.account(ctx, r.Login)
	if err != nil {
		return nil, err
	}
	if a.blobs == nil {
		return nil, status.Error(codes.FailedPrecondition, "recovery needs the blob service")
	}
	res, err := a.recoverer.Recover(ctx, acct.ID)
	if err != nil {
		return nil, a.toStatus(fmt.Errorf("recover %q: %w", r.Login, err))
	}
	a.logger.Info("account recovered", "account", acct.ID, "mailboxes", res.Mailboxes, "messages", res.Messages, "failed", len(res.Failed))
	resp := &adminv1.RecoverResponse{Mailboxes: int64(res.Mailboxes), Messages: int64(res.Messages), Bytes: res.Bytes}
	for _, id := range res.Failed {
		resp.FailedBlobs = append(resp.FailedBlobs, string(id))
	}
	return resp, nil
}

func accountToProto(a meta.Account) *adminv1.Account {
	return &adminv1.Account{
		Id: string(a.ID), Login: a.Login,
		Quota: &adminv1.Quota{
			LimitBytes: a.Quota.LimitBytes, LimitMessages: a.Quota.LimitMessages,
			UsedBytes: a.Quota.UsedBytes, UsedMessages: a.Quota.UsedMessages,
		},
		Pop3: &adminv1.POP3Policy{
			Mode: a.POP3.Mode, KeepDays: int32(a.POP3.KeepDays), LoginDelaySeconds: int32(a.POP3.LoginDelay),
		},
		Disabled: a.Disabled, CreatedUnix: a.Created.Unix(), HasSieveScript: a.SieveScript != "",
		Aliases: a.Aliases,
	}
}

// toStatus maps a meta or blob error to a gRPC status for the admin API;
// unexpected errors are logged and reach the client without details.
func (a *admin) toStatus(err error) error {
	var code codes.Code
	switch {
	case errors.Is(err, meta.ErrNoSuchAccount), errors.Is(err, meta.ErrNoSuchMailbox):
		code = codes.NotFound
	case errors.Is(err, meta.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, meta.ErrInvalidArgument), errors.Is(err, mail.ErrInvalidMailboxName),
		errors.Is(err, mail.ErrInvalidFlag), errors.Is(err, blob.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, meta.ErrOverQuota), errors.Is(err, meta.ErrLimit):
		code = codes.ResourceExhausted
	case errors.Is(err, meta.ErrLeaseHeld):
		code = codes.FailedPrecondition
	case errors.Is(err, meta.ErrUnavailable), errors.Is(err, blob.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	default:
		a.logger.Error("admin request failed", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}
