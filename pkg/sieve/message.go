package sieve

import (
	"bufio"
	"bytes"
	"io"
	"mime"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// headerMessage is a Message over a parsed header block.
type headerMessage struct {
	hdr  textproto.Header
	size int64
	body func() (io.Reader, error)
}

// wordDecoder decodes RFC 2047 encoded words in any charset go-message
// knows; an unknown charset leaves the value as written.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// MessageFromHeader returns a Message for the raw header block hdr (with or
// without its terminating blank line) of a message of size octets; body
// returns the raw message from its start. A malformed header line ends the
// parse: the fields before it are kept.
func MessageFromHeader(hdr []byte, size int64, body func() (io.Reader, error)) Message {
	h, _ := textproto.ReadHeader(bufio.NewReader(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader([]byte("\r\n")))))
	return &headerMessage{hdr: h, size: size, body: body}
}

func (m *headerMessage) Header(name string) []string {
	vals := m.hdr.Values(name)
	if len(vals) == 0 {
		return nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if d, err := wordDecoder.DecodeHeader(v); err == nil {
			v = d
		}
		out[i] = v
	}
	return out
}

func (m *headerMessage) Size() int64 { return m.size }

func (m *headerMessage) Body() (io.Reader, error) {
	if m.body == nil {
		return bytes.NewReader(nil), nil
	}
	return m.body()
}
