package mail

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"go.k6.io/k6/js/modulestest"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/metrics"
)

// testVU is one k6 VU with k6/x/mail bound to the global `mail`, in VU
// context (as in the default function), with its samples kept for
// inspection.
type testVU struct {
	rt      *modulestest.Runtime
	samples chan metrics.SampleContainer
}

func newVU(t *testing.T) *testVU {
	t.Helper()
	rt := modulestest.NewRuntime(t)
	registry := rt.VU.InitEnvField.Registry
	mi := new(RootModule).NewModuleInstance(rt.VU)
	if err := rt.VU.Runtime().Set("mail", mi.Exports().Default); err != nil {
		t.Fatal(err)
	}
	v := &testVU{rt: rt, samples: make(chan metrics.SampleContainer, 1<<16)}
	rt.MoveToVUContext(&lib.State{
		Dialer:         &net.Dialer{Timeout: 10 * time.Second},
		Samples:        v.samples,
		Tags:           lib.NewVUStateTags(registry.RootTagSet().With("scenario", "test")),
		BuiltinMetrics: rt.BuiltinMetrics,
	})
	return v
}

// set binds a Go value to a global name.
func (v *testVU) set(t *testing.T, name string, val any) {
	t.Helper()
	if err := v.rt.VU.Runtime().Set(name, val); err != nil {
		t.Fatal(err)
	}
}

// run evaluates js and returns its value through JSON, so that tests see
// exactly what a script sees.
func (v *testVU) run(t *testing.T, js string) any {
	t.Helper()
	val, err := v.rt.VU.Runtime().RunString("JSON.stringify((() => {" + js + "})())")
	if err != nil {
		t.Fatalf("script failed: %v\n%s", err, js)
	}
	var out any
	if s := val.String(); s != "undefined" {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			t.Fatalf("result %q: %v", s, err)
		}
	}
	return out
}

// throws evaluates js, which must throw, and returns the message.
func (v *testVU) throws(t *testing.T, js string) string {
	t.Helper()
	_, err := v.rt.VU.Runtime().RunString(js)
	if err == nil {
		t.Fatalf("script did not throw:\n%s", js)
	}
	return err.Error()
}

// drain returns the samples pushed since the last drain.
func (v *testVU) drain() []metrics.Sample {
	var out []metrics.Sample
	for {
		select {
		case sc := <-v.samples:
			out = append(out, sc.GetSamples()...)
		default:
			return out
		}
	}
}

// count returns how many samples of metric carry tags, and their sum.
func count(samples []metrics.Sample, metric string, tags map[string]string) (n int, sum float64) {
	for _, s := range samples {
		if s.Metric.Name != metric {
			continue
		}
		ok := true
		for k, want := range tags {
			if got, _ := s.Tags.Get(k); got != want {
				ok = false
			}
		}
		if ok {
			n++
			sum += s.Value
		}
	}
	return n, sum
}
