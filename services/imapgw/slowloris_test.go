package imapgw

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSlowloris: a client that trickles a command line a byte at a time
// never completes it and is logged out within about twice the idle timeout
// (the read deadline is set for the line and refreshed once the command
// name is read), while another client is served meanwhile.
func TestSlowloris(t *testing.T) {
	const idle = 500 * time.Millisecond
	e := newEnv(t)
	e.account("loris@example.com")
	addr := e.gatewayWithIdle(idle)
	for _, tc := range []struct {
		name, prefix, line string
	}{
		{"in the tag", "", strings.Repeat("t", 4000)},
		{"in the arguments", "", "a LOGIN loris@example.com " + strings.Repeat("p", 4000)},
		{"logged in", "a LOGIN loris@example.com pw\r\n", "b SEARCH TEXT " + strings.Repeat("q", 4000)},
		// The command name is read at once: the rest of its line gets
		// one idle period, not one more for the next command.
		{"unknown command", "a FROBNICATE ", strings.Repeat("f", 4000)},
		{"command not allowed", "a LOGIN loris@example.com pw\r\nb FETCH ", strings.Repeat("1", 4000)},
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
			// The deadline is refreshed once, after the command name;
			// a name sent at once leaves one idle period.
			bound := 2*idle + idle/2
			if strings.HasSuffix(tc.prefix, " ") {
				bound = idle + idle/2
			}
			tick := time.NewTicker(idle / 5)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case out := <-closed:
					if took := time.Since(start); took > bound {
						t.Fatalf("closed after %v, want within %v", took, bound)
					}
					if !strings.Contains(out, "* BYE Autologout") {
						t.Errorf("no BYE before the close: %q", out)
					}
					return
				case <-tick.C:
				}
				if took := time.Since(start); took > 10*time.Second {
					t.Fatalf("a trickling client is still connected after %v", took)
				}
				_, _ = c.Write([]byte{tc.line[i%len(tc.line)]})
				if i == 1 {
					other := dialRaw(t, addr)
					other.ok("LOGIN loris@example.com pw")
					other.ok("NOOP")
				}
			}
		})
	}
}

// gatewayWithIdle serves a gateway whose idle timeout is below the least
// that Validate allows (one minute), set after New, before Serve.
func (e *env) gatewayWithIdle(idle time.Duration) string {
	e.t.Helper()
	cfg := Config{MaxLineLength: 64 << 10, MaxLiteral: 1 << 20, IdleTimeout: time.Minute, CommandTimeout: time.Minute, WriteTimeout: time.Minute, ListenAddress: "x", AllowPlaintextLoopback: true, MaxAuthFailures: 3, AuthFailureDelay: time.Millisecond}
	g, err := New(cfg, Deps{Meta: e.store, Auth: e.auth, Blobs: e.blobs, Ingest: e.ing})
	if err != nil {
		e.t.Fatal(err)
	}
	g.cfg.IdleTimeout = idle
	e.gws = append(e.gws, g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(ctx, ln, false) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}
