package imapgw

import (
	"compress/flate"
	"context"
	"io"
	"net"
	"strings"
)

func init() {
	register("COMPRESS", handler{fn: cmdCompress, states: authed})
	registerCap("COMPRESS=DEFLATE")
}

// cmdCompress: RFC 4978. After the tagged OK both directions are raw
// DEFLATE streams; every flush of the session's buffered writer ends with
// a sync flush of the compressor, so responses are not held back.
func cmdCompress(s *session, _ context.Context, cmd *command) error {
	if err := s.dec.SP(); err != nil {
		return err
	}
	alg, err := s.dec.Atom()
	if err != nil {
		return err
	}
	if err := s.endCommand(); err != nil {
		return err
	}
	if !strings.EqualFold(alg, "DEFLATE") {
		return bad("Unknown compression algorithm")
	}
	if s.compressed {
		return no("COMPRESSIONACTIVE", "Compression is already on")
	}
	if s.br.Buffered() > 0 {
		return &statusError{status: "BAD", text: "Data after COMPRESS", closeConn: true}
	}
	s.tagged(cmd.tag, "OK", "", "DEFLATE active")
	if err := s.enc.Flush(); err != nil {
		return err
	}
	fw, _ := flate.NewWriter(s.conn, flate.DefaultCompression)
	s.setConn(&compressConn{Conn: s.conn, r: flate.NewReader(s.conn), w: fw})
	s.compressed = true
	return errAnswered
}

// compressConn is a connection whose bytes are DEFLATE-compressed.
type compressConn struct {
	net.Conn
	r io.ReadCloser
	w *flate.Writer
}

func (c *compressConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *compressConn) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, c.w.Flush()
}

func (c *compressConn) Close() error {
	_ = c.w.Close()
	_ = c.r.Close()
	return c.Conn.Close()
}
