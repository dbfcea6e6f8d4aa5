package metatest

import (
	"testing"

	"github.com/mailstore/mailstore/pkg/meta"
)

// TestFake runs the suite against the in-memory fake, which exists only to
// develop the suite itself.
func TestFake(t *testing.T) {
	Run(t, func(t *testing.T) meta.Store { return newFake() })
}
