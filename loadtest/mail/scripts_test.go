package mail

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestScriptsParse runs `k6 inspect` on every scenario in ../scripts, with
// placeholder addresses (inspect runs the init context, which makes no
// network calls), so a syntax error or a bad options block fails the
// tests without a load run.
func TestScriptsParse(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("..", "scripts", "*.js"))
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no scripts in ../scripts")
	}
	k6 := k6Binary(t)
	for _, script := range scripts {
		t.Run(filepath.Base(script), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			// inspect does not pass the process environment to __ENV: -e.
			cmd := exec.CommandContext(ctx, k6, "inspect",
				"-e", "MAIL_IMAP=127.0.0.1:1,127.0.0.1:2", "-e", "MAIL_POP3=127.0.0.1:3", "-e", "MAIL_LMTP=127.0.0.1:4",
				"-e", "MAIL_USERS=a@example.org,b@example.org,c@example.org", "-e", "MAIL_PASSWORD=x",
				"-e", "DURATION=10s", script)
			cmd.Env = append(os.Environ(), "K6_NO_USAGE_REPORT=true")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("k6 inspect %s: %v\n%s", script, err, out)
			}
		})
	}
}
