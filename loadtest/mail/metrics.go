package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
	"go.k6.io/k6/js/modules"
	"go.k6.io/k6/metrics"
)

// Metric names, part of the extension's contract with scripts (thresholds
// name them).
const (
	metricIMAPDuration  = "mail_imap_command_duration"
	metricPOP3Duration  = "mail_pop3_command_duration"
	metricLMTPDuration  = "mail_lmtp_delivery_duration"
	metricBytesSent     = "mail_bytes_sent"
	metricBytesReceived = "mail_bytes_received"
	metricErrors        = "mail_errors"
	metricSessions      = "mail_sessions"
)

// Error kinds, the values of the kind tag of mail_errors.
const (
	kindConnect  = "connect"
	kindProtocol = "protocol"
	kindTimeout  = "timeout"
	kindAuth     = "auth"
)

type mailMetrics struct {
	imapDuration, pop3Duration, lmtpDuration *metrics.Metric
	bytesSent, bytesReceived                 *metrics.Metric
	errors, sessions                         *metrics.Metric
}

func registerMetrics(r *metrics.Registry) (*mailMetrics, error) {
	var m mailMetrics
	for _, d := range []struct {
		dst  **metrics.Metric
		name string
		typ  metrics.MetricType
		vt   metrics.ValueType
	}{
		{&m.imapDuration, metricIMAPDuration, metrics.Trend, metrics.Time},
		{&m.pop3Duration, metricPOP3Duration, metrics.Trend, metrics.Time},
		{&m.lmtpDuration, metricLMTPDuration, metrics.Trend, metrics.Time},
		{&m.bytesSent, metricBytesSent, metrics.Counter, metrics.Data},
		{&m.bytesReceived, metricBytesReceived, metrics.Counter, metrics.Data},
		{&m.errors, metricErrors, metrics.Counter, metrics.Default},
		{&m.sessions, metricSessions, metrics.Counter, metrics.Default},
	} {
		mm, err := r.NewMetric(d.name, d.typ, d.vt)
		if err != nil {
			return nil, fmt.Errorf("register metric %s: %w", d.name, err)
		}
		*d.dst = mm
	}
	return &m, nil
}

// recorder pushes one VU's samples, tagged with the VU's current tags.
type recorder struct {
	vu modules.VU
	m  *mailMetrics
}

// errInitContext: k6 offers no sample channel and no dialer outside a VU.
var errInitContext = errors.New("mail: network calls are only allowed in VU code (default function, setup or teardown), not in the init context")

// push sends one sample per value; extra holds tag name, value pairs.
func (r *recorder) push(metric *metrics.Metric, value float64, extra ...string) {
	state := r.vu.State()
	if state == nil {
		return
	}
	tm := state.Tags.GetCurrentValues()
	tags := tm.Tags
	for i := 0; i+1 < len(extra); i += 2 {
		tags = tags.With(extra[i], extra[i+1])
	}
	metrics.PushIfNotDone(r.vu.Context(), state.Samples, metrics.Sample{
		TimeSeries: metrics.TimeSeries{Metric: metric, Tags: tags},
		Time:       time.Now(),
		Metadata:   tm.Metadata,
		Value:      value,
	})
}

// command records one finished command: its duration under result, the
// bytes moved since the last flush, and the error's kind if it failed.
func (r *recorder) command(trend *metrics.Metric, proto, command string, start time.Time, c *countConn, result string, err error, errKind string) {
	r.push(trend, metrics.D(time.Since(start)), "proto", proto, "command", command, "result", result)
	r.flushBytes(proto, c)
	if err != nil {
		if errKind == "" {
			errKind = classify(err)
		}
		r.push(r.m.errors, 1, "proto", proto, "kind", errKind, "command", command)
	}
}

func (r *recorder) flushBytes(proto string, c *countConn) {
	if c == nil {
		return
	}
	sent, recv := c.delta()
	if sent > 0 {
		r.push(r.m.bytesSent, float64(sent), "proto", proto)
	}
	if recv > 0 {
		r.push(r.m.bytesReceived, float64(recv), "proto", proto)
	}
}

func (r *recorder) session(proto string) {
	r.push(r.m.sessions, 1, "proto", proto)
}

func (r *recorder) connectError(proto string, err error) {
	kind := kindConnect
	if isTimeout(err) {
		kind = kindTimeout
	}
	r.push(r.m.errors, 1, "proto", proto, "kind", kind, "command", "CONNECT")
}

// classify maps an error to a mail_errors kind: timeouts first, then
// what the server said (a protocol answer), then transport failures,
// which also count as protocol errors since the session is lost mid-way.
func classify(err error) string {
	switch {
	case isTimeout(err):
		return kindTimeout
	case errors.Is(err, errAuth):
		return kindAuth
	default:
		return kindProtocol
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// errAuth marks a refused login.
var errAuth = errors.New("authentication failed")

// imapResult is the result tag of an IMAP command: ok, no, bad, or error
// when no tagged answer came (transport failure, timeout).
func imapResult(err error) string {
	if err == nil {
		return "ok"
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Type {
		case imap.StatusResponseTypeNo:
			return "no"
		case imap.StatusResponseTypeBad:
			return "bad"
		}
	}
	return "error"
}

// smtpResult is the result tag of an LMTP reply class.
func smtpResult(err error) string {
	if err == nil {
		return "ok"
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.Temporary() {
			return "tempfail"
		}
		return "permfail"
	}
	return "error"
}
