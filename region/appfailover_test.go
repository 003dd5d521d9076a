package region

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// appPolicy is web's policy with application failover (toleration 60 s)
// and the given purge part, e.g. `"purgeMode":"Directly"`.
func appPolicy(placement, purge string) string {
	return `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"web","namespace":"default"},` +
		`"spec":{"propagateDeps":true,"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}],"placement":` + placement +
		`,"failover":{"application":{"decisionConditions":{"tolerationSeconds":60},` + purge +
		`,"statePreservation":{"rules":[{"aliasLabelName":"example.com/job-id","jsonPath":"{ .jobId }"}]}}}}}`
}

const aggregatedABC = `{"clusterAffinity":{"clusterNames":["a","b","c"]},"replicaScheduling":{"replicaSchedulingType":"Divided","replicaDivisionPreference":"Aggregated"}}`

// reportHealth reports web's copy on cluster with a health and the state
// its peer read (nil: none yet).
func (h *leaderHarness) reportHealth(cluster string, k api.ObjectKey, replicas, ready int32, health string, preserved map[string]string) {
	var gen int64
	h.fsm.Read(func(s *State) { gen = s.Object(k).GetGeneration() })
	h.command(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: cluster,
		Statuses: []*shoalpb.WorkStatus{{Workload: k.Proto(), AppliedGeneration: gen, Replicas: replicas, ReadyReplicas: ready,
			Health: health, Reason: "test says " + health, Preserved: preserved}}}}})
}

func (h *leaderHarness) status(k api.ObjectKey, cluster string) *shoalpb.WorkStatus {
	var st *shoalpb.WorkStatus
	h.fsm.Read(func(s *State) { st = s.Status(k, cluster) })
	return st
}

func appFailed(b *shoalpb.Binding) string {
	var out []string
	for _, f := range b.GetAppFailures() {
		out = append(out, f.GetCluster())
	}
	return strings.Join(out, ",")
}

// The state machine keeps since when a copy has been Unhealthy, across
// reports, and forgets it once the copy is anything else.
func TestFSMKeepsSinceWhenACopyIsUnhealthy(t *testing.T) {
	h := newLeaderHarness(t, "a")
	h.applyWeb(1, divided)
	h.settle()
	start := h.now
	h.reportHealth("a", webKey, 1, 0, healthUnhealthy, nil)
	h.advance(20 * time.Second)
	h.reportHealth("a", webKey, 1, 0, healthUnhealthy, nil)
	if got := h.status(webKey, "a").GetUnhealthySinceUnixMs(); got != start.UnixMilli() {
		t.Fatalf("unhealthy since %d, want %d (the first report)", got, start.UnixMilli())
	}
	h.reportHealth("a", webKey, 1, 1, healthHealthy, nil)
	if got := h.status(webKey, "a").GetUnhealthySinceUnixMs(); got != 0 {
		t.Fatalf("healthy copy still unhealthy since %d", got)
	}
}

// An application Unhealthy on one cluster for the toleration moves off
// it, with the state its policy preserves as a label for the new copy;
// the old copy stays until the new one is Ready (Gracefully); the cluster
// stays in use for other workloads; the application does not come back to
// it until the template changes or the cluster recovers from a failure.
func TestLeaderApplicationFailoverMovesOnlyTheUnhealthyCopy(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c")
	h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, appPolicy(aggregatedABC, `"purgeMode":"Gracefully","gracePeriodSeconds":600`))))
	h.settle()
	b := h.binding(webKey)
	if targets(b) != "a=2" || len(b.GetPreserveRules()) != 1 {
		t.Fatalf("placed on %q with preserve rules %v, want a=2 and the policy's rule", targets(b), b.GetPreserveRules())
	}
	h.reportHealth("a", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "job-17"})
	h.advance(59 * time.Second)
	h.settle()
	if b := h.binding(webKey); targets(b) != "a=2" || len(b.GetAppFailures()) != 0 {
		t.Fatalf("within the toleration: %q, failed over from %q", targets(b), appFailed(b))
	}
	h.advance(2 * time.Second)
	h.settle()
	b = h.binding(webKey)
	if targets(b) != "b=2" || appFailed(b) != "a" || evictionString(b.GetEvictions()) != "a=2" {
		t.Fatalf("after the toleration: %q, failed over from %q, evictions %q; want b=2 from a, a kept", targets(b), appFailed(b), evictionString(b.GetEvictions()))
	}
	if got := InjectedLabels(b, "b"); !maps.Equal(got, map[string]string{"example.com/job-id": "job-17"}) {
		t.Errorf("labels for the new copy on b: %v", got)
	}
	if got := InjectedLabels(b, "a"); len(got) != 0 {
		t.Errorf("the old copy gets labels %v", got)
	}
	if events(&meshPeer{fsm: h.fsm}, webKey, "ApplicationFailover") != 1 {
		t.Error("no ApplicationFailover event")
	}

	// The cluster itself stays in use.
	other := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "on-a"}
	h.command(applyObjects(obj(other, cm("on-a")), obj(ownPPKey,
		`{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"shared","namespace":"default"},`+
			`"spec":{"resourceSelectors":[{"apiVersion":"v1","kind":"ConfigMap","name":"on-a"}],"placement":{"clusterAffinity":{"clusterNames":["a"]}}}}`)))
	h.settle()
	if got := targets(h.binding(other)); got != "a=0" {
		t.Fatalf("another workload on a: %q", got)
	}

	// Ready on b: the old copy goes; a stays barred.
	h.reportHealth("b", webKey, 2, 2, healthHealthy, map[string]string{"example.com/job-id": "job-17"})
	h.settle()
	if b := h.binding(webKey); targets(b) != "b=2" || len(b.GetEvictions()) != 0 || appFailed(b) != "a" {
		t.Fatalf("replacement Ready: %q, evictions %q, failed over from %q", targets(b), evictionString(b.GetEvictions()), appFailed(b))
	}
	// b goes unhealthy too: it moves to c, never back to a.
	h.reportHealth("b", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "job-18"})
	h.advance(61 * time.Second)
	h.settle()
	b = h.binding(webKey)
	if targets(b) != "c=2" || appFailed(b) != "a,b" {
		t.Fatalf("second failover: %q, failed over from %q; want c=2 from a and b", targets(b), appFailed(b))
	}
	if got := InjectedLabels(b, "c")["example.com/job-id"]; got != "job-18" {
		t.Errorf("c gets job id %q, want the last failed copy's", got)
	}

	// a recovers from a failure (NotReady, then Ready): it may run web again.
	h.command(reportCluster("a", shoalpb.Health_HEALTH_NOT_READY))
	h.settle()
	h.advance(time.Second)
	h.command(reportCluster("a", shoalpb.Health_HEALTH_READY))
	h.settle()
	if got := appFailed(h.binding(webKey)); got != "b" {
		t.Fatalf("after a recovered, barred: %q, want b only", got)
	}
	// A new generation lifts every bar.
	h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 3))))
	h.settle()
	if got := appFailed(h.binding(webKey)); got != "" {
		t.Fatalf("after a new generation, barred: %q", got)
	}
}

// With no other cluster to take the replicas, the unhealthy copy stays
// and the binding says why; Directly removes the old copy at once; Never
// keeps it while the cluster is barred; a failover waits while the state
// to preserve is not reported.
func TestLeaderApplicationFailoverPurgeModesAndLimits(t *testing.T) {
	t.Run("nowhere else", func(t *testing.T) {
		h := newLeaderHarness(t, "a")
		h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, appPolicy(aggregatedABC, `"purgeMode":"Directly"`))))
		h.settle()
		h.reportHealth("a", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "j"})
		h.advance(2 * time.Minute)
		h.settle()
		b := h.binding(webKey)
		if targets(b) != "a=2" || appFailed(b) != "" || !strings.Contains(b.GetAppFailoverNote(), "no other cluster can take its replicas") {
			t.Fatalf("single cluster: %q, failed over from %q, note %q", targets(b), appFailed(b), b.GetAppFailoverNote())
		}
	})
	t.Run("Directly", func(t *testing.T) {
		h := newLeaderHarness(t, "a", "b")
		h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, appPolicy(aggregatedABC, `"purgeMode":"Directly"`))))
		h.settle()
		h.reportHealth("a", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "j"})
		h.advance(61 * time.Second)
		h.settle()
		if b := h.binding(webKey); targets(b) != "b=2" || len(b.GetEvictions()) != 0 {
			t.Fatalf("Directly: %q, evictions %q", targets(b), evictionString(b.GetEvictions()))
		}
	})
	t.Run("Never", func(t *testing.T) {
		h := newLeaderHarness(t, "a", "b")
		h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, appPolicy(aggregatedABC, `"purgeMode":"Never"`))))
		h.settle()
		h.reportHealth("a", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "j"})
		h.advance(61 * time.Second)
		h.settle()
		h.reportHealth("b", webKey, 2, 2, healthHealthy, nil)
		h.advance(time.Hour)
		h.settle()
		if b := h.binding(webKey); targets(b) != "b=2" || evictionString(b.GetEvictions()) != "a=2" {
			t.Fatalf("Never, replacement Ready an hour later: %q, evictions %q; want a kept", targets(b), evictionString(b.GetEvictions()))
		}
	})
	t.Run("Gracefully runs out", func(t *testing.T) {
		h := newLeaderHarness(t, "a", "b")
		h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, appPolicy(aggregatedABC, `"purgeMode":"Gracefully","gracePeriodSeconds":120`))))
		h.settle()
		h.reportHealth("a", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "j"})
		h.advance(61 * time.Second)
		h.settle()
		if b := h.binding(webKey); evictionString(b.GetEvictions()) != "a=2" {
			t.Fatalf("graceful failover keeps nothing: %q", evictionString(b.GetEvictions()))
		}
		h.advance(119 * time.Second)
		h.settle()
		if b := h.binding(webKey); evictionString(b.GetEvictions()) != "a=2" {
			t.Fatalf("old copy gone before the grace period: %q", evictionString(b.GetEvictions()))
		}
		h.advance(2 * time.Second)
		h.settle()
		if b := h.binding(webKey); len(b.GetEvictions()) != 0 {
			t.Fatalf("old copy kept past the grace period with no Ready replacement: %q", evictionString(b.GetEvictions()))
		}
	})
	t.Run("state not reported", func(t *testing.T) {
		h := newLeaderHarness(t, "a", "b")
		h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, appPolicy(aggregatedABC, `"purgeMode":"Directly"`))))
		h.settle()
		h.reportHealth("a", webKey, 2, 0, healthUnhealthy, nil)
		h.advance(5 * time.Minute)
		h.settle()
		b := h.binding(webKey)
		if targets(b) != "a=2" || !strings.Contains(b.GetAppFailoverNote(), "example.com/job-id") {
			t.Fatalf("state missing: %q, note %q; want it to wait and say why", targets(b), b.GetAppFailoverNote())
		}
		h.reportHealth("a", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "j"})
		h.settle()
		if b := h.binding(webKey); targets(b) != "b=2" || b.GetAppFailoverNote() != "" {
			t.Fatalf("state reported: %q, note %q", targets(b), b.GetAppFailoverNote())
		}
	})
	t.Run("rebalance lifts the bar", func(t *testing.T) {
		h := newLeaderHarness(t, "a", "b")
		h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, appPolicy(aggregatedABC, `"purgeMode":"Directly"`))))
		h.settle()
		h.reportHealth("a", webKey, 2, 0, healthUnhealthy, map[string]string{"example.com/job-id": "j"})
		h.advance(61 * time.Second)
		h.settle()
		// Purged at once: a's peer deletes its copy.
		h.command(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: "a", Removed: []*shoalpb.ObjectKey{webKey.Proto()}}}})
		h.settle()
		if got := appFailed(h.binding(webKey)); got != "a" {
			t.Fatalf("before rebalance, barred: %q", got)
		}
		h.command(rebalanceCmd(webKey))
		h.settle()
		if got := appFailed(h.binding(webKey)); got != "" {
			t.Fatalf("after rebalance, barred: %q", got)
		}
	})
}

// In the global split, the region of the cluster an application fails on
// decides the failover; every region then keeps the workload off that
// cluster (it learns the failure from the region's summary), and the new
// copy in another region gets the preserved state as a label.
func TestMeshApplicationFailoverMovesAcrossRegions(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	c := addSplitRegion(t, n, "c", "wan-a")
	rs := []*splitRegion{a, b, c}
	all := `{"replicaScheduling":{"replicaSchedulingType":"Divided","replicaDivisionPreference":"Aggregated"}}`
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey,
		strings.Replace(appPolicy(all, `"purgeMode":"Directly"`), `"tolerationSeconds":60`, `"tolerationSeconds":1`, 1))))
	var from *splitRegion
	eventually(t, "web on one region", func() bool {
		from = nil
		for _, r := range rs {
			if r.target(webKey) == 2 {
				from = r
			}
		}
		return from != nil && strings.Count(shares(rs, false), "=0") == 2
	})
	from.fail(map[string]string{"example.com/job-id": "job-9"})
	var to *splitRegion
	eventually(t, "web moved to another region", func() bool {
		to = nil
		for _, r := range rs {
			if r != from && r.target(webKey) == 2 {
				to = r
			}
		}
		return to != nil && from.running(webKey) == 0
	}, func() string { return shares(rs, true) })
	var labels map[string]string
	to.fsm.Read(func(s *State) { labels = InjectedLabels(s.Binding(webKey), to.cluster) })
	if labels["example.com/job-id"] != "job-9" {
		t.Fatalf("the new copy in %s gets labels %v", to.region, labels)
	}
	// Every region keeps it off the failed cluster, for good.
	failed := QualifiedName(from.region, from.cluster)
	eventually(t, "every region knows the failure", func() bool {
		for _, r := range rs {
			known := false
			r.fsm.Read(func(s *State) {
				for _, f := range s.Binding(webKey).GetAppFailures() {
					known = known || f.GetCluster() == failed || (r == from && f.GetCluster() == from.cluster)
				}
			})
			if !known {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond)
	if got := from.target(webKey); got != 0 {
		t.Fatalf("back on the failed cluster: %d", got)
	}
}
