package metatest

// fakeStore is a small in-memory meta.Store used only to develop the
// suite: one mutex over maps. It is never evidence that a backend works.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

var _ meta.Store = (*fakeStore)(nil)

type fakeStore struct {
	mu       sync.Mutex
	nextAcct int
	accts    map[mail.AccountID]*fakeAccount
	pending  map[mail.AccountID]map[mail.BlobID]time.Time
	leases   map[string]*fakeLease
	tokens   map[string]uint64
	counters map[string]*fakeCounter
	slots    map[string]map[string]*fakeCounter // key -> holder -> count
	subs     map[mail.AccountID]map[*fakeSub]bool
}

type fakeAccount struct {
	rec         meta.Account
	nextMbox    mail.MailboxID
	uidValidity uint32
	boxes       map[mail.MailboxID]*fakeBox
	subscribed  map[string]bool
	refs        map[mail.BlobID]int
}

type fakeBox struct {
	mb       meta.Mailbox
	entries  map[mail.UID]*meta.Entry
	vanished []fakeVanished
	recent   mail.UID // \Recent mark (ClaimRecent)
	appended map[mail.BlobID]meta.Appended
}

type fakeVanished struct {
	modseq mail.ModSeq
	uid    mail.UID
}

type fakeLease struct {
	token   uint64
	expires time.Time
}

type fakeCounter struct {
	value   int64
	expires time.Time
}

func newFake() *fakeStore {
	return &fakeStore{
		accts:    map[mail.AccountID]*fakeAccount{},
		pending:  map[mail.AccountID]map[mail.BlobID]time.Time{},
		leases:   map[string]*fakeLease{},
		tokens:   map[string]uint64{},
		counters: map[string]*fakeCounter{},
		slots:    map[string]map[string]*fakeCounter{},
		subs:     map[mail.AccountID]map[*fakeSub]bool{},
	}
}

func (s *fakeStore) Close() error { return nil }

// ---- Accounts ----

func (s *fakeStore) acct(id mail.AccountID) (*fakeAccount, error) {
	a, ok := s.accts[id]
	if !ok {
		return nil, fmt.Errorf("account %s: %w", id, meta.ErrNoSuchAccount)
	}
	return a, nil
}

func (s *fakeStore) byLogin(login string) *fakeAccount {
	for _, a := range s.accts {
		if a.rec.Login == login {
			return a
		}
	}
	return nil
}

func (s *fakeStore) CreateAccount(ctx context.Context, n meta.NewAccount) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	login := strings.ToLower(n.Login)
	if login == "" || strings.ContainsFunc(login, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return meta.Account{}, fmt.Errorf("create account %q: %w", n.Login, meta.ErrInvalidArgument)
	}
	if s.byAddress(login) != nil {
		return meta.Account{}, fmt.Errorf("create account %q: %w", n.Login, meta.ErrExists)
	}
	s.nextAcct++
	a := &fakeAccount{
		rec: meta.Account{
			ID: mail.AccountID(fmt.Sprintf("a%d", s.nextAcct)), Login: login, PasswordHash: n.PasswordHash,
			Quota:   meta.Quota{LimitBytes: n.Quota.LimitBytes, LimitMessages: n.Quota.LimitMessages},
			Created: time.Now(),
		},
		uidValidity: uint32(time.Now().Unix()),
		boxes:       map[mail.MailboxID]*fakeBox{},
		subscribed:  map[string]bool{},
		refs:        map[mail.BlobID]int{},
	}
	s.accts[a.rec.ID] = a
	for _, d := range mail.DefaultMailboxes {
		s.createBox(a, d.Name, d.SpecialUse)
	}
	return a.rec, nil
}

func (s *fakeStore) Account(ctx context.Context, id mail.AccountID) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(id)
	if err != nil {
		return meta.Account{}, err
	}
	return a.rec, nil
}

func (s *fakeStore) LookupLogin(ctx context.Context, login string) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byLogin(strings.ToLower(login)); a != nil {
		return a.rec, nil
	}
	return meta.Account{}, fmt.Errorf("lookup %q: %w", login, meta.ErrNoSuchAccount)
}

func (s *fakeStore) ListAccounts(ctx context.Context) ([]meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []meta.Account
	for _, a := range s.accts {
		out = append(out, a.rec)
	}
	slices.SortFunc(out, func(x, y meta.Account) int { return strings.Compare(x.Login, y.Login) })
	return out, nil
}

func (s *fakeStore) UpdateAccount(ctx context.Context, id mail.AccountID, u meta.AccountUpdate) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(id)
	if err != nil {
		return meta.Account{}, err
	}
	r := &a.rec
	if u.PasswordHash != nil {
		r.PasswordHash = *u.PasswordHash
	}
	if u.LimitBytes != nil {
		r.Quota.LimitBytes = *u.LimitBytes
	}
	if u.LimitMsgs != nil {
		r.Quota.LimitMessages = *u.LimitMsgs
	}
	if u.Disabled != nil {
		r.Disabled = *u.Disabled
	}
	if u.POP3 != nil {
		r.POP3 = *u.POP3
	}
	if u.SieveScript != nil {
		r.SieveScript = *u.SieveScript
	}
	return *r, nil
}

func (s *fakeStore) DeleteAccount(ctx context.Context, id mail.AccountID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(id)
	if err != nil {
		return err
	}
	for b := range a.refs {
		s.queueBlob(id, b)
	}
	delete(s.accts, id)
	return nil
}

// byAddress returns the account whose login or alias addr is.
func (s *fakeStore) byAddress(addr string) *fakeAccount {
	for _, a := range s.accts {
		if a.rec.Login == addr || slices.Contains(a.rec.Aliases, addr) {
			return a
		}
	}
	return nil
}

func (s *fakeStore) AddAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	al := strings.ToLower(strings.TrimSpace(alias))
	if len(al) > 255 || !utf8.ValidString(alias) || strings.ContainsFunc(al, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return meta.Account{}, fmt.Errorf("add alias %q: %w", alias, meta.ErrInvalidArgument)
	}
	if err := meta.CheckAlias(al); err != nil {
		return meta.Account{}, fmt.Errorf("add alias: %w", err)
	}
	a, err := s.acct(id)
	if err != nil {
		return meta.Account{}, err
	}
	if s.byAddress(al) != nil {
		return meta.Account{}, fmt.Errorf("add alias %q: %w", al, meta.ErrExists)
	}
	a.rec.Aliases = append(slices.Clone(a.rec.Aliases), al)
	slices.Sort(a.rec.Aliases)
	return a.rec, nil
}

func (s *fakeStore) RemoveAlias(ctx context.Context, id mail.AccountID, alias string) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	al := strings.ToLower(strings.TrimSpace(alias))
	a, err := s.acct(id)
	if err != nil {
		return meta.Account{}, err
	}
	i := slices.Index(a.rec.Aliases, al)
	if i < 0 {
		return meta.Account{}, fmt.Errorf("remove alias %q: %w: not an alias of this account", al, meta.ErrInvalidArgument)
	}
	a.rec.Aliases = slices.Delete(slices.Clone(a.rec.Aliases), i, i+1)
	return a.rec, nil
}

func (s *fakeStore) LookupAddress(ctx context.Context, addr string) (meta.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ad := strings.ToLower(strings.TrimSpace(addr))
	if strings.Contains(ad, "@") {
		if a := s.byAddress(ad); a != nil {
			return a.rec, nil
		}
		return meta.Account{}, fmt.Errorf("look up address %q: %w", addr, meta.ErrNoSuchAccount)
	}
	if a := s.byLogin(ad); a != nil {
		return a.rec, nil
	}
	var found []*fakeAccount
	for _, a := range s.accts {
		hit := strings.Contains(a.rec.Login, "@") && meta.LocalPart(a.rec.Login) == ad
		for _, al := range a.rec.Aliases {
			hit = hit || meta.LocalPart(al) == ad
		}
		if hit {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return meta.Account{}, fmt.Errorf("look up address %q: %w", addr, meta.ErrNoSuchAccount)
	case 1:
		return found[0].rec, nil
	}
	return meta.Account{}, fmt.Errorf("look up address %q: ambiguous: %w", addr, meta.ErrNoSuchAccount)
}

func (s *fakeStore) ResetIndex(ctx context.Context, id mail.AccountID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(id)
	if err != nil {
		return err
	}
	a.boxes = map[mail.MailboxID]*fakeBox{}
	a.refs = map[mail.BlobID]int{}
	a.rec.Quota.UsedBytes, a.rec.Quota.UsedMessages = 0, 0
	return nil
}

// ---- Mailboxes ----

func (s *fakeStore) createBox(a *fakeAccount, name, special string) *fakeBox {
	a.nextMbox++
	a.uidValidity++
	b := &fakeBox{
		mb:      meta.Mailbox{ID: a.nextMbox, Name: name, UIDValidity: a.uidValidity, UIDNext: 1, SpecialUse: special},
		entries: map[mail.UID]*meta.Entry{},
	}
	a.boxes[b.mb.ID] = b
	s.publish(a.rec.ID, b.mb.ID, meta.EventMailbox, 0, nil)
	return b
}

func (a *fakeAccount) named(name string) (*fakeBox, string, error) {
	c, err := mail.CanonicalMailboxName(name)
	if err != nil {
		return nil, "", fmt.Errorf("mailbox: %w", err)
	}
	for _, b := range a.boxes {
		if b.mb.Name == c {
			return b, c, nil
		}
	}
	return nil, c, fmt.Errorf("mailbox %q: %w", c, meta.ErrNoSuchMailbox)
}

func (s *fakeStore) box(acct mail.AccountID, id mail.MailboxID) (*fakeAccount, *fakeBox, error) {
	a, err := s.acct(acct)
	if err != nil {
		return nil, nil, err
	}
	b, ok := a.boxes[id]
	if !ok {
		return nil, nil, fmt.Errorf("mailbox %d: %w", id, meta.ErrNoSuchMailbox)
	}
	return a, b, nil
}

func (a *fakeAccount) view(b *fakeBox) meta.Mailbox {
	mb := b.mb
	mb.Subscribed = a.subscribed[mb.Name]
	return mb
}

var specialUses = map[string]bool{"": true, mail.SpecialAll: true, mail.SpecialArchive: true, mail.SpecialDrafts: true,
	mail.SpecialFlagged: true, mail.SpecialJunk: true, mail.SpecialSent: true, mail.SpecialTrash: true}

func (s *fakeStore) CreateMailbox(ctx context.Context, acct mail.AccountID, name, special string) (meta.Mailbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(acct)
	if err != nil {
		return meta.Mailbox{}, err
	}
	_, c, err := a.named(name)
	if c == "" {
		return meta.Mailbox{}, err
	}
	if err == nil {
		return meta.Mailbox{}, fmt.Errorf("create %q: %w", c, meta.ErrExists)
	}
	if !specialUses[special] {
		return meta.Mailbox{}, fmt.Errorf("create %q: special use %q: %w", c, special, meta.ErrInvalidArgument)
	}
	return a.view(s.createBox(a, c, special)), nil
}

func (s *fakeStore) DeleteMailbox(ctx context.Context, acct mail.AccountID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(acct)
	if err != nil {
		return err
	}
	b, _, err := a.named(name)
	if err != nil {
		return err
	}
	if b.mb.Name == mail.Inbox {
		return fmt.Errorf("delete INBOX: %w", meta.ErrPermission)
	}
	for _, e := range b.entries {
		s.drop(a, b, e)
	}
	delete(a.boxes, b.mb.ID)
	s.publish(acct, b.mb.ID, meta.EventMailbox, 0, nil)
	return nil
}

func (s *fakeStore) RenameMailbox(ctx context.Context, acct mail.AccountID, oldName, newName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(acct)
	if err != nil {
		return err
	}
	nb, newC, err := a.named(newName)
	if newC == "" {
		return err
	}
	b, oldC, err := a.named(oldName)
	if err != nil {
		return err
	}
	if nb != nil {
		return fmt.Errorf("rename to %q: %w", newC, meta.ErrExists)
	}
	if oldC == mail.Inbox {
		nb := s.createBox(a, newC, "")
		for _, uid := range sortedKeys(b.entries) {
			s.insert(a, nb, *b.entries[uid])
		}
		s.remove(a, b, mail.AllUIDs())
		return nil
	}
	var moving []*fakeBox
	for _, x := range a.boxes {
		if x.mb.Name == oldC || strings.HasPrefix(x.mb.Name, oldC+"/") {
			moving = append(moving, x)
		}
	}
	for _, x := range moving {
		if _, _, err := a.named(newC + x.mb.Name[len(oldC):]); err == nil {
			return fmt.Errorf("rename to %q: %w", newC+x.mb.Name[len(oldC):], meta.ErrExists)
		}
	}
	for _, x := range moving {
		x.mb.Name = newC + x.mb.Name[len(oldC):]
		s.publish(acct, x.mb.ID, meta.EventMailbox, 0, nil)
	}
	return nil
}

func (s *fakeStore) pendingOf(acct mail.AccountID) map[mail.BlobID]time.Time {
	p := s.pending[acct]
	if p == nil {
		p = map[mail.BlobID]time.Time{}
		s.pending[acct] = p
	}
	return p
}

func (s *fakeStore) Mailbox(ctx context.Context, acct mail.AccountID, name string) (meta.Mailbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(acct)
	if err != nil {
		return meta.Mailbox{}, err
	}
	b, _, err := a.named(name)
	if err != nil {
		return meta.Mailbox{}, err
	}
	return a.view(b), nil
}

func (s *fakeStore) MailboxByID(ctx context.Context, acct mail.AccountID, id mail.MailboxID) (meta.Mailbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b, err := s.box(acct, id)
	if err != nil {
		return meta.Mailbox{}, err
	}
	return a.view(b), nil
}

func (s *fakeStore) ListMailboxes(ctx context.Context, acct mail.AccountID) ([]meta.Mailbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(acct)
	if err != nil {
		return nil, err
	}
	var out []meta.Mailbox
	for _, b := range a.boxes {
		out = append(out, a.view(b))
	}
	slices.SortFunc(out, func(x, y meta.Mailbox) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

func (s *fakeStore) SetSubscribed(ctx context.Context, acct mail.AccountID, name string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(acct)
	if err != nil {
		return err
	}
	c, err := mail.CanonicalMailboxName(name)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if on {
		a.subscribed[c] = true
	} else {
		delete(a.subscribed, c)
	}
	return nil
}

func (s *fakeStore) ClaimRecent(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, upTo mail.UID) (mail.UID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.box(acct, mbox)
	if err != nil {
		return 0, err
	}
	prev := b.recent
	b.recent = max(b.recent, upTo)
	return prev, nil
}

func (s *fakeStore) Subscriptions(ctx context.Context, acct mail.AccountID) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.acct(acct)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for n := range a.subscribed {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// ---- Messages ----

func canonFlags(fs []mail.Flag) ([]mail.Flag, error) {
	out := []mail.Flag{}
	for _, f := range fs {
		c, err := mail.CanonicalFlag(string(f))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", meta.ErrInvalidArgument, err)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out, nil
}

func sortedKeys(m map[mail.UID]*meta.Entry) []mail.UID {
	var out []mail.UID
	for u := range m {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// insert adds e to b with a fresh UID and MODSEQ, counting it everywhere.
func (s *fakeStore) insert(a *fakeAccount, b *fakeBox, e meta.Entry) meta.Entry {
	b.mb.HighestModSeq++
	e.UID, e.ModSeq = b.mb.UIDNext, b.mb.HighestModSeq
	e.Retrieved = time.Time{} // a new message, never retrieved
	b.mb.UIDNext++
	e.Flags = slices.Clone(e.Flags)
	b.entries[e.UID] = &e
	b.mb.Messages++
	b.mb.Size += e.Size
	if !slices.Contains(e.Flags, mail.FlagSeen) {
		b.mb.Unseen++
	}
	a.rec.Quota.UsedBytes += e.Size
	a.rec.Quota.UsedMessages++
	a.refs[e.Blob]++
	return e
}

// drop removes e from b (the caller bumps the MODSEQ and logs it).
func (s *fakeStore) drop(a *fakeAccount, b *fakeBox, e *meta.Entry) {
	delete(b.entries, e.UID)
	b.mb.Messages--
	b.mb.Size -= e.Size
	if !slices.Contains(e.Flags, mail.FlagSeen) {
		b.mb.Unseen--
	}
	a.rec.Quota.UsedBytes -= e.Size
	a.rec.Quota.UsedMessages--
	a.refs[e.Blob]--
	if a.refs[e.Blob] == 0 {
		delete(a.refs, e.Blob)
		s.queueBlob(a.rec.ID, e.Blob)
	}
}

func (s *fakeStore) queueBlob(acct mail.AccountID, b mail.BlobID) {
	s.pendingOf(acct)[b] = time.Now()
}

func (a *fakeAccount) fits(bytes, msgs int64) bool {
	q := a.rec.Quota
	return (q.LimitBytes == 0 || q.UsedBytes+bytes <= q.LimitBytes) &&
		(q.LimitMessages == 0 || q.UsedMessages+msgs <= q.LimitMessages)
}

func (s *fakeStore) AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, n meta.NewEntry) (meta.Appended, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b, err := s.box(acct, mbox)
	if err != nil {
		return meta.Appended{}, err
	}
	flags, err := canonFlags(n.Flags)
	if err != nil {
		return meta.Appended{}, err
	}
	if prev, ok := b.appended[n.Blob]; ok {
		return prev, nil
	}
	if !a.fits(n.Size, 1) {
		return meta.Appended{}, fmt.Errorf("append: %w", meta.ErrOverQuota)
	}
	e := s.insert(a, b, meta.Entry{Flags: flags, InternalDate: n.InternalDate, Size: n.Size, Blob: n.Blob, Structure: slices.Clone(n.Structure)})
	s.publish(acct, mbox, meta.EventAppend, e.ModSeq, mail.NewUIDSet(e.UID))
	app := meta.Appended{Mailbox: mbox, UIDValidity: b.mb.UIDValidity, UID: e.UID, ModSeq: e.ModSeq}
	if b.appended == nil {
		b.appended = make(map[mail.BlobID]meta.Appended)
	}
	b.appended[n.Blob] = app
	return app, nil
}

func (s *fakeStore) ListEntries(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, f meta.Fields, since mail.ModSeq) ([]meta.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.box(acct, mbox)
	if err != nil {
		return nil, err
	}
	var out []meta.Entry
	for _, u := range sortedKeys(b.entries) {
		e := b.entries[u]
		if !uids.Contains(u) || e.ModSeq <= since {
			continue
		}
		x := meta.Entry{UID: e.UID, ModSeq: e.ModSeq}
		if f&meta.FieldFlags != 0 {
			x.Flags = slices.Clone(e.Flags)
		}
		if f&meta.FieldInfo != 0 {
			x.InternalDate, x.Size, x.Blob, x.Retrieved = e.InternalDate, e.Size, e.Blob, e.Retrieved
		}
		if f&meta.FieldStructure != 0 {
			x.Structure = slices.Clone(e.Structure)
		}
		out = append(out, x)
	}
	return out, nil
}

func (s *fakeStore) StoreFlags(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, c meta.FlagChange) (meta.FlagResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.box(acct, mbox)
	if err != nil {
		return meta.FlagResult{}, err
	}
	flags, err := canonFlags(c.Flags)
	if err != nil {
		return meta.FlagResult{}, err
	}
	var res meta.FlagResult
	modseq := b.mb.HighestModSeq + 1
	var changed mail.UIDSet
	for _, u := range sortedKeys(b.entries) {
		e := b.entries[u]
		if !c.UIDs.Contains(u) {
			continue
		}
		if c.UnchangedSince != 0 && e.ModSeq > c.UnchangedSince {
			res.Modified = res.Modified.Add(u)
			continue
		}
		var nf []mail.Flag
		switch c.Op {
		case meta.FlagsReplace:
			nf = slices.Clone(flags)
		case meta.FlagsAdd:
			nf, _ = canonFlags(append(slices.Clone(e.Flags), flags...))
		case meta.FlagsRemove:
			nf = slices.DeleteFunc(slices.Clone(e.Flags), func(f mail.Flag) bool { return slices.Contains(flags, f) })
		}
		if slices.Equal(nf, e.Flags) {
			res.Unchanged = append(res.Unchanged, meta.Entry{UID: u, ModSeq: e.ModSeq, Flags: slices.Clone(e.Flags)})
			continue
		}
		was, is := slices.Contains(e.Flags, mail.FlagSeen), slices.Contains(nf, mail.FlagSeen)
		if was && !is {
			b.mb.Unseen++
		} else if is && !was {
			b.mb.Unseen--
		}
		e.Flags, e.ModSeq = nf, modseq
		res.Updated = append(res.Updated, meta.Entry{UID: u, ModSeq: modseq, Flags: slices.Clone(nf)})
		changed = changed.Add(u)
	}
	if len(res.Updated) > 0 {
		b.mb.HighestModSeq = modseq
		s.publish(acct, mbox, meta.EventFlags, modseq, changed)
	}
	return res, nil
}

// remove expunges the entries of b in uids and returns their UIDs.
func (s *fakeStore) remove(a *fakeAccount, b *fakeBox, uids mail.UIDSet) ([]mail.UID, mail.ModSeq) {
	var gone []mail.UID
	for _, u := range sortedKeys(b.entries) {
		if uids.Contains(u) {
			gone = append(gone, u)
		}
	}
	if len(gone) == 0 {
		return nil, b.mb.HighestModSeq
	}
	b.mb.HighestModSeq++
	for _, u := range gone {
		s.drop(a, b, b.entries[u])
		b.vanished = append(b.vanished, fakeVanished{b.mb.HighestModSeq, u})
	}
	s.publish(a.rec.ID, b.mb.ID, meta.EventExpunge, b.mb.HighestModSeq, mail.NewUIDSet(gone...))
	return gone, b.mb.HighestModSeq
}

func (s *fakeStore) Expunge(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet) ([]mail.UID, mail.ModSeq, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b, err := s.box(acct, mbox)
	if err != nil {
		return nil, 0, err
	}
	gone, m := s.remove(a, b, uids)
	return gone, m, nil
}

func (s *fakeStore) copy(acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID, move bool) (meta.Copied, error) {
	a, sb, err := s.box(acct, src)
	if err != nil {
		return meta.Copied{}, err
	}
	_, db, err := s.box(acct, dst)
	if err != nil {
		return meta.Copied{}, err
	}
	var todo []meta.Entry
	var bytes int64
	for _, u := range sortedKeys(sb.entries) {
		if uids.Contains(u) {
			todo = append(todo, *sb.entries[u])
			bytes += sb.entries[u].Size
		}
	}
	c := meta.Copied{UIDValidity: db.mb.UIDValidity}
	if len(todo) == 0 {
		return c, nil
	}
	if !move && !a.fits(bytes, int64(len(todo))) {
		return meta.Copied{}, fmt.Errorf("copy: %w", meta.ErrOverQuota)
	}
	var set mail.UIDSet
	modseq := db.mb.HighestModSeq + 1
	for _, e := range todo {
		db.mb.HighestModSeq = modseq - 1 // one MODSEQ for the whole copy
		n := s.insert(a, db, e)
		c.Source = append(c.Source, e.UID)
		c.Dest = append(c.Dest, n.UID)
		set = set.Add(n.UID)
	}
	c.ModSeq = modseq
	s.publish(acct, dst, meta.EventAppend, modseq, set)
	if move {
		s.remove(a, sb, mail.NewUIDSet(c.Source...))
	}
	return c, nil
}

func (s *fakeStore) Copy(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copy(acct, src, uids, dst, false)
}

func (s *fakeStore) Move(ctx context.Context, acct mail.AccountID, src mail.MailboxID, uids mail.UIDSet, dst mail.MailboxID) (meta.Copied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copy(acct, src, uids, dst, true)
}

func (s *fakeStore) MarkRetrieved(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, uids mail.UIDSet, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.box(acct, mbox)
	if err != nil {
		return err
	}
	if at.UnixMilli() <= 0 {
		return fmt.Errorf("mark retrieved: %w", meta.ErrInvalidArgument)
	}
	for u, e := range b.entries {
		if uids.Contains(u) && e.Retrieved.IsZero() {
			e.Retrieved = time.UnixMilli(at.UnixMilli()).UTC()
		}
	}
	return nil
}

// ---- Changes ----

func (s *fakeStore) ChangesSince(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, since mail.ModSeq) (meta.ChangeSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.box(acct, mbox)
	if err != nil {
		return meta.ChangeSet{}, err
	}
	cs := meta.ChangeSet{HighestModSeq: b.mb.HighestModSeq}
	for _, u := range sortedKeys(b.entries) {
		if e := b.entries[u]; e.ModSeq > since {
			cs.Changed = append(cs.Changed, meta.Entry{UID: u, ModSeq: e.ModSeq, Flags: slices.Clone(e.Flags)})
		}
	}
	for _, v := range b.vanished {
		if v.modseq > since {
			cs.Vanished = cs.Vanished.Add(v.uid)
		}
	}
	return cs, nil
}

// ---- Feed ----

type fakeSub struct {
	s    *fakeStore
	acct mail.AccountID
	ch   chan meta.Event
	err  error
	done bool
}

func (s *fakeStore) publish(acct mail.AccountID, mbox mail.MailboxID, k meta.EventKind, m mail.ModSeq, uids mail.UIDSet) {
	for sub := range s.subs[acct] {
		select {
		case sub.ch <- meta.Event{Account: acct, Mailbox: mbox, Kind: k, ModSeq: m, UIDs: slices.Clone(uids), Time: time.Now()}:
		default:
			sub.err = fmt.Errorf("subscriber too slow: %w", meta.ErrUnavailable)
			sub.end()
		}
	}
}

// allSubs returns every subscription of every account.
func (s *fakeStore) allSubs() map[*fakeSub]bool {
	all := map[*fakeSub]bool{}
	for _, m := range s.subs {
		for sub := range m {
			all[sub] = true
		}
	}
	return all
}

// end closes the subscription; the store's mutex is held.
func (sub *fakeSub) end() {
	if !sub.done {
		sub.done = true
		delete(sub.s.subs[sub.acct], sub)
		close(sub.ch)
	}
}

func (s *fakeStore) Watch(ctx context.Context, acct mail.AccountID) (meta.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.acct(acct); err != nil {
		return nil, err
	}
	sub := &fakeSub{s: s, acct: acct, ch: make(chan meta.Event, 4096)}
	if s.subs[acct] == nil {
		s.subs[acct] = map[*fakeSub]bool{}
	}
	s.subs[acct][sub] = true
	return sub, nil
}

func (sub *fakeSub) C() <-chan meta.Event { return sub.ch }

func (sub *fakeSub) Err() error {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	return sub.err
}

func (sub *fakeSub) Close() error {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	sub.end()
	return nil
}

// ---- Leases ----

func (s *fakeStore) AcquireLease(ctx context.Context, acct mail.AccountID, name, holder string, ttl time.Duration) (meta.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(acct) + "\x00" + name
	now := time.Now()
	if l := s.leases[k]; l != nil && now.Before(l.expires) {
		return meta.Lease{}, fmt.Errorf("acquire %s: %w", name, meta.ErrLeaseHeld)
	}
	s.tokens[k]++
	l := &fakeLease{token: s.tokens[k], expires: now.Add(ttl)}
	s.leases[k] = l
	return meta.Lease{Token: l.token, Expires: l.expires}, nil
}

func (s *fakeStore) RenewLease(ctx context.Context, acct mail.AccountID, name string, token uint64, ttl time.Duration) (meta.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(acct) + "\x00" + name
	now := time.Now()
	l := s.leases[k]
	if l == nil || l.token != token || !now.Before(l.expires) {
		return meta.Lease{}, fmt.Errorf("renew %s: %w", name, meta.ErrLeaseLost)
	}
	l.expires = now.Add(ttl)
	return meta.Lease{Token: l.token, Expires: l.expires}, nil
}

func (s *fakeStore) ReleaseLease(ctx context.Context, acct mail.AccountID, name string, token uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(acct) + "\x00" + name
	if l := s.leases[k]; l != nil && l.token == token {
		delete(s.leases, k)
	}
	return nil
}

// ---- Counters ----

func (s *fakeStore) IncrCounter(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	c := s.counters[key]
	if c == nil || !now.Before(c.expires) {
		c = &fakeCounter{expires: now.Add(window)}
		s.counters[key] = c
	}
	c.value += delta
	return c.value, nil
}

func (s *fakeStore) Counter(ctx context.Context, key string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counters[key]; c != nil && time.Now().Before(c.expires) {
		return c.value, nil
	}
	return 0, nil
}

// ---- Slots ----

func (s *fakeStore) slotTotal(key string, now time.Time) int64 {
	var n int64
	for h, c := range s.slots[key] {
		if !now.Before(c.expires) {
			delete(s.slots[key], h)
			continue
		}
		n += c.value
	}
	return n
}

func (s *fakeStore) AcquireSlot(ctx context.Context, key, holder string, limit int64, ttl time.Duration) (int64, error) {
	if key == "" || holder == "" || limit < 1 || ttl <= 0 {
		return 0, fmt.Errorf("acquire slot: %w", meta.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	n := s.slotTotal(key, now)
	if n >= limit {
		return n, fmt.Errorf("acquire slot %s: %w", key, meta.ErrLimit)
	}
	if s.slots[key] == nil {
		s.slots[key] = map[string]*fakeCounter{}
	}
	c := s.slots[key][holder]
	if c == nil {
		c = &fakeCounter{}
		s.slots[key][holder] = c
	}
	c.value++
	c.expires = now.Add(ttl)
	return n + 1, nil
}

func (s *fakeStore) ReleaseSlot(ctx context.Context, key, holder string) error {
	if key == "" || holder == "" {
		return fmt.Errorf("release slot: %w", meta.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slotTotal(key, time.Now())
	if c := s.slots[key][holder]; c != nil {
		if c.value--; c.value <= 0 {
			delete(s.slots[key], holder)
		}
	}
	return nil
}

func (s *fakeStore) RefreshSlots(ctx context.Context, holder string, keys []string, ttl time.Duration) error {
	if holder == "" || ttl <= 0 || slices.Contains(keys, "") {
		return fmt.Errorf("refresh slots: %w", meta.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, k := range keys {
		s.slotTotal(k, now)
		if c := s.slots[k][holder]; c != nil {
			c.expires = now.Add(ttl)
		}
	}
	return nil
}

func (s *fakeStore) SlotTotal(ctx context.Context, key string) (int64, error) {
	if key == "" {
		return 0, fmt.Errorf("slot total: %w", meta.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slotTotal(key, time.Now()), nil
}

// ---- Blobs ----

func (s *fakeStore) PendingBlobs(ctx context.Context, acct mail.AccountID, olderThan time.Time, limit int) ([]mail.BlobID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []mail.BlobID
	for b, at := range s.pending[acct] {
		if at.Before(olderThan) && len(out) < limit {
			out = append(out, b)
		}
	}
	return out, nil
}

func (s *fakeStore) ForgetBlobs(ctx context.Context, acct mail.AccountID, ids []mail.BlobID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range ids {
		delete(s.pending[acct], b)
	}
	return nil
}

func (s *fakeStore) BlobReferenced(ctx context.Context, acct mail.AccountID, id mail.BlobID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accts[acct]; a != nil {
		return a.refs[id] > 0, nil
	}
	return false, nil
}
