// Package fsblob is the embedded blob store: message bodies as files in a
// local directory, for `-target=all` on one machine and for tests. It keeps
// the blob.Store contract (all-or-nothing, durable puts) with plain POSIX
// file operations, so it needs no server.
//
// Layout: <dir>/<account>/<first two characters of the id>/<id>. Account ids
// and blob ids are checked with blob.ValidAccount and blob.ValidID, so they
// never contain a path separator or a dot and cannot escape the directory.
//
// File format: every blob file starts with a header that carries blob.Meta,
// so the body and its recovery metadata appear together in one atomic
// rename and cannot drift apart:
//
//	"MSBLOB1\n"                   8 bytes of magic
//	header length                 4 bytes, big-endian uint32
//	header                        JSON, see fileHeader
//	body                          the blob, byte for byte
//
// The blob's size is the file size minus the header; its Modified time is
// the file's mtime.
//
// Put streams the body into a temporary file ".tmp-*" in the blob's final
// directory, fsyncs it, renames it to its final name without replacing an
// existing file (renameat2 RENAME_NOREPLACE, or link+unlink), then fsyncs
// the directory: a blob is either complete and durable or absent. Temporary
// names start with a dot, which no valid id does, so a crash leaves at most
// stray temporary files that List and Get never see.
package fsblob

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
)

// Config configures the store.
type Config struct {
	// Dir is the root directory. Empty means <data-dir>/blobs, which the
	// wiring fills in before New.
	Dir string
}

// RegisterFlags registers the flags of the store under -blob.fs.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Dir, "blob.fs.dir", "", "Directory of the local blob store (default <data-dir>/blobs).")
}

// Validate checks the configuration. An empty Dir is valid: the wiring
// replaces it with the default.
func (c *Config) Validate() error { return nil }

// Store is a blob.Store in a local directory.
type Store struct {
	dir    string
	logger *slog.Logger
}

var _ blob.Store = (*Store)(nil)

// New returns a store in cfg.Dir, creating the directory if needed.
func New(cfg Config, logger *slog.Logger) (*Store, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("fsblob: %w: empty directory", blob.ErrInvalidArgument)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: resolve directory %s: %w", cfg.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("fsblob: create directory: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{dir: dir, logger: logger}, nil
}

const (
	magic        = "MSBLOB1\n"
	prefixLen    = len(magic) + 4
	maxHeaderLen = 1 << 20
	tempPattern  = ".tmp-*"
	copyBufSize  = 64 << 10
)

// fileHeader is the JSON header of a blob file.
type fileHeader struct {
	Account mail.AccountID `json:"account"`
	// InternalDate in nanoseconds since the epoch; 0 for the zero time.
	InternalDate int64       `json:"internal_date"`
	Mailbox      string      `json:"mailbox"`
	Flags        []mail.Flag `json:"flags,omitempty"`
}

func encodeHeader(m blob.Meta) ([]byte, error) {
	h := fileHeader{Account: m.Account, Mailbox: m.Mailbox, Flags: m.Flags}
	if !m.InternalDate.IsZero() {
		h.InternalDate = m.InternalDate.UnixNano()
	}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(js) > maxHeaderLen {
		return nil, fmt.Errorf("%w: metadata of %d bytes", blob.ErrInvalidArgument, len(js))
	}
	out := make([]byte, 0, prefixLen+len(js))
	out = append(out, magic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(js)))
	return append(out, js...), nil
}

// readHeader reads the header of an open blob file and returns its Meta and
// the offset of the body.
func readHeader(f *os.File) (blob.Meta, int64, error) {
	var pre [prefixLen]byte
	if _, err := io.ReadFull(f, pre[:]); err != nil {
		return blob.Meta{}, 0, fmt.Errorf("read header of %s: %w", f.Name(), err)
	}
	if string(pre[:len(magic)]) != magic {
		return blob.Meta{}, 0, fmt.Errorf("read header of %s: bad magic", f.Name())
	}
	n := binary.BigEndian.Uint32(pre[len(magic):])
	if n > maxHeaderLen {
		return blob.Meta{}, 0, fmt.Errorf("read header of %s: header of %d bytes", f.Name(), n)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(f, js); err != nil {
		return blob.Meta{}, 0, fmt.Errorf("read header of %s: %w", f.Name(), err)
	}
	var h fileHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return blob.Meta{}, 0, fmt.Errorf("decode header of %s: %w", f.Name(), err)
	}
	m := blob.Meta{Account: h.Account, Mailbox: h.Mailbox, Flags: h.Flags}
	if h.InternalDate != 0 {
		m.InternalDate = time.Unix(0, h.InternalDate)
	}
	return m, int64(prefixLen) + int64(n), nil
}

// shard is the name of the directory that holds id.
func shard(id mail.BlobID) string {
	if len(id) < 2 {
		return string(id)
	}
	return string(id[:2])
}

func (s *Store) accountDir(acct mail.AccountID) string {
	return filepath.Join(s.dir, string(acct))
}

func (s *Store) path(acct mail.AccountID, id mail.BlobID) string {
	return filepath.Join(s.dir, string(acct), shard(id), string(id))
}

func check(acct mail.AccountID, id mail.BlobID) error {
	if !blob.ValidAccount(acct) {
		return fmt.Errorf("%w: account %q", blob.ErrInvalidArgument, acct)
	}
	if !blob.ValidID(id) {
		return fmt.Errorf("%w: blob id %q", blob.ErrInvalidArgument, id)
	}
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m blob.Meta, o blob.PutOptions) (blob.Info, error) {
	info, err := s.put(ctx, acct, id, r, m, o)
	if err != nil {
		return blob.Info{}, fmt.Errorf("put blob %s/%s: %w", acct, id, err)
	}
	return info, nil
}

func (s *Store) put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m blob.Meta, o blob.PutOptions) (blob.Info, error) {
	if err := check(acct, id); err != nil {
		return blob.Info{}, err
	}
	if o.MaxSize > 0 && o.Size > o.MaxSize {
		return blob.Info{}, fmt.Errorf("%w: size %d over the limit of %d", blob.ErrTooLarge, o.Size, o.MaxSize)
	}
	hdr, err := encodeHeader(m)
	if err != nil {
		return blob.Info{}, err
	}
	final := s.path(acct, id)
	// Fail fast on a taken id; the no-replace rename below closes the race.
	if _, err := os.Lstat(final); err == nil {
		return blob.Info{}, blob.ErrExists
	}
	dir := filepath.Dir(final)
	if err := s.mkdirs(dir); err != nil {
		return blob.Info{}, err
	}
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return blob.Info{}, fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.logger.Warn("remove temporary blob file", "path", tmp, "err", err)
			}
		}
	}()
	if _, err := f.Write(hdr); err != nil {
		return blob.Info{}, fmt.Errorf("write header: %w", err)
	}
	n, err := copyBody(ctx, f, r, o)
	if err != nil {
		return blob.Info{}, err
	}
	if err := f.Sync(); err != nil {
		return blob.Info{}, fmt.Errorf("sync: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return blob.Info{}, fmt.Errorf("stat temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return blob.Info{}, fmt.Errorf("close: %w", err)
	}
	if err := renameNoReplace(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return blob.Info{}, blob.ErrExists
		}
		return blob.Info{}, fmt.Errorf("rename into place: %w", err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		// The blob is in place but maybe not durable: report the failure,
		// and remove it so that the error keeps Put all-or-nothing.
		_ = os.Remove(final)
		return blob.Info{}, err
	}
	return blob.Info{ID: id, Size: n, Modified: fi.ModTime(), Meta: m}, nil
}

// copyBody streams r to w, enforcing o.Size and o.MaxSize and checking ctx
// between chunks, and returns the number of bytes copied.
func copyBody(ctx context.Context, w io.Writer, r io.Reader, o blob.PutOptions) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			total += int64(n)
			if o.MaxSize > 0 && total > o.MaxSize {
				return total, fmt.Errorf("%w: body over the limit of %d bytes", blob.ErrTooLarge, o.MaxSize)
			}
			if o.Size >= 0 && total > o.Size {
				return total, fmt.Errorf("%w: body longer than the declared %d bytes", blob.ErrInvalidArgument, o.Size)
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return total, fmt.Errorf("write body: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return total, fmt.Errorf("read body: %w", rerr)
		}
	}
	if o.Size >= 0 && total != o.Size {
		return total, fmt.Errorf("%w: body of %d bytes, declared %d", blob.ErrInvalidArgument, total, o.Size)
	}
	return total, nil
}

// mkdirs creates dir and the account directory above it if needed, and
// fsyncs each parent whose entries changed, so that a durable blob file is
// also reachable after a crash.
func (s *Store) mkdirs(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	acctDir := filepath.Dir(dir)
	for _, d := range []string{acctDir, dir} {
		err := os.Mkdir(d, 0o750)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// open opens the blob file and reads its header.
func (s *Store) open(acct mail.AccountID, id mail.BlobID) (*os.File, blob.Info, int64, error) {
	if err := check(acct, id); err != nil {
		return nil, blob.Info{}, 0, err
	}
	f, err := os.Open(s.path(acct, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blob.Info{}, 0, blob.ErrNotFound
	}
	if err != nil {
		return nil, blob.Info{}, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blob.Info{}, 0, err
	}
	m, off, err := readHeader(f)
	if err != nil {
		f.Close()
		return nil, blob.Info{}, 0, err
	}
	return f, blob.Info{ID: id, Size: fi.Size() - off, Modified: fi.ModTime(), Meta: m}, off, nil
}

type fileReader struct {
	io.Reader
	f *os.File
}

func (r *fileReader) Close() error { return r.f.Close() }

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, acct mail.AccountID, id mail.BlobID, rg blob.Range) (io.ReadCloser, error) {
	if rg.Offset < 0 {
		return nil, fmt.Errorf("get blob %s/%s: %w: offset %d", acct, id, blob.ErrInvalidArgument, rg.Offset)
	}
	f, info, off, err := s.open(acct, id)
	if err != nil {
		return nil, fmt.Errorf("get blob %s/%s: %w", acct, id, err)
	}
	start := min(rg.Offset, info.Size)
	n := info.Size - start
	if rg.Length >= 0 && !(rg.Offset == 0 && rg.Length == 0) {
		n = min(n, rg.Length)
	}
	return &fileReader{Reader: io.NewSectionReader(f, off+start, n), f: f}, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, acct mail.AccountID, id mail.BlobID) (blob.Info, error) {
	f, info, _, err := s.open(acct, id)
	if err != nil {
		return blob.Info{}, fmt.Errorf("stat blob %s/%s: %w", acct, id, err)
	}
	f.Close()
	return info, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
	if err := check(acct, id); err != nil {
		return fmt.Errorf("delete blob %s/%s: %w", acct, id, err)
	}
	p := s.path(acct, id)
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = syncDir(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("delete blob %s/%s: %w", acct, id, err)
	}
	return nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, acct mail.AccountID, fn func(blob.Info) error) error {
	if !blob.ValidAccount(acct) {
		return fmt.Errorf("list blobs of %s: %w: account %q", acct, blob.ErrInvalidArgument, acct)
	}
	shards, err := os.ReadDir(s.accountDir(acct))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list blobs of %s: %w", acct, err)
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(s.accountDir(acct), sh.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("list blobs of %s: %w", acct, err)
		}
		for _, e := range entries {
			id := mail.BlobID(e.Name())
			if !e.Type().IsRegular() || !blob.ValidID(id) || shard(id) != sh.Name() {
				continue // temporary files and strays
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list blobs of %s: %w", acct, err)
			}
			f, info, _, err := s.open(acct, id)
			if errors.Is(err, blob.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("list blobs of %s: %w", acct, err)
			}
			f.Close()
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkNoReplace moves oldpath to newpath with link+unlink, which fails if
// newpath exists.
func linkNoReplace(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	return os.Remove(oldpath)
}
