package lmtpgw

// Benchmarks of delivery (figures in docs/benchmarks.md, run with
// scripts/bench-lmtp-dovecot.sh, which sets MAILSTORE_BENCH_DOVECOT_LMTP).
// Each reports figures with b.ReportMetric; none judges them.
//
// The gateway runs in-process over the embedded backends with production
// durability (bbolt fsyncs every commit, fsblob fsyncs every blob); a raw
// client pipelines each transaction's envelope (PIPELINING) over one
// connection, as an MTA's LMTP client does. When the environment names a
// Dovecot LMTP listener, the same client delivers the same messages to it
// in the same run, case by case, so the two can be read as a ratio.

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
)

// dovecotLMTPEnv names the host:port of a Dovecot LMTP listener to compare
// with; its recipients are user0..user9@example.com.
const dovecotLMTPEnv = "MAILSTORE_BENCH_DOVECOT_LMTP"

// benchRecipients is how many accounts the benchmark delivers to, one per
// recipient of the largest case.
const benchRecipients = 10

// benchRcpt is the address of recipient i, on both servers.
func benchRcpt(i int) string { return fmt.Sprintf("user%d@example.com", i) }

// newBenchGateway starts a gateway over bbolt with fsync per commit and
// fsblob, with the production defaults of ingest and of deduplication, the
// ten recipient accounts, and a JSON log to a file (as the gateway logs
// one line per delivered recipient, and Dovecot to its log file).
func newBenchGateway(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	fs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		b.Fatal(err)
	}
	ing, err := ingest.New(ingest.Config{
		MaxMessageSize: ingest.DefaultMaxMessageSize, SpoolMemory: ingest.DefaultSpoolMemory, SpoolDir: spool,
	}, ingest.Deps{Meta: store, Blobs: fs})
	if err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "lmtp.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logf.Close() })
	e := &env{t: b, store: store, meta: store, ing: ing, ingest: ing}
	for i := range benchRecipients {
		e.account(benchRcpt(i), meta.Quota{})
	}
	g, err := New(testConfig(), Deps{Meta: store, Ingest: ing, Logger: slog.New(slog.NewJSONHandler(logf, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	e.serve(g, ln)
	return ln.Addr().String()
}

// BenchmarkDeliver delivers messages of 2 KB, 50 KB and 5 MB to 1 and 10
// recipients, one transaction per op over one connection: MAIL, RCPT per
// recipient and DATA pipelined, then the body, then one reply per
// recipient. msgs/s counts delivered copies (transactions × recipients),
// MB/s the message bytes sent (once per transaction).
func BenchmarkDeliver(b *testing.B) {
	servers := []struct{ name, addr string }{{"mailstore", newBenchGateway(b)}}
	if addr := os.Getenv(dovecotLMTPEnv); addr != "" {
		servers = append(servers, struct{ name, addr string }{"dovecot", addr})
	}
	sizes := []struct {
		name string
		size int
	}{{"2KB", 2 << 10}, {"50KB", 50 << 10}, {"5MB", 5 << 20}}
	// Case by case, each server in turn, so that a change of the shared
	// machine's load touches both sides of a ratio alike.
	for _, sz := range sizes {
		for _, n := range []int{1, benchRecipients} {
			for _, srv := range servers {
				b.Run(fmt.Sprintf("%s/size=%s/rcpts=%d", srv.name, sz.name, n), func(b *testing.B) {
					benchDeliver(b, srv.addr, sz.size, n)
				})
			}
		}
	}
}

func benchDeliver(b *testing.B, addr string, size, rcpts int) {
	c := dialBench(b, addr)
	defer c.close()
	body := benchBody(size)
	// The envelope of every transaction: the same recipients each time.
	var envelope strings.Builder
	envelope.WriteString("MAIL FROM:<bench@example.org>\r\n")
	for i := range rcpts {
		fmt.Fprintf(&envelope, "RCPT TO:<%s>\r\n", benchRcpt(i))
	}
	envelope.WriteString("DATA\r\n")
	// Message-IDs unique across the runs of one process and the processes
	// of one Dovecot instance: the gateway skips a message it has already
	// stored (dedup.go), and Dovecot stores every copy.
	run := fmt.Sprintf("%d.%d.%d", time.Now().UnixNano(), size, rcpts)

	// One transaction outside the timer: Dovecot creates a maildir and
	// its indexes on a user's first delivery, which is not the steady
	// state being measured.
	deliverOne(c, envelope.String(), body, -1, run, rcpts)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		deliverOne(c, envelope.String(), body, i, run, rcpts)
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N*rcpts)/elapsed, "msgs/s")
	b.ReportMetric(float64(b.N)*float64(size)/elapsed/1e6, "MB/s")
}

// deliverOne runs transaction i: the envelope pipelined, the body after
// the 354, then a 250 for each of the rcpts recipients.
func deliverOne(c *benchConn, envelope string, body []byte, i int, run string, rcpts int) {
	c.w.WriteString(envelope)
	c.flush()
	c.expect("250") // MAIL
	for range rcpts {
		c.expect("250") // RCPT
	}
	c.expect("354")
	fmt.Fprintf(c.w, "From: Bench <bench@example.org>\r\nTo: %s\r\nSubject: bench %d\r\nMessage-ID: <%d.%s@bench.example.org>\r\n", benchRcpt(0), i, i, run)
	c.w.Write(body)
	c.w.WriteString(".\r\n")
	c.flush()
	for range rcpts {
		c.expect("250")
	}
}

// benchBody is the rest of a message of size bytes after its four
// varying header fields (about 150 bytes): a Date, a MIME header and
// 76-character lines of text, none starting with a dot, ending in CRLF.
func benchBody(size int) []byte {
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteString("Date: Sun, 22 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	line := strings.Repeat("abcdefghijklmnopqrstuvwxyz ", 3)[:74] + "\r\n"
	for sb.Len()+len(line) <= size-150 {
		sb.WriteString(line)
	}
	return []byte(sb.String())
}

// benchConn is a pipelining LMTP client.
type benchConn struct {
	tb testing.TB
	c  net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// dialBench connects and says LHLO.
func dialBench(tb testing.TB, addr string) *benchConn {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		tb.Fatalf("dial LMTP %s: %v", addr, err)
	}
	c := &benchConn{tb: tb, c: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 64<<10)}
	c.expect("220")
	c.w.WriteString("LHLO bench.example.org\r\n")
	c.flush()
	c.expect("250")
	return c
}

// expect reads one reply (all its lines) and fails unless its code is
// code.
func (c *benchConn) expect(code string) {
	for {
		_ = c.c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.tb.Fatalf("read reply: %v (got %q)", err, l)
		}
		if !strings.HasPrefix(l, code) {
			c.tb.Fatalf("reply %q, want %s", strings.TrimSpace(l), code)
		}
		if len(l) < 4 || l[3] != '-' {
			return
		}
	}
}

func (c *benchConn) flush() {
	_ = c.c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	if err := c.w.Flush(); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

func (c *benchConn) close() {
	c.w.WriteString("QUIT\r\n")
	c.flush()
	c.expect("221")
	c.c.Close()
}
