// Package s3blob keeps message bodies in any S3-compatible object store
// (AWS S3, MinIO, versitygw, Ceph RGW) through minio-go. It is the production
// blob.Store: S3 is the distributed, durable engine, and this package only
// maps the blob contract onto it.
//
// Object keys are built here and nowhere else: <prefix><account>/<id>.
//
// Recovery metadata travels as user metadata (x-amz-meta-* headers), so an
// account's index can be rebuilt from the bucket alone:
//
//	x-amz-meta-mailstore-account  the account id (already [0-9a-z_-])
//	x-amz-meta-mailstore-date     internal date, nanoseconds since the epoch
//	x-amz-meta-mailstore-mailbox  mailbox name, unpadded base64url of UTF-8
//	x-amz-meta-mailstore-flags    flags joined by spaces, unpadded base64url
//
// Header values must be ASCII, hence base64 for names and keywords. AWS caps
// user metadata at 2 KiB, which a 1 KiB mailbox name plus many keywords can
// exceed; such a Put fails rather than losing metadata.
//
// Put never lets minio-go size its own buffers: it reads the body into a
// pooled 128 KiB buffer and, if the body ends there (most mail), sends one
// PutObject. Otherwise it fills pooled PartSize buffers and runs the
// multipart upload itself, one part at a time, so one Put holds at most
// PartSize bytes whatever PutOptions.Size says. Any failure aborts the
// upload, so nothing is left visible.
//
// Blobs are immutable, so Put is conditional: If-None-Match: * on PutObject
// and on CompleteMultipartUpload, which MinIO and versitygw (and AWS since
// 2024) honour with 412 PreconditionFailed, mapped to blob.ErrExists. There
// is no window between a check and the write. Large puts also Stat first, to
// fail fast instead of uploading a body that will be refused.
package s3blob

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/sync/errgroup"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
)

const (
	smallBufSize = 128 << 10
	maxParts     = 10000
	// listWorkers bounds the concurrent Stat calls of List.
	listWorkers = 8
	// abortTimeout bounds the cleanup of a failed multipart upload, which
	// runs even when the Put's context is cancelled.
	abortTimeout = 30 * time.Second

	metaAccount = "Mailstore-Account"
	metaDate    = "Mailstore-Date"
	metaMailbox = "Mailstore-Mailbox"
	metaFlags   = "Mailstore-Flags"
	amzMeta     = "X-Amz-Meta-"
)

// Store is a blob.Store in an S3 bucket.
type Store struct {
	client   *minio.Client
	core     *minio.Core
	bucket   string
	region   string
	prefix   string
	partSize int64
	logger   *slog.Logger

	smallBufs sync.Pool
	partBufs  sync.Pool
}

var _ blob.Store = (*Store)(nil)

// New returns a store for cfg. It makes no request; see EnsureBucket.
func New(cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	if err := cfg.loadKeys(); err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	endpoint, secure := cfg.Endpoint, !cfg.Insecure
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3blob: bad endpoint %q", cfg.Endpoint)
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}},
		})
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	base, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3blob: transport: %w", err)
	}
	wrap := cfg.WrapTransport
	if wrap == nil {
		wrap = func(t http.RoundTripper) http.RoundTripper { return t }
	}
	client, err := minio.New(endpoint, &minio.Options{
		// Every S3 request is a span of the caller's trace.
		Transport:    otelhttp.NewTransport(wrap(base)),
		Creds:        creds,
		Secure:       secure,
		Region:       region,
		BucketLookup: lookup,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3blob: create client: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	s := &Store{
		client:   client,
		core:     &minio.Core{Client: client},
		bucket:   cfg.Bucket,
		region:   region,
		prefix:   cfg.Prefix,
		partSize: partSize,
		logger:   logger,
	}
	s.smallBufs.New = func() any { b := make([]byte, smallBufSize); return &b }
	s.partBufs.New = func() any { b := make([]byte, partSize); return &b }
	return s, nil
}

// EnsureBucket creates the bucket if it does not exist.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, mapErr(err))
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", s.bucket, mapErr(err))
	}
	return nil
}

// Bucket returns the name of the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// key is the object key of a blob; the only place keys are built.
func (s *Store) key(acct mail.AccountID, id mail.BlobID) string {
	return s.accountPrefix(acct) + string(id)
}

func (s *Store) accountPrefix(acct mail.AccountID) string {
	return s.prefix + string(acct) + "/"
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

var b64 = base64.RawURLEncoding

func encodeMeta(m blob.Meta) map[string]string {
	h := map[string]string{metaAccount: string(m.Account)}
	if !m.InternalDate.IsZero() {
		h[metaDate] = strconv.FormatInt(m.InternalDate.UnixNano(), 10)
	}
	if m.Mailbox != "" {
		h[metaMailbox] = b64.EncodeToString([]byte(m.Mailbox))
	}
	if len(m.Flags) > 0 {
		fs := make([]string, len(m.Flags))
		for i, f := range m.Flags {
			fs[i] = string(f)
		}
		h[metaFlags] = b64.EncodeToString([]byte(strings.Join(fs, " ")))
	}
	return h
}

func decodeMeta(h http.Header) (blob.Meta, error) {
	m := blob.Meta{Account: mail.AccountID(h.Get(amzMeta + metaAccount))}
	if v := h.Get(amzMeta + metaDate); v != "" {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return m, fmt.Errorf("decode internal date %q: %w", v, err)
		}
		m.InternalDate = time.Unix(0, ns)
	}
	if v := h.Get(amzMeta + metaMailbox); v != "" {
		b, err := b64.DecodeString(v)
		if err != nil {
			return m, fmt.Errorf("decode mailbox: %w", err)
		}
		m.Mailbox = string(b)
	}
	if v := h.Get(amzMeta + metaFlags); v != "" {
		b, err := b64.DecodeString(v)
		if err != nil {
			return m, fmt.Errorf("decode flags: %w", err)
		}
		for f := range strings.FieldsSeq(string(b)) {
			m.Flags = append(m.Flags, mail.Flag(f))
		}
	}
	return m, nil
}

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
	body := &bodyReader{ctx: ctx, r: bufio.NewReaderSize(r, 16), o: o}
	key := s.key(acct, id)
	meta := encodeMeta(m)

	sp := s.smallBufs.Get().(*[]byte)
	defer s.smallBufs.Put(sp)
	n, more, err := body.fill(*sp)
	if err != nil {
		return blob.Info{}, err
	}
	if !more {
		return s.putSingle(ctx, key, id, (*sp)[:n], meta, m)
	}
	pp := s.partBufs.Get().(*[]byte)
	defer s.partBufs.Put(pp)
	part := *pp
	copy(part, (*sp)[:n])
	k, more, err := body.fill(part[n:])
	if err != nil {
		return blob.Info{}, err
	}
	n += k
	if !more {
		return s.putSingle(ctx, key, id, part[:n], meta, m)
	}
	return s.putMultipart(ctx, key, id, body, part, n, meta, m)
}

// putSingle stores data with one conditional PutObject.
func (s *Store) putSingle(ctx context.Context, key string, id mail.BlobID, data []byte, meta map[string]string, m blob.Meta) (blob.Info, error) {
	opts := minio.PutObjectOptions{
		UserMetadata:     meta,
		ContentType:      "application/octet-stream",
		DisableMultipart: true,
	}
	opts.SetMatchETagExcept("*")
	up, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		err = mapPutErr(err)
		sum := md5.Sum(data)
		if at, ok := s.ownWrite(ctx, key, err, hex.EncodeToString(sum[:]), int64(len(data))); ok {
			return blob.Info{ID: id, Size: int64(len(data)), Modified: at, Meta: m}, nil
		}
		return blob.Info{}, err
	}
	return blob.Info{ID: id, Size: int64(len(data)), Modified: modified(up.LastModified), Meta: m}, nil
}

// putMultipart uploads the body in parts of len(part) bytes, the first n of
// which are already in part, then completes the upload conditionally. Any
// failure aborts the upload.
func (s *Store) putMultipart(ctx context.Context, key string, id mail.BlobID, body *bodyReader, part []byte, n int, meta map[string]string, m blob.Meta) (info blob.Info, err error) {
	// Fail fast rather than upload a body that the complete would refuse.
	if _, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err == nil {
		return blob.Info{}, blob.ErrExists
	} else if err := mapErr(err); !errors.Is(err, blob.ErrNotFound) {
		return blob.Info{}, fmt.Errorf("check for an existing blob: %w", err)
	}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{
		UserMetadata: meta,
		ContentType:  "application/octet-stream",
	})
	if err != nil {
		return blob.Info{}, fmt.Errorf("start multipart upload: %w", mapErr(err))
	}
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := s.core.AbortMultipartUpload(actx, s.bucket, key, uploadID); aerr != nil {
			s.logger.Warn("abort multipart upload", "key", key, "upload_id", uploadID, "err", aerr)
		}
	}()
	var parts []minio.CompletePart
	for num, more := 1, true; ; num++ {
		if num > maxParts {
			return blob.Info{}, fmt.Errorf("%w: more than %d parts of %d bytes", blob.ErrTooLarge, maxParts, len(part))
		}
		p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, num, bytes.NewReader(part[:n]), int64(n), minio.PutObjectPartOptions{})
		if err != nil {
			return blob.Info{}, fmt.Errorf("upload part %d: %w", num, mapErr(err))
		}
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
		if !more {
			break
		}
		// fill returns at least one byte, since the last one said more.
		if n, more, err = body.fill(part); err != nil {
			return blob.Info{}, err
		}
	}
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	up, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, parts, opts)
	if err != nil {
		err = mapPutErr(err)
		if at, ok := s.ownWrite(ctx, key, err, multipartETag(parts), body.total); ok {
			return blob.Info{ID: id, Size: body.total, Modified: at, Meta: m}, nil
		}
		return blob.Info{}, err
	}
	return blob.Info{ID: id, Size: body.total, Modified: modified(up.LastModified), Meta: m}, nil
}

// ownWrite reports whether a conditional write that failed with err did in
// fact store this Put's body: minio-go retries a request whose answer was
// lost in transit (a reset, a timeout), and the retry of a write that had
// succeeded is refused with 412 (ErrExists), or, for a completed multipart
// upload, NoSuchUpload (ErrNotFound). Blob ids are fresh for every write,
// so an object under our key with our size and our ETag (the MD5 of a
// single PUT, or of the parts' MD5s for a multipart upload, as S3 computes
// them) is ours. It returns the object's modification time.
func (s *Store) ownWrite(ctx context.Context, key string, err error, etag string, size int64) (time.Time, bool) {
	if !errors.Is(err, blob.ErrExists) && !errors.Is(err, blob.ErrNotFound) {
		return time.Time{}, false
	}
	info, serr := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if serr != nil || info.Size != size || !strings.EqualFold(strings.Trim(info.ETag, `"`), etag) {
		return time.Time{}, false
	}
	s.logger.Info("put answered by a retry of its own write", "key", key, "err", err)
	return modified(info.LastModified), true
}

// multipartETag is the ETag S3 gives the object completed from parts: the
// hex MD5 of the parts' binary MD5s, a dash, and the number of parts.
func multipartETag(parts []minio.CompletePart) string {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil {
			return "" // not an MD5: nothing will match
		}
		h.Write(b)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
}

func modified(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// bodyReader reads a Put's body, enforcing PutOptions and the context.
type bodyReader struct {
	ctx   context.Context
	r     *bufio.Reader
	o     blob.PutOptions
	total int64
}

// fill reads into buf until it is full or the body ends, and reports
// whether more bytes follow. At the end it checks the declared size.
func (b *bodyReader) fill(buf []byte) (n int, more bool, err error) {
	for n < len(buf) {
		if err := b.ctx.Err(); err != nil {
			return n, false, err
		}
		k, rerr := b.r.Read(buf[n:])
		n += k
		b.total += int64(k)
		if err := b.checkLimits(); err != nil {
			return n, false, err
		}
		if rerr == io.EOF {
			return n, false, b.checkSize()
		}
		if rerr != nil {
			return n, false, fmt.Errorf("read body: %w", rerr)
		}
	}
	if _, err := b.r.Peek(1); err == io.EOF {
		return n, false, b.checkSize()
	} else if err != nil {
		return n, false, fmt.Errorf("read body: %w", err)
	}
	return n, true, nil
}

func (b *bodyReader) checkLimits() error {
	if b.o.MaxSize > 0 && b.total > b.o.MaxSize {
		return fmt.Errorf("%w: body over the limit of %d bytes", blob.ErrTooLarge, b.o.MaxSize)
	}
	if b.o.Size >= 0 && b.total > b.o.Size {
		return fmt.Errorf("%w: body longer than the declared %d bytes", blob.ErrInvalidArgument, b.o.Size)
	}
	return nil
}

func (b *bodyReader) checkSize() error {
	if b.o.Size >= 0 && b.total != b.o.Size {
		return fmt.Errorf("%w: body of %d bytes, declared %d", blob.ErrInvalidArgument, b.total, b.o.Size)
	}
	return nil
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, acct mail.AccountID, id mail.BlobID, rg blob.Range) (io.ReadCloser, error) {
	rc, err := s.get(ctx, acct, id, rg)
	if err != nil {
		return nil, fmt.Errorf("get blob %s/%s: %w", acct, id, err)
	}
	return rc, nil
}

func (s *Store) get(ctx context.Context, acct mail.AccountID, id mail.BlobID, rg blob.Range) (io.ReadCloser, error) {
	if err := check(acct, id); err != nil {
		return nil, err
	}
	if rg.Offset < 0 {
		return nil, fmt.Errorf("%w: offset %d", blob.ErrInvalidArgument, rg.Offset)
	}
	whole := rg.Offset == 0 && rg.Length <= 0
	if rg.Length == 0 && !whole {
		// An empty range of an existing blob: S3 has no way to ask for it.
		if _, err := s.stat(ctx, acct, id); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	if !whole {
		end := int64(0) // bytes=off-
		if rg.Length > 0 {
			end = rg.Offset + rg.Length - 1
		}
		if err := opts.SetRange(rg.Offset, end); err != nil {
			return nil, fmt.Errorf("%w: %w", blob.ErrInvalidArgument, err)
		}
	}
	rc, _, _, err := s.core.GetObject(ctx, s.bucket, s.key(acct, id), opts)
	if err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			// The range starts at or past the end of an existing blob.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, mapErr(err)
	}
	return &objectReader{rc: rc}, nil
}

// objectReader maps transport errors while reading an object to
// blob.ErrUnavailable.
type objectReader struct{ rc io.ReadCloser }

func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read object: %w", mapErr(err))
	}
	return n, err
}

func (r *objectReader) Close() error { return r.rc.Close() }

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, acct mail.AccountID, id mail.BlobID) (blob.Info, error) {
	info, err := s.stat(ctx, acct, id)
	if err != nil {
		return blob.Info{}, fmt.Errorf("stat blob %s/%s: %w", acct, id, err)
	}
	return info, nil
}

func (s *Store) stat(ctx context.Context, acct mail.AccountID, id mail.BlobID) (blob.Info, error) {
	if err := check(acct, id); err != nil {
		return blob.Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.key(acct, id), minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, mapErr(err)
	}
	m, err := decodeMeta(oi.Metadata)
	if err != nil {
		return blob.Info{}, err
	}
	return blob.Info{ID: id, Size: oi.Size, Modified: oi.LastModified, Meta: m}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
	if err := check(acct, id); err != nil {
		return fmt.Errorf("delete blob %s/%s: %w", acct, id, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.key(acct, id), minio.RemoveObjectOptions{})
	if err = mapErr(err); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("delete blob %s/%s: %w", acct, id, err)
	}
	return nil
}

// List implements blob.Store. S3 listings carry no user metadata (but for
// MinIO's extension), so List stats every object, listWorkers at a time;
// it is meant for recovery and sweeps, not for request paths.
func (s *Store) List(ctx context.Context, acct mail.AccountID, fn func(blob.Info) error) error {
	if !blob.ValidAccount(acct) {
		return fmt.Errorf("list blobs of %s: %w: account %q", acct, blob.ErrInvalidArgument, acct)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	ids := make(chan mail.BlobID)
	infos := make(chan blob.Info)
	prefix := s.accountPrefix(acct)
	g.Go(func() error {
		defer close(ids)
		for obj := range s.client.ListObjects(gctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if obj.Err != nil {
				return mapErr(obj.Err)
			}
			id := mail.BlobID(strings.TrimPrefix(obj.Key, prefix))
			if !blob.ValidID(id) {
				continue // not ours
			}
			select {
			case ids <- id:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	var workers sync.WaitGroup
	for range listWorkers {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			for id := range ids {
				info, err := s.stat(gctx, acct, id)
				if errors.Is(err, blob.ErrNotFound) {
					continue // deleted since listed
				}
				if err != nil {
					return fmt.Errorf("stat %s: %w", id, err)
				}
				select {
				case infos <- info:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	go func() {
		workers.Wait()
		close(infos)
	}()
	var fnErr error
	for info := range infos {
		if fnErr != nil {
			continue // drain
		}
		if fnErr = fn(info); fnErr != nil {
			cancel()
		}
	}
	err := g.Wait()
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("list blobs of %s: %w", acct, err)
	}
	return nil
}

// mapPutErr is mapErr for conditional writes, where a failed precondition
// means the id is taken.
func mapPutErr(err error) error {
	if minio.ToErrorResponse(err).Code == "PreconditionFailed" {
		return blob.ErrExists
	}
	return mapErr(err)
}

// mapErr maps minio-go errors to the blob sentinels, keeping the cause.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", blob.ErrUnavailable, err)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NoSuchUpload":
		return fmt.Errorf("%w: %w", blob.ErrNotFound, err)
	case "EntityTooLarge":
		return fmt.Errorf("%w: %w", blob.ErrTooLarge, err)
	case "NoSuchBucket", "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
		return fmt.Errorf("%w: %w", blob.ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && resp.Code == "":
		return fmt.Errorf("%w: %w", blob.ErrNotFound, err)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %w", blob.ErrUnavailable, err)
	case resp.StatusCode == 0 && minio.IsNetworkOrHostDown(err, false):
		return fmt.Errorf("%w: %w", blob.ErrUnavailable, err)
	}
	return err
}
