package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// k6Binary is k6 with this extension: $MAILSTORE_K6 when set (as
// scripts/loadtest-test.sh does), else built by scripts/loadtest-build.sh
// (minutes when cold, cached after).
func k6Binary(t *testing.T) string {
	t.Helper()
	if k6 := os.Getenv("MAILSTORE_K6"); k6 != "" {
		return k6
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Log("MAILSTORE_K6 unset: building k6 with scripts/loadtest-build.sh")
	cmd := exec.Command(filepath.Join(root, "scripts", "loadtest-build.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/loadtest-build.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestSmokeScenario runs scripts/smoke.js with the real k6 for a few
// seconds against the test server: k6 must exit 0 (every threshold held)
// and the exported summary must show the thresholds evaluated and the
// extension's metrics filled.
func TestSmokeScenario(t *testing.T) {
	s := mailstore(t)
	k6 := k6Binary(t)
	users := []string{s.newUser(t), s.newUser(t)}
	summary := filepath.Join(t.TempDir(), "summary.json")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k6, "run", "--quiet", "--no-color", "--no-usage-report",
		"--summary-export", summary, filepath.Join("..", "scripts", "smoke.js"))
	cmd.Env = append(os.Environ(),
		"MAIL_IMAP="+s.imap, "MAIL_POP3="+s.pop3, "MAIL_LMTP="+s.lmtp,
		"MAIL_USERS="+strings.Join(users, ","), "MAIL_PASSWORD="+testPassword,
		"DURATION=5s", "K6_NO_USAGE_REPORT=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("k6 run: %v\n%s", err, out)
	}

	raw, err := os.ReadFile(summary)
	if err != nil {
		t.Fatalf("no summary export: %v\n%s", err, out)
	}
	var sum struct {
		Metrics map[string]map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatalf("summary export: %v", err)
	}
	// Every threshold of the script, evaluated and held (false = not failed).
	thresholds := map[string]string{
		"checks":        "rate>0.99",
		"mail_errors":   "count<1",
		"mail_sessions": "count>0",
		"mail_imap_command_duration{command:LOGIN}": "p(95)<2000",
		"mail_imap_command_duration{command:FETCH}": "p(95)<2000",
		"mail_pop3_command_duration":                "p(95)<2000",
		"mail_lmtp_delivery_duration":               "p(95)<2000",
	}
	for metric, th := range thresholds {
		m, ok := sum.Metrics[metric]
		if !ok {
			t.Errorf("summary lacks %s", metric)
			continue
		}
		ths, _ := m["thresholds"].(map[string]any)
		if failed, ok := ths[th]; !ok || failed != false {
			t.Errorf("%s threshold %q: %v (want evaluated and held)", metric, th, ths)
		}
	}
	for _, metric := range []string{"mail_bytes_sent", "mail_bytes_received", "mail_sessions", "iterations"} {
		if c, _ := sum.Metrics[metric]["count"].(float64); c <= 0 {
			t.Errorf("%s count %v, want > 0", metric, sum.Metrics[metric]["count"])
		}
	}
	for _, metric := range []string{"mail_imap_command_duration", "mail_pop3_command_duration", "mail_lmtp_delivery_duration"} {
		if p, _ := sum.Metrics[metric]["max"].(float64); p <= 0 {
			t.Errorf("%s max %v, want > 0", metric, sum.Metrics[metric]["max"])
		}
	}
}
