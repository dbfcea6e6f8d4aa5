// Package blobtest is the conformance suite of the blob.Store contract. Every
// backend's tests call Run with a constructor of fresh, empty stores; a
// backend earns its place by passing it against the real thing (a real
// directory, real S3 servers, a real gRPC connection). Bench gives every
// backend the same benchmarks, so their figures compare.
//
// The suite pins down the parts of the contract that the interface alone
// cannot say:
//   - Put is all-or-nothing: after any error (a body that fails mid-stream,
//     a body over MaxSize, an id that is taken) nothing new is visible.
//   - A failed body read is returned wrapped, so errors.Is finds the
//     reader's error; a body whose length differs from PutOptions.Size is
//     ErrInvalidArgument.
//   - Range{} and Range{0, -1} are the whole blob; Range{Offset: n,
//     Length: 0} with n > 0 is empty; a range past the end is cut; a
//     negative offset is ErrInvalidArgument.
//   - Meta comes back from Put, Stat and List with the internal date equal
//     to at least the second (backends here keep nanoseconds), the mailbox
//     name byte for byte, and the flags in order.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
)

// Run runs the conformance suite. newStore must return a new, empty store
// for each call (each subtest calls it once) and clean it up with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutGetSizes", testPutGetSizes},
		{"BytesExact", testBytesExact},
		{"MetaRoundTrip", testMetaRoundTrip},
		{"Range", testRange},
		{"PutExisting", testPutExisting},
		{"PutFailsMidStream", testPutFailsMidStream},
		{"SizeMismatch", testSizeMismatch},
		{"TooLarge", testTooLarge},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"ListIsolated", testListIsolated},
		{"ListStops", testListStops},
		{"ListMany", testListMany},
		{"InvalidArgument", testInvalidArgument},
		{"Concurrent", testConcurrent},
		{"ConcurrentSameID", testConcurrentSameID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

const (
	acctA mail.AccountID = "acct1"
	acctB mail.AccountID = "acct2"
	kib                  = 1 << 10
	mib                  = 1 << 20
)

var errBoom = errors.New("blobtest: body reader broke")

// newID returns a fresh blob id.
func newID() mail.BlobID { return blob.NewBlobID(time.Now()) }

// testMeta returns a Meta with every field set.
func testMeta(acct mail.AccountID) blob.Meta {
	return blob.Meta{
		Account:      acct,
		InternalDate: time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("CET", 3600)),
		Mailbox:      "Archiv/Größe 2024 ☃ mit Leerzeichen",
		Flags:        []mail.Flag{mail.FlagSeen, mail.FlagAnswered, "$Forwarded", "$Label1", "custom_kw"},
	}
}

// body returns a deterministic pseudo-random reader of n bytes that hides
// every interface but io.Reader, so stores cannot take shortcuts.
func body(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return struct{ io.Reader }{io.LimitReader(rand.NewChaCha8(s), n)}
}

func bodyBytes(t testing.TB, seed uint64, n int64) []byte {
	t.Helper()
	b, err := io.ReadAll(body(seed, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t testing.TB, s blob.Store, acct mail.AccountID, id mail.BlobID, data []byte, m blob.Meta) blob.Info {
	t.Helper()
	info, err := s.Put(t.Context(), acct, id, struct{ io.Reader }{bytes.NewReader(data)}, m, blob.PutOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatalf("put %s/%s: %v", acct, id, err)
	}
	return info
}

func get(t testing.TB, s blob.Store, acct mail.AccountID, id mail.BlobID, rg blob.Range) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), acct, id, rg)
	if err != nil {
		t.Fatalf("get %s/%s %+v: %v", acct, id, rg, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s/%s %+v: %v", acct, id, rg, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("close %s/%s: %v", acct, id, err)
	}
	return b
}

// listAll returns the account's blobs by id, failing on duplicates.
func listAll(t testing.TB, s blob.Store, acct mail.AccountID) map[mail.BlobID]blob.Info {
	t.Helper()
	out := make(map[mail.BlobID]blob.Info)
	err := s.List(t.Context(), acct, func(info blob.Info) error {
		if _, dup := out[info.ID]; dup {
			return fmt.Errorf("id %s listed twice", info.ID)
		}
		out[info.ID] = info
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", acct, err)
	}
	return out
}

func wantNotFound(t testing.TB, s blob.Store, acct mail.AccountID, id mail.BlobID) {
	t.Helper()
	if info, err := s.Stat(t.Context(), acct, id); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("stat %s/%s = %+v, %v; want ErrNotFound", acct, id, info, err)
	}
	if rc, err := s.Get(t.Context(), acct, id, blob.Whole); !errors.Is(err, blob.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("get %s/%s: %v; want ErrNotFound", acct, id, err)
	}
	if _, ok := listAll(t, s, acct)[id]; ok {
		t.Errorf("list %s shows %s; want it absent", acct, id)
	}
}

func checkMeta(t testing.TB, what string, got, want blob.Meta) {
	t.Helper()
	if got.Account != want.Account {
		t.Errorf("%s: account = %q, want %q", what, got.Account, want.Account)
	}
	if !got.InternalDate.Truncate(time.Second).Equal(want.InternalDate.Truncate(time.Second)) {
		t.Errorf("%s: internal date = %v, want %v", what, got.InternalDate, want.InternalDate)
	}
	if got.Mailbox != want.Mailbox {
		t.Errorf("%s: mailbox = %q, want %q", what, got.Mailbox, want.Mailbox)
	}
	if !slices.Equal(got.Flags, want.Flags) {
		t.Errorf("%s: flags = %q, want %q", what, got.Flags, want.Flags)
	}
}

func hashOf(t testing.TB, r io.Reader) ([32]byte, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("hash body: %v", err)
	}
	return [32]byte(h.Sum(nil)), n
}

func testPutGetSizes(t *testing.T, s blob.Store) {
	for i, n := range []int64{0, 1, 4 * kib, 1 * mib, 17 * mib} {
		for _, known := range []bool{true, false} {
			name := fmt.Sprintf("%d/size-unknown", n)
			size := int64(-1)
			if known {
				name, size = fmt.Sprintf("%d/size-known", n), n
			}
			t.Run(name, func(t *testing.T) {
				id := newID()
				m := testMeta(acctA)
				seed := uint64(i)
				info, err := s.Put(t.Context(), acctA, id, body(seed, n), m, blob.PutOptions{Size: size})
				if err != nil {
					t.Fatalf("put: %v", err)
				}
				if info.ID != id || info.Size != n {
					t.Errorf("put info = %s %d bytes, want %s %d bytes", info.ID, info.Size, id, n)
				}
				st, err := s.Stat(t.Context(), acctA, id)
				if err != nil {
					t.Fatalf("stat: %v", err)
				}
				if st.ID != id || st.Size != n {
					t.Errorf("stat = %s %d bytes, want %s %d bytes", st.ID, st.Size, id, n)
				}
				rc, err := s.Get(t.Context(), acctA, id, blob.Whole)
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				defer rc.Close()
				gotSum, gotN := hashOf(t, rc)
				wantSum, _ := hashOf(t, body(seed, n))
				if gotN != n || gotSum != wantSum {
					t.Errorf("get returned %d bytes (sha256 %x), want %d bytes (sha256 %x)", gotN, gotSum[:8], n, wantSum[:8])
				}
			})
		}
	}
}

func testBytesExact(t *testing.T, s blob.Store) {
	all := make([]byte, 512)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name string
		data string
	}{
		{"binary", string(all)},
		{"bare-lf", "Subject: x\n\nline one\nline two\n"},
		{"crlf-mixed", "Subject: x\r\n\r\nline\r\nbare\nlone cr\rend\r\n"},
		{"no-trailing-newline", "From: a@example.org\r\n\r\nno newline at the end"},
		{"nul-and-high", "a\x00b\xff\xfe\x80c"},
		{"single-dot-lines", ".\r\n..\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, known := range []bool{true, false} {
				id := newID()
				size := int64(-1)
				if known {
					size = int64(len(tt.data))
				}
				if _, err := s.Put(t.Context(), acctA, id, strings.NewReader(tt.data), testMeta(acctA), blob.PutOptions{Size: size}); err != nil {
					t.Fatalf("put: %v", err)
				}
				if got := get(t, s, acctA, id, blob.Whole); string(got) != tt.data {
					t.Errorf("size %d: got %q, want %q", size, got, tt.data)
				}
			}
		})
	}
}

func testMetaRoundTrip(t *testing.T, s blob.Store) {
	tests := []struct {
		name string
		meta blob.Meta
	}{
		{"full", testMeta(acctA)},
		{"utc-no-flags", blob.Meta{Account: acctA, InternalDate: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), Mailbox: "INBOX"}},
		{"odd-names", blob.Meta{
			Account:      acctA,
			InternalDate: time.Unix(1700000000, 0),
			Mailbox:      "  leading/trailing spaces  /日本語/emoji 📬/%41=?utf-8?q?x?=/\"quoted\"\\",
			Flags:        []mail.Flag{mail.FlagDraft, mail.FlagFlagged, mail.FlagDeleted, "$MDNSent", "NonJunk", "kw+with.odd-chars!#$&'"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newID()
			before := time.Now().Add(-time.Minute)
			info := put(t, s, acctA, id, []byte("hello"), tt.meta)
			checkMeta(t, "put", info.Meta, tt.meta)
			st, err := s.Stat(t.Context(), acctA, id)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			checkMeta(t, "stat", st.Meta, tt.meta)
			if st.Modified.Before(before) || st.Modified.After(time.Now().Add(time.Minute)) {
				t.Errorf("stat: modified = %v, want about now", st.Modified)
			}
			li, ok := listAll(t, s, acctA)[id]
			if !ok {
				t.Fatalf("list does not show %s", id)
			}
			checkMeta(t, "list", li.Meta, tt.meta)
			if li.Size != 5 {
				t.Errorf("list: size = %d, want 5", li.Size)
			}
			if li.Modified.IsZero() {
				t.Errorf("list: modified is zero")
			}
		})
	}
}

func testRange(t *testing.T, s blob.Store) {
	data := bodyBytes(t, 7, 1000)
	id := newID()
	put(t, s, acctA, id, data, testMeta(acctA))
	empty := newID()
	put(t, s, acctA, empty, nil, testMeta(acctA))

	tests := []struct {
		name string
		id   mail.BlobID
		rg   blob.Range
		want []byte
	}{
		{"zero-value-is-whole", id, blob.Range{}, data},
		{"whole", id, blob.Whole, data},
		{"start", id, blob.Range{Offset: 0, Length: 10}, data[:10]},
		{"middle", id, blob.Range{Offset: 100, Length: 50}, data[100:150]},
		{"to-end", id, blob.Range{Offset: 990, Length: -1}, data[990:]},
		{"exact-end", id, blob.Range{Offset: 900, Length: 100}, data[900:]},
		{"past-end-is-cut", id, blob.Range{Offset: 995, Length: 100}, data[995:]},
		{"at-end", id, blob.Range{Offset: 1000, Length: 10}, nil},
		{"beyond-end", id, blob.Range{Offset: 5000, Length: 10}, nil},
		{"beyond-end-open", id, blob.Range{Offset: 5000, Length: -1}, nil},
		{"zero-length", id, blob.Range{Offset: 10, Length: 0}, nil},
		{"last-byte", id, blob.Range{Offset: 999, Length: 1}, data[999:]},
		{"empty-blob-whole", empty, blob.Whole, nil},
		{"empty-blob-range", empty, blob.Range{Offset: 5, Length: 5}, nil},
		{"empty-blob-zero-value", empty, blob.Range{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, s, acctA, tt.id, tt.rg); !bytes.Equal(got, tt.want) {
				t.Errorf("get %+v: got %d bytes, want %d bytes (equal prefix: %v)", tt.rg, len(got), len(tt.want), bytes.HasPrefix(tt.want, got))
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := s.Get(t.Context(), acctA, newID(), blob.Range{Offset: 5, Length: 5}); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("ranged get of a missing blob: %v, want ErrNotFound", err)
		}
		if _, err := s.Get(t.Context(), acctA, newID(), blob.Range{Offset: 5, Length: 0}); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("zero-length get of a missing blob: %v, want ErrNotFound", err)
		}
	})
}

func testPutExisting(t *testing.T, s blob.Store) {
	id := newID()
	orig := []byte("original body\r\n")
	put(t, s, acctA, id, orig, testMeta(acctA))
	for _, size := range []int64{-1, 7} {
		other := blob.Meta{Account: acctA, Mailbox: "Other", InternalDate: time.Unix(1, 0)}
		_, err := s.Put(t.Context(), acctA, id, strings.NewReader("changed"), other, blob.PutOptions{Size: size})
		if !errors.Is(err, blob.ErrExists) {
			t.Errorf("second put (size %d): %v, want ErrExists", size, err)
		}
	}
	if got := get(t, s, acctA, id, blob.Whole); !bytes.Equal(got, orig) {
		t.Errorf("after second put, body = %q, want %q", got, orig)
	}
	st, err := s.Stat(t.Context(), acctA, id)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	checkMeta(t, "stat after second put", st.Meta, testMeta(acctA))
	// The same id in another account is another blob.
	put(t, s, acctB, id, []byte("b"), testMeta(acctB))
	if got := get(t, s, acctB, id, blob.Whole); string(got) != "b" {
		t.Errorf("other account: body = %q, want %q", got, "b")
	}
}

// failingReader returns n bytes of data, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func testPutFailsMidStream(t *testing.T, s blob.Store) {
	for _, n := range []int64{0, 100, 9 * mib} {
		for _, known := range []bool{true, false} {
			size := int64(-1)
			if known {
				size = n + 1000
			}
			t.Run(fmt.Sprintf("after-%d/size-%d", n, size), func(t *testing.T) {
				id := newID()
				r := &failingReader{r: body(1, n), err: errBoom}
				_, err := s.Put(t.Context(), acctA, id, r, testMeta(acctA), blob.PutOptions{Size: size})
				if !errors.Is(err, errBoom) {
					t.Fatalf("put: %v, want the reader's error", err)
				}
				wantNotFound(t, s, acctA, id)
				// Nothing left behind blocks the id.
				put(t, s, acctA, id, []byte("retry"), testMeta(acctA))
				if got := get(t, s, acctA, id, blob.Whole); string(got) != "retry" {
					t.Errorf("after retry, body = %q", got)
				}
			})
		}
	}
	t.Run("context-cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		id := newID()
		r := io.MultiReader(body(2, 64*kib), readerFunc(func(p []byte) (int, error) {
			cancel()
			return 0, context.Canceled
		}))
		if _, err := s.Put(ctx, acctA, id, r, testMeta(acctA), blob.PutOptions{Size: -1}); err == nil {
			t.Fatalf("put with cancelled context succeeded")
		}
		wantNotFound(t, s, acctA, id)
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func testSizeMismatch(t *testing.T, s blob.Store) {
	tests := []struct {
		name    string
		n, size int64
	}{
		{"shorter", 10, 20},
		{"longer", 20, 10},
		{"empty-declared-one", 0, 1},
		{"longer-large", 9 * mib, 5 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newID()
			_, err := s.Put(t.Context(), acctA, id, body(3, tt.n), testMeta(acctA), blob.PutOptions{Size: tt.size})
			if !errors.Is(err, blob.ErrInvalidArgument) {
				t.Errorf("put of %d bytes declared as %d: %v, want ErrInvalidArgument", tt.n, tt.size, err)
			}
			wantNotFound(t, s, acctA, id)
		})
	}
}

func testTooLarge(t *testing.T, s blob.Store) {
	tests := []struct {
		name         string
		n, size, max int64
		ok           bool
	}{
		{"exactly-max-unknown", 1000, -1, 1000, true},
		{"exactly-max-known", 1000, 1000, 1000, true},
		{"one-over-unknown", 1001, -1, 1000, false},
		{"one-over-known", 1001, 1001, 1000, false},
		{"declared-over", 10, 5000, 1000, false},
		{"large-over-unknown", 10 * mib, -1, 9 * mib, false},
		{"large-over-known", 10 * mib, 10 * mib, 9 * mib, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newID()
			_, err := s.Put(t.Context(), acctA, id, body(4, tt.n), testMeta(acctA), blob.PutOptions{Size: tt.size, MaxSize: tt.max})
			if tt.ok {
				if err != nil {
					t.Fatalf("put: %v", err)
				}
				return
			}
			if !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("put of %d bytes with max %d: %v, want ErrTooLarge", tt.n, tt.max, err)
			}
			wantNotFound(t, s, acctA, id)
		})
	}
}

func testMissing(t *testing.T, s blob.Store) {
	put(t, s, acctA, newID(), []byte("x"), testMeta(acctA))
	wantNotFound(t, s, acctA, newID())
	wantNotFound(t, s, "nosuchaccount", newID())
}

func testDelete(t *testing.T, s blob.Store) {
	id, keep := newID(), newID()
	put(t, s, acctA, id, []byte("doomed"), testMeta(acctA))
	put(t, s, acctA, keep, []byte("kept"), testMeta(acctA))
	for i := range 2 {
		if err := s.Delete(t.Context(), acctA, id); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
		wantNotFound(t, s, acctA, id)
	}
	if err := s.Delete(t.Context(), acctA, newID()); err != nil {
		t.Errorf("delete of a never-stored blob: %v", err)
	}
	if err := s.Delete(t.Context(), "nosuchaccount", newID()); err != nil {
		t.Errorf("delete in an unknown account: %v", err)
	}
	if got := get(t, s, acctA, keep, blob.Whole); string(got) != "kept" {
		t.Errorf("other blob = %q after delete", got)
	}
}

func testListIsolated(t *testing.T, s blob.Store) {
	if got := listAll(t, s, acctA); len(got) != 0 {
		t.Fatalf("list of an empty store: %d blobs", len(got))
	}
	want := map[mail.AccountID]map[mail.BlobID]int64{acctA: {}, acctB: {}}
	for i := range 5 {
		acct := acctA
		if i%2 == 1 {
			acct = acctB
		}
		id := newID()
		data := bodyBytes(t, uint64(i), int64(10*i))
		put(t, s, acct, id, data, testMeta(acct))
		want[acct][id] = int64(len(data))
	}
	// An account whose id is a prefix of another's sees none of the other's.
	put(t, s, acctA+"0", newID(), []byte("x"), testMeta(acctA+"0"))
	for acct, ids := range want {
		got := listAll(t, s, acct)
		if len(got) != len(ids) {
			t.Errorf("list %s: %d blobs, want %d", acct, len(got), len(ids))
		}
		for id, size := range ids {
			info, ok := got[id]
			if !ok {
				t.Errorf("list %s: %s missing", acct, id)
				continue
			}
			if info.Size != size {
				t.Errorf("list %s: %s size %d, want %d", acct, id, info.Size, size)
			}
			checkMeta(t, "list", info.Meta, testMeta(acct))
		}
	}
	if got := listAll(t, s, "nosuchaccount"); len(got) != 0 {
		t.Errorf("list of an unknown account: %d blobs", len(got))
	}
}

func testListStops(t *testing.T, s blob.Store) {
	for range 3 {
		put(t, s, acctA, newID(), []byte("x"), testMeta(acctA))
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.List(t.Context(), acctA, func(blob.Info) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("list: %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("callback called %d times after returning an error, want 1", calls)
	}
}

func testListMany(t *testing.T, s blob.Store) {
	const n = 1500
	ids := make([]mail.BlobID, n)
	for i := range ids {
		ids[i] = newID()
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan mail.BlobID)
	for range 16 {
		wg.Go(func() {
			for id := range work {
				_, err := s.Put(t.Context(), acctA, id, strings.NewReader(string(id)), blob.Meta{Account: acctA, Mailbox: "INBOX"}, blob.PutOptions{Size: int64(len(id))})
				if err != nil {
					errs <- fmt.Errorf("put %s: %w", id, err)
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := listAll(t, s, acctA)
	if len(got) != n {
		t.Errorf("list: %d blobs, want %d", len(got), n)
	}
	for _, id := range ids {
		if info, ok := got[id]; !ok || info.Size != int64(len(id)) || info.Meta.Mailbox != "INBOX" {
			t.Errorf("list: %s = %+v, %v", id, info, ok)
			break
		}
	}
}

func testInvalidArgument(t *testing.T, s blob.Store) {
	good := newID()
	put(t, s, acctA, good, []byte("x"), testMeta(acctA))
	badIDs := []mail.BlobID{"", "UPPER", "a/b", "..", "../x", "a b", "a.b", "é", mail.BlobID(strings.Repeat("a", 129))}
	badAccts := []mail.AccountID{"", "Acct", "a/b", "..", "x y", mail.AccountID(strings.Repeat("a", 129))}
	type call struct {
		name string
		fn   func(ctx context.Context, acct mail.AccountID, id mail.BlobID) error
	}
	calls := []call{
		{"put", func(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
			_, err := s.Put(ctx, acct, id, strings.NewReader("x"), blob.Meta{Account: acct}, blob.PutOptions{Size: -1})
			return err
		}},
		{"get", func(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
			rc, err := s.Get(ctx, acct, id, blob.Whole)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{"stat", func(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
			_, err := s.Stat(ctx, acct, id)
			return err
		}},
		{"delete", func(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
			return s.Delete(ctx, acct, id)
		}},
	}
	for _, c := range calls {
		for _, id := range badIDs {
			t.Run(fmt.Sprintf("%s/id=%.20q", c.name, id), func(t *testing.T) {
				if err := c.fn(t.Context(), acctA, id); !errors.Is(err, blob.ErrInvalidArgument) {
					t.Errorf("%s id %q: %v, want ErrInvalidArgument", c.name, id, err)
				}
			})
		}
		for _, acct := range badAccts {
			t.Run(fmt.Sprintf("%s/account=%.20q", c.name, acct), func(t *testing.T) {
				if err := c.fn(t.Context(), acct, good); !errors.Is(err, blob.ErrInvalidArgument) {
					t.Errorf("%s account %q: %v, want ErrInvalidArgument", c.name, acct, err)
				}
			})
		}
	}
	for _, acct := range badAccts {
		t.Run(fmt.Sprintf("list/account=%.20q", acct), func(t *testing.T) {
			err := s.List(t.Context(), acct, func(blob.Info) error { return nil })
			if !errors.Is(err, blob.ErrInvalidArgument) {
				t.Errorf("list account %q: %v, want ErrInvalidArgument", acct, err)
			}
		})
	}
	t.Run("negative-offset", func(t *testing.T) {
		rc, err := s.Get(t.Context(), acctA, good, blob.Range{Offset: -1, Length: 1})
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, blob.ErrInvalidArgument) {
			t.Errorf("get with negative offset: %v, want ErrInvalidArgument", err)
		}
	})
	if got := get(t, s, acctA, good, blob.Whole); string(got) != "x" {
		t.Errorf("good blob = %q after invalid calls", got)
	}
}

func testConcurrent(t *testing.T, s blob.Store) {
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := newID()
				n := int64(1 + (w*each+i)*997%(300*kib))
				data, err := io.ReadAll(body(uint64(w*each+i), n))
				if err != nil {
					errs <- err
					return
				}
				size := n
				if i%2 == 1 {
					size = -1
				}
				if _, err := s.Put(t.Context(), acctA, id, bytes.NewReader(data), testMeta(acctA), blob.PutOptions{Size: size}); err != nil {
					errs <- fmt.Errorf("put %s: %w", id, err)
					continue
				}
				rc, err := s.Get(t.Context(), acctA, id, blob.Whole)
				if err != nil {
					errs <- fmt.Errorf("get %s: %w", id, err)
					continue
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("get %s: %d bytes, %v; want %d bytes", id, len(got), err, len(data))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := listAll(t, s, acctA); len(got) != workers*each {
		t.Errorf("list: %d blobs, want %d", len(got), workers*each)
	}
}

func testConcurrentSameID(t *testing.T, s blob.Store) {
	const racers = 8
	id := newID()
	bodies := make([][]byte, racers)
	results := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		bodies[i] = bodyBytes(t, uint64(100+i), int64(64*kib+i))
		wg.Go(func() {
			_, results[i] = s.Put(t.Context(), acctA, id, bytes.NewReader(bodies[i]), testMeta(acctA), blob.PutOptions{Size: -1})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("puts %d and %d of the same id both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, blob.ErrExists):
			t.Errorf("put %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no put of the id succeeded")
	}
	if got := get(t, s, acctA, id, blob.Whole); !bytes.Equal(got, bodies[winner]) {
		t.Errorf("stored body (%d bytes) is not the winner's (%d bytes)", len(got), len(bodies[winner]))
	}
}

// Bench runs the shared benchmarks against s: put and get of 4 KB, 100 KB
// and 10 MB bodies, reported in bytes per second.
func Bench(b *testing.B, s blob.Store) {
	for _, size := range []struct {
		name string
		n    int64
	}{{"4KB", 4 << 10}, {"100KB", 100 << 10}, {"10MB", 10 << 20}} {
		data := bodyBytes(b, 9, size.n)
		m := testMeta(acctA)
		b.Run("put/"+size.name, func(b *testing.B) {
			b.SetBytes(size.n)
			for b.Loop() {
				if _, err := s.Put(b.Context(), acctA, newID(), bytes.NewReader(data), m, blob.PutOptions{Size: size.n}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("get/"+size.name, func(b *testing.B) {
			id := newID()
			put(b, s, acctA, id, data, m)
			b.SetBytes(size.n)
			for b.Loop() {
				rc, err := s.Get(b.Context(), acctA, id, blob.Whole)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
