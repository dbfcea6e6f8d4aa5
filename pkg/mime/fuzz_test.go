package mime

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzScan checks that any input scans without panic into a Structure
// whose offsets are in bounds and nested, whatever the chunking, and that
// the encoding round-trips. Arbitrary bytes given to UnmarshalStructure
// must fail cleanly. Seeds: testdata/fuzz/FuzzScan and the ones added here.
func FuzzScan(f *testing.F) {
	f.Add([]byte(crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n--x--\n")), uint8(3))
	f.Add([]byte(crlf("Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=y\n\n--y\n--y--")), uint8(1))
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\n\n--d\n\n--d\nSubject: x\n--d--"), uint8(0))
	f.Fuzz(func(t *testing.T, msg []byte, chunk uint8) {
		lim := Limits{MaxDepth: 6, MaxParts: 40, MaxHeaderBytes: 300}
		st := scanChunked(t, msg, lim)
		if err := checkStructure(msg, st); err != nil {
			t.Fatal(err)
		}
		if other := scanChunked(t, msg, lim, int(chunk)%17+1); !reflect.DeepEqual(other, st) {
			t.Fatalf("chunked scan differs")
		}
		checkRoundTrip(t, st)
		if _, err := UnmarshalStructure(msg); err == nil && len(msg) > 0 && msg[0] != encodingV1 {
			t.Fatalf("accepted bytes of version %d", msg[0])
		}
	})
}

func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(crlf("From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: bench\nDate: Mon, 2 Jan 2006 15:04:05 -0700\nContent-Type: multipart/mixed; boundary=\"=_bench\"\n\n"))
	line := strings.Repeat("abcdefghij", 7) + "\r\n"
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "--=_bench\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		for j := 0; j < 100 && b.Len() < size; j++ {
			b.WriteString(line)
		}
	}
	b.WriteString("--=_bench--\r\n")
	return b.Bytes()
}

func benchmarkScan(b *testing.B, size int) {
	msg := benchMessage(size)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(Limits{})
		for rest := msg; len(rest) > 0; {
			n := min(32<<10, len(rest))
			s.Write(rest[:n])
			rest = rest[n:]
		}
		if _, err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScan100KB(b *testing.B) { benchmarkScan(b, 100<<10) }
func BenchmarkScan10MB(b *testing.B)  { benchmarkScan(b, 10<<20) }

func BenchmarkUnmarshalStructure(b *testing.B) {
	st, err := Scan(bytes.NewReader(benchMessage(100<<10)), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := MarshalStructure(st)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalStructure(enc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(enc)), "encoded-bytes")
}
