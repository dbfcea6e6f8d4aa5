package mailstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/password"
)

const (
	spanUser  = "spans@example.com"
	spanPW    = "Pw-7f3a9c-SECRET"
	spanBadPW = "Pw-7f3a9c-SECRET-wrong"
)

// syncBuffer is a log sink shared by the app's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNotInSpans runs every component in one process with an
// in-memory span recorder and a debug-level logger, drives the IMAP and
// POP3 authentication paths with a right and a wrong password, and finds
// no form of either in any span (name, attributes, events, status), in
// the log or in the metrics.
func TestSecretsNotInSpans(t *testing.T) {
	// The otel global provider binds the tracers that packages made at
	// init (the gateways' command spans) to the first provider set only.
	// So this test joins a provider an earlier test set (this file sorts
	// after tracing_test.go for that reason) and sets one only when it
	// runs alone.
	rec := tracetest.NewSpanRecorder()
	tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	if !ok {
		tp = sdktrace.NewTracerProvider()
		otel.SetTracerProvider(tp)
	}
	tp.RegisterSpanProcessor(rec)
	t.Cleanup(func() { tp.UnregisterSpanProcessor(rec) })

	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(f)
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	metaAddr, blobAddr, imapAddr, popAddr, httpAddr := free(), free(), free(), free(), free()
	if err := Parse(f, []string{"-target=all", "-data-dir=" + t.TempDir(), "-server.http-listen-address=" + httpAddr,
		"-metadata.listen-address=" + metaAddr, "-metadata.address=" + metaAddr,
		"-blob.listen-address=" + blobAddr, "-blob.address=" + blobAddr,
		"-imap.listen-address=" + imapAddr, "-pop3.listen-address=" + popAddr, "-lmtp.listen-address=" + free(),
		"-imap.auth.failure-delay=1ms", "-pop3.auth.failure-delay=1ms"}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	app, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	h, err := password.Hash(spanPW, password.Fast)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.metaStore.CreateAccount(ctx, meta.NewAccount{Login: spanUser, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}

	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	// Each exchange is a list of lines to send; the last answer must
	// start with want (OK for the right password, NO/-ERR for the wrong).
	for _, pw := range []string{spanPW, spanBadPW} {
		imapWant, popWant := "a NO", "-ERR"
		if pw == spanPW {
			imapWant, popWant = "a OK", "+OK"
		}
		plain := b64("\x00" + spanUser + "\x00" + pw)
		for _, x := range []struct {
			addr  string
			lines []string
			want  string
		}{
			{imapAddr, []string{"a LOGIN " + spanUser + " " + pw}, imapWant},
			{imapAddr, []string{"a AUTHENTICATE PLAIN " + plain}, imapWant},
			{imapAddr, []string{"a AUTHENTICATE LOGIN", b64(spanUser), b64(pw)}, imapWant},
			{popAddr, []string{"USER " + spanUser, "PASS " + pw}, popWant},
			{popAddr, []string{"AUTH PLAIN " + plain}, popWant},
			{popAddr, []string{"AUTH LOGIN", b64(spanUser), b64(pw)}, popWant},
		} {
			if got := exchange(t, x.addr, x.lines); !strings.HasPrefix(got, x.want) {
				t.Fatalf("%q: got %q, want %s...", x.lines, got, x.want)
			}
		}
	}

	// Let the server spans of the last RPCs end.
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.Ended()) < 12 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var spans strings.Builder
	for _, s := range rec.Ended() {
		fmt.Fprintf(&spans, "span %s status %q\n", s.Name(), s.Status().Description)
		writeAttrs(&spans, s.Attributes())
		for _, e := range s.Events() {
			fmt.Fprintf(&spans, " event %s\n", e.Name)
			writeAttrs(&spans, e.Attributes)
		}
		for _, l := range s.Links() {
			writeAttrs(&spans, l.Attributes)
		}
		writeAttrs(&spans, s.Resource().Attributes())
	}
	if !strings.Contains(spans.String(), "imap LOGIN") {
		t.Fatalf("no IMAP LOGIN span recorded; spans:\n%.3000s", spans.String())
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	var forms []string
	for _, pw := range []string{spanPW, spanBadPW} {
		forms = append(forms, pw, b64(pw), b64("\x00"+spanUser+"\x00"+pw))
	}
	forms = append(forms, "7f3a9c-SECRET")
	for where, text := range map[string]string{"spans": spans.String(), "log": logs.String(), "metrics": string(metrics)} {
		for _, f := range forms {
			if i := strings.Index(text, f); i >= 0 {
				t.Errorf("%s hold %q: ...%s...", where, f, text[max(0, i-200):min(len(text), i+len(f)+40)])
			}
		}
	}
	t.Logf("searched %d spans, %d bytes of debug log, %d bytes of metrics", len(rec.Ended()), len(logs.String()), len(metrics))
}

func writeAttrs(w io.Writer, attrs []attribute.KeyValue) {
	for _, a := range attrs {
		fmt.Fprintf(w, "  %s=%s\n", a.Key, a.Value.Emit())
	}
}

// exchange connects, sends each line after reading the answer to the one
// before (the greeting first), and returns the last answer line that is
// not IMAP untagged data.
func exchange(t *testing.T, addr string, lines []string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	read := func() string {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !strings.HasPrefix(l, "* ") {
				return strings.TrimRight(l, "\r\n")
			}
		}
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	var last string
	for _, l := range lines {
		fmt.Fprintf(c, "%s\r\n", l)
		last = read()
	}
	if strings.HasPrefix(last, "+OK") {
		fmt.Fprintf(c, "QUIT\r\n")
		read()
	}
	return last
}
