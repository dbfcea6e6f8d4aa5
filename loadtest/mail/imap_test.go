package mail

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestIMAP runs every IMAP call of the extension, as a script would,
// against the real server, and checks the answers and the samples.
func TestIMAP(t *testing.T) {
	s := mailstore(t)
	v := newVU(t)
	v.set(t, "cfg", map[string]any{"addr": s.imap, "user": s.newUser(t), "pw": testPassword})
	v.run(t, `globalThis.c = mail.imap.connect(cfg.addr, {tls: false, timeout: "10s"}); return null;`)

	msg := v.throws(t, `c.login(cfg.user, "wrong")`)
	if !strings.Contains(msg, "authentication failed") {
		t.Errorf("wrong password threw %q", msg)
	}
	if n, _ := count(v.drain(), metricErrors, map[string]string{"kind": kindAuth, "proto": "imap", "command": "LOGIN"}); n != 1 {
		t.Errorf("wrong password: %d auth error samples, want 1", n)
	}

	tests := []struct {
		name    string
		js      string
		want    string // in the JSON of the result
		command string // the command tag of the duration sample
	}{
		{"login", `c.login(cfg.user, cfg.pw); return "ok"`, `"ok"`, "LOGIN"},
		{"capability", `return c.capability()`, `"IDLE"`, "CAPABILITY"},
		{"list", `return c.list("", "*").map(m => m.name)`, `"INBOX"`, "LIST"},
		{"create", `c.create("Load"); return c.list("", "Load")`, `"name":"Load"`, "LIST"},
		{"select empty", `return c.select("INBOX")`, `"messages":0`, "SELECT"},
		{"append", `c.append("INBOX", "Subject: one\r\nFrom: a@example.org\r\n\r\nfirst body\r\n", []);
			return c.append("INBOX", "Subject: two\r\nFrom: b@example.org\r\n\r\nsecond body\r\n", ["\\Flagged"])`, `"uid":2`, "APPEND"},
		{"status", `return c.status("INBOX", ["MESSAGES", "UIDNEXT", "UNSEEN", "SIZE"])`, `"messages":2`, "STATUS"},
		{"status default", `return c.status("INBOX")`, `"uidnext":3`, "STATUS"},
		{"select", `return c.select("INBOX")`, `"messages":2`, "SELECT"},
		{"fetch macros", `return c.fetch("1:*", ["FAST", "UID"])`, `"size":`, "FETCH"},
		{"fetch envelope", `return c.fetch("2", ["ENVELOPE"])[0].envelope`, `"subject":"two"`, "FETCH"},
		{"fetch bodystructure", `return c.fetch("1", ["BODYSTRUCTURE"])[0].bodyStructure`, `"type":"text/plain"`, "FETCH"},
		{"fetch header fields", `return c.fetch("1", ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[0].sections`, `Subject: one`, "FETCH"},
		{"fetch partial text", `return c.fetch("1", ["BODY.PEEK[TEXT]<0.5>"])[0].sections`, `"BODY.PEEK[TEXT]\u003c0.5\u003e":"first"`, "FETCH"},
		{"fetch whole", `return c.fetch("2", ["BODY.PEEK[]"])[0].sections["BODY.PEEK[]"]`, `second body`, "FETCH"},
		{"fetch binary", `return c.fetch("1", ["BINARY.PEEK[1]", "BINARY.SIZE[1]"])[0].sections`, `"BINARY.SIZE[1]":12`, "FETCH"},
		{"uid fetch", `return c.fetch("2", ["FLAGS"], {uid: true})`, `"\\Flagged"`, "UID FETCH"},
		{"fetch modseq", `return c.fetch("1", ["MODSEQ"])[0].modseq > 0`, `true`, "FETCH"},
		{"store", `return c.store("1", "+FLAGS", ["\\Seen"])`, `"\\Seen"`, "STORE"},
		{"store silent", `return c.store("1", "-FLAGS.SILENT", ["\\Seen"])`, `[]`, "STORE"},
		{"search all", `return c.search({})`, `[1,2]`, "SEARCH"},
		{"search flag", `return c.search({flag: ["\\Flagged"]})`, `[2]`, "SEARCH"},
		{"search header", `return c.search({header: {Subject: "one"}}, {uid: true})`, `[1]`, "UID SEARCH"},
		{"search not or", `return c.search({not: {flag: "\\Flagged"}, or: [{body: "first"}, {larger: 100000}]})`, `[1]`, "SEARCH"},
		{"copy", `return c.copy("1:2", "Load")`, `"destUids":"1:2"`, "COPY"},
		{"move", `return c.move("2", "Load", {uid: true})`, `"sourceUids":"2"`, "UID MOVE"},
		{"expunge", `c.store("1", "+FLAGS.SILENT", ["\\Deleted"]); return c.expunge()`, `[1]`, "EXPUNGE"},
		{"examine", `return c.examine("Load")`, `"readOnly":true`, "EXAMINE"},
		{"noop", `c.noop(); return "ok"`, `"ok"`, "NOOP"},
		{"idle timeout", `return c.idle(50)`, `"event":"timeout"`, "IDLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fmt.Sprint(mustJSON(t, v.run(t, tt.js)))
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %s, want it to contain %s", got, tt.want)
			}
			if n, _ := count(v.drain(), metricIMAPDuration, map[string]string{"command": tt.command, "result": "ok", "proto": "imap"}); n == 0 {
				t.Errorf("no %s sample for command %s", metricIMAPDuration, tt.command)
			}
		})
	}

	t.Run("idle wakes on delivery", func(t *testing.T) {
		v.run(t, `c.select("INBOX"); return null`)
		// Deliver until the IDLE below has seen one (each delivery is
		// news for an IDLE that started before it).
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		rcpt := v.run(t, `return cfg.user`).(string)
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					_ = smtpDeliver(s.lmtp, rcpt)
				}
			}
		}()
		got := v.run(t, `return c.idle(15000)`).(map[string]any)
		cancel()
		if got["event"] != "exists" || got["count"].(float64) < 1 {
			t.Fatalf("idle returned %v, want an exists event", got)
		}
	})

	t.Run("errors", func(t *testing.T) {
		v.drain()
		if msg := v.throws(t, `c.select("No/Such/Box")`); !strings.Contains(msg, "SELECT") {
			t.Errorf("select of a missing mailbox threw %q", msg)
		}
		samples := v.drain()
		if n, _ := count(samples, metricIMAPDuration, map[string]string{"command": "SELECT", "result": "no"}); n != 1 {
			t.Errorf("%d SELECT samples with result no, want 1", n)
		}
		if n, _ := count(samples, metricErrors, map[string]string{"kind": kindProtocol, "proto": "imap"}); n != 1 {
			t.Errorf("%d protocol error samples, want 1", n)
		}
		for _, js := range []string{
			`c.fetch("1:x", ["FLAGS"])`, `c.fetch("1", ["BODY[NOPE]"])`, `c.fetch("1", ["WHATEVER"])`,
			`c.store("1", "*FLAGS", [])`, `c.search({nonsense: 1})`, `c.status("INBOX", ["FROB"])`,
			`c.fetch("1", ["FLAGS"], {uids: true})`,
		} {
			if msg := v.throws(t, js); msg == "" {
				t.Errorf("%s threw an empty error", js)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		v.run(t, `c.logout(); return null`)
		samples := v.drain()
		if n, _ := count(samples, metricIMAPDuration, map[string]string{"command": "LOGOUT", "result": "ok"}); n != 1 {
			t.Errorf("%d LOGOUT samples, want 1", n)
		}
		if msg := v.throws(t, `c.noop()`); msg == "" {
			t.Error("noop after logout threw an empty error")
		}
	})
}

// TestIMAPBytesAndSessions: the byte counters add up to what crossed the
// wire, and each connect counts one session.
func TestIMAPBytesAndSessions(t *testing.T) {
	s := mailstore(t)
	v := newVU(t)
	v.set(t, "cfg", map[string]any{"addr": s.imap, "user": s.newUser(t), "pw": testPassword})
	v.run(t, `for (let i = 0; i < 3; i++) { const c = mail.imap.connect(cfg.addr); c.login(cfg.user, cfg.pw);
		c.append("INBOX", "Subject: x\r\n\r\n" + "y".repeat(10000) + "\r\n", []); c.logout(); } return null`)
	samples := v.drain()
	if n, sum := count(samples, metricSessions, map[string]string{"proto": "imap"}); n != 3 || sum != 3 {
		t.Errorf("sessions: %d samples summing to %v, want 3", n, sum)
	}
	if _, sent := count(samples, metricBytesSent, map[string]string{"proto": "imap"}); sent < 30000 {
		t.Errorf("bytes sent %v, want at least the 3 x 10 KB appended", sent)
	}
	if _, recv := count(samples, metricBytesReceived, map[string]string{"proto": "imap"}); recv == 0 {
		t.Error("no bytes received")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// smtpDeliver delivers one small message to rcpt over LMTP from Go,
// outside the VU (whose runtime is busy in IDLE).
func smtpDeliver(addr, rcpt string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("test.localhost"); err != nil {
		return err
	}
	if err := c.Mail("t@example.org", nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("Subject: wake\r\n\r\nup\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
