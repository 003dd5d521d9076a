package deploy_test

import (
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/deploy"
)

// A copy that fails on one cluster (SetFailing) is Unhealthy with nothing
// Ready, and the Reconciler reports the state its status holds by the
// work's preserve rules; a rule whose path is not there yet, or does not
// parse, is reported as an error, not as a value.
func TestReconcilerReportsPreservedStateOfAFailingCopy(t *testing.T) {
	s, clock := newSim(t, deploy.SimConfig{Nodes: 1, NodeCPUMilli: 4000, NodeMemoryBytes: 8 * gi, NodePods: 110})
	h := newReconciler(t, clock, s, deploy.DefaultReconcilerConfig("c1"))
	h.run(t)
	w := work("job", "100m", "1Mi", 1, 2)
	w.Preserve = []deploy.PreserveRule{{Label: "example.com/job-id", JSONPath: "{ .jobStatus.id }"}}
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "without the state yet", func(st deploy.Status) bool {
		return strings.Contains(st.PreserveError, "jobStatus is not found") && st.Preserved == nil
	})
	s.SetStatusFields(w.Key, map[string]any{"jobStatus": map[string]any{"id": "job-17"}})
	s.SetFailing(w.Key, "CrashLoopBackOff")
	st := h.waitStatus(t, w.Key, "failing with its state", func(st deploy.Status) bool {
		return st.Health == deploy.HealthUnhealthy && st.Preserved["example.com/job-id"] == "job-17"
	})
	if st.ReadyReplicas != 0 || st.PreserveError != "" || !strings.Contains(st.Reason, "CrashLoopBackOff") {
		t.Fatalf("failing copy: %+v", st)
	}
	s.SetFailing(w.Key, "")
	h.waitStatus(t, w.Key, "mended", func(st deploy.Status) bool { return st.Health != deploy.HealthUnhealthy })

	w.Preserve = []deploy.PreserveRule{{Label: "x", JSONPath: "{ .unclosed"}}
	w.Generation = 2
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "a path that does not parse", func(st deploy.Status) bool {
		return strings.Contains(st.PreserveError, `x: jsonPath "{ .unclosed"`)
	})
}

func TestAddLabels(t *testing.T) {
	out, err := deploy.AddLabels([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"app":"a"}},"data":{"n":12345678901234567890}}`),
		map[string]string{"example.com/job-id": "job-17"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"apiVersion":"v1","data":{"n":12345678901234567890},"kind":"ConfigMap","metadata":{"labels":{"app":"a","example.com/job-id":"job-17"},"name":"a"}}`; string(out) != want {
		t.Fatalf("got %s\nwant %s", out, want)
	}
	for _, bad := range []map[string]string{{"bad key": "v"}, {"k": "a value with spaces"}} {
		if _, err := deploy.AddLabels([]byte(`{"metadata":{}}`), bad); err == nil {
			t.Errorf("AddLabels(%v) accepted", bad)
		}
	}
}
