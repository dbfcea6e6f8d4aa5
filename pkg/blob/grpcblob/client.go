package grpcblob

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/mail"
	blobv1 "github.com/mailstore/mailstore/proto/mailstore/blob/v1"
)

// Client is a blob.Store served by a remote BlobService.
type Client struct {
	c blobv1.BlobServiceClient
}

var _ blob.Store = (*Client)(nil)

// New returns a client over cc.
func New(cc grpc.ClientConnInterface) *Client {
	return &Client{c: blobv1.NewBlobServiceClient(cc)}
}

// Put implements blob.Store. It streams r in chunks of 256 KiB; if reading
// r fails or ctx ends, it cancels the stream, so the server stores nothing.
func (c *Client) Put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m blob.Meta, o blob.PutOptions) (blob.Info, error) {
	info, err := c.put(ctx, acct, id, r, m, o)
	if err != nil {
		return blob.Info{}, wrap(fmt.Sprintf("put blob %s/%s", acct, id), err)
	}
	return info, nil
}

// wrap says what was attempted, unless err came from the server, whose
// message already says it.
func wrap(what string, err error) error {
	var re *remoteError
	if errors.As(err, &re) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (c *Client) put(ctx context.Context, acct mail.AccountID, id mail.BlobID, r io.Reader, m blob.Meta, o blob.PutOptions) (blob.Info, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.Put(ctx)
	if err != nil {
		return blob.Info{}, fromStatus(err)
	}
	hdr := &blobv1.PutRequest{Msg: &blobv1.PutRequest_Header{Header: &blobv1.PutHeader{
		Account: string(acct), Id: string(id), Meta: metaToProto(m), Size: o.Size, MaxSize: o.MaxSize,
	}}}
	if err := stream.Send(hdr); err != nil && err != io.EOF {
		return blob.Info{}, fromStatus(err)
	}
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	chunk := &blobv1.PutRequest_Chunk{}
	msg := &blobv1.PutRequest{Msg: chunk}
	for {
		if err := ctx.Err(); err != nil {
			return blob.Info{}, err // the deferred cancel aborts the stream
		}
		n, rerr := io.ReadFull(r, *bp)
		if n > 0 {
			chunk.Chunk = (*bp)[:n]
			if err := stream.Send(msg); err == io.EOF {
				break // the server ended the call; CloseAndRecv tells why
			} else if err != nil {
				return blob.Info{}, fromStatus(err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			cancel() // before anything could half-close the stream
			return blob.Info{}, fmt.Errorf("read body: %w", rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return blob.Info{}, fromStatus(err)
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Get implements blob.Store. The returned reader receives the stream
// lazily; Close cancels it.
func (c *Client) Get(ctx context.Context, acct mail.AccountID, id mail.BlobID, rg blob.Range) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.c.Get(ctx, &blobv1.GetRequest{Account: string(acct), Id: string(id), Offset: rg.Offset, Length: rg.Length})
	if err != nil {
		cancel()
		return nil, wrap(fmt.Sprintf("get blob %s/%s", acct, id), fromStatus(err))
	}
	// The first message tells whether the blob exists: errors end the
	// stream before any chunk.
	first, err := stream.Recv()
	if err == io.EOF {
		cancel()
		return io.NopCloser(eofReader{}), nil
	}
	if err != nil {
		cancel()
		return nil, wrap(fmt.Sprintf("get blob %s/%s", acct, id), fromStatus(err))
	}
	return &getReader{stream: stream, cancel: cancel, buf: first.GetChunk(), what: fmt.Sprintf("%s/%s", acct, id)}, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// getReader reads the chunks of a Get stream.
type getReader struct {
	stream grpc.ServerStreamingClient[blobv1.GetResponse]
	cancel context.CancelFunc
	buf    []byte
	err    error
	what   string
}

func (r *getReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		msg, err := r.stream.Recv()
		if err == io.EOF {
			r.err = io.EOF
			continue
		}
		if err != nil {
			r.err = wrap("read blob "+r.what, fromStatus(err))
			continue
		}
		r.buf = msg.GetChunk()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *getReader) Close() error {
	r.cancel()
	return nil
}

// Stat implements blob.Store.
func (c *Client) Stat(ctx context.Context, acct mail.AccountID, id mail.BlobID) (blob.Info, error) {
	resp, err := c.c.Stat(ctx, &blobv1.StatRequest{Account: string(acct), Id: string(id)})
	if err != nil {
		return blob.Info{}, wrap(fmt.Sprintf("stat blob %s/%s", acct, id), fromStatus(err))
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Delete implements blob.Store.
func (c *Client) Delete(ctx context.Context, acct mail.AccountID, id mail.BlobID) error {
	if _, err := c.c.Delete(ctx, &blobv1.DeleteRequest{Account: string(acct), Id: string(id)}); err != nil {
		return wrap(fmt.Sprintf("delete blob %s/%s", acct, id), fromStatus(err))
	}
	return nil
}

// List implements blob.Store.
func (c *Client) List(ctx context.Context, acct mail.AccountID, fn func(blob.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.List(ctx, &blobv1.ListRequest{Account: string(acct)})
	if err != nil {
		return wrap("list blobs of "+string(acct), fromStatus(err))
	}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return wrap("list blobs of "+string(acct), fromStatus(err))
		}
		for _, pi := range resp.GetInfos() {
			if err := fn(infoFromProto(pi)); err != nil {
				return err
			}
		}
	}
}
