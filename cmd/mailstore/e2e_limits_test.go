package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailstore/mailstore/internal/testenv"
)

// greet connects to an IMAP gateway and returns the connection and its
// first line.
func greet(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, _ := bufio.NewReader(c).ReadString('\n')
	return c, strings.TrimRight(l, "\r\n")
}

// TestLimitsAcrossPods: two IMAP gateway processes share their limits
// through the metadata store on Redis: sessions per account, connections
// per client IP (the default 25) and failed logins per account.
func TestLimitsAcrossPods(t *testing.T) {
	st := startRedisStack(t, 1, testenv.Redis(t), testenv.Prefix(t), testenv.S3(t, testenv.VersityGW),
		"-metadata.auth.max-account-failures=3")
	mailctl(t, st.metaAddrs[0], "pw\n", false, "account", "add", "limits@example.com", "--password-stdin")
	mailctl(t, st.metaAddrs[0], "pw\n", false, "account", "add", "guess@example.com", "--password-stdin")
	start := func(name string) string {
		addr := freeAddr(t)
		startProc(t, name, nil, "-target=imap", "-imap.listen-address="+addr, "-imap.max-connections-per-account=3",
			"-metadata.address="+st.metaAddrs[0], "-blob.address="+st.blobAddr)
		return addr
	}
	gw1, gw2 := start("imap-1"), start("imap-2")

	t.Run("sessions per account", func(t *testing.T) {
		a := dialIMAP(t, gw1, "limits@example.com", "pw")
		dialIMAP(t, gw1, "limits@example.com", "pw")
		dialIMAP(t, gw2, "limits@example.com", "pw")
		c := dialIMAP2(t, gw2)
		if _, tagged := c.cmd("LOGIN limits@example.com pw"); !strings.Contains(tagged, "NO [LIMIT]") {
			t.Fatalf("4th session of the account: %s", tagged)
		}
		a.ok("LOGOUT")
		// The slot is given back when the session ends.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, tagged := c.cmd("LOGIN limits@example.com pw")
			if strings.Contains(tagged, " OK") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no session slot after a LOGOUT: %s", tagged)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.ok("LOGOUT")
	})

	t.Run("failed logins per account", func(t *testing.T) {
		for i, gw := range []string{gw1, gw2, gw1} {
			c := dialIMAP2(t, gw)
			if _, tagged := c.cmd("LOGIN guess@example.com wrong%d", i); !strings.Contains(tagged, "NO") {
				t.Fatalf("wrong password: %s", tagged)
			}
		}
		// The right password is refused now, on either pod.
		c := dialIMAP2(t, gw2)
		if _, tagged := c.cmd("LOGIN guess@example.com pw"); !strings.Contains(tagged, "NO") {
			t.Fatalf("login after 3 failures on two pods: %s", tagged)
		}
	})

	t.Run("connections per IP", func(t *testing.T) {
		// Let the sessions of the subtests above end and free their slots.
		deadline := time.Now().Add(30 * time.Second)
		var conns []net.Conn
		for len(conns) < 25 {
			gw := gw1
			if len(conns)%2 == 1 {
				gw = gw2
			}
			c, g := greet(t, gw)
			if !strings.HasPrefix(g, "* OK") {
				c.Close()
				if time.Now().After(deadline) {
					t.Fatalf("connection %d refused: %q", len(conns)+1, g)
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			conns = append(conns, c)
		}
		for _, gw := range []string{gw1, gw2} {
			if _, g := greet(t, gw); !strings.HasPrefix(g, "* BYE [UNAVAILABLE] Too many connections") {
				t.Fatalf("26th connection: %q", g)
			}
		}
		conns[0].Close()
		deadline = time.Now().Add(10 * time.Second)
		for {
			c, g := greet(t, gw2)
			if strings.HasPrefix(g, "* OK") {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("no slot after a connection closed: %q", g)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// dialIMAP2 connects and reads the greeting, without logging in.
func dialIMAP2(t *testing.T, addr string) *imapConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &imapConn{t: t, conn: c, r: bufio.NewReader(c)}
	if g := ic.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return ic
}
