package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/mime"
)

const testMessage = "From: Alice <alice@example.com>\r\n" +
	"To: bob@example.org\r\n" +
	"Subject: hello\r\n" +
	"Date: Mon, 2 Jan 2006 15:04:05 -0700\r\n" +
	"Content-Type: multipart/mixed; boundary=b\r\n" +
	"\r\n" +
	"--b\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"hi \xff\x00 there\r\n" +
	"--b--\r\n"

// env is a real embedded metadata store and blob store in a temporary
// directory, with one account.
type env struct {
	meta  *localmeta.Store
	blobs *fsblob.Store
	acct  mail.AccountID
	inbox meta.Mailbox
	now   time.Time
}

func newEnv(t *testing.T, quota meta.Quota) *env {
	t.Helper()
	dir := t.TempDir()
	ms, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil, localmeta.WithNoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	bs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{meta: ms, blobs: bs, now: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	e.acct, e.inbox = e.addAccount(t, "alice", quota)
	return e
}

func (e *env) addAccount(t *testing.T, login string, quota meta.Quota) (mail.AccountID, meta.Mailbox) {
	t.Helper()
	ctx := t.Context()
	a, err := e.meta.CreateAccount(ctx, meta.NewAccount{Login: login, PasswordHash: "x", Quota: quota})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := e.meta.Mailbox(ctx, a.ID, mail.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID, mb
}

func (e *env) ingester(t *testing.T, cfg Config, m Appender, b blob.Store) *Ingester {
	t.Helper()
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if m == nil {
		m = e.meta
	}
	if b == nil {
		b = e.blobs
	}
	g, err := New(cfg, Deps{Meta: m, Blobs: b, Clock: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// blobIDs lists the account's blobs.
func (e *env) blobIDs(t *testing.T, acct mail.AccountID) []mail.BlobID {
	t.Helper()
	var ids []mail.BlobID
	if err := e.blobs.List(t.Context(), acct, func(i blob.Info) error {
		ids = append(ids, i.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func (e *env) entries(t *testing.T, acct mail.AccountID, mbox mail.MailboxID) []meta.Entry {
	t.Helper()
	es, err := e.meta.ListEntries(t.Context(), acct, mbox, mail.AllUIDs(), meta.FieldAll, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func (e *env) blobBytes(t *testing.T, acct mail.AccountID, id mail.BlobID) []byte {
	t.Helper()
	rc, err := e.blobs.Get(t.Context(), acct, id, blob.Whole)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNothingStored checks that the account has no blob and no entry.
func (e *env) assertNothingStored(t *testing.T, acct mail.AccountID, mbox mail.MailboxID) {
	t.Helper()
	if ids := e.blobIDs(t, acct); len(ids) != 0 {
		t.Errorf("blobs left: %v", ids)
	}
	if es := e.entries(t, acct, mbox); len(es) != 0 {
		t.Errorf("entries left: %+v", es)
	}
}

// checkingAppender checks, when AppendEntry is called, that the blob is
// already durable in the blob store, and records the call.
type checkingAppender struct {
	Appender
	blobs blob.Store
	t     *testing.T
	mu    sync.Mutex
	calls int
	fail  error
}

func (c *checkingAppender) AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) (meta.Appended, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	info, err := c.blobs.Stat(ctx, acct, e.Blob)
	if err != nil {
		c.t.Errorf("AppendEntry before the blob is stored: %v", err)
	} else if info.Size != e.Size {
		c.t.Errorf("blob size %d, entry size %d", info.Size, e.Size)
	}
	if c.fail != nil {
		return meta.Appended{}, c.fail
	}
	return c.Appender.AppendEntry(ctx, acct, mbox, e)
}

// failingBlobs fails Put or Delete.
type failingBlobs struct {
	blob.Store
	putErr, deleteErr error
	// trustSize: read only PutOptions.Size bytes, as a store streaming
	// to S3 with a known content length may.
	trustSize bool
}

func (f *failingBlobs) Put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m blob.Meta, o blob.PutOptions) (blob.Info, error) {
	if f.putErr != nil {
		return blob.Info{}, f.putErr
	}
	if f.trustSize && o.Size >= 0 {
		r = io.LimitReader(r, o.Size)
	}
	return f.Store.Put(ctx, acct, id, r, m, o)
}

func (f *failingBlobs) Delete(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
	if f.deleteErr != nil {
		return f.deleteErr
	}
	return f.Store.Delete(ctx, acct, id)
}

func TestIngest(t *testing.T) {
	e := newEnv(t, meta.Quota{})
	ca := &checkingAppender{Appender: e.meta, blobs: e.blobs, t: t}
	g := e.ingester(t, Config{}, ca, nil)
	date := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, size := range []int64{-1, int64(len(testMessage))} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			res, err := g.Ingest(t.Context(), Request{
				Target:       Target{Account: e.acct, Mailbox: e.inbox.ID, MailboxName: mail.Inbox, Flags: []mail.Flag{mail.FlagSeen}},
				InternalDate: date,
				Size:         size,
				Body:         iotest.OneByteReader(strings.NewReader(testMessage)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Size != int64(len(testMessage)) || res.Appended.Mailbox != e.inbox.ID || res.Appended.UID == 0 {
				t.Errorf("result = %+v", res)
			}
			// The entry is committed when Ingest returns, pointing at a
			// blob that holds exactly the input.
			es, err := e.meta.ListEntries(t.Context(), e.acct, e.inbox.ID, mail.NewUIDSet(res.Appended.UID), meta.FieldAll, 0)
			if err != nil || len(es) != 1 {
				t.Fatalf("entry: %+v, %v", es, err)
			}
			ent := es[0]
			if ent.Blob != res.Blob || ent.Size != res.Size || !ent.InternalDate.Equal(date) || !reflect.DeepEqual(ent.Flags, []mail.Flag{mail.FlagSeen}) {
				t.Errorf("entry = %+v", ent)
			}
			if got := e.blobBytes(t, e.acct, res.Blob); !bytes.Equal(got, []byte(testMessage)) {
				t.Errorf("blob = %q", got)
			}
			info, err := e.blobs.Stat(t.Context(), e.acct, res.Blob)
			if err != nil || info.Meta.Mailbox != mail.Inbox || !info.Meta.InternalDate.Equal(date) {
				t.Errorf("blob info = %+v, %v", info, err)
			}
			st, err := mime.UnmarshalStructure(ent.Structure)
			if err != nil {
				t.Fatal(err)
			}
			if st.Envelope.Subject != "hello" || st.Size != int64(len(testMessage)) || len(st.Root.Children) != 1 {
				t.Errorf("structure = %+v", st)
			}
			leaf := st.Root.Children[0]
			if body := testMessage[leaf.BodyOffset:leaf.End]; body != "hi \xff\x00 there" {
				t.Errorf("leaf body = %q", body)
			}
		})
	}
	if ca.calls != 2 {
		t.Errorf("AppendEntry called %d times", ca.calls)
	}
}

// errAfter reads n bytes of s, then fails.
type errAfter struct {
	r   io.Reader
	n   int
	err error
}

func (r *errAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	if len(p) > r.n {
		p = p[:r.n]
	}
	n, err := r.r.Read(p)
	r.n -= n
	return n, err
}

func TestIngestFailures(t *testing.T) {
	errRead := errors.New("connection reset")
	tests := []struct {
		name    string
		cfg     Config
		quota   meta.Quota
		putErr  error
		delErr  error
		trust   bool
		mailbox mail.MailboxID // 0: INBOX
		size    int64
		body    func() io.Reader
		wantErr error
		// wantAppend: AppendEntry is reached.
		wantAppend bool
	}{
		{
			name:    "blob put fails",
			putErr:  fmt.Errorf("put: %w", blob.ErrUnavailable),
			size:    -1,
			wantErr: blob.ErrUnavailable,
		},
		{
			name:       "over quota",
			quota:      meta.Quota{LimitBytes: 10},
			size:       -1,
			wantErr:    meta.ErrOverQuota,
			wantAppend: true,
		},
		{
			name:       "no such mailbox",
			mailbox:    999,
			size:       -1,
			wantErr:    meta.ErrNoSuchMailbox,
			wantAppend: true,
		},
		{
			name:       "append fails and delete fails too",
			mailbox:    999,
			delErr:     blob.ErrUnavailable,
			size:       -1,
			wantErr:    meta.ErrNoSuchMailbox,
			wantAppend: true,
		},
		{
			name:    "too large, size unknown",
			cfg:     Config{MaxMessageSize: 50},
			size:    -1,
			wantErr: blob.ErrTooLarge,
		},
		{
			name:    "too large, size announced",
			cfg:     Config{MaxMessageSize: 50},
			size:    int64(len(testMessage)),
			wantErr: blob.ErrTooLarge,
		},
		{
			name:    "reader fails midway",
			size:    -1,
			body:    func() io.Reader { return &errAfter{r: strings.NewReader(testMessage), n: 40, err: errRead} },
			wantErr: errRead,
		},
		{
			name:    "reader fails midway with size",
			size:    int64(len(testMessage)),
			body:    func() io.Reader { return &errAfter{r: strings.NewReader(testMessage), n: 40, err: errRead} },
			wantErr: errRead,
		},
		{
			name: "body longer than announced",
			size: 10,
			// fsblob notices (ErrInvalidArgument); a store that trusts
			// Size gets ErrSizeMismatch from us. Nothing is stored.
		},
		{
			name:    "body longer than announced, store trusts the size",
			size:    10,
			trust:   true,
			wantErr: ErrSizeMismatch,
		},
		{
			name: "body shorter than announced",
			size: int64(len(testMessage)) + 10,
			// The blob store may notice first; either way nothing is stored.
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.quota)
			ca := &checkingAppender{Appender: e.meta, blobs: e.blobs, t: t}
			fb := &failingBlobs{Store: e.blobs, putErr: tc.putErr, deleteErr: tc.delErr, trustSize: tc.trust}
			g := e.ingester(t, tc.cfg, ca, fb)
			mbox := e.inbox.ID
			if tc.mailbox != 0 {
				mbox = tc.mailbox
			}
			body := io.Reader(strings.NewReader(testMessage))
			if tc.body != nil {
				body = tc.body()
			}
			_, err := g.Ingest(t.Context(), Request{
				Target: Target{Account: e.acct, Mailbox: mbox, MailboxName: "INBOX"},
				Size:   tc.size,
				Body:   body,
			})
			if err == nil {
				t.Fatal("Ingest succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if (ca.calls > 0) != tc.wantAppend {
				t.Errorf("AppendEntry called %d times", ca.calls)
			}
			if tc.delErr != nil {
				// The blob stays for the sweep; remove it to check the rest.
				for _, id := range e.blobIDs(t, e.acct) {
					if err := e.blobs.Delete(t.Context(), e.acct, id); err != nil {
						t.Fatal(err)
					}
				}
			}
			e.assertNothingStored(t, e.acct, e.inbox.ID)
		})
	}
}

func TestIngestMany(t *testing.T) {
	tests := []struct {
		name        string
		spoolMemory int64
		body        func() (io.Reader, int64)
	}{
		{"spool in memory", 1 << 20, func() (io.Reader, int64) { return strings.NewReader(testMessage), -1 }},
		{"spool to file", 16, func() (io.Reader, int64) { return iotest.HalfReader(strings.NewReader(testMessage)), -1 }},
		{"reader at", 16, func() (io.Reader, int64) { return strings.NewReader(testMessage), int64(len(testMessage)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, meta.Quota{})
			bobAcct, bobInbox := e.addAccount(t, "bob", meta.Quota{})
			carolAcct, carolInbox := e.addAccount(t, "carol", meta.Quota{LimitBytes: 10})
			g := e.ingester(t, Config{SpoolMemory: tc.spoolMemory, SpoolDir: t.TempDir()}, nil, nil)
			body, size := tc.body()
			res, err := g.IngestMany(t.Context(), Delivery{
				Targets: []Target{
					{Account: e.acct, Mailbox: e.inbox.ID, MailboxName: mail.Inbox},
					{Account: bobAcct, Mailbox: bobInbox.ID, MailboxName: mail.Inbox, Flags: []mail.Flag{"$Junk"}},
					{Account: carolAcct, Mailbox: carolInbox.ID, MailboxName: mail.Inbox},
					{Account: bobAcct, Mailbox: 999, MailboxName: "gone"},
				},
				Size: size,
				Body: body,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 4 {
				t.Fatalf("%d results", len(res))
			}
			for i, acct := range []mail.AccountID{e.acct, bobAcct} {
				r := res[i]
				if r.Err != nil {
					t.Fatalf("target %d: %v", i, r.Err)
				}
				if got := e.blobBytes(t, acct, r.Blob); string(got) != testMessage {
					t.Errorf("target %d: blob = %q", i, got)
				}
				if r.Structure == nil || r.Structure.Envelope.Subject != "hello" {
					t.Errorf("target %d: structure %+v", i, r.Structure)
				}
			}
			if res[0].Blob == res[1].Blob {
				t.Error("targets share a blob id")
			}
			if !errors.Is(res[2].Err, meta.ErrOverQuota) || !errors.Is(res[3].Err, meta.ErrNoSuchMailbox) {
				t.Errorf("errors = %v, %v", res[2].Err, res[3].Err)
			}
			e.assertNothingStored(t, carolAcct, carolInbox.ID)
			if n := len(e.blobIDs(t, bobAcct)); n != 1 {
				t.Errorf("bob has %d blobs, want 1", n)
			}
		})
	}
}

func TestIngestManyTooLarge(t *testing.T) {
	errRead := errors.New("connection reset")
	tests := []struct {
		name    string
		body    io.Reader
		size    int64
		wantErr error
	}{
		{"unknown size", strings.NewReader(testMessage), -1, blob.ErrTooLarge},
		{"announced", strings.NewReader(testMessage), int64(len(testMessage)), blob.ErrTooLarge},
		{"read error", &errAfter{r: strings.NewReader(testMessage), n: 20, err: errRead}, -1, errRead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, meta.Quota{})
			max := int64(50)
			if !errors.Is(tc.wantErr, blob.ErrTooLarge) {
				max = 0
			}
			g := e.ingester(t, Config{MaxMessageSize: max, SpoolMemory: 8, SpoolDir: t.TempDir()}, nil, nil)
			_, err := g.IngestMany(t.Context(), Delivery{
				Targets: []Target{{Account: e.acct, Mailbox: e.inbox.ID}},
				Size:    tc.size,
				Body:    tc.body,
			})
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			e.assertNothingStored(t, e.acct, e.inbox.ID)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{MaxMessageSize: DefaultMaxMessageSize}, true},
		{"zero size", Config{}, false},
		{"negative spool", Config{MaxMessageSize: 1, SpoolMemory: -1}, false},
		{"negative limits", Config{MaxMessageSize: 1, Limits: mime.Limits{MaxDepth: -1}}, false},
		{"append retry", Config{MaxMessageSize: 1, AppendRetry: DefaultAppendRetry}, true},
		{"negative append retry", Config{MaxMessageSize: 1, AppendRetry: -time.Second}, false},
		{"append retry past the replay window", Config{MaxMessageSize: 1, AppendRetry: meta.AppendReplayWindow}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

// TestIngestUnknownOutcomeKeepsBlob: when the metadata store fails in a
// way that may have committed the entry (unavailable, a deadline), the blob
// must stay: deleting it could leave an entry pointing at nothing. The
// caller learns the blob id.
func TestIngestUnknownOutcomeKeepsBlob(t *testing.T) {
	for _, fail := range []error{
		fmt.Errorf("append: %w", meta.ErrUnavailable),
		context.DeadlineExceeded,
	} {
		t.Run(fail.Error(), func(t *testing.T) {
			e := newEnv(t, meta.Quota{})
			acct, inbox := e.addAccount(t, "unknown@example.com", meta.Quota{})
			ca := &checkingAppender{Appender: e.meta, blobs: e.blobs, t: t, fail: fail}
			g := e.ingester(t, Config{}, ca, e.blobs)
			res, err := g.Ingest(t.Context(), Request{
				Target: Target{Account: acct, Mailbox: inbox.ID, MailboxName: mail.Inbox},
				Size:   -1, Body: strings.NewReader(testMessage),
			})
			if !errors.Is(err, fail) {
				t.Fatalf("Ingest error = %v, want %v", err, fail)
			}
			if res.Blob == "" {
				t.Fatal("Result.Blob is empty after an unknown outcome")
			}
			if got := e.blobBytes(t, acct, res.Blob); string(got) != testMessage {
				t.Fatalf("kept blob holds %q", got)
			}
		})
	}
}

// lossyAppender loses answers: its first lose calls fail with
// meta.ErrUnavailable, after committing the entry when commit is set (the
// answer was lost) or without (the request was).
type lossyAppender struct {
	Appender
	commit bool
	mu     sync.Mutex
	lose   int
	calls  int
}

func (l *lossyAppender) AppendEntry(ctx context.Context, acct mail.AccountID, mbox mail.MailboxID, e meta.NewEntry) (meta.Appended, error) {
	l.mu.Lock()
	l.calls++
	lost := l.calls <= l.lose
	l.mu.Unlock()
	if !lost {
		return l.Appender.AppendEntry(ctx, acct, mbox, e)
	}
	if l.commit {
		if _, err := l.Appender.AppendEntry(ctx, acct, mbox, e); err != nil {
			return meta.Appended{}, err
		}
	}
	return meta.Appended{}, fmt.Errorf("append: %w", meta.ErrUnavailable)
}

// TestIngestRetriesUnknownOutcome: an append whose answer was lost is
// retried with the same blob, and the message is stored exactly once
// whether the lost attempts committed or not; without AppendRetry, or
// when the store stays unreachable, the unknown outcome is reported.
func TestIngestRetriesUnknownOutcome(t *testing.T) {
	tests := []struct {
		name   string
		retry  time.Duration
		commit bool
		lose   int
		ok     bool
	}{
		{"AnswerLostOnce", time.Minute, true, 1, true},
		{"AnswerLostThrice", time.Minute, true, 3, true},
		{"RequestLostTwice", time.Minute, false, 2, true},
		{"NoRetry", 0, true, 1, false},
		{"StaysUnreachable", 300 * time.Millisecond, false, 1 << 30, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, meta.Quota{})
			la := &lossyAppender{Appender: e.meta, commit: tc.commit, lose: tc.lose}
			g := e.ingester(t, Config{AppendRetry: tc.retry}, la, e.blobs)
			res, err := g.Ingest(t.Context(), Request{
				Target: Target{Account: e.acct, Mailbox: e.inbox.ID, MailboxName: mail.Inbox},
				Size:   -1, Body: strings.NewReader(testMessage),
			})
			got := e.entries(t, e.acct, e.inbox.ID)
			if !tc.ok {
				if !errors.Is(err, meta.ErrUnavailable) {
					t.Fatalf("Ingest error = %v, want ErrUnavailable", err)
				}
				if want := map[bool]int{true: 1, false: 0}[tc.commit]; len(got) != want {
					t.Errorf("%d entries after an unknown outcome, want %d", len(got), want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Ingest: %v (after %d calls)", err, la.calls)
			}
			if len(got) != 1 || got[0].UID != res.Appended.UID || got[0].Blob != res.Blob {
				t.Fatalf("entries %+v, want exactly the one answered (UID %d, blob %s)", got, res.Appended.UID, res.Blob)
			}
			if la.calls != tc.lose+1 {
				t.Errorf("%d AppendEntry calls, want %d", la.calls, tc.lose+1)
			}
			if a, err := e.meta.Account(t.Context(), e.acct); err != nil || a.Quota.UsedMessages != 1 {
				t.Errorf("account %+v, %v: want 1 message counted", a.Quota, err)
			}
		})
	}
}
