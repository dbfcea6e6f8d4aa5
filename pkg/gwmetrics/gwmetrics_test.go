package gwmetrics

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/mailstore/mailstore/pkg/meta"
)

func TestGateway(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := New(reg, "pop3")
	done := g.SessionStarted()
	g.Command("RETR", "ok", 3*time.Millisecond)
	g.Command("RETR", "err", time.Millisecond)
	g.Login(meta.ErrAuthFailed)
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

func TestEventLag(t *testing.T) {
	tests := []struct {
		name      string
		lags      []time.Duration
		wantCount uint64
		wantSum   float64
		// wantLE maps an upper bound to the cumulative count under it.
		wantLE map[float64]uint64
	}{
		{"none", nil, 0, 0, map[float64]uint64{0.0005: 0, 10: 0}},
		{"fast and slow", []time.Duration{200 * time.Microsecond, 30 * time.Millisecond, 3 * time.Second},
			3, 3.0302, map[float64]uint64{0.0005: 1, 0.05: 2, 2.5: 2, 5: 3, 10: 3}},
		{"clock skew counts as no lag", []time.Duration{-time.Second}, 1, 0, map[float64]uint64{0.0005: 1}},
		{"past the last bucket", []time.Duration{time.Minute}, 1, 60, map[float64]uint64{10: 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			g := New(reg, "imap")
			for _, d := range tc.lags {
				g.EventLag(d)
			}
			h := gatherHistogram(t, reg, "mailstore_imap_event_lag_seconds")
			if h.GetSampleCount() != tc.wantCount {
				t.Errorf("count = %d, want %d", h.GetSampleCount(), tc.wantCount)
			}
			if got := h.GetSampleSum(); got < tc.wantSum-1e-9 || got > tc.wantSum+1e-9 {
				t.Errorf("sum = %v, want %v", got, tc.wantSum)
			}
			bounds := map[float64]uint64{}
			for _, b := range h.GetBucket() {
				bounds[b.GetUpperBound()] = b.GetCumulativeCount()
			}
			if len(bounds) != 14 {
				t.Errorf("%d buckets, want 14 from 0.0005 to 10 s: %v", len(bounds), bounds)
			}
			for le, want := range tc.wantLE {
				got, ok := bounds[le]
				if !ok || got != want {
					t.Errorf("bucket le=%v holds %d (present %v), want %d", le, got, ok, want)
				}
			}
		})
	}
	t.Run("not for other protocols", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		New(reg, "pop3").EventLag(time.Second)
		if n, err := testutil.GatherAndCount(reg, "mailstore_pop3_event_lag_seconds"); err != nil || n != 0 {
			t.Errorf("pop3 event lag series = %d, %v; want none", n, err)
		}
	})
}

// gatherHistogram returns the single histogram named name from reg.
func gatherHistogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if len(mf.GetMetric()) != 1 {
				t.Fatalf("%s has %d series, want 1", name, len(mf.GetMetric()))
			}
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no %s among the gathered metrics", name)
	return nil
}

func TestNilGateway(t *testing.T) {
	var g *Gateway
	g.SessionStarted()()
	g.Command("NOOP", "ok", 0)
	g.Login(nil)
	g.LockHeld(1)
	g.Delivery("stored")
	g.Refused()
	g.WatchOpened()()
	g.Event("append")
	g.EventLag(time.Second)
	g.WatchRestarted()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if g.Conn(a) != a {
		t.Fatal("nil gateway wrapped the connection")
	}
}
