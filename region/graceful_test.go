package region

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// reportRoom reports a Ready cluster that can still take pods more pods.
func reportRoom(name string, pods int64, autonomy time.Duration) *shoalpb.Command {
	return &shoalpb.Command{Cmd: &shoalpb.Command_ReportCluster{ReportCluster: &shoalpb.ReportCluster{Cluster: &shoalpb.ClusterRecord{
		Name: name, Region: "eu", ReportedHealth: shoalpb.Health_HEALTH_READY, AutonomyMs: autonomy.Milliseconds(),
		Capacity: &shoalpb.Capacity{Nodes: 1, Allocatable: &shoalpb.Resources{CpuMilli: 64000, MemoryBytes: 1 << 40, Pods: 110},
			Available: &shoalpb.Resources{CpuMilli: 64000, MemoryBytes: 1 << 40, Pods: pods}},
	}}}}
}

func targetMap(b *shoalpb.Binding) map[string]int32 {
	out := map[string]int32{}
	for _, t := range b.GetClusters() {
		out[t.GetName()] = t.GetReplicas()
	}
	return out
}

// Failback moves only the replicas that left the failed cluster: a
// cluster the failure never touched keeps what it ran, even when its room
// changed meanwhile (a fresh schedule would divide anew).
func TestFailbackMovesOnlyTheReplicasThatLeft(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c", "d")
	for _, c := range []string{"a", "b", "c", "d"} {
		h.command(reportRoom(c, 20, 0))
	}
	h.applyWeb(12, `{"replicaScheduling":{"replicaSchedulingType":"Divided","replicaDivisionPreference":"Weighted",`+
		`"weightPreference":{"dynamicWeight":"AvailableReplicas"}}}`)
	h.settle()
	before := targetMap(h.binding(webKey))
	for c, n := range before {
		h.report(c, webKey, n, n)
	}

	// c fails; its replicas go where there is room: a and b, which have
	// more of it than d.
	h.command(reportRoom("d", 0, 0))
	h.members.set("c", false)
	h.advance(time.Second)
	h.settle()
	during := targetMap(h.binding(webKey))
	if during["c"] != 0 || during["d"] != before["d"] {
		t.Fatalf("failover: %v (before %v)", during, before)
	}
	for c, n := range during {
		h.report(c, webKey, n, n)
	}
	h.settle()

	// d has less room when c returns than when web was first placed: a
	// fresh division would take replicas off d; failback gives back
	// exactly what was there before.
	h.command(reportRoom("d", 4, 0))
	h.members.set("c", true)
	h.command(reportRoom("c", 20, 0))
	h.advance(time.Second)
	h.settle()
	h.advance(11 * time.Second)
	h.settle()
	after := targetMap(h.binding(webKey))
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("after failback %v, before the failure %v", after, before)
	}
}

// An unreachable edge cluster is not emptied within its autonomy period;
// after it, its workloads move as any cluster's do.
func TestEdgeClusterKeepsItsWorkloadsForItsAutonomyPeriod(t *testing.T) {
	h := newLeaderHarness(t, "a", "b")
	h.command(reportRoom("a", 20, 0))
	h.command(reportRoom("b", 20, 10*time.Minute)) // b is an edge site
	h.applyWeb(4, divided)
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=2, b=2" {
		t.Fatalf("initial placement %q", got)
	}
	h.members.set("b", false)
	h.advance(time.Second)
	h.settle()
	for _, d := range []time.Duration{time.Minute, 8 * time.Minute} {
		h.advance(d)
		h.settle()
		if b := h.binding(webKey); targets(b) != "a=2, b=2" || len(b.GetEvictions()) != 0 {
			t.Fatalf("an edge cluster within its autonomy period lost work: %q, evictions %v", targets(b), b.GetEvictions())
		}
	}
	h.advance(2 * time.Minute) // past the 10 minutes
	h.settle()
	if b := h.binding(webKey); targets(b) != "a=4" || evictionString(b.GetEvictions()) != "b=2" {
		t.Fatalf("after the autonomy period: %q, evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
}

// A policy's own toleration of the unreachable taint wins over a
// cluster's autonomy period.
func TestPolicyTolerationOverridesAutonomy(t *testing.T) {
	h := newLeaderHarness(t, "a", "b")
	h.command(reportRoom("a", 20, 0))
	h.command(reportRoom("b", 20, 10*time.Minute))
	h.applyWeb(4, `{"replicaScheduling":{"replicaSchedulingType":"Divided"},"clusterTolerations":[`+
		`{"key":"`+api.TaintClusterUnreachable+`","operator":"Exists","effect":"NoExecute","tolerationSeconds":30}]}`)
	h.settle()
	h.members.set("b", false)
	h.advance(time.Second)
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=2, b=2" {
		t.Fatalf("moved before the policy's 30 s: %q", got)
	}
	h.advance(31 * time.Second)
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=4" {
		t.Fatalf("after the policy's 30 s: %q", got)
	}
}

// Old replicas are never removed before their replacements are Ready,
// however long that takes.
func TestEvictionWaitsForReplacementsForever(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c")
	h.applyWeb(6, divided)
	h.settle()
	for _, c := range []string{"a", "b", "c"} {
		h.report(c, webKey, 2, 2)
	}
	h.members.set("c", false)
	h.advance(time.Second)
	h.settle()
	h.members.set("c", true)
	h.advance(time.Second)
	h.settle()
	h.advance(11 * time.Second)
	h.settle()
	// Failback: a and b keep their extra replicas until c's are Ready,
	// which they never become.
	h.report("c", webKey, 2, 0)
	for _, d := range []time.Duration{time.Hour, 24 * time.Hour} {
		h.advance(d)
		h.settle()
		if got := evictionString(h.binding(webKey).GetEvictions()); got != "a=3, b=3" {
			t.Fatalf("after %v without c Ready: evictions %q", d, got)
		}
	}
}

// A cluster that goes NotReady may stop its replicas: what it reported
// before no longer counts, and its record says so, so that its peer
// reports again.
func TestNotReadyForgetsWhatTheClusterReported(t *testing.T) {
	h := newLeaderHarness(t, "a")
	h.applyWeb(2, divided)
	h.settle()
	h.report("a", webKey, 2, 2)
	var epoch uint64
	h.fsm.Read(func(s *State) { epoch = s.Cluster("a").GetStatusEpoch() })
	h.command(reportCluster("a", shoalpb.Health_HEALTH_NOT_READY))
	var st *shoalpb.WorkStatus
	var rec *shoalpb.ClusterRecord
	h.fsm.Read(func(s *State) { st, rec = s.Status(webKey, "a"), s.Cluster("a") })
	if st.GetReadyReplicas() != 0 || st.GetHealth() != "Unknown" || rec.GetStatusEpoch() != epoch+1 {
		t.Fatalf("after NotReady: status %v, epoch %d (was %d)", st, rec.GetStatusEpoch(), epoch)
	}
}

// A region whose share of the global split shrinks keeps the replicas
// that leave for the failback delay even once the replacements are Ready:
// a split that changes back within moments (a late summary, a cluster
// failing over in another region) then finds them still running instead
// of deleting and creating them again. The chaos partition-and-heal run
// saw web re-created on us-1 within one 300 ms sample.
func TestRegionFailbackEvictionOutlivesAShortFlipOfTheSplit(t *testing.T) {
	l := &Leader{cfg: LeaderConfig{FailbackDelay: 3 * time.Second}}
	now := time.Now()
	b := &shoalpb.Binding{
		Clusters:       []*shoalpb.TargetCluster{{Name: "eu-west/eu-2", Replicas: 2}},
		FailedOverFrom: []string{"eu-west/eu-3"},
		Evictions: []*shoalpb.Eviction{
			{Cluster: "us-east/us-1", Replicas: 1, Reason: reasonRegionFailback, CreatedUnixMs: now.Add(-time.Second).UnixMilli()},
			{Cluster: "us-east/us-2", Replicas: 1, Reason: reasonRegionFailback, CreatedUnixMs: now.Add(-4 * time.Second).UnixMilli()},
			{Cluster: "eu-west/eu-3", Replicas: 1, Reason: reasonFailover, CreatedUnixMs: now.Add(-time.Minute).UnixMilli()},
			{Cluster: "eu-west/eu-1", Replicas: 1, Reason: reasonFailback, CreatedUnixMs: now.Add(-time.Second).UnixMilli()},
		},
	}
	got := evictionString(l.keptEvictions(now, b))
	if want := "eu-west/eu-3=1, us-east/us-1=1"; got != want {
		t.Fatalf("kept %q; want the held failover and the region failback younger than the delay: %q", got, want)
	}
	if want := now.Add(2 * time.Second).Truncate(time.Millisecond); !l.nextDue.Equal(want) {
		t.Errorf("next pass due %v; want %v, when the young eviction may go", l.nextDue, want)
	}
}
