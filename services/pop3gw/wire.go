package pop3gw

import (
	"bufio"
	"io"
)

// writeWire copies a stored message to w in its POP3 wire form, without
// the terminating ".\r\n", and returns the bytes written:
//   - every line end is CRLF: a bare LF is sent as CRLF (an existing CRLF
//     is kept, a lone CR inside a line is left alone);
//   - a line that starts with "." gets one more "." (RFC 1939 byte-stuffing);
//   - a last line without a line end gets a CRLF.
//
// With bodyLines >= 0 it is TOP: the header, the blank line and at most
// bodyLines lines of the body. LIST and STAT count with the same function
// (writing to io.Discard), so the counts are exactly what RETR sends.
func writeWire(w io.Writer, r io.Reader, bodyLines int) (int64, error) {
	cw := &countWriter{w: w}
	br := bufio.NewReaderSize(r, 32<<10)
	var (
		atStart   = true  // the next byte starts a line
		lastCR    = false // the last byte written was '\r'
		lineBytes = 0     // bytes of the current line read so far
		inHeader  = true
		body      = 0 // body lines sent
	)
	for {
		if !inHeader && bodyLines >= 0 && atStart && body >= bodyLines {
			return cw.n, cw.err
		}
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if atStart && frag[0] == '.' {
				cw.write([]byte{'.'})
			}
			lineBytes += len(frag)
			if frag[len(frag)-1] == '\n' {
				content := frag[:len(frag)-1]
				cw.write(content)
				hasCR := (len(content) > 0 && content[len(content)-1] == '\r') || (len(content) == 0 && lastCR)
				if hasCR {
					cw.write([]byte{'\n'})
				} else {
					cw.write([]byte{'\r', '\n'})
				}
				empty := lineBytes == 1 || (lineBytes == 2 && hasCR)
				if inHeader {
					if empty {
						inHeader = false
					}
				} else {
					body++
				}
				atStart, lastCR, lineBytes = true, false, 0
			} else {
				cw.write(frag)
				atStart, lastCR = false, frag[len(frag)-1] == '\r'
			}
		}
		if cw.err != nil {
			return cw.n, cw.err
		}
		switch err {
		case nil, bufio.ErrBufferFull:
			continue
		case io.EOF:
			if !atStart {
				if lastCR {
					cw.write([]byte{'\n'})
				} else {
					cw.write([]byte{'\r', '\n'})
				}
			}
			return cw.n, cw.err
		default:
			return cw.n, &readError{err}
		}
	}
}

// readError is a failure reading the stored message (as opposed to
// writing to the client).
type readError struct{ err error }

func (e *readError) Error() string { return "read message: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// countWriter counts bytes and keeps the first error.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}
