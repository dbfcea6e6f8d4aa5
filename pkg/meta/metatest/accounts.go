package metatest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
)

func accountTests() []test {
	return []test{
		{"CreateWithDefaultMailboxes", testCreateAccount},
		{"LoginCaseInsensitiveUnique", testLoginUnique},
		{"InvalidLogin", testInvalidLogin},
		{"Lookup", testLookup},
		{"ListOrderedByLogin", testListAccounts},
		{"Update", testUpdateAccount},
		{"Disable", testDisableAccount},
		{"Delete", testDeleteAccount},
		{"ResetIndex", testResetIndex},
	}
}

// sameAccount compares two records; Created may lose sub-second precision
// in a backend.
func sameAccount(t testing.TB, what string, got, want meta.Account) {
	t.Helper()
	gc, wc := got.Created, want.Created
	got.Created, want.Created = time.Time{}, time.Time{}
	if gc.Sub(wc).Abs() > time.Second {
		t.Errorf("%s: Created = %v, want %v", what, gc, wc)
	}
	if got.ID != want.ID || got.Login != want.Login || got.PasswordHash != want.PasswordHash ||
		got.Quota != want.Quota || got.POP3 != want.POP3 || got.Disabled != want.Disabled ||
		got.SieveScript != want.SieveScript || !slices.Equal(got.Aliases, want.Aliases) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testCreateAccount(t *testing.T, s meta.Store) {
	login := "Mixed.Case" + uniq() + "@Example.COM"
	before := time.Now()
	a, err := s.CreateAccount(ctx(t), meta.NewAccount{
		Login:        login,
		PasswordHash: testHash,
		Quota:        meta.Quota{LimitBytes: 1 << 20, LimitMessages: 100},
	})
	noErr(t, "create account", err)
	if a.ID == "" || strings.Trim(string(a.ID), "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("account id %q: want non-empty, only [0-9a-z]", a.ID)
	}
	if a.Login != strings.ToLower(login) {
		t.Errorf("Login = %q, want canonical %q", a.Login, strings.ToLower(login))
	}
	if a.PasswordHash != testHash {
		t.Errorf("PasswordHash = %q, want %q", a.PasswordHash, testHash)
	}
	if want := (meta.Quota{LimitBytes: 1 << 20, LimitMessages: 100}); a.Quota != want {
		t.Errorf("Quota = %+v, want %+v", a.Quota, want)
	}
	if a.Disabled || a.SieveScript != "" || a.POP3 != (meta.POP3Policy{}) {
		t.Errorf("new account %+v: want enabled, no sieve script, default POP3 policy", a)
	}
	if a.Created.Before(before.Add(-time.Minute)) || a.Created.After(time.Now().Add(time.Minute)) {
		t.Errorf("Created = %v, want about %v", a.Created, before)
	}
	sameAccount(t, "Account after create", account(t, s, a.ID), a)

	boxes, err := s.ListMailboxes(ctx(t), a.ID)
	noErr(t, "list mailboxes", err)
	var want []string
	special := map[string]string{}
	for _, d := range mail.DefaultMailboxes {
		want = append(want, d.Name)
		special[d.Name] = d.SpecialUse
	}
	slices.Sort(want)
	var got []string
	ids := map[mail.MailboxID]bool{}
	for _, mb := range boxes {
		got = append(got, mb.Name)
		if mb.SpecialUse != special[mb.Name] {
			t.Errorf("mailbox %q: SpecialUse = %q, want %q", mb.Name, mb.SpecialUse, special[mb.Name])
		}
		if mb.UIDValidity == 0 || mb.UIDNext != 1 || mb.Messages != 0 || mb.Unseen != 0 || mb.Size != 0 {
			t.Errorf("new mailbox %+v: want UIDVALIDITY > 0, UIDNEXT 1, no messages", mb)
		}
		if ids[mb.ID] {
			t.Errorf("mailbox %q: id %d used twice", mb.Name, mb.ID)
		}
		ids[mb.ID] = true
	}
	if !slices.Equal(got, want) {
		t.Errorf("default mailboxes = %q, want %q", got, want)
	}
}

func testLoginUnique(t *testing.T, s meta.Store) {
	base := "Bob" + uniq() + "@Example.org"
	a, err := s.CreateAccount(ctx(t), meta.NewAccount{Login: base, PasswordHash: testHash})
	noErr(t, "create account", err)
	for _, login := range []string{base, strings.ToLower(base), strings.ToUpper(base)} {
		_, err := s.CreateAccount(ctx(t), meta.NewAccount{Login: login, PasswordHash: testHash})
		wantErr(t, "create account "+login, err, meta.ErrExists)
	}
	for _, login := range []string{base, strings.ToLower(base), strings.ToUpper(base)} {
		got, err := s.LookupLogin(ctx(t), login)
		if err != nil {
			t.Errorf("lookup %q: %v", login, err)
			continue
		}
		sameAccount(t, "lookup "+login, got, a)
	}
	all, err := s.ListAccounts(ctx(t))
	noErr(t, "list accounts", err)
	n := 0
	for _, x := range all {
		if strings.EqualFold(x.Login, base) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("ListAccounts holds %d accounts with login %q, want 1", n, base)
	}
}

func testInvalidLogin(t *testing.T, s meta.Store) {
	for _, tc := range []struct{ name, login string }{
		{"empty", ""},
		{"blank", "   "},
		{"nul", "bad\x00login"},
		{"newline", "new\nline@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateAccount(ctx(t), meta.NewAccount{Login: tc.login, PasswordHash: testHash})
			wantErr(t, "create account", err, meta.ErrInvalidArgument)
		})
	}
}

func testLookup(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	got, err := s.LookupLogin(ctx(t), a.Login)
	noErr(t, "lookup login", err)
	sameAccount(t, "lookup", got, a)
	sameAccount(t, "account by id", account(t, s, a.ID), a)

	_, err = s.LookupLogin(ctx(t), "nobody"+uniq()+"@example.com")
	wantErr(t, "lookup unknown login", err, meta.ErrNoSuchAccount)

	gone := NewAccount(t, s)
	noErr(t, "delete account", s.DeleteAccount(ctx(t), gone.ID))
	_, err = s.Account(ctx(t), gone.ID)
	wantErr(t, "account by unknown id", err, meta.ErrNoSuchAccount)
}

func testListAccounts(t *testing.T, s meta.Store) {
	suffix := uniq() + "@example.com"
	ids := map[string]mail.AccountID{}
	for _, p := range []string{"carol", "alice", "Dave", "bob"} {
		a, err := s.CreateAccount(ctx(t), meta.NewAccount{Login: p + suffix, PasswordHash: testHash})
		noErr(t, "create account", err)
		ids[a.Login] = a.ID
	}
	all, err := s.ListAccounts(ctx(t))
	noErr(t, "list accounts", err)
	var logins []string
	for _, a := range all {
		logins = append(logins, a.Login)
		if id, ok := ids[a.Login]; ok && id != a.ID {
			t.Errorf("account %q: id %s, want %s", a.Login, a.ID, id)
		}
	}
	if !slices.IsSorted(logins) {
		t.Errorf("ListAccounts not ordered by login: %q", logins)
	}
	var mine []string
	for _, l := range logins {
		if _, ok := ids[l]; ok {
			mine = append(mine, l)
		}
	}
	want := []string{"alice" + suffix, "bob" + suffix, "carol" + suffix, "dave" + suffix}
	if !slices.Equal(mine, want) {
		t.Errorf("ListAccounts holds %q of the created accounts, want %q", mine, want)
	}
}

func testUpdateAccount(t *testing.T, s meta.Store) {
	hash := "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaG5ld2hhc2g"
	limitBytes, limitMsgs := int64(5<<20), int64(500)
	disabled := true
	pop3 := meta.POP3Policy{Mode: meta.POP3KeepDays, KeepDays: 14, LoginDelay: 60}
	sieve := "require \"fileinto\";\nfileinto \"Junk\";\n"
	a := NewAccount(t, s)
	for _, tc := range []struct {
		name   string
		update meta.AccountUpdate
		apply  func(*meta.Account)
	}{
		{"Nothing", meta.AccountUpdate{}, func(*meta.Account) {}},
		{"PasswordHash", meta.AccountUpdate{PasswordHash: &hash}, func(a *meta.Account) { a.PasswordHash = hash }},
		{"LimitBytes", meta.AccountUpdate{LimitBytes: &limitBytes}, func(a *meta.Account) { a.Quota.LimitBytes = limitBytes }},
		{"LimitMsgs", meta.AccountUpdate{LimitMsgs: &limitMsgs}, func(a *meta.Account) { a.Quota.LimitMessages = limitMsgs }},
		{"Disabled", meta.AccountUpdate{Disabled: &disabled}, func(a *meta.Account) { a.Disabled = true }},
		{"POP3", meta.AccountUpdate{POP3: &pop3}, func(a *meta.Account) { a.POP3 = pop3 }},
		{"SieveScript", meta.AccountUpdate{SieveScript: &sieve}, func(a *meta.Account) { a.SieveScript = sieve }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := a
			tc.apply(&want)
			got, err := s.UpdateAccount(ctx(t), a.ID, tc.update)
			noErr(t, "update account", err)
			sameAccount(t, "returned record", got, want)
			sameAccount(t, "stored record", account(t, s, a.ID), want)
			a = want
		})
	}
	_, err := s.UpdateAccount(ctx(t), deletedAccount(t, s), meta.AccountUpdate{PasswordHash: &hash})
	wantErr(t, "update unknown account", err, meta.ErrNoSuchAccount)
}

// deletedAccount returns the id of an account that existed and was
// deleted: the most realistic unknown account.
func deletedAccount(t testing.TB, s meta.Store) mail.AccountID {
	t.Helper()
	a := NewAccount(t, s)
	noErr(t, "delete account", s.DeleteAccount(ctx(t), a.ID))
	return a.ID
}

func testDisableAccount(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	ap := Append(t, s, a.ID, inbox(t, s, a.ID).ID)
	on, off := true, false
	got, err := s.UpdateAccount(ctx(t), a.ID, meta.AccountUpdate{Disabled: &on})
	noErr(t, "disable", err)
	if !got.Disabled {
		t.Errorf("after disable: Disabled = false")
	}
	l, err := s.LookupLogin(ctx(t), a.Login)
	noErr(t, "lookup disabled account", err)
	if !l.Disabled || l.ID != a.ID {
		t.Errorf("lookup disabled account: %+v, want id %s disabled", l, a.ID)
	}
	// Disabling keeps the data.
	if es := entries(t, s, a.ID, ap.Mailbox); len(es) != 1 || es[0].UID != ap.UID {
		t.Errorf("entries of disabled account = %v, want UID %d", entryUIDs(es), ap.UID)
	}
	got, err = s.UpdateAccount(ctx(t), a.ID, meta.AccountUpdate{Disabled: &off})
	noErr(t, "enable", err)
	if got.Disabled || account(t, s, a.ID).Disabled {
		t.Errorf("after enable: still disabled")
	}
}

func testDeleteAccount(t *testing.T, s meta.Store) {
	a := NewAccount(t, s)
	in := inbox(t, s, a.ID)
	other := createMailbox(t, s, a.ID, "Other")
	var blobs []mail.BlobID
	for i := 0; i < 3; i++ {
		e := NewEntry()
		appendEntry(t, s, a.ID, in.ID, e)
		blobs = append(blobs, e.Blob)
	}
	e := NewEntry(mail.FlagSeen)
	ap := appendEntry(t, s, a.ID, other.ID, e)
	blobs = append(blobs, e.Blob)
	// A shared blob is queued once its last entry goes with the account.
	_, err := s.Copy(ctx(t), a.ID, other.ID, mail.NewUIDSet(ap.UID), in.ID)
	noErr(t, "copy", err)

	noErr(t, "delete account", s.DeleteAccount(ctx(t), a.ID))

	_, err = s.Account(ctx(t), a.ID)
	wantErr(t, "account after delete", err, meta.ErrNoSuchAccount)
	_, err = s.LookupLogin(ctx(t), a.Login)
	wantErr(t, "lookup after delete", err, meta.ErrNoSuchAccount)
	_, err = s.ListMailboxes(ctx(t), a.ID)
	wantErr(t, "list mailboxes after delete", err, meta.ErrNoSuchAccount)
	_, err = s.ListEntries(ctx(t), a.ID, in.ID, mail.AllUIDs(), meta.FieldAll, 0)
	wantErr(t, "list entries after delete", err, meta.ErrNoSuchAccount)
	all, err := s.ListAccounts(ctx(t))
	noErr(t, "list accounts", err)
	for _, x := range all {
		if x.ID == a.ID {
			t.Errorf("ListAccounts still holds deleted account %s", a.ID)
		}
	}

	pending := pendingSet(t, s, a.ID, later())
	for _, b := range blobs {
		if !pending[b] {
			t.Errorf("blob %s of the deleted account is not pending deletion", b)
		}
		if ok, err := s.BlobReferenced(ctx(t), a.ID, b); err == nil && ok {
			t.Errorf("blob %s still referenced after account delete", b)
		} else if err != nil {
			wantErr(t, "blob referenced after delete", err, meta.ErrNoSuchAccount)
		}
	}
	if len(pending) != len(blobs) {
		t.Errorf("%d blobs pending, want %d", len(pending), len(blobs))
	}
	noErr(t, "forget blobs", s.ForgetBlobs(ctx(t), a.ID, blobs))
	if p := pendingSet(t, s, a.ID, later()); len(p) != 0 {
		t.Errorf("pending after forget: %v", p)
	}

	wantErr(t, "delete again", s.DeleteAccount(ctx(t), a.ID), meta.ErrNoSuchAccount)

	// The login is free again, for a new account.
	b, err := s.CreateAccount(ctx(t), meta.NewAccount{Login: a.Login, PasswordHash: testHash})
	noErr(t, "create account with the login of a deleted one", err)
	if b.ID == a.ID {
		t.Errorf("new account reuses id %s of the deleted one", a.ID)
	}
	if es := entries(t, s, b.ID, inbox(t, s, b.ID).ID); len(es) != 0 {
		t.Errorf("new account inherits entries %v", entryUIDs(es))
	}
}

func testResetIndex(t *testing.T, s meta.Store) {
	a, err := s.CreateAccount(ctx(t), meta.NewAccount{
		Login: "reset" + uniq() + "@example.com", PasswordHash: testHash,
		Quota: meta.Quota{LimitBytes: 1 << 30, LimitMessages: 1000},
	})
	noErr(t, "create account", err)
	in := inbox(t, s, a.ID)
	other := createMailbox(t, s, a.ID, "Other")
	var blobs []mail.BlobID
	for _, mb := range []mail.MailboxID{in.ID, in.ID, other.ID} {
		e := NewEntry()
		appendEntry(t, s, a.ID, mb, e)
		blobs = append(blobs, e.Blob)
	}

	noErr(t, "reset index", s.ResetIndex(ctx(t), a.ID))

	got := account(t, s, a.ID)
	want := a
	want.Quota.UsedBytes, want.Quota.UsedMessages = 0, 0
	sameAccount(t, "account after reset", got, want)
	boxes, err := s.ListMailboxes(ctx(t), a.ID)
	noErr(t, "list mailboxes", err)
	if len(boxes) != 0 {
		t.Errorf("mailboxes after reset: %+v, want none", boxes)
	}
	_, err = s.Mailbox(ctx(t), a.ID, mail.Inbox)
	wantErr(t, "INBOX after reset", err, meta.ErrNoSuchMailbox)
	_, err = s.MailboxByID(ctx(t), a.ID, other.ID)
	wantErr(t, "mailbox by old id after reset", err, meta.ErrNoSuchMailbox)
	for _, b := range blobs {
		if referenced(t, s, a.ID, b) {
			t.Errorf("blob %s still referenced after reset", b)
		}
	}
	if p := pendingSet(t, s, a.ID, later()); len(p) != 0 {
		t.Errorf("reset queued blobs for deletion: %v", p)
	}

	// Recovery then recreates mailboxes: UIDVALIDITY still only grows.
	mb, err := s.CreateMailbox(ctx(t), a.ID, mail.Inbox, "")
	noErr(t, "recreate INBOX", err)
	if mb.UIDValidity <= in.UIDValidity {
		t.Errorf("recreated INBOX UIDVALIDITY %d, want > %d", mb.UIDValidity, in.UIDValidity)
	}
	if mb.ID == in.ID || mb.ID == other.ID {
		t.Errorf("recreated INBOX reuses mailbox id %d", mb.ID)
	}
	ap := Append(t, s, a.ID, mb.ID)
	if ap.UIDValidity != mb.UIDValidity {
		t.Errorf("append UIDVALIDITY %d, want %d", ap.UIDValidity, mb.UIDValidity)
	}
	CheckAccount(t, s, a.ID)
}
