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
// then for each target uploaded as its own blob and committed as its own
// entry, with the same write order as Ingest. The error is for what fails
// every target (too large, a read or spool error) and then nothing is
// stored; otherwise each target has its own result. The Structure of the
// results is shared; callers must not change it.
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
		sp := &spool{max: g.cfg.SpoolMemory, dir: g.cfg.SpoolDir}
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

	results := make([]TargetResult, len(d.Targets))
	for i, t := range d.Targets {
		r := &meteredReader{r: io.NewSectionReader(src, 0, size), max: g.cfg.MaxMessageSize}
		id, n, err := g.put(ctx, t, date, now, r, size)
		if err != nil {
			results[i].Err = err
			continue
		}
		app, err := g.append(ctx, t, date, n, id, enc)
		if err != nil {
			results[i].Err = err
			if !Refused(err) {
				results[i].Result = Result{Blob: id, Size: n}
			}
			continue
		}
		results[i].Result = Result{Appended: app, Blob: id, Size: n, Structure: st}
	}
	return results, nil
}

// spool keeps a body for reading several times: in memory up to max bytes,
// then in an unlinked temporary file.
type spool struct {
	max int64
	dir string
	mem []byte
	f   *os.File
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && int64(len(s.mem)+len(p)) <= s.max {
		s.mem = append(s.mem, p...)
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
	if err != nil {
		return n, fmt.Errorf("write spool file: %w", err)
	}
	return n, nil
}

func (s *spool) readerAt() io.ReaderAt {
	if s.f != nil {
		return s.f
	}
	return bytes.NewReader(s.mem)
}

func (s *spool) Close() error {
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
