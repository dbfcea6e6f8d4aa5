package lmtpgw

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/pkg/meta"
)

// TestSlowloris: a client that trickles a command line a byte at a time,
// each byte well within the idle timeout, is still cut off once the line
// has taken longer than the idle timeout, and the gateway serves another
// client meanwhile. Before the line bound, every byte refreshed the
// per-read deadline and such a client lived for as long as it kept
// trickling.
func TestSlowloris(t *testing.T) {
	const idle = 600 * time.Millisecond
	e := newEnv(t)
	e.account("u@example.com", meta.Quota{})
	addr := e.gateway(func(c *Config) { c.IdleTimeout = idle })

	for _, tc := range []struct {
		name   string
		prefix string // sent at once before the trickle
	}{
		{"first line", ""},
		{"after a command", "LHLO client.test\r\n"},
		{"in a transaction", "LHLO client.test\r\nMAIL FROM:<a@example.com>\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			closed := make(chan string, 1)
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				b, _ := io.ReadAll(c)
				closed <- string(b)
			}()
			if _, err := io.WriteString(c, tc.prefix); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			tick := time.NewTicker(idle / 4)
			defer tick.Stop()
			line := "RCPT TO:<u@example.com>" + strings.Repeat(" ", 4000)
			for i := 0; ; i++ {
				select {
				case out := <-closed:
					took := time.Since(start)
					if took > idle+2*time.Second {
						t.Fatalf("closed after %v, want about %v", took, idle)
					}
					if !strings.Contains(out, "421 ") {
						t.Errorf("no 421 before the close: %q", out)
					}
					return
				case <-tick.C:
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("a trickling client is still connected after %v", time.Since(start))
				}
				// A write may fail once the server has closed; the
				// reader then reports it.
				_, _ = c.Write([]byte{line[i%len(line)]})
				if i == 2 {
					// Meanwhile another client is served.
					deliver(t, addr, "b@example.com", []string{"u@example.com"}, "Subject: meanwhile\r\n\r\nhi\r\n")
				}
			}
		})
	}
}

// TestSlowCommandsStillServed: a client that sends whole commands slowly,
// each within the idle timeout, is not cut off by the line bound.
func TestSlowCommandsStillServed(t *testing.T) {
	const idle = 600 * time.Millisecond
	e := newEnv(t)
	e.account("u@example.com", meta.Quota{})
	addr := e.gateway(func(c *Config) { c.IdleTimeout = idle })
	c := dial(t, "tcp", addr)
	c.expect("250", "LHLO client.test")
	tick := time.NewTicker(idle / 2)
	defer tick.Stop()
	for range 4 {
		<-tick.C
		c.expect("250", "NOOP")
	}
	// A line split over reads, completed within the timeout, is fine too.
	c.send("NO")
	<-tick.C
	c.expect("250", "OP")
	c.expect("221", "QUIT")
}
