package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready. MinIO and
// a Redis loading its AOF under -race on a busy 2-core machine are the slow
// ones.
const startTimeout = 60 * time.Second

// pollInterval is how often readiness is polled.
const pollInterval = 50 * time.Millisecond

// errExited means the server process ended before it became ready.
var errExited = errors.New("server exited")

// process is one running server process. Its output goes to a log file
// whose tail is quoted when the server fails to start.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has been waited for
	waitErr error         // valid after done

	killOnce sync.Once
}

// startProcess starts bin with args and extra environment in dir, logging
// to dir/<name>.log (appended, so a restart keeps the earlier log). The
// process is tracked so Main kills it at exit; Pdeathsig (Linux) kills it
// even when the test binary crashes.
func startProcess(name, dir, bin string, args, extraEnv []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = sysProcAttr()
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	logFile.Close() // the child has its own copy
	if err := track(p); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// kill sends SIGKILL and waits for the process to be gone. It is safe to
// call more than once and from several goroutines.
func (p *process) kill() {
	p.killOnce.Do(func() {
		_ = p.cmd.Process.Kill()
	})
	<-p.done
	untrack(p)
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the process's log, for error messages.
func (p *process) logTail() string {
	const maxLines = 30
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitReady polls ready until it succeeds, the process exits or the start
// timeout passes. The error carries the last readiness error and the tail
// of the server's log.
func (p *process) waitReady(ready func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		last = ready(attempt)
		cancelAttempt()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s: %w (%v) before it was ready; log tail:\n%s", p.name, errExited, p.waitErr, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %v; log tail:\n%s", p.name, startTimeout, last, p.logTail())
		case <-tick.C:
		}
	}
}

// startRetries is how many times a server whose process exits before it is
// ready is started again on fresh ports: a free port found by freePorts may
// be taken by someone else before the server binds it.
const startRetries = 3

// retryStart calls start until it succeeds, retrying only when the server
// process exited early (usually a port taken in the meantime).
func retryStart[T any](start func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range startRetries {
		v, err = start()
		if err == nil || !errors.Is(err, errExited) {
			return v, err
		}
	}
	return v, err
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago. All listeners are held until all ports are found so that they differ.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// The ports FreePort handed out in this process: never twice, so a server
// killed and restarted on its port does not find it taken by another of
// this binary's servers.
var handedOut = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// FreePort returns a loopback port that was free a moment ago, for a
// server started afterwards. It picks below the kernel's ephemeral range
// (ip_local_port_range), so that the ports the kernel gives to listeners
// on port 0 and to outgoing connections (toxiproxy's, clients', other
// test binaries') cannot take it between the check and the server's
// bind; it falls back to port 0 when that range leaves no room.
func FreePort() (int, error) {
	lo, hi := 20000, ephemeralLow()
	handedOut.Lock()
	defer handedOut.Unlock()
	if hi-lo >= 1000 {
		for range 200 {
			p := lo + mrand.IntN(hi-lo)
			if handedOut.m[p] {
				continue
			}
			ln, err := net.Listen("tcp", hostPort(p))
			if err != nil {
				continue
			}
			ln.Close()
			handedOut.m[p] = true
			return p, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	p := ln.Addr().(*net.TCPAddr).Port
	handedOut.m[p] = true
	return p, nil
}

// FreeAddr is FreePort as 127.0.0.1:port; it fails t if no port is free.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return hostPort(p)
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (Linux;
// 32768, the usual default, elsewhere).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}

// hostPort is 127.0.0.1:port.
func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// tcpReady succeeds once something accepts TCP connections at addr.
func tcpReady(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}
