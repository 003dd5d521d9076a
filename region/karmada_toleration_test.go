package region

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// Compatibility with Karmada's handling of cluster taints, read at commit
// f8fdd02d (after v1.19.0-rc.0). Karmada splits it in two: the scheduler's
// TaintToleration filter keeps new placements off clusters with
// untolerated NoSchedule or NoExecute taints and skips clusters the binding
// already has; its taint manager evicts a binding from a cluster once the
// cluster's NoExecute taints are no longer tolerated
// (pkg/controllers/cluster/taint_manager.go). Shoal's scheduler does both
// (region/scheduler.go, filterTaintsAndSpread): a cluster of the previous
// placement needs only its NoExecute taints tolerated, at the time given.
// So a taint manager case is run here as a schedule of a workload already
// on the tainted cluster: it stays while Karmada would not evict it. The
// inputs and verdicts are those of the tests named; the cases naming code
// instead of a test are what that code does where no Karmada test looks.

// karmadaNow is the current time of Karmada's taint manager tests.
var karmadaNow = time.Date(2025, 9, 23, 12, 0, 0, 0, time.UTC)

const neverEvicted = time.Duration(-1)

func TestKarmadaTaintTolerationFilter(t *testing.T) {
	kv1NoSchedule := api.Taint{Key: "key1", Value: "value1", Effect: api.TaintEffectNoSchedule}
	noExecute := api.Taint{Key: "key1", Value: "value1", Effect: api.TaintEffectNoExecute, Added: testNow.Add(-time.Hour)}
	tests := []struct {
		name     string
		taints   []api.Taint
		tols     []api.Toleration
		inTarget bool
		admitted bool   // Karmada's verdict, and Shoal's
		reason   string // in Karmada's message and Shoal's diagnosis
		// differs, when set, says why Shoal's verdict is the opposite.
		differs string
	}{
		// pkg/scheduler/framework/plugins/tainttoleration/taint_toleration_test.go,
		// TestTaintToleration_Filter.
		{name: "taint_toleration_test.go: cluster already in target clusters", inTarget: true, admitted: true},
		{name: "taint_toleration_test.go: no taints", admitted: true},
		{name: "taint_toleration_test.go: tolerated taint", taints: []api.Taint{kv1NoSchedule},
			tols:     []api.Toleration{{Key: "key1", Operator: "Equal", Value: "value1", Effect: api.TaintEffectNoSchedule}},
			admitted: true},
		{name: "taint_toleration_test.go: untolerated taint", taints: []api.Taint{kv1NoSchedule},
			reason: "key1=value1:NoSchedule"},
		// taint_toleration.go, Filter: a cluster of the binding is not
		// filtered, whatever its taints ...
		{name: "taint_toleration.go: cluster in target with an untolerated NoSchedule taint", inTarget: true,
			taints: []api.Taint{kv1NoSchedule}, admitted: true},
		// ... and the taint manager evicts it at once when a NoExecute one
		// is untolerated (taint_manager.go, needEvictionWithCurrentTime).
		{name: "taint_toleration.go and taint_manager.go: cluster in target with an untolerated NoExecute taint", inTarget: true,
			taints: []api.Taint{noExecute}, reason: "key1=value1:NoExecute"},
		// The filter ignores tolerationSeconds (FindMatchingUntoleratedTaint).
		{name: "taint_toleration.go: NoExecute tolerated for seconds that have run out", taints: []api.Taint{noExecute},
			tols:     []api.Toleration{{Key: "key1", Operator: "Exists", TolerationSeconds: secs(60)}},
			admitted: true, reason: "key1=value1:NoExecute",
			differs: "Karmada's filter ignores tolerationSeconds and places the workload on the cluster, " +
				"where its taint manager evicts it again at once (needEviction: the toleration time is up); " +
				"Shoal leaves out a cluster it would evict at once"},
		{name: "taint_toleration.go: NoExecute tolerated for seconds that have not run out", taints: []api.Taint{noExecute},
			tols:     []api.Toleration{{Key: "key1", Operator: "Exists", TolerationSeconds: secs(7200)}},
			admitted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev []Target
			if tt.inTarget {
				prev = tg("cluster1:1")
			}
			w := work(1, api.Placement{ClusterTolerations: tt.tols}, prev...)
			r := Schedule(w, []ClusterInfo{tainted(cl("cluster1", ""), tt.taints...), cl("other", "")}, testNow)
			admitted := slices.ContainsFunc(r.Targets, func(tg Target) bool { return tg.Cluster == "cluster1" })
			want := tt.admitted != (tt.differs != "")
			if admitted != want {
				t.Fatalf("admitted = %v, want %v (Karmada %v%s); %+v", admitted, want, tt.admitted, tt.differs, r)
			}
			if !admitted && tt.reason != "" {
				i := slices.IndexFunc(r.Filtered, func(d Diagnosis) bool { return d.Cluster == "cluster1" })
				if i < 0 || !strings.Contains(r.Filtered[i].Reason, tt.reason) {
					t.Fatalf("filtered %v, want cluster1 for %s", r.Filtered, tt.reason)
				}
			}
		})
	}
}

// checkEviction schedules a workload already on test-cluster (Duplicated,
// beside an untainted cluster) and checks that it stays there for want
// from now on (neverEvicted: still a century later; 0: it leaves at
// once), as Karmada's taint manager decides.
func checkEviction(t *testing.T, tols []api.Toleration, taints []api.Taint, now time.Time, want time.Duration) {
	t.Helper()
	w := work(1, api.Placement{ClusterTolerations: tols}, tg("test-cluster:1")...)
	clusters := []ClusterInfo{tainted(cl("test-cluster", ""), taints...), cl("other", "")}
	stays := func(at time.Time) bool {
		r := Schedule(w, clusters, at)
		return slices.ContainsFunc(r.Targets, func(tg Target) bool { return tg.Cluster == "test-cluster" })
	}
	switch {
	case want == neverEvicted:
		if !stays(now) || !stays(now.AddDate(100, 0, 0)) {
			t.Fatalf("evicted: stays now %v, a century later %v; want never evicted", stays(now), stays(now.AddDate(100, 0, 0)))
		}
	case want == 0:
		if stays(now) {
			t.Fatal("stays, want evicted at once")
		}
	default:
		if !stays(now.Add(want-time.Nanosecond)) || stays(now.Add(want)) {
			t.Fatalf("want evicted after %v: stays just before %v, at %v", want, stays(now.Add(want-time.Nanosecond)), stays(now.Add(want)))
		}
	}
}

func TestKarmadaTaintManagerEviction(t *testing.T) {
	ago := func(d time.Duration) time.Time { return karmadaNow.Add(-d) }
	noExec := func(key string, added time.Time) api.Taint {
		return api.Taint{Key: key, Effect: api.TaintEffectNoExecute, Added: added}
	}
	tol := func(key string, s *int64) api.Toleration {
		return api.Toleration{Key: key, Operator: "Exists", Effect: api.TaintEffectNoExecute, TolerationSeconds: s}
	}
	tests := []struct {
		name   string
		taints []api.Taint
		tols   []api.Toleration
		want   time.Duration // Karmada's, and Shoal's
		// differs, when set, says why Shoal evicts at once instead.
		differs string
	}{
		// pkg/controllers/cluster/taint_manager_test.go,
		// TestNoExecuteTaintManager_needEvictionWithCurrentTime. Left out:
		// "placement annotation not exist", "... is invalid JSON",
		// "placement is nil" (Shoal's placement is the workload's, never
		// an annotation to parse) and "cluster not found" (Shoal schedules
		// over the clusters it has).
		{name: "needEviction: no execute taint eviction disabled", taints: []api.Taint{noExec("test-key", time.Time{})},
			want: neverEvicted,
			differs: "Karmada's taint manager evicts only with --enable-no-execute-taint-eviction, off by default; " +
				"Shoal has no such switch and always acts on NoExecute taints (its failover taints are NoExecute)"},
		{name: "needEviction: cluster has no NoExecute taints",
			taints: []api.Taint{{Key: "test-key", Effect: api.TaintEffectNoSchedule}}, want: neverEvicted},
		{name: "needEviction: taint not tolerated - immediate eviction",
			taints: []api.Taint{noExec("test-key", ago(time.Second))}, want: 0},
		{name: "needEviction: taint tolerated with zero toleration seconds - immediate eviction",
			taints: []api.Taint{noExec("test-key", ago(time.Second))}, tols: []api.Toleration{tol("test-key", secs(0))}, want: 0},
		{name: "needEviction: taint tolerated with positive toleration seconds - wait for toleration time",
			taints: []api.Taint{noExec("test-key", ago(time.Second))}, tols: []api.Toleration{tol("test-key", secs(60))}, want: 59 * time.Second},
		{name: "needEviction: taint tolerated forever - no eviction",
			taints: []api.Taint{noExec("test-key", ago(time.Second))}, tols: []api.Toleration{tol("test-key", nil)}, want: neverEvicted},
		{name: "needEviction: multiple taints with mixed tolerations",
			taints: []api.Taint{noExec("tolerated-key", karmadaNow.Add(time.Second)), noExec("not-tolerated-key", ago(time.Second))},
			tols:   []api.Toleration{tol("tolerated-key", secs(30))}, want: 0},
		{name: "needEviction: toleration time expired - immediate eviction",
			taints: []api.Taint{noExec("test-key", ago(2*time.Second))}, tols: []api.Toleration{tol("test-key", secs(1))}, want: 0},
		// taint_manager_test.go, Test_enqueueBinding: "skip" is never
		// evicted, "immediate" at once, "delayed" later (the test checks
		// only that the delay is positive; here it is the one the inputs
		// give). Left out: "no placement annotation" and "invalid
		// placement JSON" (fail-safe paths of the annotation).
		{name: "enqueueBinding: no taints - skip", want: neverEvicted},
		{name: "enqueueBinding: no tolerations - immediate eviction",
			taints: []api.Taint{noExec("test-key", ago(time.Second))}, want: 0},
		{name: "enqueueBinding: finite tolerationSeconds unexpired - delayed eviction",
			taints: []api.Taint{noExec("test-key", ago(time.Second))}, tols: []api.Toleration{tol("test-key", secs(60))}, want: 59 * time.Second},
		{name: "enqueueBinding: infinite toleration (no tolerationSeconds) - skip",
			taints: []api.Taint{noExec("test-key", ago(time.Second))}, tols: []api.Toleration{tol("test-key", nil)}, want: neverEvicted},
		{name: "enqueueBinding: multiple taints - one not tolerated - immediate",
			taints: []api.Taint{noExec("tolerated-key", ago(time.Second)), noExec("not-tolerated-key", ago(time.Second))},
			tols:   []api.Toleration{tol("tolerated-key", nil)}, want: 0},
		{name: "enqueueBinding: multiple taints - all tolerated indefinitely - skip",
			taints: []api.Taint{noExec("key1", ago(time.Second)), noExec("key2", ago(time.Second))},
			tols:   []api.Toleration{tol("key1", nil), tol("key2", nil)}, want: neverEvicted},
		{name: "enqueueBinding: multiple taints - one tolerated with finite seconds - delayed",
			taints: []api.Taint{noExec("key1", ago(time.Second)), noExec("key2", ago(time.Second))},
			tols:   []api.Toleration{tol("key1", nil), tol("key2", secs(120))}, want: 119 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if tt.differs != "" {
				want = 0 // Shoal's, see differs
			}
			checkEviction(t, tt.tols, tt.taints, karmadaNow, want)
		})
	}
}

func TestKarmadaSetCurrentClusterTaints(t *testing.T) {
	// pkg/util/helper/taint_test.go, TestSetCurrentClusterTaints: the
	// unreachable / not-ready NoExecute taints as the Ready condition moves
	// (True: Ready and reachable; False: reachable, reported not Ready;
	// Unknown: unreachable), kept with the time they were added when they
	// stay. Shoal's counterpart is wantTaints (leader.go).
	unreachable := &shoalpb.Taint{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute, AddedUnixMs: 1000}
	notReady := &shoalpb.Taint{Key: api.TaintClusterNotReady, Effect: api.TaintEffectNoExecute, AddedUnixMs: 2000}
	const (
		condTrue    = "True"
		condFalse   = "False"
		condUnknown = "Unknown"
	)
	tests := []struct {
		name   string
		taints []*shoalpb.Taint
		cond   string
		want   []*shoalpb.Taint // AddedUnixMs 0: added now
	}{
		{"ready condition from true to false", nil, condFalse, []*shoalpb.Taint{{Key: api.TaintClusterNotReady, Effect: api.TaintEffectNoExecute}}},
		{"ready condition from true to unknown", nil, condUnknown, []*shoalpb.Taint{{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute}}},
		{"ready condition from false to unknown", []*shoalpb.Taint{notReady}, condUnknown, []*shoalpb.Taint{{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute}}},
		{"ready condition from false to true", []*shoalpb.Taint{notReady}, condTrue, nil},
		{"ready condition from unknown to true", []*shoalpb.Taint{unreachable}, condTrue, nil},
		{"ready condition from unknown to false", []*shoalpb.Taint{unreachable}, condFalse, []*shoalpb.Taint{{Key: api.TaintClusterNotReady, Effect: api.TaintEffectNoExecute}}},
		{"clusterTaintsToAdd is nil and clusterTaintsToRemove is nil", []*shoalpb.Taint{unreachable}, condUnknown, []*shoalpb.Taint{unreachable}},
	}
	for _, tt := range tests {
		t.Run("taint_test.go: "+tt.name, func(t *testing.T) {
			c := &shoalpb.ClusterRecord{Name: "member", Taints: tt.taints, ReportedHealth: shoalpb.Health_HEALTH_READY}
			if tt.cond == condFalse {
				c.ReportedHealth = shoalpb.Health_HEALTH_NOT_READY
			}
			got := wantTaints(c, tt.cond != condUnknown)
			if taintString(got) != taintString(tt.want) || len(got) != len(tt.want) {
				t.Fatalf("taints %s, want %s", taintString(got), taintString(tt.want))
			}
			for i := range got {
				if got[i].GetAddedUnixMs() != tt.want[i].GetAddedUnixMs() {
					t.Errorf("taint %s added at %d, want %d", got[i].GetKey(), got[i].GetAddedUnixMs(), tt.want[i].GetAddedUnixMs())
				}
			}
		})
	}
}
