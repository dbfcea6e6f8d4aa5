// Command report turns the k6 runs of scripts/loadtest-compare.sh into a
// markdown section of ratios (mailstore / Dovecot) and PNG charts of
// throughput and latency percentiles.
//
// The input directory holds, for each scenario and server, the run's data
// points (`k6 run --out json=<server>-<scenario>.json.gz`) and a small
// `<server>-<scenario>.run` file of "key=value" lines (exit=k6's exit
// status). Rates are per second of the run as k6 timed it: from its first
// data point to its last. k6's end-of-test summary holds only the
// sub-metrics named in thresholds, so percentiles per command are computed
// here from the points.
//
//	report -in DIR -img docs/img -link img -out section.md [-servers mailstore,dovecot]
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	f := flag.NewFlagSet("report", flag.ContinueOnError)
	in := f.String("in", "", "directory of <server>-<scenario>.json.gz and .run files")
	img := f.String("img", "", "directory the PNG charts are written to (none when empty)")
	link := f.String("link", "img", "path of the charts as the markdown links them")
	out := f.String("out", "", "markdown file to write (default standard output)")
	servers := f.String("servers", "mailstore,dovecot", "the two servers, the first divided by the second")
	if err := f.Parse(args); err != nil {
		return err
	}
	names := strings.Split(*servers, ",")
	if *in == "" || len(names) != 2 {
		return errors.New("-in DIR and two -servers are required")
	}
	scenarios, err := findScenarios(*in, names)
	if err != nil {
		return err
	}
	if len(scenarios) == 0 {
		return fmt.Errorf("no runs of both %s and %s in %s", names[0], names[1], *in)
	}
	var cmps []comparison
	for _, sc := range scenarios {
		c := comparison{Scenario: sc}
		for i, srv := range names {
			r, err := loadRun(*in, srv, sc)
			if err != nil {
				return err
			}
			c.Runs[i] = r
		}
		if *img != "" {
			if c.Charts, err = writeCharts(*img, *link, names, c); err != nil {
				return err
			}
		}
		cmps = append(cmps, c)
	}
	w := stdout
	if *out != "" {
		fh, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer fh.Close()
		w = fh
	}
	return writeMarkdown(w, names, cmps)
}

// findScenarios lists the scenarios with a run of both servers.
func findScenarios(dir string, servers []string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, servers[0]+"-*.json.gz"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		sc := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), servers[0]+"-"), ".json.gz")
		if _, err := os.Stat(filepath.Join(dir, servers[1]+"-"+sc+".json.gz")); err == nil {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return out, nil
}

// op names one measured operation: the metric's protocol and the command.
type op struct{ Proto, Command string }

func (o op) String() string { return o.Proto + " " + o.Command }

// stats are one server's figures in one scenario.
type stats struct {
	Exit       int
	Seconds    float64
	Iterations int
	Checks     [2]int // passed, total
	Errors     float64
	Durations  map[op][]float64 // milliseconds, sorted

	first, last time.Time // of the points
}

type comparison struct {
	Scenario string
	Runs     [2]*stats
	Charts   []string // markdown image links
}

// point is the part of a k6 JSON output line this reads.
type point struct {
	Type   string `json:"type"`
	Metric string `json:"metric"`
	Data   struct {
		Time  time.Time         `json:"time"`
		Value float64           `json:"value"`
		Tags  map[string]string `json:"tags"`
	} `json:"data"`
}

// protoOf maps the extension's duration metrics to a protocol name.
var protoOf = map[string]string{
	"mail_imap_command_duration":  "IMAP",
	"mail_pop3_command_duration":  "POP3",
	"mail_lmtp_delivery_duration": "LMTP",
}

func loadRun(dir, server, scenario string) (*stats, error) {
	base := filepath.Join(dir, server+"-"+scenario)
	s := &stats{Exit: -1, Durations: map[op][]float64{}}
	if err := readRunFile(base+".run", s); err != nil {
		return nil, err
	}
	fh, err := os.Open(base + ".json.gz")
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return nil, fmt.Errorf("%s.json.gz: %w", base, err)
	}
	if err := readPoints(zr, s); err != nil {
		return nil, fmt.Errorf("%s.json.gz: %w", base, err)
	}
	return s, nil
}

func readRunFile(path string, s *stats) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "exit":
			s.Exit, err = strconv.Atoi(v)
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, line, err)
		}
	}
	if s.Exit < 0 {
		return fmt.Errorf("%s: no exit=", path)
	}
	return nil
}

// readPoints adds k6's JSON output lines to s. A truncated last line (k6
// stopped by a signal) ends the input; any other bad line is an error.
func readPoints(r io.Reader, s *stats) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var p point
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			if !sc.Scan() {
				break // the last line, cut short
			}
			return err
		}
		if p.Type != "Point" {
			continue
		}
		if s.first.IsZero() || p.Data.Time.Before(s.first) {
			s.first = p.Data.Time
		}
		if p.Data.Time.After(s.last) {
			s.last = p.Data.Time
		}
		switch p.Metric {
		case "iterations":
			s.Iterations++
		case "checks":
			s.Checks[1]++
			if p.Data.Value != 0 {
				s.Checks[0]++
			}
		case "mail_errors":
			s.Errors += p.Data.Value
		default:
			proto, ok := protoOf[p.Metric]
			if !ok {
				continue
			}
			cmd := p.Data.Tags["command"]
			if cmd == "" {
				cmd = "DELIVER"
			}
			if res := p.Data.Tags["result"]; res != "" && res != "ok" {
				continue // latency of successes only; failures are counted by mail_errors
			}
			o := op{proto, cmd}
			s.Durations[o] = append(s.Durations[o], p.Data.Value)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	for _, v := range s.Durations {
		slices.Sort(v)
	}
	s.Seconds = s.last.Sub(s.first).Seconds()
	if s.Seconds <= 0 {
		return errors.New("no data points spanning any time")
	}
	return nil
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (s *stats) rate(o op) float64 { return float64(len(s.Durations[o])) / s.Seconds }

// ops lists the operations both servers measured, most frequent first.
func (c comparison) ops() []op {
	var out []op
	for o := range c.Runs[0].Durations {
		if len(c.Runs[1].Durations[o]) > 0 {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b op) int {
		na, nb := len(c.Runs[0].Durations[a]), len(c.Runs[0].Durations[b])
		if na != nb {
			return nb - na
		}
		return strings.Compare(a.String(), b.String())
	})
	return out
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	if r := a / b; r < 0.095 {
		return fmt.Sprintf("%.3f", r)
	}
	return fmt.Sprintf("%.2f", a/b)
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func passRate(c [2]int) string {
	if c[1] == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(c[0])/float64(c[1]))
}

func writeMarkdown(w io.Writer, names []string, cmps []comparison) error {
	bw := bufio.NewWriter(w)
	a, b := names[0], names[1]
	for _, c := range cmps {
		r0, r1 := c.Runs[0], c.Runs[1]
		fmt.Fprintf(bw, "#### %s\n\n", c.Scenario)
		fmt.Fprintf(bw, "| | %s | %s | %s / %s |\n|---|---:|---:|---:|\n", a, b, a, b)
		it0, it1 := float64(r0.Iterations)/r0.Seconds, float64(r1.Iterations)/r1.Seconds
		fmt.Fprintf(bw, "| iterations/s | %.1f | %.1f | %s |\n", it0, it1, ratio(it0, it1))
		fmt.Fprintf(bw, "| checks passed | %s | %s | |\n", passRate(r0.Checks), passRate(r1.Checks))
		fmt.Fprintf(bw, "| mail_errors | %.0f | %.0f | |\n", r0.Errors, r1.Errors)
		fmt.Fprintf(bw, "| k6 exit status | %d | %d | |\n\n", r0.Exit, r1.Exit)
		ops := c.ops()
		if len(ops) > 0 {
			fmt.Fprintf(bw, "| operation | %s /s | %s /s | ratio | %s p50 / p95 / p99 ms | %s p50 / p95 / p99 ms | p50 ratio | p95 ratio | p99 ratio |\n", a, b, a, b)
			bw.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, o := range ops {
				d0, d1 := r0.Durations[o], r1.Durations[o]
				p := func(d []float64) [3]float64 {
					return [3]float64{percentile(d, 50), percentile(d, 95), percentile(d, 99)}
				}
				q0, q1 := p(d0), p(d1)
				fmt.Fprintf(bw, "| %s | %.1f | %.1f | %s | %s / %s / %s | %s / %s / %s | %s | %s | %s |\n",
					o, r0.rate(o), r1.rate(o), ratio(r0.rate(o), r1.rate(o)),
					ms(q0[0]), ms(q0[1]), ms(q0[2]), ms(q1[0]), ms(q1[1]), ms(q1[2]),
					ratio(q0[0], q1[0]), ratio(q0[1], q1[1]), ratio(q0[2], q1[2]))
			}
			bw.WriteString("\n")
		}
		for _, l := range c.Charts {
			fmt.Fprintf(bw, "%s\n", l)
		}
		if len(c.Charts) > 0 {
			bw.WriteString("\n")
		}
	}
	return bw.Flush()
}
