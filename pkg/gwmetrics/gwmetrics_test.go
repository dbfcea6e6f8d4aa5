package gwmetrics

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGateway(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := New(reg, "pop3")
	done := g.SessionStarted()
	g.Command("RETR", "ok", 3*time.Millisecond)
	g.Command("RETR", "err", time.Millisecond)
	g.Login("failed")
	g.LockHeld(1)
	a, b := net.Pipe()
	defer b.Close()
	c := g.Conn(a)
	go func() { _, _ = b.Write([]byte("hello")); buf := make([]byte, 3); _, _ = b.Read(buf) }()
	buf := make([]byte, 5)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP mailstore_pop3_commands_total Commands by name and result (ok, no, bad, err, bye).
# TYPE mailstore_pop3_commands_total counter
mailstore_pop3_commands_total{command="RETR",result="err"} 1
mailstore_pop3_commands_total{command="RETR",result="ok"} 1
# HELP mailstore_pop3_locks_held Maildrop locks held by this gateway's sessions.
# TYPE mailstore_pop3_locks_held gauge
mailstore_pop3_locks_held 1
# HELP mailstore_pop3_logins_total Authentication attempts by result (ok, failed, error, refused).
# TYPE mailstore_pop3_logins_total counter
mailstore_pop3_logins_total{result="failed"} 1
# HELP mailstore_pop3_received_bytes_total Bytes read from clients (on the wire, TLS included).
# TYPE mailstore_pop3_received_bytes_total counter
mailstore_pop3_received_bytes_total 5
# HELP mailstore_pop3_sent_bytes_total Bytes written to clients (on the wire, TLS included).
# TYPE mailstore_pop3_sent_bytes_total counter
mailstore_pop3_sent_bytes_total 3
# HELP mailstore_pop3_sessions_open Sessions open on this gateway.
# TYPE mailstore_pop3_sessions_open gauge
mailstore_pop3_sessions_open 1
`
	names := []string{"mailstore_pop3_commands_total", "mailstore_pop3_locks_held", "mailstore_pop3_logins_total",
		"mailstore_pop3_received_bytes_total", "mailstore_pop3_sent_bytes_total", "mailstore_pop3_sessions_open"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	done()
	if got := testutil.ToFloat64(g.sessions); got != 0 {
		t.Fatalf("sessions after done = %v", got)
	}
	if n := testutil.CollectAndCount(g.duration); n != 1 {
		t.Fatalf("%d duration series, want 1 (by command)", n)
	}
}

func TestNilGateway(t *testing.T) {
	var g *Gateway
	g.SessionStarted()()
	g.Command("NOOP", "ok", 0)
	g.Login("ok")
	g.LockHeld(1)
	g.Delivery("stored")
	g.Refused()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if g.Conn(a) != a {
		t.Fatal("nil gateway wrapped the connection")
	}
}
