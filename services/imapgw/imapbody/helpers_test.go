package imapbody

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/services/imapgw/wire"
)

// crlf turns the LF line ends of a test literal into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// scan parses a test message.
func scan(t testing.TB, raw string) *mime.Structure {
	t.Helper()
	st, err := mime.Scan(strings.NewReader(raw), mime.Limits{})
	if err != nil {
		t.Fatalf("mime.Scan: %v", err)
	}
	return st
}

// render returns what f writes through an encoder.
func render(t testing.TB, utf8 bool, f func(e *wire.Encoder)) string {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	e := wire.NewEncoder(bw)
	e.UTF8 = utf8
	f(e)
	if err := e.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return buf.String()
}

// memBlob is an in-memory BlobReader that records the ranges read and
// checks that they lie within the blob.
type memBlob struct {
	data []byte

	mu     sync.Mutex
	ranges [][2]int64
	fail   error
}

func (m *memBlob) ReadRange(_ context.Context, off, n int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	if off < 0 || n < 0 || off+n > int64(len(m.data)) {
		return nil, fmt.Errorf("range [%d,%d) outside blob of %d bytes", off, off+n, len(m.data))
	}
	m.ranges = append(m.ranges, [2]int64{off, off + n})
	return io.NopCloser(bytes.NewReader(m.data[off : off+n])), nil
}

// read returns the ranges read so far and forgets them.
func (m *memBlob) read() [][2]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.ranges
	m.ranges = nil
	return r
}

// between returns the text of raw from the n-th (1-based) occurrence of
// from up to the next occurrence of to after it (to excluded); an empty to
// means the end. It computes expected sections independently of the MIME
// scanner.
func between(t testing.TB, raw, from string, n int, to string) string {
	t.Helper()
	start := -1
	for i, pos := 0, 0; i < n; i++ {
		j := strings.Index(raw[pos:], from)
		if j < 0 {
			t.Fatalf("marker %q #%d not found", from, n)
		}
		start = pos + j
		pos = start + len(from)
	}
	if to == "" {
		return raw[start:]
	}
	j := strings.Index(raw[start:], to)
	if j < 0 {
		t.Fatalf("marker %q not found after %q", to, from)
	}
	return raw[start : start+j]
}

// lines counts lines as IMAP does: line breaks, plus a last line without
// one.
func lines(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// literal is how the encoder sends s as a literal.
func literal(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
