package imapbody

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// spoolMemory is how many bytes a spool keeps in memory before moving to
// a temporary file; a variable so that tests can lower it.
var spoolMemory int64 = 1 << 20

// spool holds content whose length must be known before it is sent: in
// memory up to spoolMemory bytes, then in a temporary file that close
// removes. It records whether the content holds a NUL byte.
type spool struct {
	mem []byte
	f   *os.File
	n   int64
	nul bool
}

// newSpool returns a spool for content expected to be at most hint bytes,
// so that the memory buffer is allocated once.
func newSpool(hint int64) *spool {
	return &spool{mem: make([]byte, 0, max(0, min(hint, spoolMemory)))}
}

func (s *spool) Write(p []byte) (int, error) {
	if !s.nul && bytes.IndexByte(p, 0) >= 0 {
		s.nul = true
	}
	if s.f == nil && int64(len(s.mem))+int64(len(p)) <= spoolMemory {
		s.mem = append(s.mem, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp("", "imapbody-spool-*")
		if err != nil {
			return 0, fmt.Errorf("create spool file: %w", err)
		}
		s.f = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, fmt.Errorf("write spool file: %w", err)
		}
		s.mem = nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write spool file: %w", err)
	}
	return n, nil
}

// reader returns a reader of n bytes from off.
func (s *spool) reader(off, n int64) io.Reader {
	if s.f != nil {
		return io.NewSectionReader(s.f, off, n)
	}
	return bytes.NewReader(s.mem[off : off+n])
}

// close drops the content and removes the file.
func (s *spool) close() error {
	s.mem = nil
	if s.f == nil {
		return nil
	}
	name := s.f.Name()
	err := errors.Join(s.f.Close(), os.Remove(name))
	s.f = nil
	if err != nil {
		return fmt.Errorf("remove spool file: %w", err)
	}
	return nil
}
