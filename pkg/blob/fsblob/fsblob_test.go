package fsblob_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/blobtest"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
)

func newStore(t testing.TB, dir string) *fsblob.Store {
	t.Helper()
	s, err := fsblob.New(fsblob.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, t.TempDir()) })
}

// TestLayoutAndNoTemporaryFiles checks what the suite cannot see: failed puts
// leave no temporary files behind, and the layout is the documented one.
func TestLayoutAndNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	id := blob.NewBlobID(time.Now())
	if _, err := s.Put(t.Context(), "acct1", id, strings.NewReader("hello"), blob.Meta{Account: "acct1"}, blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "acct1", string(id[:2]), string(id))); err != nil {
		t.Errorf("blob file not where documented: %v", err)
	}
	_, err := s.Put(t.Context(), "acct1", blob.NewBlobID(time.Now()), strings.NewReader("too long"), blob.Meta{}, blob.PutOptions{Size: -1, MaxSize: 3})
	if err == nil {
		t.Fatal("put over MaxSize succeeded")
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewEmptyDir(t *testing.T) {
	if _, err := fsblob.New(fsblob.Config{}, nil); err == nil {
		t.Error("New with an empty directory succeeded")
	}
}

func BenchmarkStore(b *testing.B) {
	blobtest.Bench(b, newStore(b, b.TempDir()))
}
