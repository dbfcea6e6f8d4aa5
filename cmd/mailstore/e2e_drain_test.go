package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDrainIdleSessions: SIGTERM to a gateway with 200 IDLE sessions.
// Every session gets "* BYE" as its last, whole line; the BYEs are spread
// over the drain window rather than sent at once; and the process exits
// within the window.
func TestDrainIdleSessions(t *testing.T) {
	const sessions = 200
	const window = 2 * time.Second
	metaAddr, blobAddr, imapAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	p := startProc(t, "all", nil, "-target=all", "-data-dir="+t.TempDir(),
		"-metadata.listen-address="+metaAddr, "-metadata.address="+metaAddr,
		"-blob.listen-address="+blobAddr, "-blob.address="+blobAddr,
		"-imap.listen-address="+imapAddr, "-pop3.listen-address="+freeAddr(t),
		"-imap.max-connections-per-ip=0", "-imap.max-connections-per-account=0", fmt.Sprintf("-server.drain-window=%v", window))
	mailctl(t, metaAddr, "pw\n", false, "account", "add", "drain@example.com", "--password-stdin")

	conns := make([]*bufio.Reader, sessions)
	raw := make([]net.Conn, sessions)
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < sessions; i += 8 {
				c, err := net.Dial("tcp", imapAddr)
				if err != nil {
					errs <- err
					return
				}
				r := bufio.NewReader(c)
				raw[i], conns[i] = c, r
				_ = c.SetDeadline(time.Now().Add(time.Minute))
				fmt.Fprintf(c, "a LOGIN drain@example.com pw\r\nb SELECT INBOX\r\nc IDLE\r\n")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						errs <- fmt.Errorf("session %d before IDLE: %v", i, err)
						return
					}
					if strings.HasPrefix(l, "+ ") {
						break
					}
					if strings.HasPrefix(l, "a NO") || strings.HasPrefix(l, "b NO") || strings.HasPrefix(l, "a BAD") {
						errs <- fmt.Errorf("session %d: %q", i, l)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range raw {
		defer c.Close()
	}

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	byeAt := make([]time.Duration, sessions)
	results := make(chan error, sessions)
	for i, r := range conns {
		go func() {
			_ = raw[i].SetReadDeadline(time.Now().Add(window + 30*time.Second))
			var last string
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					if l != "" {
						results <- fmt.Errorf("session %d: cut mid-line: %q", i, l)
						return
					}
					break
				}
				last = l
				if strings.HasPrefix(l, "* BYE") {
					byeAt[i] = time.Since(start)
				}
			}
			if !strings.HasPrefix(last, "* BYE") || !strings.HasSuffix(last, "\r\n") {
				results <- fmt.Errorf("session %d: last line %q, want * BYE", i, last)
				return
			}
			results <- nil
		}()
	}
	for range sessions {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	select {
	case <-p.done:
	case <-time.After(window + 15*time.Second):
		t.Fatalf("the process did not exit within the drain window (+15s)")
	}
	first, last := byeAt[0], byeAt[0]
	for _, d := range byeAt {
		first, last = min(first, d), max(last, d)
	}
	t.Logf("BYEs from %v to %v after SIGTERM; exited after %v", first, last, time.Since(start))
	if last-first < window/4 {
		t.Errorf("BYEs sent within %v: not spread over the %v window", last-first, window)
	}
}
