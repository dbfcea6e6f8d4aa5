package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/grpcblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
	adminv1 "github.com/mailstore/mailstore/proto/mailstore/admin/v1"
	blobv1 "github.com/mailstore/mailstore/proto/mailstore/blob/v1"
	metadatav1 "github.com/mailstore/mailstore/proto/mailstore/metadata/v1"
)

// recordingConn is a gRPC client connection that records the methods
// called through it, so that each isolation case proves which RPC it ran.
type recordingConn struct {
	cc grpc.ClientConnInterface
	mu sync.Mutex
	m  map[string]bool
}

func (r *recordingConn) record(method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[method] = true
}

func (r *recordingConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	r.record(method)
	return r.cc.Invoke(ctx, method, args, reply, opts...)
}

func (r *recordingConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	r.record(method)
	return r.cc.NewStream(ctx, desc, method, opts...)
}

// take returns the methods called since the last take.
func (r *recordingConn) take() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.m
	r.m = map[string]bool{}
	return m
}

// methodsOf lists a service's RPCs, unary and streaming, by short name.
func methodsOf(d grpc.ServiceDesc) []string {
	var out []string
	for _, m := range d.Methods {
		out = append(out, m.MethodName)
	}
	for _, s := range d.Streams {
		out = append(out, s.StreamName)
	}
	return out
}

// refused reports whether err is one of the answers that keep another
// account's objects out of reach.
func refused(err error) bool {
	for _, want := range []error{meta.ErrNoSuchMailbox, meta.ErrNoSuchMessage, meta.ErrNoSuchAccount,
		meta.ErrPermission, meta.ErrInvalidArgument, meta.ErrLeaseLost, blob.ErrNotFound, blob.ErrInvalidArgument} {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

// snapshot is the Redis state of one account: each key under its hash
// tag and a DUMP of its value.
func snapshot(t *testing.T, rdb *redis.Client, prefix string, acct mail.AccountID) map[string]string {
	t.Helper()
	ctx := t.Context()
	keys, err := rdb.Keys(ctx, prefix+"{a:"+string(acct)+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		v, err := rdb.Dump(ctx, k).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// TestAccountIsolation: two accounts A and B on Redis and S3 behind the
// metadata and blob services. Every RPC of both services is called with
// B's account id and A's mailbox ids, UIDs, blob ids, lease tokens or
// names, and answers NotFound (or the contract's refusal) while A's keys
// and objects stay as they were. Then mailbox names, flags and lease
// names made to escape stay inside B's keys. The RPC list comes from the
// generated service descriptors: a new RPC without a case fails the test.
func TestAccountIsolation(t *testing.T) {
	s3 := testenv.S3(t, testenv.VersityGW)
	redisAddr, prefix := testenv.Redis(t), testenv.Prefix(t)
	_, flags := s3Flags(t, s3)
	var bucket string
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "-blob.s3.bucket="); ok {
			bucket = v
		}
	}
	blobAddr, metaAddr := freeAddr(t), freeAddr(t)
	env := []string{"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey}
	startProc(t, "blob", env, append([]string{"-target=blob", "-blob.listen-address=" + blobAddr}, flags...)...)
	startProc(t, "metadata", nil, "-target=metadata", "-metadata.listen-address="+metaAddr, "-blob.address="+blobAddr,
		"-metadata.backend=redis", "-metadata.redis.addrs="+redisAddr, "-metadata.redis.key-prefix="+prefix)

	ctx := t.Context()
	metaRec := &recordingConn{cc: dial(t, metaAddr), m: map[string]bool{}}
	blobRec := &recordingConn{cc: dial(t, blobAddr), m: map[string]bool{}}
	adminRec := &recordingConn{cc: dial(t, metaAddr), m: map[string]bool{}}
	m := grpcmeta.New(metaRec)
	blobs := grpcblob.New(blobRec)
	admin := adminv1.NewAdminServiceClient(adminRec)
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { rdb.Close() })
	s3c, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}

	// A: extra mailboxes (so that its ids are past any of B's), a message
	// with flags, an alias and a held lease. B: the defaults.
	a, _ := setupAccount(t, m, "alice@example.com")
	b, _ := setupAccount(t, m, "bob@example.com")
	var aSecret meta.Mailbox
	for _, name := range []string{"Pad1", "Pad2", "Pad3", "Secret"} {
		if aSecret, err = m.CreateMailbox(ctx, a.ID, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetSubscribed(ctx, a.ID, "Secret", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddAlias(ctx, a.ID, "alice.alias@example.com"); err != nil {
		t.Fatal(err)
	}
	body := "From: a@example.org\r\nSubject: for alice only\r\n\r\nsecret body\r\n"
	res, err := newIngester(t, m, blobAddr).Ingest(ctx, ingest.Request{
		Target: ingest.Target{Account: a.ID, Mailbox: aSecret.ID, MailboxName: "Secret", Flags: []mail.Flag{mail.FlagFlagged}},
		Body:   strings.NewReader(body), Size: int64(len(body)),
	})
	if err != nil {
		t.Fatal(err)
	}
	aUID, aBlob := res.Appended.UID, res.Blob
	aLease, err := m.AcquireLease(ctx, a.ID, "pop3", "holder-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bBoxes, err := m.ListMailboxes(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	var bInbox meta.Mailbox
	for _, x := range bBoxes {
		if x.ID == aSecret.ID {
			t.Fatalf("B has a mailbox with the id of A's Secret (%d): the test needs ids B lacks", x.ID)
		}
		if x.Name == mail.Inbox {
			bInbox = x
		}
	}
	aUIDs := mail.NewUIDSet(aUID)
	before := snapshot(t, rdb, prefix, a.ID)
	metaRec.take()
	blobRec.take()
	adminRec.take()

	// expectRefused fails unless err is a refusal.
	expectRefused := func(t *testing.T, err error) {
		t.Helper()
		if !refused(err) {
			t.Fatalf("with B's account and A's ids: err %v, want NotFound or a refusal", err)
		}
	}
	type rpcCase struct {
		exempt string // why the RPC names no object of another account
		run    func(t *testing.T)
	}
	account := "takes only an account id (or none): it acts on the account it names and can name no object of another"
	global := "global, not per account: logins, addresses, shared counters and slots"

	metaCases := map[string]rpcCase{
		"Authenticate":      {exempt: global},
		"CreateAccount":     {exempt: global},
		"LookupLogin":       {exempt: global},
		"ListAccounts":      {exempt: global},
		"LookupAddress":     {exempt: global},
		"IncrCounter":       {exempt: global},
		"GetCounter":        {exempt: global},
		"AcquireSlot":       {exempt: global},
		"ReleaseSlot":       {exempt: global},
		"RefreshSlots":      {exempt: global},
		"GetSlotTotal":      {exempt: global},
		"GetAccount":        {exempt: account},
		"UpdateAccount":     {exempt: account},
		"DeleteAccount":     {exempt: account},
		"ResetIndex":        {exempt: account},
		"ListMailboxes":     {exempt: account},
		"ListSubscriptions": {exempt: account},
		"Watch":             {exempt: account},
		"PendingBlobs": {run: func(t *testing.T) {
			ids, err := m.PendingBlobs(ctx, b.ID, time.Now().Add(time.Hour), 100)
			if err != nil || slices.Contains(ids, aBlob) {
				t.Fatalf("B's pending blobs %v (err %v) hold A's blob", ids, err)
			}
		}},
		"AddAlias": {run: func(t *testing.T) {
			for _, addr := range []string{"alice@example.com", "alice.alias@example.com"} {
				if _, err := m.AddAlias(ctx, b.ID, addr); !errors.Is(err, meta.ErrExists) {
					t.Fatalf("B claims A's address %s: err %v, want ErrExists", addr, err)
				}
			}
		}},
		"RemoveAlias": {run: func(t *testing.T) {
			_, err := m.RemoveAlias(ctx, b.ID, "alice.alias@example.com")
			expectRefused(t, err)
		}},
		"CreateMailbox": {run: func(t *testing.T) {
			// B's own "Secret" is B's, apart from A's.
			bs, err := m.CreateMailbox(ctx, b.ID, "Secret", "")
			if err != nil || bs.ID == aSecret.ID {
				t.Fatalf("B's Secret: %+v, err %v", bs, err)
			}
			if err := m.DeleteMailbox(ctx, b.ID, "Secret"); err != nil {
				t.Fatal(err)
			}
		}},
		"DeleteMailbox": {run: func(t *testing.T) { expectRefused(t, m.DeleteMailbox(ctx, b.ID, "Pad1")) }},
		"RenameMailbox": {run: func(t *testing.T) { expectRefused(t, m.RenameMailbox(ctx, b.ID, "Pad2", "Stolen")) }},
		"GetMailbox": {run: func(t *testing.T) {
			_, err := m.MailboxByID(ctx, b.ID, aSecret.ID)
			expectRefused(t, err)
			_, err = m.Mailbox(ctx, b.ID, "Secret")
			expectRefused(t, err)
		}},
		"SetSubscribed": {run: func(t *testing.T) {
			// Subscriptions are names (RFC 9051 allows a name without a
			// mailbox): B's stays in B's set, A's is untouched (the
			// snapshot check).
			if err := m.SetSubscribed(ctx, b.ID, "Secret", false); err != nil && !refused(err) {
				t.Fatal(err)
			}
		}},
		"ClaimRecent": {run: func(t *testing.T) {
			_, err := m.ClaimRecent(ctx, b.ID, aSecret.ID, aUID)
			expectRefused(t, err)
		}},
		"AppendEntry": {run: func(t *testing.T) {
			_, err := m.AppendEntry(ctx, b.ID, aSecret.ID, meta.NewEntry{InternalDate: time.Now(), Size: int64(len(body)), Blob: aBlob})
			expectRefused(t, err)
		}},
		"ListEntries": {run: func(t *testing.T) {
			_, err := m.ListEntries(ctx, b.ID, aSecret.ID, mail.AllUIDs(), meta.FieldAll, 0)
			expectRefused(t, err)
		}},
		"StoreFlags": {run: func(t *testing.T) {
			_, err := m.StoreFlags(ctx, b.ID, aSecret.ID, meta.FlagChange{UIDs: aUIDs, Op: meta.FlagsReplace, Flags: []mail.Flag{mail.FlagDeleted}})
			expectRefused(t, err)
		}},
		"Expunge": {run: func(t *testing.T) {
			_, _, err := m.Expunge(ctx, b.ID, aSecret.ID, aUIDs)
			expectRefused(t, err)
		}},
		"Copy": {run: func(t *testing.T) {
			_, err := m.Copy(ctx, b.ID, aSecret.ID, aUIDs, bInbox.ID)
			expectRefused(t, err)
		}},
		"Move": {run: func(t *testing.T) {
			_, err := m.Move(ctx, b.ID, aSecret.ID, aUIDs, bInbox.ID)
			expectRefused(t, err)
		}},
		"MarkRetrieved": {run: func(t *testing.T) {
			expectRefused(t, m.MarkRetrieved(ctx, b.ID, aSecret.ID, aUIDs, time.Now()))
		}},
		"ChangesSince": {run: func(t *testing.T) {
			_, err := m.ChangesSince(ctx, b.ID, aSecret.ID, 0)
			expectRefused(t, err)
		}},
		"AcquireLease": {run: func(t *testing.T) {
			// The same lease name is B's own lease, not A's.
			l, err := m.AcquireLease(ctx, b.ID, "pop3", "holder-b", time.Minute)
			if err != nil {
				t.Fatalf("B's own pop3 lease: %v", err)
			}
			if err := m.ReleaseLease(ctx, b.ID, "pop3", l.Token); err != nil {
				t.Fatal(err)
			}
		}},
		"RenewLease": {run: func(t *testing.T) {
			_, err := m.RenewLease(ctx, b.ID, "pop3", aLease.Token, time.Hour)
			expectRefused(t, err)
		}},
		"ReleaseLease": {run: func(t *testing.T) {
			if err := m.ReleaseLease(ctx, b.ID, "pop3", aLease.Token); err != nil && !refused(err) {
				t.Fatal(err)
			}
			// A's lease is still A's.
			if _, err := m.AcquireLease(ctx, a.ID, "pop3", "intruder", time.Minute); !errors.Is(err, meta.ErrLeaseHeld) {
				t.Fatalf("A's lease after B released A's token: %v, want ErrLeaseHeld", err)
			}
		}},
		"ForgetBlobs": {run: func(t *testing.T) {
			if err := m.ForgetBlobs(ctx, b.ID, []mail.BlobID{aBlob}); err != nil && !refused(err) {
				t.Fatal(err)
			}
		}},
		"BlobReferenced": {run: func(t *testing.T) {
			if ok, err := m.BlobReferenced(ctx, b.ID, aBlob); err != nil || ok {
				t.Fatalf("A's blob referenced for B: %v, err %v", ok, err)
			}
		}},
	}
	blobCases := map[string]rpcCase{
		"Get": {run: func(t *testing.T) {
			_, err := blobs.Get(ctx, b.ID, aBlob, blob.Whole)
			expectRefused(t, err)
		}},
		"Stat": {run: func(t *testing.T) {
			_, err := blobs.Stat(ctx, b.ID, aBlob)
			expectRefused(t, err)
		}},
		"Delete": {run: func(t *testing.T) {
			if err := blobs.Delete(ctx, b.ID, aBlob); err != nil && !refused(err) {
				t.Fatal(err)
			}
		}},
		"List": {run: func(t *testing.T) {
			err := blobs.List(ctx, b.ID, func(i blob.Info) error {
				if i.ID == aBlob {
					t.Errorf("B's list holds A's blob %s", aBlob)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		"Put": {run: func(t *testing.T) {
			// A Put under B with A's blob id writes B's object, never
			// A's (the S3 check below reads A's back).
			x := "From: b@example.org\r\n\r\nnot alice's\r\n"
			_, err := blobs.Put(ctx, b.ID, aBlob, strings.NewReader(x), blob.Meta{Account: b.ID, InternalDate: time.Now()}, blob.PutOptions{Size: int64(len(x))})
			if err != nil && !refused(err) && !errors.Is(err, blob.ErrExists) {
				t.Fatal(err)
			}
		}},
	}
	adminCases := map[string]rpcCase{
		"ListMailboxes": {run: func(t *testing.T) {
			r, err := admin.ListMailboxes(ctx, &adminv1.AccountRef{Login: "bob@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range r.GetMailboxes() {
				if strings.HasPrefix(x.GetName(), "Pad") {
					t.Fatalf("B's mailboxes hold A's %s", x.GetName())
				}
			}
		}},
		"RemoveAlias": {run: func(t *testing.T) {
			if _, err := admin.RemoveAlias(ctx, &adminv1.AliasRequest{Login: "bob@example.com", Alias: "alice.alias@example.com"}); err == nil {
				t.Fatal("B's login removed A's alias")
			}
		}},
		"AddAlias": {run: func(t *testing.T) {
			if _, err := admin.AddAlias(ctx, &adminv1.AliasRequest{Login: "bob@example.com", Alias: "alice.alias@example.com"}); err == nil {
				t.Fatal("B's login took A's alias")
			}
		}},
	}
	operator := "operator API: addresses one account by its login, never by ids; guarded by the internal token"
	for _, name := range methodsOf(adminv1.AdminService_ServiceDesc) {
		if _, ok := adminCases[name]; !ok {
			adminCases[name] = rpcCase{exempt: operator}
		}
	}

	for _, svc := range []struct {
		desc  grpc.ServiceDesc
		cases map[string]rpcCase
		rec   *recordingConn
	}{
		{metadatav1.MetadataService_ServiceDesc, metaCases, metaRec},
		{blobv1.BlobService_ServiceDesc, blobCases, blobRec},
		{adminv1.AdminService_ServiceDesc, adminCases, adminRec},
	} {
		methods := methodsOf(svc.desc)
		// Put runs last: it may write B's own object under A's blob id,
		// which Get and List of B would then rightly find.
		slices.SortStableFunc(methods, func(x, y string) int {
			return boolInt(x == "Put") - boolInt(y == "Put")
		})
		for name := range svc.cases {
			if !slices.Contains(methods, name) {
				t.Errorf("%s has no RPC %s: stale case", svc.desc.ServiceName, name)
			}
		}
		for _, name := range methods {
			t.Run(svc.desc.ServiceName+"/"+name, func(t *testing.T) {
				c, ok := svc.cases[name]
				switch {
				case !ok:
					t.Fatalf("no isolation case for %s.%s: add one (or an exemption saying why it names no other account's objects)", svc.desc.ServiceName, name)
				case c.exempt != "":
					t.Skip(c.exempt)
				}
				svc.rec.take()
				c.run(t)
				if full := "/" + svc.desc.ServiceName + "/" + name; !svc.rec.take()[full] {
					t.Fatalf("the case did not call %s", full)
				}
			})
		}
	}

	// A is as it was: its keys and values, its message and its blob.
	after := snapshot(t, rdb, prefix, a.ID)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("A's key %s changed", k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("A has a new key %s", k)
		}
	}
	rc, err := blobs.Get(ctx, a.ID, aBlob, blob.Whole)
	if err != nil {
		t.Fatalf("A's blob: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != body {
		t.Fatalf("A's blob now reads %q", got)
	}

	t.Run("escaping names", func(t *testing.T) {
		beforeA := snapshot(t, rdb, prefix, a.ID)
		tag := "{a:" + string(a.ID) + "}"
		names := []string{"../x", "../../" + string(a.ID) + "/x", tag, tag + ":mboxes", "{g}:logins", "*", "?", "[a]",
			"x\x00y", "a\r\nb", "ctr:x", strings.Repeat("L", 10000), "Secret/../Pad1", "%", "\\", "INBOX\x00"}
		created := 0
		t.Cleanup(func() {
			t.Logf("%d of %d escaping names became mailboxes of B, the rest were refused", created, len(names))
		})
		for _, n := range names {
			mb, err := m.CreateMailbox(ctx, b.ID, n, "")
			if err == nil {
				created++
				// Mailbox ids count per account: the same number as
				// one of A's names B's own mailbox.
				if _, err := m.StoreFlags(ctx, b.ID, mb.ID, meta.FlagChange{UIDs: mail.AllUIDs(), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.Flag(n)}}); err != nil && !refused(err) {
					t.Errorf("flags in mailbox %q: %v", n, err)
				}
			} else if !errors.Is(err, meta.ErrInvalidArgument) && !errors.Is(err, meta.ErrExists) {
				t.Errorf("mailbox %q: %v, want success or ErrInvalidArgument", n, err)
			}
			if err := m.SetSubscribed(ctx, b.ID, n, true); err != nil && !errors.Is(err, meta.ErrInvalidArgument) {
				t.Errorf("subscribe %q: %v", n, err)
			}
			if l, err := m.AcquireLease(ctx, b.ID, n, n, time.Minute); err == nil {
				_ = m.ReleaseLease(ctx, b.ID, n, l.Token)
			} else if !errors.Is(err, meta.ErrInvalidArgument) {
				t.Errorf("lease %q: %v", n, err)
			}
			// Flags on a message of B's.
			_, err = m.StoreFlags(ctx, b.ID, bInbox.ID, meta.FlagChange{UIDs: mail.AllUIDs(), Op: meta.FlagsAdd, Flags: []mail.Flag{mail.Flag(n)}})
			if err != nil && !refused(err) {
				t.Errorf("flag %q: %v", n, err)
			}
		}
		if after := snapshot(t, rdb, prefix, a.ID); len(after) != len(beforeA) {
			t.Errorf("A's keys went from %d to %d", len(beforeA), len(after))
		} else {
			for k, v := range beforeA {
				if after[k] != v {
					t.Errorf("A's key %s changed", k)
				}
			}
		}
		// Every key of the store is one the schema builds: names never
		// become key parts.
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		schema := regexp.MustCompile(`^(\{g\}:[a-z:]+|\{a:[0-9a-z]+\}:(acct|mboxes|subs|blobrefs|blobgc|fence|events|alfence|lease:[0-9a-f]{32}|mb:[0-9]+(:(uids|flags|info|modseq|vanished|retr|app|appat))?)|(ctr|slot):.*)$`)
		for _, k := range keys {
			rest := strings.TrimPrefix(k, prefix)
			if !schema.MatchString(rest) {
				t.Errorf("key %q is outside the schema", k)
			}
			if m := regexp.MustCompile(`^\{a:([0-9a-z]+)\}`).FindStringSubmatch(rest); m != nil && m[1] != string(a.ID) && m[1] != string(b.ID) {
				t.Errorf("key %q belongs to neither account", k)
			}
		}
		// Every S3 object is <account>/<blob> of A or B; A's object is
		// A's message.
		var objects []string
		for o := range s3c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			objects = append(objects, o.Key)
			acct, id, ok := strings.Cut(o.Key, "/")
			if !ok || (acct != string(a.ID) && acct != string(b.ID)) || strings.Contains(id, "/") || id == "" {
				t.Errorf("object key %q is not <account>/<blob> of A or B", o.Key)
			}
		}
		obj, err := s3c.GetObject(ctx, bucket, string(a.ID)+"/"+string(aBlob), minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, []byte(body)) {
			t.Errorf("A's object reads %q (err %v); objects: %q", got, err, objects)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
