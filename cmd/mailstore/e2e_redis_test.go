package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/grpcblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

func execMailstore(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "mailstore"), args...)
	cmd.Env = os.Environ()
	return cmd
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// model is what one worker knows of its own messages.
type modelEntry struct {
	blob  mail.BlobID
	flags []mail.Flag
}

// TestConcurrentProcesses: four metadata processes on one Redis (and, in
// the cluster variant, on a 3-master Redis Cluster), one blob process on a
// real S3 server, and 32 clients appending, flagging, copying, moving and
// expunging on one account. Each client works on its own messages (so it
// knows exactly what must be there) in mailboxes shared by all; afterwards
// the index equals the union of the clients' models, UIDs are unique and
// below UIDNEXT, counters equal a recount, and no client saw a MODSEQ go
// backwards.
func TestConcurrentProcesses(t *testing.T) {
	tests := []struct {
		name  string
		redis func(t *testing.T) string
		s3    string
		extra []string
	}{
		{"standalone+minio", func(t *testing.T) string { return testenv.Redis(t) }, testenv.MinIO, nil},
		{"cluster+versitygw", func(t *testing.T) string { return strings.Join(testenv.RedisCluster(t), ",") }, testenv.VersityGW, []string{"-metadata.redis.cluster=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startRedisStack(t, 4, tt.redis(t), testenv.Prefix(t), testenv.S3(t, tt.s3), tt.extra...)
			clients := clientsFor(t, st.metaAddrs)
			acct, mboxes := setupAccount(t, clients[0], "concurrent@example.com")
			runModelWorkers(t, 32, 25, clients, st.blobAddr, acct.ID, mboxes)
		})
	}
}

func runModelWorkers(t *testing.T, workers, ops int, clients []meta.Store, blobAddr string, acct mail.AccountID, mboxes []mail.MailboxID) {
	t.Helper()
	var (
		mu       sync.Mutex
		expected = map[mail.MailboxID]map[mail.UID]modelEntry{}
		wg       sync.WaitGroup
	)
	for _, m := range mboxes {
		expected[m] = map[mail.UID]modelEntry{}
	}
	ings := make([]*ingest.Ingester, len(clients))
	for i, c := range clients {
		ings[i] = newIngester(t, c, blobAddr)
	}
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			c := clients[w%len(clients)]
			ing := ings[w%len(clients)]
			own := map[mail.MailboxID]map[mail.UID]modelEntry{}
			for _, m := range mboxes {
				own[m] = map[mail.UID]modelEntry{}
			}
			lastModSeq := map[mail.MailboxID]mail.ModSeq{}
			sawModSeq := func(m mail.MailboxID, ms mail.ModSeq, op string) {
				if ms <= lastModSeq[m] {
					t.Errorf("worker %d: %s in mailbox %d got MODSEQ %d after %d", w, op, m, ms, lastModSeq[m])
				}
				lastModSeq[m] = ms
			}
			pick := func() (mail.MailboxID, mail.UID, bool) {
				for _, i := range rng.Perm(len(mboxes)) {
					m := mboxes[i]
					for u := range own[m] {
						return m, u, true
					}
				}
				return 0, 0, false
			}
			ctx := t.Context()
			for i := range ops {
				op := rng.IntN(10)
				src, uid, ok := pick()
				if !ok || op < 4 {
					m := mboxes[rng.IntN(len(mboxes))]
					body := message(fmt.Sprintf("w%d", w), i)
					flags := []mail.Flag{}
					if rng.IntN(2) == 0 {
						flags = append(flags, mail.FlagSeen)
					}
					res, err := ing.Ingest(ctx, ingest.Request{Target: ingest.Target{Account: acct, Mailbox: m, MailboxName: "x", Flags: flags}, Body: strings.NewReader(body), Size: int64(len(body))})
					if err != nil {
						t.Errorf("worker %d: append: %v", w, err)
						return
					}
					sawModSeq(m, res.Appended.ModSeq, "append")
					own[m][res.Appended.UID] = modelEntry{blob: res.Blob, flags: flags}
					continue
				}
				dst := mboxes[rng.IntN(len(mboxes))]
				switch {
				case op < 6: // flags
					f := []mail.Flag{mail.FlagSeen, mail.FlagAnswered, "$Work"}[rng.IntN(3)]
					fop := meta.FlagsAdd
					if rng.IntN(2) == 0 {
						fop = meta.FlagsRemove
					}
					res, err := c.StoreFlags(ctx, acct, src, meta.FlagChange{UIDs: mail.NewUIDSet(uid), Op: fop, Flags: []mail.Flag{f}})
					if err != nil {
						t.Errorf("worker %d: store: %v", w, err)
						return
					}
					e := own[src][uid]
					e.flags = applyFlags(e.flags, fop, f)
					own[src][uid] = e
					for _, u := range res.Updated {
						sawModSeq(src, u.ModSeq, "store")
					}
				case op < 7: // copy
					res, err := c.Copy(ctx, acct, src, mail.NewUIDSet(uid), dst)
					if err != nil || len(res.Dest) != 1 {
						t.Errorf("worker %d: copy: %v %+v", w, err, res)
						return
					}
					sawModSeq(dst, res.ModSeq, "copy")
					own[dst][res.Dest[0]] = own[src][uid]
				case op < 8: // move
					if dst == src {
						continue
					}
					res, err := c.Move(ctx, acct, src, mail.NewUIDSet(uid), dst)
					if err != nil || len(res.Dest) != 1 {
						t.Errorf("worker %d: move: %v %+v", w, err, res)
						return
					}
					own[dst][res.Dest[0]] = own[src][uid]
					delete(own[src], uid)
				default: // expunge
					gone, ms, err := c.Expunge(ctx, acct, src, mail.NewUIDSet(uid))
					if err != nil || len(gone) != 1 || gone[0] != uid {
						t.Errorf("worker %d: expunge: %v %v", w, err, gone)
						return
					}
					sawModSeq(src, ms, "expunge")
					delete(own[src], uid)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for m, entries := range own {
				for u, e := range entries {
					if _, dup := expected[m][u]; dup {
						t.Errorf("UID %d in mailbox %d was given to two workers", u, m)
					}
					expected[m][u] = e
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	s := clients[0]
	for _, m := range mboxes {
		entries, err := s.ListEntries(t.Context(), acct, m, mail.AllUIDs(), meta.FieldFlags|meta.FieldInfo, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(expected[m]) {
			t.Errorf("mailbox %d has %d entries, the workers expect %d", m, len(entries), len(expected[m]))
		}
		for _, e := range entries {
			want, ok := expected[m][e.UID]
			switch {
			case !ok:
				t.Errorf("mailbox %d: unexpected UID %d (blob %s)", m, e.UID, e.Blob)
			case want.blob != e.Blob:
				t.Errorf("mailbox %d UID %d: blob %s, want %s", m, e.UID, e.Blob, want.blob)
			case !sameFlags(want.flags, e.Flags):
				t.Errorf("mailbox %d UID %d: flags %v, want %v", m, e.UID, e.Flags, want.flags)
			}
		}
	}
	metatest.CheckAccount(t, s, acct)
}

func applyFlags(have []mail.Flag, op meta.FlagOp, f mail.Flag) []mail.Flag {
	out := slices.DeleteFunc(slices.Clone(have), func(x mail.Flag) bool { return x == f })
	if op == meta.FlagsAdd {
		out = append(out, f)
	}
	return out
}

func sameFlags(a, b []mail.Flag) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestKillMetadataProcess: kill -9 one of three metadata processes in the
// middle of appends; clients move on to the others, and afterwards every
// acknowledged append is present exactly once.
func TestKillMetadataProcess(t *testing.T) {
	st := startRedisStack(t, 3, testenv.Redis(t), testenv.Prefix(t), testenv.S3(t, testenv.MinIO))
	clients := clientsFor(t, st.metaAddrs)
	acct, mboxes := setupAccount(t, clients[1], "crash-meta@example.com")

	stop := make(chan struct{})
	var acks []ack
	done := make(chan struct{})
	go func() {
		defer close(done)
		acks = appendLoad(t, 12, 40, clients, st.blobAddr, acct.ID, mboxes, stop)
	}()
	waitEntries(t, clients[1], acct.ID, 60)
	st.metas[0].kill()
	<-done
	checkAcks(t, clients[1], acct.ID, mboxes, acks)
}

// TestKillRedis: kill -9 the Redis server (AOF, appendfsync always) during
// appends, restart it, and find every acknowledged append.
func TestKillRedis(t *testing.T) {
	srv := testenv.NewRedis(t, testenv.RedisOptions{AOF: true})
	st := startRedisStack(t, 2, srv.Addr(), testenv.Prefix(t), testenv.S3(t, testenv.VersityGW))
	clients := clientsFor(t, st.metaAddrs)
	acct, mboxes := setupAccount(t, clients[0], "crash-redis@example.com")

	stop := make(chan struct{})
	var acks []ack
	done := make(chan struct{})
	go func() {
		defer close(done)
		acks = appendLoad(t, 8, 40, clients, st.blobAddr, acct.ID, mboxes, stop)
	}()
	waitEntries(t, clients[0], acct.ID, 40)
	srv.Kill()
	// While Redis is down, calls fail as Unavailable, not otherwise.
	if _, err := clients[0].Account(t.Context(), acct.ID); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("with Redis down: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	<-done
	checkAcks(t, clients[0], acct.ID, mboxes, acks)
}

// waitEntries waits until the account holds at least n messages.
func waitEntries(t *testing.T, s meta.Store, acct mail.AccountID, n int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		a, err := s.Account(t.Context(), acct)
		if err == nil && a.Quota.UsedMessages >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the account never reached %d messages", n)
}

// TestRecover: deliver messages with flags into several mailboxes, wipe the
// account's index from Redis, and rebuild it with `mailctl account
// recover` from the blob store alone.
func TestRecover(t *testing.T) {
	redisAddr := testenv.Redis(t)
	prefix := testenv.Prefix(t)
	st := startRedisStack(t, 1, redisAddr, prefix, testenv.S3(t, testenv.MinIO))
	client := clientsFor(t, st.metaAddrs)[0]
	acct, mboxes := setupAccount(t, client, "recover@example.com")
	ctx := t.Context()
	ing := newIngester(t, client, st.blobAddr)
	names := []string{mail.Inbox, "Work", "Lists/Go"}
	type want struct {
		mbox  string
		flags []mail.Flag
		body  string
	}
	wants := map[mail.BlobID]want{}
	for i := range 30 {
		k := i % len(mboxes)
		flags := []mail.Flag{}
		if i%2 == 0 {
			flags = append(flags, mail.FlagSeen)
		}
		if i%3 == 0 {
			flags = append(flags, "$Important")
		}
		body := message("recover", i)
		res, err := ing.Ingest(ctx, ingest.Request{Target: ingest.Target{Account: acct.ID, Mailbox: mboxes[k], MailboxName: names[k], Flags: flags}, Body: strings.NewReader(body), Size: int64(len(body))})
		if err != nil {
			t.Fatal(err)
		}
		wants[res.Blob] = want{names[k], flags, body}
	}
	before := map[string]uint32{}
	for _, n := range names {
		m, err := client.Mailbox(ctx, acct.ID, n)
		if err != nil {
			t.Fatal(err)
		}
		before[n] = m.UIDValidity
	}

	// Wipe every key of the account but its record.
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rc.Close()
	base := prefix + "{a:" + string(acct.ID) + "}:"
	keys, err := rc.Keys(ctx, base+"*").Result()
	if err != nil || len(keys) < 5 {
		t.Fatalf("account keys: %v %v", keys, err)
	}
	for _, k := range keys {
		if k != base+"acct" {
			rc.Del(ctx, k)
		}
	}
	if _, err := client.Mailbox(ctx, acct.ID, "Work"); !errors.Is(err, meta.ErrNoSuchMailbox) {
		t.Fatalf("after the wipe: %v", err)
	}

	out := mailctl(t, st.metaAddrs[0], "", false, "account", "recover", "recover@example.com")
	if !strings.Contains(out, "recovered 30 messages") {
		t.Fatalf("recover said %q", out)
	}
	blobs := grpcblob.New(dial(t, st.blobAddr))
	found := 0
	for _, n := range names {
		m, err := client.Mailbox(ctx, acct.ID, n)
		if err != nil {
			t.Fatalf("mailbox %s after recovery: %v", n, err)
		}
		if m.UIDValidity == before[n] {
			t.Errorf("mailbox %s kept UIDVALIDITY %d across recovery", n, m.UIDValidity)
		}
		entries, err := client.ListEntries(ctx, acct.ID, m.ID, mail.AllUIDs(), meta.FieldAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			w, ok := wants[e.Blob]
			if !ok {
				t.Errorf("recovered unknown blob %s", e.Blob)
				continue
			}
			found++
			if w.mbox != n {
				t.Errorf("blob %s recovered into %s, was in %s", e.Blob, n, w.mbox)
			}
			if !sameFlags(w.flags, e.Flags) {
				t.Errorf("blob %s flags %v, want %v", e.Blob, e.Flags, w.flags)
			}
			if e.Size != int64(len(w.body)) || len(e.Structure) == 0 {
				t.Errorf("blob %s: size %d (want %d), structure %d bytes", e.Blob, e.Size, len(w.body), len(e.Structure))
			}
			r, err := blobs.Get(ctx, acct.ID, e.Blob, blob.Whole)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != w.body {
				t.Errorf("blob %s body differs after recovery", e.Blob)
			}
		}
	}
	if found != len(wants) {
		t.Errorf("recovered %d of %d messages", found, len(wants))
	}
	metatest.CheckAccount(t, client, acct.ID)
}

// TestBackendsDown: with the S3 server or Redis stopped, calls fail with a
// clear Unavailable error and leave nothing half-done; when they come back,
// the same calls work.
func TestBackendsDown(t *testing.T) {
	rs := testenv.NewRedis(t, testenv.RedisOptions{AOF: true})
	s3 := testenv.NewS3(t, testenv.MinIO)
	st := startRedisStack(t, 1, rs.Addr(), testenv.Prefix(t), s3.Server)
	client := clientsFor(t, st.metaAddrs)[0]
	acct, mboxes := setupAccount(t, client, "down@example.com")
	ing := newIngester(t, client, st.blobAddr)
	ctx := t.Context()
	body := message("down", 1)
	deliver := func() (ingest.Result, error) {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return ing.Ingest(c, ingest.Request{Target: ingest.Target{Account: acct.ID, Mailbox: mboxes[0], MailboxName: mail.Inbox}, Body: strings.NewReader(body), Size: int64(len(body))})
	}

	s3.Kill()
	if _, err := deliver(); !errors.Is(err, blob.ErrUnavailable) {
		t.Errorf("append with S3 down: %v, want blob.ErrUnavailable", err)
	}
	if n := messages(t, client, acct.ID); n != 0 {
		t.Errorf("%d messages after a failed append, want 0", n)
	}
	s3.Restart()
	if _, err := deliver(); err != nil {
		t.Fatalf("append after S3 came back: %v", err)
	}

	rs.Kill()
	if _, err := deliver(); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("append with Redis down: %v, want meta.ErrUnavailable", err)
	}
	if _, err := client.ListMailboxes(ctx, acct.ID); !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("list with Redis down: %v, want meta.ErrUnavailable", err)
	}
	rs.Restart()
	if _, err := deliver(); err != nil {
		t.Fatalf("append after Redis came back: %v", err)
	}
	if n := messages(t, client, acct.ID); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	metatest.CheckAccount(t, client, acct.ID)

	// Bad requests get clear errors.
	if _, err := client.CreateMailbox(ctx, acct.ID, "a//b", ""); !errors.Is(err, mail.ErrInvalidMailboxName) && !errors.Is(err, meta.ErrInvalidArgument) {
		t.Errorf("invalid mailbox name: %v", err)
	}
	if _, err := client.Account(ctx, "999999"); !errors.Is(err, meta.ErrNoSuchAccount) {
		t.Errorf("unknown account: %v", err)
	}
	if _, err := client.UpdateAccount(ctx, acct.ID, meta.AccountUpdate{LimitMsgs: ptr(int64(2))}); err != nil {
		t.Fatal(err)
	}
	if _, err := deliver(); !errors.Is(err, meta.ErrOverQuota) {
		t.Errorf("over quota: %v", err)
	}
	big := strings.Repeat("x", 9<<20)
	if _, err := ing.Ingest(ctx, ingest.Request{Target: ingest.Target{Account: acct.ID, Mailbox: mboxes[0]}, Body: strings.NewReader(big), Size: -1}); !errors.Is(err, blob.ErrTooLarge) {
		t.Errorf("oversized message: %v", err)
	}
	if n := messages(t, client, acct.ID); n != 2 {
		t.Errorf("%d messages after refused appends, want 2", n)
	}
}

func messages(t *testing.T, s meta.Store, acct mail.AccountID) int64 {
	t.Helper()
	a, err := s.Account(t.Context(), acct)
	if err != nil {
		t.Fatal(err)
	}
	return a.Quota.UsedMessages
}

func ptr[T any](v T) *T { return &v }
