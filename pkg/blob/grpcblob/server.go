// Package grpcblob carries the blob.Store contract over gRPC: Server exposes
// any store as the mailstore.blob.v1.BlobService, and Client is a
// blob.Store that calls it. Gateways and the blob service always talk
// through it, in one process or many, so there is one code path.
//
// Bodies stream both ways in chunks of at most 256 KiB; neither side holds a
// whole message. A Put commits only when the client half-closes the stream
// after the last chunk; a client that fails to read its body, or is
// cancelled, cancels the stream, the server's store sees a read error, and
// nothing is stored.
//
// Errors: the server maps the blob sentinels to a status code plus a
// google.rpc.ErrorInfo (domain "blob.mailstore") and the client maps them
// back, so errors.Is(err, blob.ErrNotFound) holds across the wire:
//
//	blob.ErrNotFound         NOT_FOUND           reason NOT_FOUND
//	blob.ErrExists           ALREADY_EXISTS      reason EXISTS
//	blob.ErrInvalidArgument  INVALID_ARGUMENT    reason INVALID_ARGUMENT
//	blob.ErrTooLarge         RESOURCE_EXHAUSTED  reason TOO_LARGE
//	blob.ErrUnavailable      UNAVAILABLE         reason UNAVAILABLE
//
// Transport failures (UNAVAILABLE or DEADLINE_EXCEEDED without a reason)
// become blob.ErrUnavailable on the client.
package grpcblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	blobv1 "github.com/mailstore/mailstore/proto/mailstore/blob/v1"
)

const (
	// chunkSize is the largest body chunk in one message.
	chunkSize = 256 << 10
	// listBatch is the number of Infos per List message.
	listBatch = 128
)

var chunkBufs = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// Server serves a blob.Store as the BlobService.
type Server struct {
	blobv1.UnimplementedBlobServiceServer
	store  blob.Store
	logger *slog.Logger
}

// NewServer returns a server over store.
func NewServer(store blob.Store, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{store: store, logger: logger}
}

// Register registers the service on g.
func (s *Server) Register(g *grpc.Server) { blobv1.RegisterBlobServiceServer(g, s) }

// status converts a store error for the wire, logging what the client
// cannot act on.
func (s *Server) status(method string, err error) error {
	st := toStatus(err)
	if status.Code(st) == codes.Internal {
		s.logger.Warn("blob call failed", "method", method, "err", err)
	}
	return st
}

// Put implements blobv1.BlobServiceServer.
func (s *Server) Put(stream grpc.ClientStreamingServer[blobv1.PutRequest, blobv1.PutResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return toStatus(fmt.Errorf("%w: put stream does not start with a header", blob.ErrInvalidArgument))
	}
	r := &chunkReader{stream: stream}
	info, err := s.store.Put(stream.Context(), mail.AccountID(hdr.GetAccount()), mail.BlobID(hdr.GetId()), r,
		metaFromProto(hdr.GetMeta()), blob.PutOptions{Size: hdr.GetSize(), MaxSize: hdr.GetMaxSize()})
	if err != nil {
		return s.status("Put", err)
	}
	return stream.SendAndClose(&blobv1.PutResponse{Info: infoToProto(info)})
}

// chunkReader reads the body chunks of a Put stream. The end of the stream
// (the client's half-close) is io.EOF; a cancelled stream is an error.
type chunkReader struct {
	stream grpc.ClientStreamingServer[blobv1.PutRequest, blobv1.PutResponse]
	buf    []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		msg, err := r.stream.Recv()
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("receive body: %w", err)
		}
		if msg.GetHeader() != nil {
			return 0, fmt.Errorf("%w: second header in put stream", blob.ErrInvalidArgument)
		}
		r.buf = msg.GetChunk()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Get implements blobv1.BlobServiceServer.
func (s *Server) Get(req *blobv1.GetRequest, stream grpc.ServerStreamingServer[blobv1.GetResponse]) error {
	rc, err := s.store.Get(stream.Context(), mail.AccountID(req.GetAccount()), mail.BlobID(req.GetId()),
		blob.Range{Offset: req.GetOffset(), Length: req.GetLength()})
	if err != nil {
		return s.status("Get", err)
	}
	defer rc.Close()
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	for {
		n, err := io.ReadFull(rc, *bp)
		if n > 0 {
			// SendMsg encodes the message before returning, so the buffer
			// may be reused.
			if serr := stream.Send(&blobv1.GetResponse{Chunk: (*bp)[:n]}); serr != nil {
				return serr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return s.status("Get", err)
		}
	}
}

// Stat implements blobv1.BlobServiceServer.
func (s *Server) Stat(ctx context.Context, req *blobv1.StatRequest) (*blobv1.StatResponse, error) {
	info, err := s.store.Stat(ctx, mail.AccountID(req.GetAccount()), mail.BlobID(req.GetId()))
	if err != nil {
		return nil, s.status("Stat", err)
	}
	return &blobv1.StatResponse{Info: infoToProto(info)}, nil
}

// Delete implements blobv1.BlobServiceServer.
func (s *Server) Delete(ctx context.Context, req *blobv1.DeleteRequest) (*blobv1.DeleteResponse, error) {
	if err := s.store.Delete(ctx, mail.AccountID(req.GetAccount()), mail.BlobID(req.GetId())); err != nil {
		return nil, s.status("Delete", err)
	}
	return &blobv1.DeleteResponse{}, nil
}

// errSend marks a failed Send inside List's callback.
var errSend = errors.New("send list batch")

// List implements blobv1.BlobServiceServer.
func (s *Server) List(req *blobv1.ListRequest, stream grpc.ServerStreamingServer[blobv1.ListResponse]) error {
	batch := &blobv1.ListResponse{}
	flush := func() error {
		if len(batch.Infos) == 0 {
			return nil
		}
		if err := stream.Send(batch); err != nil {
			return fmt.Errorf("%w: %w", errSend, err)
		}
		batch = &blobv1.ListResponse{}
		return nil
	}
	err := s.store.List(stream.Context(), mail.AccountID(req.GetAccount()), func(info blob.Info) error {
		batch.Infos = append(batch.Infos, infoToProto(info))
		if len(batch.Infos) >= listBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if errors.Is(err, errSend) {
		return err // the stream is gone; the status does not matter
	}
	if err != nil {
		return s.status("List", err)
	}
	return nil
}

func metaToProto(m blob.Meta) *blobv1.Meta {
	pm := &blobv1.Meta{Account: string(m.Account), Mailbox: m.Mailbox}
	if !m.InternalDate.IsZero() {
		pm.InternalDateUnixNano = m.InternalDate.UnixNano()
	}
	if len(m.Flags) > 0 {
		pm.Flags = make([]string, len(m.Flags))
		for i, f := range m.Flags {
			pm.Flags[i] = string(f)
		}
	}
	return pm
}

func metaFromProto(pm *blobv1.Meta) blob.Meta {
	m := blob.Meta{Account: mail.AccountID(pm.GetAccount()), Mailbox: pm.GetMailbox()}
	if ns := pm.GetInternalDateUnixNano(); ns != 0 {
		m.InternalDate = time.Unix(0, ns)
	}
	for _, f := range pm.GetFlags() {
		m.Flags = append(m.Flags, mail.Flag(f))
	}
	return m
}

func infoToProto(info blob.Info) *blobv1.Info {
	pi := &blobv1.Info{Id: string(info.ID), Size: info.Size, Meta: metaToProto(info.Meta)}
	if !info.Modified.IsZero() {
		pi.ModifiedUnixNano = info.Modified.UnixNano()
	}
	return pi
}

func infoFromProto(pi *blobv1.Info) blob.Info {
	info := blob.Info{ID: mail.BlobID(pi.GetId()), Size: pi.GetSize(), Meta: metaFromProto(pi.GetMeta())}
	if ns := pi.GetModifiedUnixNano(); ns != 0 {
		info.Modified = time.Unix(0, ns)
	}
	return info
}
