package metasvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/mime"
)

// maintenanceLease serializes recovery and blob sweeps of one account
// across every metadata replica: a sweep must never see the moment in a
// recovery when the index is empty and every blob looks unreferenced.
const maintenanceLease = "maintenance"

// recoverer rebuilds an account's index from the blob store.
type recoverer struct {
	store  meta.Store
	blobs  blob.Store
	limits mime.Limits
	logger *slog.Logger
	holder string
}

type recoverResult struct {
	Mailboxes int
	Messages  int
	Bytes     int64
	Failed    []mail.BlobID
}

// Recover drops the account's index and appends every blob of the account
// again, into the mailbox it was delivered to, with the flags and internal
// date it was delivered with. Each mailbox gets a new UIDVALIDITY, so
// clients resynchronize. Quota is lifted for the duration, so that nothing
// is refused, and then restored.
//
// A blob whose body cannot be read is reported in Failed and skipped; it
// stays in the blob store for another attempt.
func (r *recoverer) Recover(ctx context.Context, acct mail.AccountID) (res recoverResult, err error) {
	ctx, release, err := holdLease(ctx, r.store, acct, maintenanceLease, r.holder+" recover", workLeaseTTL, r.logger)
	if err != nil {
		return res, fmt.Errorf("take maintenance lease: %w", err)
	}
	defer release()

	var infos []blob.Info
	if err := r.blobs.List(ctx, acct, func(i blob.Info) error {
		infos = append(infos, i)
		return nil
	}); err != nil {
		return res, fmt.Errorf("list blobs: %w", err)
	}
	slices.SortFunc(infos, func(a, b blob.Info) int {
		return cmp.Or(a.Meta.InternalDate.Compare(b.Meta.InternalDate), cmp.Compare(a.ID, b.ID))
	})

	account, err := r.store.Account(ctx, acct)
	if err != nil {
		return res, err
	}
	limits := account.Quota
	zero := int64(0)
	if _, err := r.store.UpdateAccount(ctx, acct, meta.AccountUpdate{LimitBytes: &zero, LimitMsgs: &zero}); err != nil {
		return res, fmt.Errorf("lift quota: %w", err)
	}
	defer func() {
		if _, qerr := r.store.UpdateAccount(context.WithoutCancel(ctx), acct, meta.AccountUpdate{
			LimitBytes: &limits.LimitBytes, LimitMsgs: &limits.LimitMessages,
		}); qerr != nil {
			err = errors.Join(err, fmt.Errorf("restore quota: %w", qerr))
		}
	}()

	if err := r.store.ResetIndex(ctx, acct); err != nil {
		return res, fmt.Errorf("reset index: %w", err)
	}
	mboxes := map[string]mail.MailboxID{}
	ensure := func(name, special string) (mail.MailboxID, error) {
		if id, ok := mboxes[name]; ok {
			return id, nil
		}
		m, err := r.store.CreateMailbox(ctx, acct, name, special)
		if errors.Is(err, meta.ErrExists) {
			m, err = r.store.Mailbox(ctx, acct, name)
		}
		if err != nil {
			return 0, err
		}
		mboxes[m.Name] = m.ID
		mboxes[name] = m.ID
		return m.ID, nil
	}
	for _, d := range mail.DefaultMailboxes {
		if _, err := ensure(d.Name, d.SpecialUse); err != nil {
			return res, fmt.Errorf("create mailbox %q: %w", d.Name, err)
		}
	}

	for _, info := range infos {
		name, err := mail.CanonicalMailboxName(info.Meta.Mailbox)
		if err != nil {
			name = mail.Inbox
		}
		mbox, err := ensure(name, "")
		if err != nil {
			return res, fmt.Errorf("create mailbox %q: %w", name, err)
		}
		st, size, err := r.scan(ctx, acct, info.ID)
		if errors.Is(err, blob.ErrUnavailable) || ctx.Err() != nil {
			return res, fmt.Errorf("read blob %s: %w", info.ID, err)
		}
		if err != nil {
			r.logger.Warn("recover: skip unreadable blob", "account", acct, "blob", info.ID, "err", err)
			res.Failed = append(res.Failed, info.ID)
			continue
		}
		var flags []mail.Flag
		for _, f := range info.Meta.Flags {
			if cf, err := mail.CanonicalFlag(string(f)); err == nil {
				flags = append(flags, cf)
			}
		}
		date := info.Meta.InternalDate
		if date.IsZero() {
			date = info.Modified
		}
		if _, err := r.store.AppendEntry(ctx, acct, mbox, meta.NewEntry{
			Flags: flags, InternalDate: date, Size: size, Blob: info.ID, Structure: st,
		}); err != nil {
			return res, fmt.Errorf("append blob %s: %w", info.ID, err)
		}
		res.Messages++
		res.Bytes += size
	}
	seen := map[mail.MailboxID]bool{}
	for _, id := range mboxes {
		seen[id] = true
	}
	res.Mailboxes = len(seen)
	return res, nil
}

// scan reads a blob back and parses its structure.
func (r *recoverer) scan(ctx context.Context, acct mail.AccountID, id mail.BlobID) ([]byte, int64, error) {
	rc, err := r.blobs.Get(ctx, acct, id, blob.Whole)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	sc := mime.NewScanner(r.limits)
	n, err := io.Copy(sc, rc)
	if err != nil {
		return nil, 0, err
	}
	st, err := sc.Close()
	if err != nil {
		return nil, 0, err
	}
	enc, err := mime.MarshalStructure(st)
	if err != nil {
		return nil, 0, err
	}
	return enc, n, nil
}
