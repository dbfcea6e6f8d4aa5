package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstore/mailstore/internal/testenv"
	"github.com/mailstore/mailstore/pkg/blob/grpcblob"
	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
)

// TestChaos runs a mixed workload against a multi-process stack while
// killing, restarting and pausing its processes, Redis and the S3 server,
// and slowing, stalling, resetting and cutting the links between them
// (toxiproxy, chaos_net_test.go),
// records every operation with its outcome, and then checks the history
// against what the system holds: no acknowledged message lost or
// duplicated, counters and quota equal to a recount, every entry's blob
// present with the right bytes.
//
//	MAILSTORE_CHAOS_DURATION   how long the workload runs (default 60s)
//	MAILSTORE_CHAOS_SEED       the seed of every random choice (default: time-based, logged)
//	MAILSTORE_CHAOS_S3         minio (default) or versitygw
//	MAILSTORE_CHAOS_REPORT_DIR where the report and history go (default: the test's temp dir)
//	MAILSTORE_CHAOS_REDIS      standalone (default) or cluster (3 masters)
//
// TestChaosRedisCluster is the same run on a Redis Cluster (45 s unless
// MAILSTORE_CHAOS_DURATION says otherwise).
//
// Sessions sharing a few messages are checked for linearizability with
// porcupine (chaos_conflict_test.go); watcher sessions' streams are
// checked against the store (chaos_watch_test.go).
func TestChaos(t *testing.T) {
	runChaos(t, os.Getenv("MAILSTORE_CHAOS_REDIS") == "cluster", 60*time.Second)
}

// TestChaosRedisCluster runs the chaos run on a 3-master Redis Cluster:
// its nodes are killed and paused one at a time.
func TestChaosRedisCluster(t *testing.T) {
	runChaos(t, true, 45*time.Second)
}

func runChaos(t *testing.T, cluster bool, dur time.Duration) {
	if testing.Short() {
		t.Skip("the chaos run takes minutes")
	}
	if v := os.Getenv("MAILSTORE_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("MAILSTORE_CHAOS_DURATION=%q: want a positive duration", v)
		}
		dur = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("MAILSTORE_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MAILSTORE_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		seed = s
	}
	s3Kind := testenv.MinIO
	if v := os.Getenv("MAILSTORE_CHAOS_S3"); v != "" {
		s3Kind = v
	}
	redisKind := "standalone"
	if cluster {
		redisKind = "cluster"
	}
	t.Logf("chaos: seed %d, duration %s, S3 %s, Redis %s (rerun with MAILSTORE_CHAOS_SEED=%d)", seed, dur, s3Kind, redisKind, seed)

	began := time.Now()
	st := startChaosStack(t, s3Kind, cluster)
	w := &chaosWorld{
		st: st, hist: &chaosHistory{}, seed: seed, password: "chaos-pw",
		accounts: []string{"hot@chaos.test", "cold1@chaos.test", "cold2@chaos.test"},
	}
	for _, login := range w.accounts {
		mailctl(t, st.metaAddrs[0], w.password+"\n", false, "account", "add", login, "--password-stdin")
	}
	store := grpcmeta.New(dial(t, st.metaAddrs[0]))
	accts := map[string]mail.AccountID{}
	for _, login := range w.accounts {
		a, err := store.LookupLogin(t.Context(), login)
		if err != nil {
			t.Fatal(err)
		}
		accts[login] = a.ID
	}
	shared := w.setupConflict(t, w.accounts[0])
	setup := time.Since(began)

	// The workload: the hot account has 5 IMAP sessions changing
	// messages, 2 IDLE sessions, 2 POP3 sessions and most of the 3 LMTP
	// senders' mail; each cold account 1 IMAP and 1 POP3 session.
	deadline := time.Now().Add(dur)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	n := 0
	spawn := func(f func(ctx context.Context, n int)) {
		n++
		id := n
		wg.Go(func() { f(ctx, id) })
	}
	hot := w.accounts[0]
	for range 5 {
		spawn(func(ctx context.Context, n int) { w.imapWorker(ctx, n, hot) })
	}
	for range 2 {
		spawn(func(ctx context.Context, n int) { w.idleWorker(ctx, n, hot) })
		spawn(func(ctx context.Context, n int) { w.pop3Worker(ctx, n, hot) })
	}
	for range 3 {
		spawn(w.lmtpWorker)
	}
	// Four sessions change and read the same few messages at once
	// (chaos_conflict_test.go).
	for range 4 {
		spawn(func(ctx context.Context, n int) { w.conflictWorker(ctx, n, hot, shared) })
	}
	// Watchers keep a view of the hot INBOX from what the server tells
	// them (chaos_watch_test.go), compared with the store at the end.
	watchers := w.startWatchers(ctx, 4, hot)
	for _, cold := range w.accounts[1:] {
		spawn(func(ctx context.Context, n int) { w.imapWorker(ctx, n, cold) })
		spawn(func(ctx context.Context, n int) { w.pop3Worker(ctx, n, cold) })
	}

	// The faults, one at a time, from the test goroutine (restarts may
	// fail the test).
	frng := rand.New(rand.NewPCG(seed, 1))
	var faults []chaosFault
	var crashes []string
	for pause(t.Context(), jitter(frng, 2000, 6000)) && time.Until(deadline) > 5*time.Second {
		crashes = append(crashes, st.crashed()...)
		f := st.injectFault(frng)
		faults = append(faults, f)
		t.Logf("chaos: fault %s", f)
	}
	<-ctx.Done()
	wg.Wait()
	workload := time.Since(began) - setup

	// Heal, let the sweeper run, check.
	checkStart := time.Now()
	crashes = append(crashes, st.crashed()...)
	st.net.heal()
	if err := st.waitHealthy(); err != nil {
		t.Fatalf("the stack did not heal: %v", err)
	}
	stalled := chaosWaitSweep(t, store, accts)
	blobs := grpcblob.New(dial(t, st.blobAddrs[0]))
	res := chaosCheck(t, w.hist.all(), store, blobs, accts)
	watchers.check(t, store, accts[hot], res)
	dir := chaosReportDir(t)
	chaosCheckConflict(w.hist.all(), dir, 5*time.Minute, res)
	res.warnings = append(res.warnings, stalled...)
	for _, p := range st.procs {
		st.checkOutput(p)
	}
	for _, c := range append(crashes, st.issues...) {
		res.anomaly("process", nil, "%s", c)
	}
	for _, a := range w.anoms {
		res.anomalies = append(res.anomalies, a)
	}
	res.info = append(res.info, fmt.Sprintf("timings: setup %s, workload %s, heal+sweep+check %s",
		setup.Round(time.Second), workload.Round(time.Second), time.Since(checkStart).Round(time.Second)))
	chaosReport(t, dir, seed, dur, s3Kind+", Redis "+redisKind, w.hist.all(), faults, res)
}

// chaosWaitSweep waits until no account has released blobs older than
// now waiting for the sweeper (bounded), and returns a warning for each
// account where some are left, saying whether the sweepers' per-account
// maintenance lease is held (a sweep cut short by a fault may leave it
// held until its TTL ends, which stalls the account's sweeps).
func chaosWaitSweep(t *testing.T, store meta.Store, accts map[string]mail.AccountID) []chaosAnomaly {
	t.Helper()
	cutoff := time.Now()
	deadline := cutoff.Add(30 * time.Second)
	for {
		left := map[string]int{}
		for login, id := range accts {
			ids, err := store.PendingBlobs(t.Context(), id, cutoff, 1000)
			if err != nil || len(ids) > 0 {
				left[login] = len(ids)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var out []chaosAnomaly
			for _, login := range slices.Sorted(maps.Keys(left)) {
				lease := "free"
				// "maintenance" is the lease metasvc's sweeper and
				// recovery take per account.
				l, err := store.AcquireLease(t.Context(), accts[login], "maintenance", "chaos-check", 2*time.Second)
				switch {
				case errors.Is(err, meta.ErrLeaseHeld):
					lease = "held by another holder"
				case err != nil:
					lease = err.Error()
				default:
					_ = store.ReleaseLease(t.Context(), accts[login], "maintenance", l.Token)
				}
				out = append(out, chaosAnomaly{Kind: "sweep-stalled", Text: fmt.Sprintf(
					"%s: %d released blobs still await the sweeper 30s after the workload (sweep every 2s, grace 2s); the maintenance lease is %s", login, left[login], lease)})
			}
			return out
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// chaosReportDir is where the report goes: MAILSTORE_CHAOS_REPORT_DIR or
// the test's temp dir.
func chaosReportDir(t *testing.T) string {
	dir := os.Getenv("MAILSTORE_CHAOS_REPORT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chaosReport writes the report and the history, logs a summary and
// fails the test on any anomaly.
func chaosReport(t *testing.T, dir string, seed uint64, dur time.Duration, s3Kind string, ops []chaosOp, faults []chaosFault, res *chaosResult) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run: seed %d, duration %s, S3 %s\n", seed, dur, s3Kind)
	fmt.Fprintf(&b, "rerun: MAILSTORE_CHAOS_SEED=%d MAILSTORE_CHAOS_DURATION=%s go test -run '^%s$' ./cmd/mailstore\n\n", seed, dur, t.Name())

	// Operations by kind and outcome.
	type ko struct{ kind, outcome string }
	counts := map[ko]int{}
	kinds := map[string]bool{}
	for _, op := range ops {
		o := op.Outcome
		if op.Temp {
			o = "failed-temp"
		}
		counts[ko{op.Kind, o}]++
		kinds[op.Kind] = true
	}
	outcomes := []string{outcomeOK, outcomeFailed, "failed-temp", outcomeUnknown}
	fmt.Fprintf(&b, "operations (%d):\n  %-8s", len(ops), "kind")
	for _, o := range outcomes {
		fmt.Fprintf(&b, " %12s", o)
	}
	b.WriteString("\n")
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		fmt.Fprintf(&b, "  %-8s", k)
		for _, o := range outcomes {
			fmt.Fprintf(&b, " %12d", counts[ko{k, o}])
		}
		b.WriteString("\n")
	}
	byKind := map[string]int{}
	for _, f := range faults {
		byKind[f.Kind]++
	}
	fmt.Fprintf(&b, "\nfaults (%d): %v\n", len(faults), byKind)
	for _, f := range faults {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	b.WriteString("\n" + chaosEffects(ops, faults) + "\n")
	for _, s := range res.info {
		fmt.Fprintf(&b, "info: %s\n", s)
	}
	summary := func(title string, list []chaosAnomaly, examples int) string {
		var s strings.Builder
		group := map[string][]chaosAnomaly{}
		for _, a := range list {
			group[a.Kind] = append(group[a.Kind], a)
		}
		fmt.Fprintf(&s, "%s: %d\n", title, len(list))
		for _, k := range slices.Sorted(maps.Keys(group)) {
			fmt.Fprintf(&s, "  %s: %d\n", k, len(group[k]))
			for _, a := range group[k][:min(examples, len(group[k]))] {
				fmt.Fprintf(&s, "    - %s\n", a.Text)
			}
		}
		return s.String()
	}
	b.WriteString("\n" + summary("anomalies", res.anomalies, 1<<30))
	b.WriteString("\n" + summary("warnings", res.warnings, 1<<30))

	// History excerpts of the first anomalies and warnings.
	excerpt := func(a chaosAnomaly) {
		if len(a.Tokens) == 0 {
			return
		}
		fmt.Fprintf(&b, "\nhistory of %s (%s):\n", strings.Join(a.Tokens, ", "), a.Kind)
		for _, op := range ops {
			if slices.Contains(a.Tokens, op.Token) || slices.ContainsFunc(op.Dele, func(d string) bool { return slices.Contains(a.Tokens, d) }) {
				j, _ := json.Marshal(op)
				fmt.Fprintf(&b, "  %s\n", j)
			}
		}
	}
	for _, a := range res.anomalies[:min(20, len(res.anomalies))] {
		excerpt(a)
	}
	for _, a := range res.warnings[:min(5, len(res.warnings))] {
		excerpt(a)
	}

	variant := strings.TrimPrefix(t.Name(), "TestChaos") // "" or RedisCluster
	report := filepath.Join(dir, fmt.Sprintf("chaos%s-report-%d.txt", variant, seed))
	history := filepath.Join(dir, fmt.Sprintf("chaos%s-history-%d.jsonl", variant, seed))
	if err := os.WriteFile(report, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
	var hb strings.Builder
	for _, op := range ops {
		j, _ := json.Marshal(op)
		hb.Write(j)
		hb.WriteString("\n")
	}
	if err := os.WriteFile(history, []byte(hb.String()), 0o644); err != nil {
		t.Error(err)
	}

	var s strings.Builder
	head, _, _ := strings.Cut(b.String(), "\nfaults")
	s.WriteString(head)
	fmt.Fprintf(&s, "\nfaults: %d %v\n", len(faults), byKind)
	for _, i := range res.info {
		fmt.Fprintf(&s, "info: %s\n", i)
	}
	s.WriteString(summary("anomalies", res.anomalies, 3))
	s.WriteString(summary("warnings", res.warnings, 2))
	fmt.Fprintf(&s, "report: %s\nhistory: %s", report, history)
	t.Log("\n" + s.String())
	if len(res.anomalies) > 0 {
		// The report may live in a temp dir that goes with the test:
		// put its findings and history excerpts in the log as well.
		_, findings, _ := strings.Cut(b.String(), "\nanomalies:")
		t.Log("\nanomalies:" + findings[:min(len(findings), 256<<10)])
		t.Errorf("chaos: %d anomalies (seed %d); see %s", len(res.anomalies), seed, report)
	}
}
