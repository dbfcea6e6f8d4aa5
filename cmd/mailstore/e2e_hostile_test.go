package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The hostile-client tests run one -target=all process on the embedded
// backends with short timeouts and drive slow, stalled and oversized
// clients at every listener while checking that ordinary clients are
// served meanwhile and that the process's memory stays bounded.

const (
	hostileIdle     = 2 * time.Second
	hostileIMAPIdle = time.Minute // the least -imap.idle-timeout allows
	hostileMaxSize  = 4 << 20     // -ingest.max-message-size
)

// hostilePod is a -target=all process and its listeners.
type hostilePod struct {
	p                      *proc
	imap, pop3, lmtp, meta string
}

func startHostilePod(t *testing.T) *hostilePod {
	t.Helper()
	h := &hostilePod{imap: freeAddr(t), pop3: freeAddr(t), lmtp: freeAddr(t), meta: freeAddr(t)}
	blobAddr := freeAddr(t)
	idle := hostileIdle.String()
	imapIdle := hostileIMAPIdle.String()
	h.p = startProc(t, "all", nil, "-target=all", "-data-dir="+t.TempDir(),
		"-metadata.listen-address="+h.meta, "-metadata.address="+h.meta,
		"-blob.listen-address="+blobAddr, "-blob.address="+blobAddr,
		"-imap.listen-address="+h.imap, "-pop3.listen-address="+h.pop3, "-lmtp.listen-address="+h.lmtp,
		"-imap.idle-timeout="+imapIdle, "-pop3.idle-timeout="+idle, "-lmtp.idle-timeout="+idle,
		"-imap.write-timeout=1s", "-pop3.write-timeout=1s", "-lmtp.write-timeout=1s",
		"-ingest.max-message-size="+strconv.Itoa(hostileMaxSize),
		"-imap.max-connections-per-ip=0", "-pop3.max-connections-per-ip=0", "-lmtp.max-connections-per-ip=0")
	return h
}

// account adds login with password "pw".
func (h *hostilePod) account(t *testing.T, login string) {
	t.Helper()
	mailctl(t, h.meta, "pw\n", false, "account", "add", login, "--password-stdin")
}

// lmtpDeliver delivers msg to rcpt over a raw LMTP connection and returns
// the DATA reply.
func (h *hostilePod) lmtpDeliver(t *testing.T, rcpt, msg string) string {
	t.Helper()
	l := dialLMTP(t, h.lmtp)
	l.cmd("LHLO hostile.test")
	if r := l.cmd("MAIL FROM:<sender@example.org>"); !strings.HasPrefix(r, "250") {
		t.Fatalf("MAIL: %s", r)
	}
	if r := l.cmd("RCPT TO:<%s>", rcpt); !strings.HasPrefix(r, "250") {
		t.Fatalf("RCPT: %s", r)
	}
	if r := l.cmd("DATA"); !strings.HasPrefix(r, "354") {
		t.Fatalf("DATA: %s", r)
	}
	_ = l.c.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(l.c, dotStuffed(msg)+".\r\n"); err != nil {
		t.Fatal(err)
	}
	r := l.reply()
	l.cmd("QUIT")
	return r
}

// dotStuffed escapes a CRLF message for DATA.
func dotStuffed(msg string) string {
	lines := strings.SplitAfter(msg, "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			lines[i] = "." + l
		}
	}
	return strings.Join(lines, "")
}

// metricValue returns the value of an unlabelled series in p's /metrics.
func metricValue(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// memWatch samples the process's resident memory until stopped and
// returns the peak.
func memWatch(t *testing.T, p *proc) (stop func() float64) {
	t.Helper()
	var (
		mu   sync.Mutex
		peak float64
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			resp, err := http.Get("http://" + p.http + "/metrics")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if m := regexp.MustCompile(`(?m)^process_resident_memory_bytes (\S+)$`).FindSubmatch(b); m != nil {
					v, _ := strconv.ParseFloat(string(m[1]), 64)
					mu.Lock()
					peak = max(peak, v)
					mu.Unlock()
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() float64 {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// stalledFor lets the gateway's write timeout (1s) fire on a client
// that has not read since start: a client that reads before then is only
// slow, and would be served to the end.
func stalledFor(start time.Time) {
	time.Sleep(time.Until(start.Add(3 * time.Second)))
}

// waitClosed reads c until the server closes it and returns how long
// that took from start; a read still blocked after limit fails the test.
func waitClosed(t *testing.T, c net.Conn, r io.Reader, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	if tc, ok := c.(*net.TCPConn); ok {
		// Open the window again so what the kernel holds drains fast.
		_ = tc.SetReadBuffer(4 << 20)
	}
	_ = c.SetReadDeadline(start.Add(limit))
	if _, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed within %v: %v", limit, err)
	}
	return time.Since(start)
}

// trickle sends prefix at once, then line a byte every 400ms, never
// ending it, until the server closes the connection; it returns how long
// that took after the prefix, or an error if the connection still lives
// after limit.
func trickle(c net.Conn, prefix, line string, limit time.Duration) (time.Duration, error) {
	closed := make(chan time.Time, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(limit + 10*time.Second))
		_, _ = io.Copy(io.Discard, c)
		closed <- time.Now()
	}()
	if _, err := io.WriteString(c, prefix); err != nil {
		return 0, err
	}
	start := time.Now()
	tick := time.NewTicker(400 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case at := <-closed:
			if took := at.Sub(start); took > limit {
				return took, fmt.Errorf("closed after %v, want within %v", took, limit)
			}
			return time.Since(start), nil
		case <-tick.C:
		}
		if took := time.Since(start); took > limit {
			return took, fmt.Errorf("a trickling client is still connected after %v", took)
		}
		// A write may fail once the server has closed; the reader
		// reports that.
		_, _ = c.Write([]byte{line[i%len(line)]})
	}
}

// imapMessages returns the MESSAGES count of INBOX.
func imapMessages(t *testing.T, c *imapConn) int {
	t.Helper()
	for _, l := range c.ok("STATUS INBOX (MESSAGES)") {
		if m := regexp.MustCompile(`MESSAGES (\d+)`).FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	t.Fatal("no STATUS answer")
	return 0
}

// nestedMessage is a message of n multiparts each nested in the last.
func nestedMessage(n int) string {
	var b strings.Builder
	b.WriteString("From: deep@example.org\r\nTo: x@example.com\r\nSubject: nested\r\nMIME-Version: 1.0\r\n")
	for i := range n {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nthe leaf\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

// siblingMessage is a multipart of n text parts.
func siblingMessage(n int) string {
	var b strings.Builder
	b.WriteString("From: wide@example.org\r\nTo: x@example.com\r\nSubject: wide\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"s\"\r\n\r\n")
	for i := range n {
		fmt.Fprintf(&b, "--s\r\n\r\n%d\r\n", i)
	}
	b.WriteString("--s--\r\n")
	return b.String()
}

// fetchBody fetches BODY[] of the message with sequence number seq and
// returns it with the untagged lines around it.
func fetchBody(t *testing.T, c *imapConn, seq int) (string, []string) {
	t.Helper()
	c.n++
	tag := fmt.Sprintf("c%d", c.n)
	c.send(fmt.Sprintf("%s FETCH %d (BODY.PEEK[])\r\n", tag, seq))
	var body string
	var lines []string
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			if !strings.Contains(l, " OK") {
				t.Fatalf("FETCH BODY[]: %s", l)
			}
			return body, lines
		}
		lines = append(lines, l)
		if m := regexp.MustCompile(`\{(\d+)\}$`).FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			buf := make([]byte, n)
			_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadFull(c.r, buf); err != nil {
				t.Fatal(err)
			}
			body = string(buf)
		}
	}
}

// TestHostileClients: slowloris on every listener, clients that never
// read, literals and messages beyond the limit, and pathological MIME
// trees, against one -target=all process; ordinary clients are served
// throughout, and resident memory stays bounded.
func TestHostileClients(t *testing.T) {
	h := startHostilePod(t)
	for _, a := range []string{"imap@example.com", "pop@example.com", "lmtp@example.com", "big@example.com", "mime@example.com"} {
		h.account(t, a)
	}
	base := metricValue(t, h.p, "process_resident_memory_bytes")
	peak := memWatch(t, h.p)

	// IMAP's shortest autologout is one minute: its slowloris clients
	// trickle through the whole test, while IMAP serves every other part
	// of it.
	type result struct {
		name string
		took time.Duration
		err  error
	}
	imapLoris := make(chan result, 2)
	for _, tc := range []struct{ name, prefix, line string }{
		{"imap", "", "a LOGIN imap@example.com " + strings.Repeat("p", 4000)},
		{"imap logged in", "a LOGIN imap@example.com pw\r\n", "b SEARCH TEXT " + strings.Repeat("q", 4000)},
	} {
		c, err := net.Dial("tcp", h.imap)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			// The deadline is set for the command line and refreshed
			// once its name is read (a few trickled bytes in): one
			// autologout period, not more.
			took, err := trickle(c, tc.prefix, tc.line, hostileIMAPIdle+15*time.Second)
			imapLoris <- result{tc.name, took, err}
		}()
	}

	t.Run("slowloris", func(t *testing.T) {
		cases := []struct {
			name   string
			addr   string
			prefix string // sent at once first
			line   string // then trickled a byte at a time
			serve  func(t *testing.T)
		}{
			{"pop3", h.pop3, "", "USER " + strings.Repeat("u", 900),
				func(t *testing.T) {
					p := dialPOP3(t, h.pop3)
					if r := p.login("pop@example.com", "pw"); !strings.HasPrefix(r, "+OK") {
						t.Fatalf("PASS: %s", r)
					}
					p.cmd("QUIT")
				}},
			{"pop3 logged in", h.pop3, "USER pop@example.com\r\n", "PASS " + strings.Repeat("w", 900),
				func(t *testing.T) { dialIMAP(t, h.imap, "imap@example.com", "pw").ok("NOOP") }},
			{"lmtp", h.lmtp, "", "LHLO " + strings.Repeat("h", 3000),
				func(t *testing.T) {
					if r := h.lmtpDeliver(t, "lmtp@example.com", "Subject: meanwhile\r\n\r\nhi\r\n"); !strings.HasPrefix(r, "250") {
						t.Fatalf("delivery meanwhile: %s", r)
					}
				}},
			{"lmtp in a transaction", h.lmtp, "LHLO x\r\nMAIL FROM:<a@example.org>\r\n", "RCPT TO:<lmtp@example.com>" + strings.Repeat(" ", 3000),
				func(t *testing.T) { dialLMTP(t, h.lmtp).cmd("NOOP") }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c, err := net.Dial("tcp", tc.addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				done := make(chan result, 1)
				go func() {
					took, err := trickle(c, tc.prefix, tc.line, hostileIdle+3*time.Second)
					done <- result{tc.name, took, err}
				}()
				tc.serve(t) // meanwhile
				r := <-done
				if r.err != nil {
					t.Fatal(r.err)
				}
				t.Logf("closed after %v", r.took)
			})
		}
	})

	t.Run("never reads", func(t *testing.T) {
		big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 78)+"\r\n", (3<<20)/80) // 3 MB
		if r := h.lmtpDeliver(t, "big@example.com", big); !strings.HasPrefix(r, "250") {
			t.Fatalf("delivery of the big message: %s", r)
		}
		// The clients keep their default receive buffers: the answers
		// (90 MB of FETCH, 60 MB of RETR, 20 MB of LMTP replies) are far
		// more than the socket buffers hold, and what those hold drains
		// fast once the client reads again.
		t.Run("imap", func(t *testing.T) {
			c := dialIMAP(t, h.imap, "big@example.com", "pw")
			c.ok("SELECT INBOX")
			start := time.Now()
			_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			for range 30 {
				if _, err := io.WriteString(c.conn, "f FETCH 1 BODY.PEEK[]\r\n"); err != nil {
					break
				}
			}
			dialIMAP(t, h.imap, "big@example.com", "pw").ok("NOOP")
			stalledFor(start)
			t.Logf("stalled IMAP session closed after %v", waitClosed(t, c.conn, c.r, start, 30*time.Second))
		})
		t.Run("pop3 RETR", func(t *testing.T) {
			c := dialPOP3(t, h.pop3)
			if r := c.login("big@example.com", "pw"); !strings.HasPrefix(r, "+OK") {
				t.Fatalf("PASS: %s", r)
			}
			start := time.Now()
			_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			for range 20 {
				if _, err := io.WriteString(c.conn, "RETR 1\r\n"); err != nil {
					break
				}
			}
			// The stalled session ends and gives the maildrop lock back.
			n := loginWhenFree(t, h.pop3, "big@example.com", "pw", 30*time.Second)
			t.Logf("maildrop lock free again after %v", time.Since(start))
			n.cmd("QUIT")
			waitClosed(t, c.conn, c.r, start, 30*time.Second)
		})
		t.Run("lmtp", func(t *testing.T) {
			c, err := net.Dial("tcp", h.lmtp)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			start := time.Now()
			_ = c.SetWriteDeadline(time.Now().Add(15 * time.Second))
			// LMTP replies are small: 20,000 of them fit in the socket
			// buffers, so what ends this client is the idle timeout once
			// the gateway has answered everything (a flood whose replies
			// overflow the buffers ends by the write timeout instead, as
			// the IMAP and POP3 cases show, but how long the gateway takes
			// to get there depends on the machine).
			if _, err := io.WriteString(c, "LHLO x\r\n"+strings.Repeat("NOOP\r\n", 20000)); err != nil {
				t.Fatal(err)
			}
			if r := h.lmtpDeliver(t, "lmtp@example.com", "Subject: meanwhile\r\n\r\nhi\r\n"); !strings.HasPrefix(r, "250") {
				t.Fatalf("delivery meanwhile: %s", r)
			}
			t.Logf("stalled LMTP session closed after %v", waitClosed(t, c, c, start, 30*time.Second))
		})
	})

	t.Run("oversized", func(t *testing.T) {
		c := dialIMAP(t, h.imap, "big@example.com", "pw")
		before := imapMessages(t, c)
		t.Run("imap sync literal of 5 GB", func(t *testing.T) {
			_, tagged := c.cmd("APPEND INBOX {5000000000}")
			if !strings.Contains(tagged, "NO [TOOBIG]") {
				t.Fatalf("APPEND of 5 GB: %s", tagged)
			}
			c.ok("NOOP")
		})
		t.Run("imap sync literal over APPENDLIMIT", func(t *testing.T) {
			_, tagged := c.cmd("APPEND INBOX {%d}", hostileMaxSize+1)
			if !strings.Contains(tagged, "NO [TOOBIG]") {
				t.Fatalf("APPEND over the limit: %s", tagged)
			}
			c.ok("NOOP")
		})
		t.Run("imap non-sync literal of 5 GB", func(t *testing.T) {
			o := dialIMAP(t, h.imap, "big@example.com", "pw")
			start := time.Now()
			o.send("x APPEND INBOX {5000000000+}\r\n" + strings.Repeat("a", 64<<10))
			// The gateway refuses to read gigabytes: it answers and closes.
			var got []string
			for {
				_ = o.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				l, err := o.r.ReadString('\n')
				if err != nil {
					break
				}
				got = append(got, strings.TrimSpace(l))
			}
			if !anyHas(got, "Literal too large") {
				t.Fatalf("answer to a 5 GB LITERAL+: %q", got)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("closed after %v", took)
			}
		})
		t.Run("lmtp SIZE", func(t *testing.T) {
			l := dialLMTP(t, h.lmtp)
			l.cmd("LHLO hostile.test")
			// go-smtp parses SIZE as a 32-bit number: 5 GB is refused
			// as unparsable (501 5.5.4), which is still a clear refusal.
			if r := l.cmd("MAIL FROM:<a@example.org> SIZE=5000000000"); !strings.HasPrefix(r, "5") {
				t.Fatalf("MAIL with SIZE=5GB: %s", r)
			}
			if r := l.cmd("MAIL FROM:<a@example.org> SIZE=%d", hostileMaxSize+1); !strings.HasPrefix(r, "552 5.3.4") {
				t.Fatalf("MAIL with SIZE over the limit: %s", r)
			}
			// The session is still sane: a transaction works.
			if r := l.cmd("MAIL FROM:<a@example.org> SIZE=100"); !strings.HasPrefix(r, "250") {
				t.Fatalf("MAIL after the refusal: %s", r)
			}
			l.cmd("RSET")
		})
		t.Run("lmtp DATA over the limit", func(t *testing.T) {
			l := dialLMTP(t, h.lmtp)
			l.cmd("LHLO hostile.test")
			l.cmd("MAIL FROM:<a@example.org>")
			if r := l.cmd("RCPT TO:<big@example.com>"); !strings.HasPrefix(r, "250") {
				t.Fatalf("RCPT: %s", r)
			}
			if r := l.cmd("DATA"); !strings.HasPrefix(r, "354") {
				t.Fatalf("DATA: %s", r)
			}
			line := strings.Repeat("y", 998) + "\r\n"
			w := bufio.NewWriterSize(l.c, 64<<10)
			_ = l.c.SetWriteDeadline(time.Now().Add(time.Minute))
			w.WriteString("Subject: too big\r\n\r\n")
			for range hostileMaxSize/len(line) + 100 {
				w.WriteString(line)
			}
			w.WriteString(".\r\n")
			if err := w.Flush(); err != nil {
				t.Fatalf("write DATA: %v", err)
			}
			if r := l.reply(); !strings.HasPrefix(r, "552") {
				t.Fatalf("DATA over the limit: %s", r)
			}
			if r := l.cmd("NOOP"); !strings.HasPrefix(r, "250") {
				t.Fatalf("NOOP after the refusal: %s", r)
			}
		})
		if after := imapMessages(t, c); after != before {
			t.Fatalf("INBOX went from %d to %d messages after refused messages", before, after)
		}
	})

	t.Run("pathological MIME", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			msg  string
		}{
			{"10000 nested parts", nestedMessage(10000)},
			{"20000 sibling parts", siblingMessage(20000)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dialIMAP(t, h.imap, "mime@example.com", "pw")
				before := imapMessages(t, c)
				if r := h.lmtpDeliver(t, "mime@example.com", tc.msg); !strings.HasPrefix(r, "250") {
					t.Fatalf("LMTP delivery: %s", r)
				}
				c.ok("APPEND INBOX {%d}\r\n%s", len(tc.msg), tc.msg)
				c.ok("SELECT INBOX")
				for seq := before + 1; seq <= before+2; seq++ {
					lines := c.ok("FETCH %d (RFC822.SIZE BODYSTRUCTURE)", seq)
					if !anyHas(lines, "BODYSTRUCTURE (") {
						t.Fatalf("no BODYSTRUCTURE for message %d: %.300q", seq, lines)
					}
					// LMTP adds a Received field at the top; the body
					// is stored as sent after it.
					body, _ := fetchBody(t, c, seq)
					if !strings.HasSuffix(body, tc.msg) {
						t.Fatalf("message %d is not stored as sent (%d bytes, sent %d)", seq, len(body), len(tc.msg))
					}
					if !anyHas(lines, fmt.Sprintf("RFC822.SIZE %d", len(body))) {
						t.Fatalf("RFC822.SIZE of message %d is not %d: %.200q", seq, len(body), lines)
					}
				}
			})
		}
	})

	for range 2 {
		r := <-imapLoris
		if r.err != nil {
			t.Errorf("slowloris %s: %v", r.name, r.err)
		} else {
			t.Logf("slowloris %s closed after %v", r.name, r.took)
		}
	}
	p := peak()
	t.Logf("resident memory: %.0f MB at start, peak %.0f MB", base/(1<<20), p/(1<<20))
	// The race detector multiplies memory use; a client that made the pod
	// hold a literal or a message tree whole would still show far above
	// this (5 GB announced, 3 MB x 30 fetched, 10,000 parts).
	if p-base > 512<<20 {
		t.Errorf("resident memory grew by %.0f MB", (p-base)/(1<<20))
	}
}
