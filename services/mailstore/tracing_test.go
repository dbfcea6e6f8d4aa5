package mailstore

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/password"
)

// TestTraceCrossesServices runs every component in one process with an
// in-memory span recorder and follows one IMAP FETCH: its trace holds the
// gateway's command span and the server spans of the metadata and blob
// services it called over gRPC.
func TestTraceCrossesServices(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))

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
	metaAddr, blobAddr, imapAddr := free(), free(), free()
	if err := Parse(f, []string{"-target=all", "-data-dir=" + t.TempDir(), "-server.http-listen-address=" + free(),
		"-metadata.listen-address=" + metaAddr, "-metadata.address=" + metaAddr,
		"-blob.listen-address=" + blobAddr, "-blob.address=" + blobAddr,
		"-imap.listen-address=" + imapAddr, "-pop3.listen-address=" + free(), "-lmtp.listen-address=" + free()}); err != nil {
		t.Fatal(err)
	}
	app, err := New(cfg, slog.New(slog.DiscardHandler))
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
	h, err := password.Hash("pw", password.Fast)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.metaStore.CreateAccount(ctx, meta.NewAccount{Login: "trace@example.com", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}

	c, err := net.Dial("tcp", imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	body := "Subject: traced\r\n\r\nhello\r\n"
	fmt.Fprintf(c, "a LOGIN trace@example.com pw\r\nb APPEND INBOX {%d+}\r\n%s\r\nc SELECT INBOX\r\nd FETCH 1 BODY[]\r\n", len(body), body)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "d ") {
			if !strings.HasPrefix(l, "d OK") {
				t.Fatal(l)
			}
			break
		}
	}

	// The server spans end as their RPCs finish, a moment after the
	// gateway has the answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var fetch trace.SpanContext
		for _, s := range rec.Ended() {
			if s.Name() == "imap FETCH" {
				fetch = s.SpanContext()
			}
		}
		var metaSpan, blobSpan bool
		for _, s := range rec.Ended() {
			if !fetch.IsValid() || s.SpanContext().TraceID() != fetch.TraceID() || s.SpanKind() != trace.SpanKindServer {
				continue
			}
			metaSpan = metaSpan || strings.HasPrefix(s.Name(), "mailstore.metadata.v1.")
			blobSpan = blobSpan || strings.HasPrefix(s.Name(), "mailstore.blob.v1.")
		}
		if metaSpan && blobSpan {
			return
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range rec.Ended() {
				names = append(names, s.Name())
			}
			t.Fatalf("FETCH trace %v: metadata server span %v, blob server span %v; spans: %q", fetch.TraceID(), metaSpan, blobSpan, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
