package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mime"
)

// Delivery is one message for several mailboxes, as LMTP delivers it to
// several recipients.
type Delivery struct {
	// Targets each get their own blob and entry: blobs belong to one
	// account, and a per-recipient copy keeps recovery (which rebuilds an
	// account from its blobs) and quota simple.
	Targets []Target
	// InternalDate; zero means now.
	InternalDate time.Time
	// Size is the exact size when known, or -1.
	Size int64
	// Body is read once, in a first pass that parses it. When it is an
	// io.ReaderAt and Size >= 0 (a spool the caller already has), the
	// uploads read it again at offsets; otherwise the first pass copies it
	// to a spool: up to Config.SpoolMemory bytes in memory, the rest in a
	// temporary file in Config.SpoolDir, removed before IngestMany returns.
	Body io.Reader
}

// TargetResult is the outcome for one target, in the order of
// Delivery.Targets. Err is nil when the message was stored there.
type TargetResult struct {
	Result
	Err error
}

// IngestMany stores one message for every target: the body is parsed once,
// then for each target uploaded as its own blob (after the target's
// Prefix) and committed as its own entry, with the same write order as
// Ingest. The error is for what fails every target (too large, a read or
// spool error) and then nothing is stored; otherwise each target has its
// own result. The Structure of the results may be shared; callers must not
// change it.
func (g *Ingester) IngestMany(ctx context.Context, d Delivery) ([]TargetResult, error) {
	if d.Body == nil {
		return nil, fmt.Errorf("ingest: %w: no body", blob.ErrInvalidArgument)
	}
	if err := g.checkSize(d.Size); err != nil {
		return nil, err
	}
	now := g.now()
	date := d.InternalDate
	if date.IsZero() {
		date = now
	}

	// First pass: parse, and spool unless the body can be read again.
	sc := mime.NewScanner(g.cfg.Limits)
	var src io.ReaderAt
	var size int64
	if ra, ok := d.Body.(io.ReaderAt); ok && d.Size >= 0 {
		r := &meteredReader{r: io.NewSectionReader(ra, 0, d.Size), max: g.cfg.MaxMessageSize}
		if _, err := io.Copy(sc, r); err != nil {
			return nil, fmt.Errorf("parse message: %w", err)
		}
		src, size = ra, r.n
	} else {
		sp := g.NewSpool()
		defer sp.Close()
		if d.Size >= 0 && d.Size <= sp.max {
			sp.mem = make([]byte, 0, d.Size)
		}
		r := &meteredReader{r: d.Body, w: sc, max: g.cfg.MaxMessageSize}
		if _, err := io.Copy(sp, r); err != nil {
			return nil, fmt.Errorf("spool message: %w", err)
		}
		if d.Size >= 0 && r.n != d.Size {
			return nil, fmt.Errorf("spool message: %w: got %d bytes, announced %d", ErrSizeMismatch, r.n, d.Size)
		}
		src, size = sp.readerAt(), r.n
	}
	st, _ := sc.Close()
	if st.Limited {
		g.logger.Info("mime limits reached in delivery", "targets", len(d.Targets))
	}
	enc, err := mime.MarshalStructure(st)
	if err != nil {
		return nil, fmt.Errorf("encode message structure: %w", err)
	}
	// Targets with a prefix of the same length share one shifted
	// structure (LMTP's added fields often differ only in content).
	shifted := map[int]shiftedStructure{0: {st, enc}}

	results := make([]TargetResult, len(d.Targets))
	for i, t := range d.Targets {
		ss, ok := shifted[len(t.Prefix)]
		if !ok {
			ss.st = st.WithPrefix(int64(len(t.Prefix)))
			if ss.enc, err = mime.MarshalStructure(ss.st); err != nil {
				results[i].Err = fmt.Errorf("encode message structure: %w", err)
				continue
			}
			shifted[len(t.Prefix)] = ss
		}
		var body io.Reader = io.NewSectionReader(src, 0, size)
		if len(t.Prefix) > 0 {
			body = io.MultiReader(bytes.NewReader(t.Prefix), body)
		}
		r := &meteredReader{r: body, max: g.maxStored(t)}
		id, n, err := g.put(ctx, t, date, now, r, size+int64(len(t.Prefix)))
		if err != nil {
			results[i].Err = err
			continue
		}
		app, err := g.append(ctx, t, date, n, id, ss.enc)
		if err != nil {
			results[i].Err = err
			if !Refused(err) {
				results[i].Result = Result{Blob: id, Size: n}
			}
			continue
		}
		results[i].Result = Result{Appended: app, Blob: id, Size: n, Structure: ss.st}
	}
	return results, nil
}

type shiftedStructure struct {
	st  *mime.Structure
	enc []byte
}

// Spool keeps a message for reading several times: in memory up to
// Config.SpoolMemory bytes, then in an unlinked temporary file in
// Config.SpoolDir. A caller that must read a body before ingesting it (the
// LMTP gateway hashes it and runs Sieve on its header) spools it once and
// hands Reader to IngestMany, which then reads it at offsets instead of
// copying it again. Close it when done.
type Spool struct {
	max int64
	dir string
	mem []byte
	f   *os.File
	n   int64
}

// NewSpool returns an empty spool with the Ingester's spool settings.
func (g *Ingester) NewSpool() *Spool {
	return &Spool{max: g.cfg.SpoolMemory, dir: g.cfg.SpoolDir}
}

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.f == nil && int64(len(s.mem)+len(p)) <= s.max {
		s.mem = append(s.mem, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "mailstore-ingest-*")
		if err != nil {
			return 0, fmt.Errorf("create spool file: %w", err)
		}
		// Unlink at once where the system allows it, so that a crash
		// leaves nothing behind; Close removes it otherwise.
		_ = os.Remove(f.Name())
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

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.n }

// Reader reads what was written so far, from the start; each call returns
// a new reader. It is an io.ReaderAt too, so IngestMany does not copy it.
func (s *Spool) Reader() *io.SectionReader {
	return io.NewSectionReader(s.readerAt(), 0, s.n)
}

func (s *Spool) readerAt() io.ReaderAt {
	if s.f != nil {
		return s.f
	}
	return bytes.NewReader(s.mem)
}

// Close releases the memory or the file.
func (s *Spool) Close() error {
	if s.f == nil {
		s.mem = nil
		return nil
	}
	name := s.f.Name()
	err := s.f.Close()
	if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	s.f = nil
	return err
}
