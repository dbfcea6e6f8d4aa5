package redismeta

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

var specialUses = map[string]bool{
	"": true, mail.SpecialAll: true, mail.SpecialArchive: true, mail.SpecialDrafts: true,
	mail.SpecialFlagged: true, mail.SpecialJunk: true, mail.SpecialSent: true, mail.SpecialTrash: true,
}

func canonicalName(name string) (string, error) {
	n, err := mail.CanonicalMailboxName(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", meta.ErrInvalidArgument, err)
	}
	return n, nil
}

// CreateMailbox creates name with a fresh UIDVALIDITY from the account's
// counter, which only grows (and is seeded with the account's creation
// time, so a recreated account does not reuse old values).
func (s *Store) CreateMailbox(ctx context.Context, acct mail.AccountID, name, specialUse string) (meta.Mailbox, error) {
	n, err := canonicalName(name)
	if err != nil {
		return meta.Mailbox{}, fmt.Errorf("create mailbox: %w", err)
	}
	if !specialUses[specialUse] {
		return meta.Mailbox{}, fmt.Errorf("create mailbox %s: %w: special use %q", n, meta.ErrInvalidArgument, specialUse)
	}
	if !validAccountID(acct) {
		return meta.Mailbox{}, fmt.Errorf("create mailbox %s: %w", n, meta.ErrNoSuchAccount)
	}
	res, err := scriptCreateMailbox.Run(ctx, s.sc, []string{s.k.base(acct)}, n, specialUse).Int64Slice()
	if err != nil {
		return meta.Mailbox{}, wrap(err, "create mailbox %s", n)
	}
	return meta.Mailbox{
		ID: mail.MailboxID(res[0]), Name: n, UIDValidity: uint32(res[1]), UIDNext: 1,
		HighestModSeq: 1, SpecialUse: specialUse, Subscribed: res[2] == 1,
	}, nil
}

// DeleteMailbox deletes the mailbox and its entries in one script.
func (s *Store) DeleteMailbox(ctx context.Context, acct mail.AccountID, name string) error {
	n, err := canonicalName(name)
	if err != nil {
		return fmt.Errorf("delete mailbox: %w", err)
	}
	if n == mail.Inbox {
		return fmt.Errorf("delete mailbox %s: %w", n, meta.ErrPermission)
	}
	if !validAccountID(acct) {
		return fmt.Errorf("delete mailbox %s: %w", n, meta.ErrNoSuchAccount)
	}
	if err := scriptDeleteMailbox.Run(ctx, s.sc, []string{s.k.base(acct)}, n).Err(); err != nil {
		return wrap(err, "delete mailbox %s", n)
	}
	return nil
}

// RenameMailbox renames in one script (children included; INBOX moves its
// entries into a new mailbox).
func (s *Store) RenameMailbox(ctx context.Context, acct mail.AccountID, oldName, newName string) error {
	o, err := canonicalName(oldName)
	if err != nil {
		return fmt.Errorf("rename mailbox: %w", err)
	}
	n, err := canonicalName(newName)
	if err != nil {
		return fmt.Errorf("rename mailbox %s: %w", o, err)
	}
	if strings.HasPrefix(n, o+string(mail.Delimiter)) && o != mail.Inbox {
		return fmt.Errorf("rename mailbox %s to %s: %w: under itself", o, n, meta.ErrInvalidArgument)
	}
	if !validAccountID(acct) {
		return fmt.Errorf("rename mailbox %s: %w", o, meta.ErrNoSuchAccount)
	}
	if err := scriptRenameMailbox.Run(ctx, s.sc, []string{s.k.base(acct)}, o, n, s.logMax).Err(); err != nil {
		return wrap(err, "rename mailbox %s to %s", o, n)
	}
	return nil
}

// Mailbox returns one mailbox by name (one script call).
func (s *Store) Mailbox(ctx context.Context, acct mail.AccountID, name string) (meta.Mailbox, error) {
	n, err := canonicalName(name)
	if err != nil {
		return meta.Mailbox{}, fmt.Errorf("mailbox: %w: %w", meta.ErrNoSuchMailbox, err)
	}
	return s.getMailbox(ctx, acct, "n", n)
}

// MailboxByID returns one mailbox by id (one script call).
func (s *Store) MailboxByID(ctx context.Context, acct mail.AccountID, id mail.MailboxID) (meta.Mailbox, error) {
	return s.getMailbox(ctx, acct, "i", strconv.FormatUint(uint64(id), 10))
}

func (s *Store) getMailbox(ctx context.Context, acct mail.AccountID, by, v string) (meta.Mailbox, error) {
	if !validAccountID(acct) {
		return meta.Mailbox{}, fmt.Errorf("mailbox %s: %w", v, meta.ErrNoSuchAccount)
	}
	res, err := scriptGetMailbox.Run(ctx, s.sc, []string{s.k.base(acct)}, by, v).Slice()
	if err != nil {
		return meta.Mailbox{}, wrap(err, "mailbox %s", v)
	}
	str := func(i int) string {
		switch x := res[i].(type) {
		case string:
			return x
		case int64:
			return strconv.FormatInt(x, 10)
		}
		return ""
	}
	id, _ := strconv.ParseUint(str(0), 10, 64)
	return mailboxFromFields(mail.MailboxID(id), []string{str(1), str(2), str(3), str(4), str(5), str(6), str(7), str(8)}, str(9) == "1"), nil
}

// mailboxFields are the mb:<M> fields mailboxFromFields reads, in order.
var mailboxFields = []string{"name", "uv", "next", "hms", "n", "unseen", "size", "su"}

func mailboxFromFields(id mail.MailboxID, v []string, subscribed bool) meta.Mailbox {
	u := func(i int) uint64 { n, _ := strconv.ParseUint(v[i], 10, 64); return n }
	i := func(i int) int64 { n, _ := strconv.ParseInt(v[i], 10, 64); return n }
	return meta.Mailbox{
		ID: id, Name: v[0], UIDValidity: uint32(u(1)), UIDNext: mail.UID(u(2)),
		HighestModSeq: mail.ModSeq(u(3)), Messages: i(4), Unseen: i(5), Size: i(6),
		SpecialUse: v[7], Subscribed: subscribed,
	}
}

// ListMailboxes reads the name index, then every mailbox hash in one
// transaction (all keys are in the account's slot).
func (s *Store) ListMailboxes(ctx context.Context, acct mail.AccountID) ([]meta.Mailbox, error) {
	if !validAccountID(acct) {
		return nil, fmt.Errorf("list mailboxes: %w", meta.ErrNoSuchAccount)
	}
	var names map[string]string
	var subs []string
	var exists int64
	cmds, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Exists(ctx, s.k.account(acct))
		p.HGetAll(ctx, s.k.mailboxes(acct))
		p.SMembers(ctx, s.k.subs(acct))
		return nil
	})
	if err != nil {
		return nil, wrap(err, "list mailboxes")
	}
	exists = cmds[0].(*redis.IntCmd).Val()
	names = cmds[1].(*redis.MapStringStringCmd).Val()
	subs = cmds[2].(*redis.StringSliceCmd).Val()
	if exists == 0 {
		return nil, fmt.Errorf("list mailboxes: %w", meta.ErrNoSuchAccount)
	}
	subSet := make(map[string]bool, len(subs))
	for _, n := range subs {
		subSet[n] = true
	}
	ids := make([]mail.MailboxID, 0, len(names))
	for _, v := range names {
		id, _ := strconv.ParseUint(v, 10, 64)
		ids = append(ids, mail.MailboxID(id))
	}
	hm := make([]*redis.SliceCmd, len(ids))
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			hm[i] = p.HMGet(ctx, s.k.mailbox(acct, id), mailboxFields...)
		}
		return nil
	}); err != nil {
		return nil, wrap(err, "list mailboxes")
	}
	out := make([]meta.Mailbox, 0, len(ids))
	for i, c := range hm {
		vals := c.Val()
		if len(vals) == 0 || vals[0] == nil {
			continue // deleted meanwhile
		}
		f := make([]string, len(vals))
		for j, x := range vals {
			f[j], _ = x.(string)
		}
		out = append(out, mailboxFromFields(ids[i], f, subSet[f[0]]))
	}
	slices.SortFunc(out, func(a, b meta.Mailbox) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SetSubscribed adds or removes name from the subscription set.
func (s *Store) SetSubscribed(ctx context.Context, acct mail.AccountID, name string, subscribed bool) error {
	n, err := canonicalName(name)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if !validAccountID(acct) {
		return fmt.Errorf("subscribe %s: %w", n, meta.ErrNoSuchAccount)
	}
	on := "0"
	if subscribed {
		on = "1"
	}
	if err := scriptSubscribe.Run(ctx, s.sc, []string{s.k.base(acct)}, n, on).Err(); err != nil {
		return wrap(err, "subscribe %s", n)
	}
	return nil
}

// Subscriptions lists subscribed names, sorted.
func (s *Store) Subscriptions(ctx context.Context, acct mail.AccountID) ([]string, error) {
	if !validAccountID(acct) {
		return nil, fmt.Errorf("subscriptions: %w", meta.ErrNoSuchAccount)
	}
	cmds, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Exists(ctx, s.k.account(acct))
		p.SMembers(ctx, s.k.subs(acct))
		return nil
	})
	if err != nil {
		return nil, wrap(err, "subscriptions")
	}
	if cmds[0].(*redis.IntCmd).Val() == 0 {
		return nil, fmt.Errorf("subscriptions: %w", meta.ErrNoSuchAccount)
	}
	subs := cmds[1].(*redis.StringSliceCmd).Val()
	slices.Sort(subs)
	return subs, nil
}

// ClaimRecent raises the mailbox's rec field in one script, so claims from
// every gateway pod are serialised by Redis.
func (s *Store) ClaimRecent(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, upTo mail.UID) (mail.UID, error) {
	if !validAccountID(acct) {
		return 0, fmt.Errorf("claim recent in mailbox %d: %w", mbox, meta.ErrNoSuchAccount)
	}
	prev, err := scriptClaimRecent.Run(ctx, s.sc, []string{s.k.base(acct)},
		strconv.FormatUint(uint64(mbox), 10), strconv.FormatUint(uint64(upTo), 10)).Int64()
	if err != nil {
		return 0, wrap(err, "claim recent up to %d in mailbox %d", upTo, mbox)
	}
	return mail.UID(prev), nil
}
