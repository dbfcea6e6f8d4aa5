package localmeta

import (
	"path/filepath"
	"testing"

	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

// TestConformance runs the metadata contract's suite, each subtest on a
// fresh file.
func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := Open(Config{Path: filepath.Join(t.TempDir(), "meta.db"), ChangeLogMax: 10000}, nil)
		if err != nil {
			t.Fatalf("open local store: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
