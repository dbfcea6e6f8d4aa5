package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRun writes one server's run of a scenario as k6 would: JSON
// points, gzipped, and the .run file of the compare script.
func writeRun(t *testing.T, dir, server, scenario string, exit int, lines []string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		fmt.Fprintln(zw, l)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, server+"-"+scenario)
	if err := os.WriteFile(base+".json.gz", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".run", fmt.Appendf(nil, "exit=%d\n", exit), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pt is a data point at second sec of the run.
func pt(sec int, metric string, v float64, tags string) string {
	return fmt.Sprintf(`{"type":"Point","metric":%q,"data":{"time":"2026-11-22T10:00:%02d.5Z","value":%g,"tags":{%s}}}`, metric, sec, v, tags)
}

func TestReport(t *testing.T) {
	dir, img := t.TempDir(), t.TempDir()
	login := `"command":"LOGIN","result":"ok"`
	var ms, dc []string
	ms = append(ms, `{"type":"Metric","data":{"name":"iterations","type":"counter"},"metric":"iterations"}`)
	// 100 LOGINs each, over 10 s for mailstore and 20 s for Dovecot.
	for i := 1; i <= 100; i++ {
		ms = append(ms, pt(i/10, "mail_imap_command_duration", float64(i), login), pt(i/10, "iterations", 1, ""), pt(i/10, "checks", 1, ""))
		dc = append(dc, pt(i/5, "mail_imap_command_duration", float64(2*i), login), pt(i/5, "iterations", 1, ""))
	}
	// A failed command is not a latency sample; the error is counted.
	ms = append(ms, pt(5, "mail_imap_command_duration", 5000, `"command":"LOGIN","result":"no"`), pt(5, "mail_errors", 1, `"kind":"no"`))
	dc = append(dc, pt(0, "mail_lmtp_delivery_duration", 3, ""), pt(1, "checks", 0, ""), pt(1, "checks", 1, ""))
	dc = append(dc, `{"type":"Point","metric":"iterat`) // cut short by a stop
	writeRun(t, dir, "mailstore", "login-storm", 0, ms)
	writeRun(t, dir, "dovecot", "login-storm", 99, dc)
	writeRun(t, dir, "mailstore", "only-one", 0, ms) // no Dovecot run: skipped

	out := filepath.Join(t.TempDir(), "section.md")
	if err := run([]string{"-in", dir, "-img", img, "-link", "img", "-out", out}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"#### login-storm",
		"| iterations/s | 10.0 | 5.0 | 2.00 |",
		"| checks passed | 100.00% | 50.00% | |",
		"| mail_errors | 1 | 0 | |",
		"| k6 exit status | 0 | 99 | |",
		// 100 LOGINs in 10 s against 100 in 20 s; latencies half of Dovecot's.
		"| IMAP LOGIN | 10.0 | 5.0 | 2.00 | 50.0 / 95.0 / 99.0 | 100 / 190 / 198 | 0.50 | 0.50 | 0.50 |",
		"![login-storm throughput](img/loadtest-login-storm-throughput.png)",
		"![login-storm latency percentiles](img/loadtest-login-storm-latency.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "only-one") || strings.Contains(md, "LMTP") {
		t.Errorf("markdown has a scenario or operation only one server ran:\n%s", md)
	}
	for _, name := range []string{"loadtest-login-storm-throughput.png", "loadtest-login-storm-latency.png"} {
		f, err := os.Open(filepath.Join(img, name))
		if err != nil {
			t.Fatal(err)
		}
		im, err := png.Decode(f)
		f.Close()
		if err != nil || im.Bounds().Dx() < 100 {
			t.Errorf("%s: %v, %v", name, im.Bounds(), err)
		}
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {95, 10}, {99, 10}, {10, 1}, {0, 1}} {
		if got := percentile(v, tc.p); got != tc.want {
			t.Errorf("p%.0f = %g, want %g", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %g", got)
	}
}
