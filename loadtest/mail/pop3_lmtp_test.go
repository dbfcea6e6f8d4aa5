package mail

import (
	"net"
	"strings"
	"testing"
)

// TestPOP3 runs every POP3 call against the real server.
func TestPOP3(t *testing.T) {
	s := mailstore(t)
	v := newVU(t)
	user := s.newUser(t)
	v.set(t, "cfg", map[string]any{"pop3": s.pop3, "lmtp": s.lmtp, "user": user, "pw": testPassword})
	v.run(t, `for (let i = 1; i <= 3; i++) {
		mail.lmtp.deliver(cfg.lmtp, "s@example.org", [cfg.user], "Subject: m" + i + "\r\n\r\nline one\r\n.dot line\r\nline three\r\n");
	} return null`)
	v.drain()

	v.run(t, `globalThis.p = mail.pop3.connect(cfg.pop3, {timeout: 10000}); return null`)
	if msg := v.throws(t, `p.login(cfg.user, "wrong")`); !strings.Contains(msg, "authentication failed") {
		t.Errorf("wrong password threw %q", msg)
	}
	if n, _ := count(v.drain(), metricErrors, map[string]string{"kind": kindAuth, "proto": "pop3", "command": "PASS"}); n != 1 {
		t.Errorf("%d auth error samples, want 1", n)
	}
	v.run(t, `p.close(); globalThis.p = mail.pop3.connect(cfg.pop3); return null`)

	tests := []struct {
		name, js, want, command string
	}{
		{"login", `p.login(cfg.user, cfg.pw); return "ok"`, `"ok"`, "PASS"},
		{"stat", `return p.stat()`, `"count":3`, "STAT"},
		{"list", `return p.list().map(e => e.id)`, `[1,2,3]`, "LIST"},
		{"list one", `const l = p.list(2); return l.length === 1 && l[0].id === 2 && l[0].size > 0`, `true`, "LIST"},
		{"uidl", `return p.uidl().length`, `3`, "UIDL"},
		{"uidl one", `return p.uidl(3)[0].id`, `3`, "UIDL"},
		{"top", `const m = p.top(1, 0); return m.includes("Subject: m1") && !m.includes("line one")`, `true`, "TOP"},
		{"retr", `return p.retr(2).endsWith("\r\nSubject: m2\r\n\r\nline one\r\n.dot line\r\nline three\r\n")`, `true`, "RETR"},
		{"dele", `p.dele(1); return p.stat()`, `"count":2`, "DELE"},
		{"rset", `p.rset(); return p.stat()`, `"count":3`, "RSET"},
		{"noop", `p.noop(); return "ok"`, `"ok"`, "NOOP"},
		{"quit commits", `p.dele(1); p.quit(); const q = mail.pop3.connect(cfg.pop3); q.login(cfg.user, cfg.pw); const st = q.stat(); q.quit(); return st`, `"count":2`, "QUIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustJSON(t, v.run(t, tt.js))
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %s, want it to contain %s", got, tt.want)
			}
			if n, _ := count(v.drain(), metricPOP3Duration, map[string]string{"command": tt.command, "result": "ok", "proto": "pop3"}); n == 0 {
				t.Errorf("no %s sample for %s", metricPOP3Duration, tt.command)
			}
		})
	}

	t.Run("error answer", func(t *testing.T) {
		v.run(t, `globalThis.p = mail.pop3.connect(cfg.pop3); p.login(cfg.user, cfg.pw); return null`)
		v.drain()
		if msg := v.throws(t, `p.retr(99)`); !strings.Contains(msg, "-ERR") {
			t.Errorf("retr of a missing message threw %q", msg)
		}
		if n, _ := count(v.drain(), metricPOP3Duration, map[string]string{"command": "RETR", "result": "err"}); n != 1 {
			t.Errorf("%d RETR samples with result err, want 1", n)
		}
		v.run(t, `p.quit(); return null`)
	})
}

// TestLMTP: per-recipient replies, in order, for accepted and refused
// recipients, and the delivery's result tag.
func TestLMTP(t *testing.T) {
	s := mailstore(t)
	v := newVU(t)
	a, b := s.newUser(t), s.newUser(t)
	v.set(t, "cfg", map[string]any{"lmtp": s.lmtp, "rcpts": []string{a, "nobody-here@example.org", b}})
	got := v.run(t, `return mail.lmtp.deliver(cfg.lmtp, "s@example.org", cfg.rcpts, "Subject: hi\r\n\r\nbody\r\n", {lhlo: "k6.test"})`).([]any)
	if len(got) != 3 {
		t.Fatalf("%d replies, want 3: %v", len(got), got)
	}
	wantClass := []float64{2, 5, 2}
	for i, r := range got {
		m := r.(map[string]any)
		if m["rcpt"] == "" || m["code"].(float64) < 200 || float64(int(m["code"].(float64)/100)) != wantClass[i] {
			t.Errorf("reply %d = %v, want a %vxx", i, m, wantClass[i])
		}
	}
	if ec := got[1].(map[string]any)["enhancedCode"]; !strings.HasPrefix(ec.(string), "5.") {
		t.Errorf("refused recipient's enhanced code %q, want 5.x.x", ec)
	}
	samples := v.drain()
	if n, _ := count(samples, metricLMTPDuration, map[string]string{"result": "partial", "proto": "lmtp"}); n != 1 {
		t.Errorf("%d delivery samples with result partial, want 1", n)
	}
	if n, _ := count(samples, metricSessions, map[string]string{"proto": "lmtp"}); n != 1 {
		t.Errorf("%d lmtp session samples, want 1", n)
	}

	v.run(t, `return mail.lmtp.deliver(cfg.lmtp, "s@example.org", ["nobody-here@example.org"], "x\r\n")`)
	if n, _ := count(v.drain(), metricLMTPDuration, map[string]string{"result": "permfail"}); n != 1 {
		t.Errorf("%d delivery samples with result permfail, want 1", n)
	}
	for _, js := range []string{
		`mail.lmtp.deliver(cfg.lmtp, "s@example.org", [], "x")`,
		`mail.lmtp.deliver(cfg.lmtp, "s@example.org", ["a@example.org"], "x", {starttls: true})`,
		`mail.lmtp.deliver(cfg.lmtp, "s@example.org", ["a@example.org"], 42)`,
	} {
		if msg := v.throws(t, js); msg == "" {
			t.Errorf("%s threw an empty error", js)
		}
	}
}

// TestConnectFailures: refused connections count as connect errors, a
// server that never greets as a timeout, and the init context is refused.
func TestConnectFailures(t *testing.T) {
	closed, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	tests := []struct {
		name, js, proto, kind string
	}{
		{"imap refused", `mail.imap.connect(addr)`, "imap", kindConnect},
		{"pop3 refused", `mail.pop3.connect(addr)`, "pop3", kindConnect},
		{"lmtp refused", `mail.lmtp.deliver(addr, "a@b.c", ["d@e.f"], "x")`, "lmtp", kindConnect},
		{"imap silent", `mail.imap.connect(silent, {timeout: 200})`, "imap", kindTimeout},
		{"pop3 silent", `mail.pop3.connect(silent, {timeout: "200ms"})`, "pop3", kindTimeout},
		{"lmtp silent", `mail.lmtp.deliver(silent, "a@b.c", ["d@e.f"], "x", {timeout: 200})`, "lmtp", kindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVU(t)
			v.set(t, "addr", closed)
			v.set(t, "silent", silent.Addr().String())
			v.throws(t, tt.js)
			if n, _ := count(v.drain(), metricErrors, map[string]string{"proto": tt.proto, "kind": tt.kind}); n != 1 {
				t.Errorf("%d %s error samples of kind %s, want 1", n, tt.proto, tt.kind)
			}
		})
	}
	t.Run("bad options", func(t *testing.T) {
		v := newVU(t)
		for _, js := range []string{
			`mail.imap.connect("127.0.0.1:1", {tls: true, starttls: true})`,
			`mail.imap.connect("127.0.0.1:1", {frob: 1})`,
			`mail.pop3.connect("127.0.0.1:1", {timeout: "soon"})`,
			`mail.imap.connect("127.0.0.1:1", {tls: "yes"})`,
		} {
			if msg := v.throws(t, js); !strings.Contains(msg, "connect") {
				t.Errorf("%s threw %q", js, msg)
			}
		}
		if len(v.drain()) != 0 {
			t.Error("option errors pushed samples")
		}
	})
}
