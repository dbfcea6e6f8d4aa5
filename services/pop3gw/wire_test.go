package pop3gw

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriteWire(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		top      int
		want     string
	}{
		{"crlf", "A: b\r\n\r\nbody\r\n", -1, "A: b\r\n\r\nbody\r\n"},
		{"empty", "", -1, ""},
		{"bare lf", "A: b\n\nline1\nline2\n", -1, "A: b\r\n\r\nline1\r\nline2\r\n"},
		{"mixed", "A: b\r\n\nx\r\ny\n", -1, "A: b\r\n\r\nx\r\ny\r\n"},
		{"no trailing crlf", "A: b\r\n\r\nlast", -1, "A: b\r\n\r\nlast\r\n"},
		{"trailing cr", "A: b\r\n\r\nlast\r", -1, "A: b\r\n\r\nlast\r\n"},
		{"lone cr kept", "A: b\r\n\r\na\rb\r\n", -1, "A: b\r\n\r\na\rb\r\n"},
		{"dots", ".\r\n..x\r\n.\r\na.b\r\n.", -1, "..\r\n...x\r\n..\r\na.b\r\n..\r\n"},
		{"dot after bare lf", "x\n.y\n", -1, "x\r\n..y\r\n"},
		{"top 0", "A: b\r\nC: d\r\n\r\n1\r\n2\r\n", 0, "A: b\r\nC: d\r\n\r\n"},
		{"top 1", "A: b\r\n\r\n1\r\n.2\r\n3", 1, "A: b\r\n\r\n1\r\n"},
		{"top 2 dot", "A: b\r\n\r\n1\r\n.2\r\n3", 2, "A: b\r\n\r\n1\r\n..2\r\n"},
		{"top past end", "A: b\r\n\r\n1\r\n2", 10, "A: b\r\n\r\n1\r\n2\r\n"},
		{"top bare lf", "A: b\n\n1\n2\n", 1, "A: b\r\n\r\n1\r\n"},
		{"top no body", "A: b\r\nC: d", 3, "A: b\r\nC: d\r\n"},
		{"cr at read boundary", strings.Repeat("x", 32<<10-1) + "\r\nnext\r\n", -1, strings.Repeat("x", 32<<10-1) + "\r\nnext\r\n"},
		{"dot at read boundary", strings.Repeat("x", 32<<10) + ".y\n", -1, strings.Repeat("x", 32<<10) + ".y\r\n"},
		{"long line", strings.Repeat("x", 100<<10) + "\n." + strings.Repeat("y", 70<<10), -1,
			strings.Repeat("x", 100<<10) + "\r\n.." + strings.Repeat("y", 70<<10) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := writeWire(&out, strings.NewReader(tc.in), tc.top)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("got %q, want %q", out.String(), tc.want)
			}
			if n != int64(out.Len()) {
				t.Fatalf("count %d, wrote %d", n, out.Len())
			}
			// One byte at a time: read boundaries must not matter.
			out.Reset()
			if _, err := writeWire(&out, iotest.OneByteReader(strings.NewReader(tc.in)), tc.top); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("one byte reader: got %q, want %q", out.String(), tc.want)
			}
		})
	}
}
