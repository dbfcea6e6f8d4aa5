package localmeta

import (
	"errors"
	"flag"
	"fmt"
)

// Config configures the embedded metadata store.
type Config struct {
	// Path of the bbolt file. Empty means the wiring picks
	// <data-dir>/meta.db before calling Open; Open itself needs a path.
	Path string
	// ChangeLogMax bounds the vanished (expunge) log of each mailbox, in
	// UIDs; older expunges are trimmed and ChangesSince reports Trimmed
	// for a MODSEQ before the trim point. 0 keeps the log unbounded.
	ChangeLogMax int
}

// RegisterFlags registers the flags of Config; the defaults live here.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.RegisterFlagsWithPrefix("metadata.local.", f)
}

// RegisterFlagsWithPrefix registers the flags under prefix (e.g.
// "metadata.local.").
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Path, prefix+"path", "", "Path of the embedded metadata file (bbolt). Empty: <data-dir>/meta.db. Only one metadata process may open it.")
	f.IntVar(&c.ChangeLogMax, prefix+"change-log-max", 10000, "Expunged UIDs kept per mailbox for QRESYNC/catch-up; older ones are trimmed (0: unbounded).")
}

// Validate checks the configuration. An empty Path is valid here (the
// wiring fills it in); Open rejects it.
func (c *Config) Validate() error {
	if c.ChangeLogMax < 0 {
		return fmt.Errorf("metadata.local.change-log-max: %d: must not be negative", c.ChangeLogMax)
	}
	return nil
}

var errNoPath = errors.New("metadata.local.path: empty")
