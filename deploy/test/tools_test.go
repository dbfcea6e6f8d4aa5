package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// helmVersion is the helm that scripts/deploy-test.sh installs; keep the
// two in step.
const helmVersion = "v4.3.1"

// kubeVersion is the Kubernetes version the chart is rendered for.
const kubeVersion = "1.31.0"

// repoRoot is the root of the mailstore repository.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func chartDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "deploy", "helm", "mailstore")
}

// requireTools reports whether a missing tool fails the test rather than
// skipping it, as under `make test`.
func requireTools() bool {
	return os.Getenv("MAILSTORE_REQUIRE_SERVERS") == "1" || os.Getenv("MAILSTORE_REQUIRE_TOOLS") == "1"
}

// helmBinary finds helm: $MAILSTORE_HELM, then the pinned build in the tools
// cache, then helm on PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MAILSTORE_HELM"); p != "" {
		return p
	}
	tools := os.Getenv("MAILSTORE_TOOLS")
	if tools == "" {
		cache, err := os.UserCacheDir()
		if err == nil {
			tools = filepath.Join(cache, "mailstore-tools")
		}
	}
	if tools != "" {
		p := filepath.Join(tools, "helm-"+helmVersion, "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	msg := "helm " + helmVersion + " not found: run scripts/deploy-test.sh, or set MAILSTORE_HELM"
	if requireTools() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// helm runs helm with a private home, so that no repository or plugin of
// the user's leaks in, and returns stdout, stderr and the error.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	bin := helmBinary(t)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// binaries are mailstore and mailctl built as the Dockerfile builds them
// (CGO_ENABLED=0), once per test binary.
var binaries struct {
	once sync.Once
	dir  string
	err  error
	out  string
}

// buildBinaries builds cmd/mailstore and cmd/mailctl statically and returns
// the directory holding them.
func buildBinaries(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "mailstore-deploytest-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		cmd := exec.Command("go", "build", "-trimpath", "-o", dir+string(filepath.Separator), "./cmd/mailstore", "./cmd/mailctl")
		cmd.Dir = root
		// The root's go.work, not this module's.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=", "GOFLAGS=-buildvcs=false")
		out, err := cmd.CombinedOutput()
		binaries.out, binaries.err = string(out), err
	})
	if binaries.err != nil {
		t.Fatalf("go build ./cmd/mailstore ./cmd/mailctl with CGO_ENABLED=0: %v\n%s", binaries.err, binaries.out)
	}
	return binaries.dir
}

// mailstoreFlags lists the flag names the built binary knows.
func mailstoreFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin := filepath.Join(buildBinaries(t), "mailstore")
	out, err := exec.Command(bin, "-help").CombinedOutput()
	if err != nil {
		t.Fatalf("mailstore -help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutPrefix(line, "  -"); ok {
			name, _, _ := strings.Cut(f, " ")
			flags[name] = true
		}
	}
	return flags
}

// checkConfigFile makes the real binary read a -config file: unknown keys
// and values of the wrong type make it exit 2 before -help is handled.
func checkConfigFile(t *testing.T, target, content string) {
	t.Helper()
	flags := mailstoreFlags(t)
	if target == "lmtp" && !flags["lmtp.listen-address"] {
		t.Logf("skipping the binary's check of lmtp.yaml: this mailstore has no lmtp target yet")
		return
	}
	path := filepath.Join(t.TempDir(), target+".yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(buildBinaries(t), "mailstore")
	out, err := exec.Command(bin, "-config", path, "-target="+target, "-help").CombinedOutput()
	if err != nil {
		t.Errorf("mailstore rejects the %s config: %v\n%s\nconfig:\n%s", target, err, firstLines(strings.TrimSpace(string(out)), 5), content)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestHelmPin keeps the helm version of scripts/deploy-test.sh and of this
// package the same.
func TestHelmPin(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "deploy-test.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\nHELM_VERSION="+helmVersion+"\n") {
		t.Errorf("scripts/deploy-test.sh does not pin HELM_VERSION=%s", helmVersion)
	}
}
