package imapgw

// Benchmarks of the gateway (figures in docs/benchmarks.md, run with
// `make bench-imap`). Each reports figures with b.ReportMetric; none
// judges them. The gateways run in-process over the embedded backends
// (localmeta and fsblob), except where a figure needs more: the IDLE
// latency also runs over Redis, and the memory per IDLE session puts the
// metadata service and the clients in a child process so that the
// gateway's process holds only the gateway.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
	"github.com/mailstore/mailstore/pkg/meta/localmeta"
	"github.com/mailstore/mailstore/pkg/meta/redismeta"
	"github.com/mailstore/mailstore/pkg/mime"
	"github.com/mailstore/mailstore/pkg/password"
	"github.com/mailstore/mailstore/services/metasvc"
)

// helperEnv, when set, turns the test binary into the client side of
// BenchmarkIdleSessionMemory (see idleHelper).
const helperEnv = "MAILSTORE_IMAPGW_BENCH_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(idleHelper())
	}
	testenv.Main(m)
}

// benchStack is one metadata store, blob store, ingester and
// authenticator; gateways started on it share them as pods share the
// services.
type benchStack struct {
	store meta.Store
	blobs blob.Store
	ing   *ingest.Ingester
	auth  meta.Authenticator
}

// newBenchStack opens the embedded backends in a temporary directory.
// sync keeps bbolt's fsync per commit, as in production; without it
// seeding large mailboxes is fast.
func newBenchStack(b testing.TB, sync bool) *benchStack {
	b.Helper()
	dir := b.TempDir()
	var opts []localmeta.Option
	if !sync {
		opts = append(opts, localmeta.WithNoSync())
	}
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	blobs, err := fsblob.New(fsblob.Config{Dir: filepath.Join(dir, "blobs")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return stackOver(b, store, blobs)
}

// stackOver builds the ingester and authenticator over store and blobs.
func stackOver(b testing.TB, store meta.Store, blobs blob.Store) *benchStack {
	b.Helper()
	svc, err := metasvc.New(metasvc.Config{Auth: metasvc.AuthConfig{FailureWindow: time.Minute}}, metasvc.Deps{Store: store, Blobs: blobs, PasswordParams: &password.Fast})
	if err != nil {
		b.Fatal(err)
	}
	ing, err := ingest.New(ingest.Config{MaxMessageSize: 10 << 20}, ingest.Deps{Meta: store, Blobs: blobs})
	if err != nil {
		b.Fatal(err)
	}
	return &benchStack{store: store, blobs: blobs, ing: ing, auth: svc.Authenticator()}
}

func (s *benchStack) deps() Deps {
	return Deps{Meta: s.store, Auth: s.auth, Blobs: s.blobs, Ingest: s.ing}
}

// benchConfig is the production default configuration (from the flag
// registration, where the defaults live).
func benchConfig() Config {
	var cfg Config
	fs := flag.NewFlagSet("bench", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	_ = fs.Parse(nil)
	cfg.AllowPlaintextLoopback = true
	return cfg
}

// startBenchGateway serves a gateway on loopback until the benchmark
// ends and returns it with its address.
func startBenchGateway(b testing.TB, d Deps) (*Gateway, string) {
	b.Helper()
	g, err := New(benchConfig(), d)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln, false) }()
	b.Cleanup(func() { cancel(); <-done })
	return g, ln.Addr().String()
}

// benchAccount creates login with password "pw" hashed with params.
func benchAccount(b testing.TB, store meta.Accounts, login string, params password.Params) meta.Account {
	b.Helper()
	h, err := password.Hash("pw", params)
	if err != nil {
		b.Fatal(err)
	}
	a, err := store.CreateAccount(context.Background(), meta.NewAccount{Login: login, PasswordHash: h})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// benchMessage returns an RFC 5322 message of exactly size bytes (at
// least about 200): headers and lines of text.
func benchMessage(i, size int) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "From: bench@example.com\r\nTo: user@example.com\r\nSubject: bench %d\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%d@bench.example.com>\r\n\r\n", i, i)
	line := strings.Repeat("abcdefghij", 7) + "\r\n"
	for sb.Len()+len(line) <= size {
		sb.WriteString(line)
	}
	sb.WriteString(strings.Repeat("x", size-sb.Len()))
	return []byte(sb.String())
}

// benchLogin dials addr with go-imap's client and logs in.
func benchLogin(b testing.TB, addr, user string, opts *imapclient.Options) *imapclient.Client {
	b.Helper()
	c, err := imapclient.DialInsecure(addr, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.Login(user, "pw").Wait(); err != nil {
		b.Fatal(err)
	}
	return c
}

// lineClient is a minimal IMAP client over a raw connection: it sends a
// command and reads lines up to the tagged answer, keeping none of them.
// It has no goroutine of its own and keeps no buffer between commands
// once dropped, so many of them cost little.
type lineClient struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialLine(addr string) (*lineClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &lineClient{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
	g, err := c.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(g, "* OK") {
		conn.Close()
		return nil, fmt.Errorf("greeting %q: %v", g, err)
	}
	return c, nil
}

// do runs one command; each, if not nil, sees every untagged line.
func (c *lineClient) do(cmd string, each func(line []byte)) error {
	c.n++
	tag := "b" + strconv.Itoa(c.n)
	if _, err := io.WriteString(c.conn, tag+" "+cmd+"\r\n"); err != nil {
		return err
	}
	for {
		l, err := c.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		if len(l) > len(tag) && string(l[:len(tag)]) == tag && l[len(tag)] == ' ' {
			if !strings.HasPrefix(string(l[len(tag)+1:]), "OK") {
				return fmt.Errorf("%s: %s", cmd, strings.TrimSpace(string(l)))
			}
			return nil
		}
		if each != nil {
			each(l)
		}
	}
}

// BenchmarkLogin: LOGIN and LOGOUT on a fresh connection, with a password
// hashed with password.Default (argon2id, 19 MiB, t=2), which dominates.
// "parallel" runs one client per core.
func BenchmarkLogin(b *testing.B) {
	st := newBenchStack(b, true)
	benchAccount(b, st.store, "login@example.com", password.Default)
	_, addr := startBenchGateway(b, st.deps())
	once := func() error {
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Login("login@example.com", "pw").Wait(); err != nil {
			return err
		}
		return c.Logout().Wait()
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := once(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := once(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	})
}

// seedMailbox appends n entries to a new mailbox name directly through
// the metadata store, all sharing one small blob and its structure
// (scanned once), with every third one \Seen.
func seedMailbox(b testing.TB, st *benchStack, acct mail.AccountID, name string, n int) {
	b.Helper()
	ctx := context.Background()
	m, err := st.store.CreateMailbox(ctx, acct, name, "")
	if err != nil {
		b.Fatal(err)
	}
	msg := benchMessage(0, 512)
	s, err := mime.Scan(strings.NewReader(string(msg)), mime.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := mime.MarshalStructure(s)
	if err != nil {
		b.Fatal(err)
	}
	id := blob.NewBlobID(time.Now())
	if _, err := st.blobs.Put(ctx, acct, id, strings.NewReader(string(msg)), blob.Meta{Account: acct, InternalDate: time.Now(), Mailbox: name}, blob.PutOptions{Size: int64(len(msg))}); err != nil {
		b.Fatal(err)
	}
	date := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	seen := []mail.Flag{mail.FlagSeen}
	for i := range n {
		var flags []mail.Flag
		if i%3 == 0 {
			flags = seen
		}
		if _, err := st.store.AppendEntry(ctx, acct, m.ID, meta.NewEntry{Flags: flags, InternalDate: date, Size: int64(len(msg)), Blob: id, Structure: enc}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSelectFetchFlags: SELECT plus FETCH 1:* (FLAGS), what a client
// does when it opens a mailbox, on mailboxes of 10k and 100k messages
// (seeded without fsync). A raw client counts the FETCH lines.
func BenchmarkSelectFetchFlags(b *testing.B) {
	st := newBenchStack(b, false)
	acct := benchAccount(b, st.store, "flags@example.com", password.Fast)
	_, addr := startBenchGateway(b, st.deps())
	for _, n := range []int{10_000, 100_000} {
		name := fmt.Sprintf("M%d", n)
		seedMailbox(b, st, acct.ID, name, n)
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			c, err := dialLine(addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.conn.Close()
			if err := c.do(`LOGIN flags@example.com pw`, nil); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := c.do("SELECT "+name, nil); err != nil {
					b.Fatal(err)
				}
				got := 0
				if err := c.do("FETCH 1:* (FLAGS)", func(l []byte) {
					if strings.Contains(string(l), " FETCH (") {
						got++
					}
				}); err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("FETCH returned %d messages, want %d", got, n)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(sec*1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(n)*float64(b.N)/sec, "entries/s")
		})
	}
}

// BenchmarkAppend: APPEND of 4 KB and 100 KB messages to INBOX, one
// client, bbolt fsync and fsblob fsync on (as in a single-node setup).
func BenchmarkAppend(b *testing.B) {
	st := newBenchStack(b, true)
	benchAccount(b, st.store, "append@example.com", password.Fast)
	_, addr := startBenchGateway(b, st.deps())
	for _, size := range []int{4 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("size=%dKB", size>>10), func(b *testing.B) {
			c := benchLogin(b, addr, "append@example.com", nil)
			msg := benchMessage(1, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				cmd := c.Append("INBOX", int64(len(msg)), nil)
				if _, err := cmd.Write(msg); err != nil {
					b.Fatal(err)
				}
				if err := cmd.Close(); err != nil {
					b.Fatal(err)
				}
				if _, err := cmd.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkFetchBody: FETCH BODY.PEEK[] of one 1 MB message and of 100
// messages of 4 KB in one command; the client streams the literals to
// io.Discard. MB/s counts message bytes.
func BenchmarkFetchBody(b *testing.B) {
	st := newBenchStack(b, false)
	acct := benchAccount(b, st.store, "body@example.com", password.Fast)
	_, addr := startBenchGateway(b, st.deps())
	ctx := context.Background()
	deliver := func(name string, msg []byte) {
		m, err := st.store.Mailbox(ctx, acct.ID, name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.ing.Ingest(ctx, ingest.Request{
			Target: ingest.Target{Account: acct.ID, Mailbox: m.ID, MailboxName: name},
			Size:   int64(len(msg)), Body: strings.NewReader(string(msg)),
		}); err != nil {
			b.Fatal(err)
		}
	}
	cases := []struct {
		name       string
		count, siz int
	}{
		{"1x1MB", 1, 1 << 20},
		{"100x4KB", 100, 4 << 10},
	}
	for _, tc := range cases {
		if _, err := st.store.CreateMailbox(ctx, acct.ID, tc.name, ""); err != nil {
			b.Fatal(err)
		}
		for i := range tc.count {
			deliver(tc.name, benchMessage(i, tc.siz))
		}
		b.Run(tc.name, func(b *testing.B) {
			c := benchLogin(b, addr, "body@example.com", nil)
			if _, err := c.Select(tc.name, nil).Wait(); err != nil {
				b.Fatal(err)
			}
			opts := &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
			b.SetBytes(int64(tc.count * tc.siz))
			for b.Loop() {
				cmd := c.Fetch(allSeq, opts)
				var got int64
				msgs := 0
				for m := cmd.Next(); m != nil; m = cmd.Next() {
					msgs++
					for it := m.Next(); it != nil; it = m.Next() {
						if bs, ok := it.(imapclient.FetchItemDataBodySection); ok {
							n, err := io.Copy(io.Discard, bs.Literal)
							if err != nil {
								b.Fatal(err)
							}
							got += n
						}
					}
				}
				if err := cmd.Close(); err != nil {
					b.Fatal(err)
				}
				if msgs != tc.count || got != int64(tc.count*tc.siz) {
					b.Fatalf("fetched %d messages, %d bytes; want %d, %d", msgs, got, tc.count, tc.count*tc.siz)
				}
			}
		})
	}
}

// allSeq is "1:*" (a Stop of 0 is "*").
var allSeq = imap.SeqSet{{Start: 1, Stop: 0}}

// BenchmarkIdleLatency: a writer on gateway A appends a 1 KB message, a
// reader IDLEs on gateway B; a sample is the time from the APPEND's tagged
// OK at the writer to the EXISTS at the reader. The EXISTS may arrive
// before the OK (the event leaves at commit, before the answer is
// written): such samples count as 0 and "early-%" tells how many. The
// "from-send" figures start at the APPEND's first byte instead.
//
// "local": both gateways over one embedded store (its in-process event
// broker). "redis": each gateway has its own Redis client, as two pods
// do, and events cross Redis pub/sub.
func BenchmarkIdleLatency(b *testing.B) {
	b.Run("local", func(b *testing.B) {
		st := newBenchStack(b, true)
		benchAccount(b, st.store, "idle@example.com", password.Fast)
		_, a := startBenchGateway(b, st.deps())
		_, bb := startBenchGateway(b, st.deps())
		benchIdle(b, a, bb)
	})
	b.Run("redis", func(b *testing.B) {
		addr := testenv.Redis(b)
		prefix := testenv.Prefix(b)
		blobs, err := fsblob.New(fsblob.Config{Dir: b.TempDir()}, nil)
		if err != nil {
			b.Fatal(err)
		}
		pod := func() *benchStack {
			s, err := redismeta.New(redismeta.Config{Addrs: []string{addr}, KeyPrefix: prefix}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return stackOver(b, s, blobs)
		}
		pa, pb := pod(), pod()
		benchAccount(b, pa.store, "idle@example.com", password.Fast)
		_, a := startBenchGateway(b, pa.deps())
		_, bb := startBenchGateway(b, pb.deps())
		benchIdle(b, a, bb)
	})
}

func benchIdle(b *testing.B, writerAddr, readerAddr string) {
	type exists struct {
		n  uint32
		at time.Time
	}
	ch := make(chan exists, 64)
	reader := benchLogin(b, readerAddr, "idle@example.com", &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					ch <- exists{*d.NumMessages, time.Now()}
				}
			},
		},
	})
	sel, err := reader.Select("INBOX", nil).Wait()
	if err != nil {
		b.Fatal(err)
	}
	idle, err := reader.Idle()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = idle.Close()
		_ = idle.Wait()
	}()
	writer := benchLogin(b, writerAddr, "idle@example.com", nil)
	msg := benchMessage(2, 1024)
	count := sel.NumMessages
	var fromAck, fromSend []time.Duration
	early := 0
	for b.Loop() {
		count++
		start := time.Now()
		cmd := writer.Append("INBOX", int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			b.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		ack := time.Now()
		timeout := time.After(10 * time.Second)
		for {
			var e exists
			select {
			case e = <-ch:
			case <-timeout:
				b.Fatalf("no EXISTS %d within 10s", count)
			}
			if e.n < count {
				continue
			}
			d := e.at.Sub(ack)
			if d < 0 {
				early++
				d = 0
			}
			fromAck = append(fromAck, d)
			fromSend = append(fromSend, e.at.Sub(start))
			break
		}
	}
	slices.Sort(fromAck)
	slices.Sort(fromSend)
	pct := func(s []time.Duration, p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(fromAck, 0.50), "p50-ms")
	b.ReportMetric(pct(fromAck, 0.99), "p99-ms")
	b.ReportMetric(pct(fromSend, 0.50), "from-send-p50-ms")
	b.ReportMetric(pct(fromSend, 0.99), "from-send-p99-ms")
	b.ReportMetric(100*float64(early)/float64(len(fromAck)), "early-%")
}

// BenchmarkIdleSessionMemory: the gateway's memory per session that is
// logged in, has INBOX selected and is in IDLE, with 10,000 sessions (or
// as many as the open-file limit allows; "sessions" reports the number).
//
// Method. The gateway runs in this process as in production: over the
// gRPC metadata client (grpcmeta, one connection, one Watch stream per
// account with sessions here) and a local blob store. The metadata
// service (embedded store behind metasvc) and the clients (raw
// connections) run in a child process, the test binary re-executed, so
// that nothing but the gateway adds to this process's memory. The figures
// are deltas between before the sessions connect and when all of them
// idle, after a GC and debug.FreeOSMemory, divided by the number of
// sessions: "heap+stack-B" is runtime HeapInuse+StackInuse (what the Go
// runtime holds live); "rss-B" is the process's VmRSS (pages touched,
// including runtime metadata; kernel socket buffers are in neither).
// "accounts=1": every session is of one account (the per-session cost);
// "accounts=all": each session has its own account, so each adds a hub
// watch and a gRPC Watch stream too.
//
// Set MAILSTORE_BENCH_HEAPPROFILE=path to write a heap profile at the
// measurement point (of the last run), MAILSTORE_BENCH_IDLE_SESSIONS to
// open another number of sessions.
func BenchmarkIdleSessionMemory(b *testing.B) {
	want := 10_000
	// MAILSTORE_BENCH_IDLE_SESSIONS overrides the number, e.g. under
	// -race, which allows at most 8128 live goroutines.
	if v, err := strconv.Atoi(os.Getenv("MAILSTORE_BENCH_IDLE_SESSIONS")); err == nil && v > 0 {
		want = v
	}
	// The parent holds one socket per session, the child one per
	// session too (each process has its own limit).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	n := want
	if int(lim.Cur)-256 < n {
		n = (int(lim.Cur) - 256) / 1000 * 1000
	}
	if n < min(want, 1000) {
		b.Skipf("open-file limit %d too low", lim.Cur)
	}
	for _, accounts := range []string{"1", "all"} {
		b.Run(fmt.Sprintf("sessions=%d/accounts=%s", n, accounts), func(b *testing.B) {
			na := 1
			if accounts == "all" {
				na = n
			}
			// One measurement per run, whatever b.N: the set-up is the
			// work being measured.
			for range b.N {
				measureIdleSessions(b, n, na)
			}
		})
	}
}

func measureIdleSessions(b *testing.B, n, accounts int) {
	b.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), helperEnv+"=1")
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = child.Wait()
	}()
	out := bufio.NewReader(stdout)
	readLine := func(prefix string) string {
		l, err := out.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, prefix+" ") {
			b.Fatalf("helper said %q (%v), want %s", l, err, prefix)
		}
		return strings.TrimSpace(strings.TrimPrefix(l, prefix+" "))
	}
	metaAddr := readLine("meta")

	cc, err := grpc.NewClient(metaAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	cli := grpcmeta.New(cc)
	blobs, err := fsblob.New(fsblob.Config{Dir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ing, err := ingest.New(ingest.Config{MaxMessageSize: 10 << 20}, ingest.Deps{Meta: cli, Blobs: blobs})
	if err != nil {
		b.Fatal(err)
	}
	// The gateway stops (deferred below) before the child exits.
	ctx, cancel := context.WithCancel(context.Background())
	g, err := New(benchConfig(), Deps{Meta: cli, Auth: cli, Blobs: blobs, Ingest: ing})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = g.Serve(ctx, ln, false) }()
	defer func() { cancel(); <-served }()
	// Warm the metadata connection so its cost is in the baseline.
	if _, err := cli.Authenticate(ctx, "nobody@example.com", "x", "127.0.0.1:1"); err == nil {
		b.Fatal("unknown login authenticated")
	}

	b.StopTimer()
	before, rssBefore, grBefore := memNow()
	b.StartTimer()
	fmt.Fprintf(stdin, "clients %s %d %d\n", ln.Addr(), n, accounts)
	got, _ := strconv.Atoi(readLine("ready"))
	if got != n {
		b.Fatalf("helper opened %d sessions, want %d", got, n)
	}
	// Every client has "+ idling"; each session then starts the goroutine
	// reading DONE, which the gateway's goroutine count shows.
	for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() < grBefore+2*n; {
		if time.Now().After(deadline) {
			b.Fatalf("%d goroutines, want at least %d", runtime.NumGoroutine(), grBefore+2*n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	live := g.conns.Len()
	if live != n {
		b.Fatalf("gateway has %d sessions, want %d", live, n)
	}
	b.StopTimer()
	after, rssAfter, grAfter := memNow()
	if path := os.Getenv("MAILSTORE_BENCH_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	b.ReportMetric(float64(n), "sessions")
	b.ReportMetric(per(after.HeapInuse+after.StackInuse, before.HeapInuse+before.StackInuse), "heap+stack-B/session")
	b.ReportMetric(per(after.HeapInuse, before.HeapInuse), "heap-B/session")
	b.ReportMetric(per(after.StackInuse, before.StackInuse), "stack-B/session")
	b.ReportMetric(per(rssAfter, rssBefore), "rss-B/session")
	b.ReportMetric(float64(grAfter-grBefore)/float64(n), "goroutines/session")
	b.StartTimer()
}

// memNow collects garbage (twice: finalizers may free more) and returns
// free memory to the OS, so that VmRSS does not keep what an earlier run
// freed; then reads the runtime's figures, VmRSS and the goroutine count.
func memNow() (runtime.MemStats, uint64, int) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms, vmRSS(), runtime.NumGoroutine()
}

// vmRSS is the process's resident set in bytes (0 where /proc is absent).
func vmRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// idleHelper is the child of BenchmarkIdleSessionMemory. It serves the
// metadata service (embedded store, no fsync) on loopback and prints
// "meta ADDR"; on "clients GWADDR N ACCOUNTS" it creates the accounts,
// opens N sessions to the gateway (LOGIN, SELECT INBOX, IDLE), prints
// "ready N" and holds them until its standard input closes.
func idleHelper() int {
	fail := func(err error) int {
		fmt.Printf("error %v\n", err)
		return 1
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	dir, err := os.MkdirTemp("", "imapgw-bench-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	store, err := localmeta.Open(localmeta.Config{Path: filepath.Join(dir, "meta.db")}, nil, localmeta.WithNoSync())
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	svc, err := metasvc.New(metasvc.Config{Auth: metasvc.AuthConfig{FailureWindow: time.Minute}}, metasvc.Deps{Store: store, PasswordParams: &password.Fast})
	if err != nil {
		return fail(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(grpcmeta.MaxMessageSize))
	svc.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	fmt.Printf("meta %s\n", ln.Addr())

	in := bufio.NewReader(os.Stdin)
	l, err := in.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	var gw string
	var n, accounts int
	if _, err := fmt.Sscanf(l, "clients %s %d %d", &gw, &n, &accounts); err != nil {
		return fail(err)
	}
	h, err := password.Hash("pw", password.Fast)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	for i := range accounts {
		if _, err := store.CreateAccount(ctx, meta.NewAccount{Login: fmt.Sprintf("u%d@example.com", i), PasswordHash: h}); err != nil {
			return fail(err)
		}
	}
	conns := make([]net.Conn, n)
	var (
		mu   sync.Mutex
		werr error
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				c, err := dialLine(gw)
				if err == nil {
					err = c.do(fmt.Sprintf("LOGIN u%d@example.com pw", i%accounts), nil)
				}
				if err == nil {
					err = c.do("SELECT INBOX", nil)
				}
				if err == nil {
					_, err = io.WriteString(c.conn, "i IDLE\r\n")
				}
				if err == nil {
					var l string
					l, err = c.r.ReadString('\n')
					if err == nil && !strings.HasPrefix(l, "+") {
						err = fmt.Errorf("IDLE: %q", l)
					}
				}
				if err != nil {
					mu.Lock()
					werr = errors.Join(werr, fmt.Errorf("session %d: %w", i, err))
					mu.Unlock()
					continue
				}
				conns[i] = c.conn
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if werr != nil {
		return fail(werr)
	}
	fmt.Printf("ready %d\n", n)
	_, _ = io.Copy(io.Discard, in)
	for _, c := range conns {
		c.Close()
	}
	return 0
}
