// Package gwmetrics holds the Prometheus metrics every protocol gateway
// (IMAP, POP3, LMTP) reports, under one naming scheme,
// mailstore_<protocol>_<what>_<unit>, so dashboards and alerts read the
// same for each. The pod is not a label: Prometheus adds it from the
// scrape target.
//
// A nil *Gateway records nothing, so gateways built without metrics (in
// tests) need no checks.
package gwmetrics

import (
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailstore/mailstore/pkg/meta"
)

// Gateway is one gateway's metrics.
type Gateway struct {
	sessions   prometheus.Gauge
	accepted   prometheus.Counter
	refused    prometheus.Counter
	commands   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	logins     *prometheus.CounterVec
	bytesIn    prometheus.Counter
	bytesOut   prometheus.Counter
	locks      prometheus.Gauge
	deliveries *prometheus.CounterVec
	watches    prometheus.Gauge
	events     *prometheus.CounterVec
	rewatches  prometheus.Counter
	eventLag   prometheus.Histogram
}

// New registers the metrics of the gateway for protocol ("imap", "pop3",
// "lmtp") with reg.
func New(reg prometheus.Registerer, protocol string) *Gateway {
	ns := "mailstore"
	g := &Gateway{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: protocol, Name: "sessions_open",
			Help: "Sessions open on this gateway."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "connections_accepted_total",
			Help: "Connections accepted."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "connections_refused_total",
			Help: "Connections refused by a limit (connections per IP)."}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "commands_total",
			Help: "Commands by name and result (ok, no, bad, err, bye)."}, []string{"command", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: protocol, Name: "command_duration_seconds",
			Help:    "Time from a command's arrival to its answer, by command.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"command"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "logins_total",
			Help: "Authentication attempts by result (ok, failed, error, refused)."}, []string{"result"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "received_bytes_total",
			Help: "Bytes read from clients (on the wire, TLS included)."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "sent_bytes_total",
			Help: "Bytes written to clients (on the wire, TLS included)."}),
	}
	cs := []prometheus.Collector{g.sessions, g.accepted, g.refused, g.commands, g.duration, g.logins, g.bytesIn, g.bytesOut}
	switch protocol {
	case "pop3":
		g.locks = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: protocol, Name: "locks_held",
			Help: "Maildrop locks held by this gateway's sessions."})
		cs = append(cs, g.locks)
	case "imap":
		g.watches = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: protocol, Name: "watch_streams",
			Help: "Change-event streams open from this gateway to the metadata service (one per account with sessions here)."})
		g.events = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "events_total",
			Help: "Change events received, by kind."}, []string{"kind"})
		g.rewatches = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "watch_restarts_total",
			Help: "Event streams that broke and were opened again (sessions then catch up from the change log)."})
		g.eventLag = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: protocol, Name: "event_lag_seconds",
			Help:    "Time from a change's commit in the metadata store (by the store's clock) to the arrival of its event here.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}})
		cs = append(cs, g.watches, g.events, g.rewatches, g.eventLag)
	case "lmtp":
		g.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: protocol, Name: "deliveries_total",
			Help: "Deliveries to one recipient by outcome (stored, discarded, duplicate, unknown_recipient, over_quota, too_large, temp_failure)."}, []string{"outcome"})
		cs = append(cs, g.deliveries)
	}
	reg.MustRegister(cs...)
	return g
}

// SessionStarted counts a session open; call the returned func when it
// ends.
func (g *Gateway) SessionStarted() func() {
	if g == nil {
		return func() {}
	}
	g.sessions.Inc()
	return g.sessions.Dec
}

// Refused counts a connection refused by a limit.
func (g *Gateway) Refused() {
	if g != nil {
		g.refused.Inc()
	}
}

// Command records a command's result and duration. name must come from
// the gateway's command table (or be "unknown"), to bound the series.
func (g *Gateway) Command(name, result string, d time.Duration) {
	if g == nil {
		return
	}
	g.commands.WithLabelValues(name, result).Inc()
	g.duration.WithLabelValues(name).Observe(d.Seconds())
}

// Login records an authentication attempt by its outcome: ok, failed
// (wrong credentials: meta.ErrAuthFailed) or error (the store failed).
func (g *Gateway) Login(err error) {
	if g == nil {
		return
	}
	result := "error"
	switch {
	case err == nil:
		result = "ok"
	case errors.Is(err, meta.ErrAuthFailed):
		result = "failed"
	}
	g.logins.WithLabelValues(result).Inc()
}

// LockHeld adds delta to the POP3 locks held.
func (g *Gateway) LockHeld(delta int) {
	if g != nil && g.locks != nil {
		g.locks.Add(float64(delta))
	}
}

// Delivery records one recipient's delivery outcome (LMTP).
func (g *Gateway) Delivery(outcome string) {
	if g != nil && g.deliveries != nil {
		g.deliveries.WithLabelValues(outcome).Inc()
	}
}

// WatchOpened counts an open event stream; call the returned func when
// it closes.
func (g *Gateway) WatchOpened() func() {
	if g == nil || g.watches == nil {
		return func() {}
	}
	g.watches.Inc()
	return g.watches.Dec
}

// Event counts a change event received.
func (g *Gateway) Event(kind string) {
	if g != nil && g.events != nil {
		g.events.WithLabelValues(kind).Inc()
	}
}

// EventLag records how late a change event arrived: from its commit to
// now. A negative d (the clocks of store and gateway disagree) counts as
// no lag rather than being dropped, so the count still matches events.
func (g *Gateway) EventLag(d time.Duration) {
	if g != nil && g.eventLag != nil {
		g.eventLag.Observe(max(d, 0).Seconds())
	}
}

// WatchRestarted counts an event stream opened again after it broke.
func (g *Gateway) WatchRestarted() {
	if g != nil && g.rewatches != nil {
		g.rewatches.Inc()
	}
}

// Conn counts an accepted connection and wraps it to count its bytes.
func (g *Gateway) Conn(c net.Conn) net.Conn {
	if g == nil {
		return c
	}
	g.accepted.Inc()
	return &countingConn{Conn: c, in: g.bytesIn, out: g.bytesOut}
}

type countingConn struct {
	net.Conn
	in, out prometheus.Counter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(float64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(float64(n))
	return n, err
}
