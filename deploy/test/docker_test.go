package deploytest

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDockerfile checks what the image promises without a Docker daemon:
// the final stage is empty but for static binaries, it runs as a numeric
// non-root user, and the build command it uses gives static binaries.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	stages := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got FROM lines %v", stages)
	}
	final := text[strings.LastIndex(text, "\nFROM ")+1:]
	t.Run("final stage", func(t *testing.T) {
		if base := stages[len(stages)-1][1]; base != "scratch" && !strings.Contains(base, "distroless") {
			t.Errorf("final stage FROM %s, want scratch or distroless", base)
		}
		user := regexp.MustCompile(`(?m)^USER\s+(\d+)(?::(\d+))?\s*$`).FindStringSubmatch(final)
		if user == nil {
			t.Fatal("the final stage has no numeric USER uid[:gid]")
		}
		if uid, _ := strconv.Atoi(user[1]); uid == 0 {
			t.Error("USER is root")
		}
		for _, bin := range []string{"mailstore", "mailctl"} {
			if !strings.Contains(final, "/out/"+bin) {
				t.Errorf("the final stage does not copy %s", bin)
			}
		}
		if !regexp.MustCompile(`--chown=` + user[1] + `(:\d+)?\s+\S+\s+/data`).MatchString(final) {
			t.Error("/data is not owned by the image's user")
		}
	})
	t.Run("static build", func(t *testing.T) {
		for _, want := range []string{"CGO_ENABLED=0", "./cmd/mailstore", "./cmd/mailctl", "-trimpath"} {
			if !strings.Contains(text, want) {
				t.Errorf("the build stage lacks %q", want)
			}
		}
		dir := buildBinaries(t)
		for _, bin := range []string{"mailstore", "mailctl"} {
			f, err := elf.Open(filepath.Join(dir, bin))
			if err != nil {
				t.Fatalf("%s: %v", bin, err)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s built with CGO_ENABLED=0 is dynamically linked", bin)
				}
			}
			f.Close()
		}
	})
	t.Run("default command", func(t *testing.T) {
		// The CMD's flags must be ones the binary knows: -help after them
		// exits 0 only if every one parsed.
		m := regexp.MustCompile(`(?s)\nCMD\s+(\[.*?\])\s*\n`).FindStringSubmatch(final + "\n")
		if m == nil {
			t.Fatal("the final stage has no exec-form CMD")
		}
		var args []string
		if err := json.Unmarshal([]byte(strings.ReplaceAll(m[1], "\\\n", "")), &args); err != nil {
			t.Fatalf("CMD %s: %v", m[1], err)
		}
		bin := filepath.Join(buildBinaries(t), "mailstore")
		if out, err := exec.Command(bin, append(args, "-help")...).CombinedOutput(); err != nil {
			t.Errorf("mailstore %s: %v\n%s", strings.Join(args, " "), err, firstLines(string(out), 3))
		}
	})
	t.Run("dockerignore", func(t *testing.T) {
		ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{".git", "bin", "data"} {
			if !regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(want) + `/?$`).Match(ignore) {
				t.Errorf(".dockerignore does not leave out %s", want)
			}
		}
		for _, need := range []string{"go.mod", "go.sum", "go.work", "proto", "cmd", "pkg", "services"} {
			if regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(need) + `/?$`).Match(ignore) {
				t.Errorf(".dockerignore leaves out %s, which the build needs", need)
			}
		}
	})
}
