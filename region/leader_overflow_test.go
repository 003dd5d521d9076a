package region

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// burstDeployment is web with one cpu per replica.
const burstDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},` +
	`"spec":{"replicas":%d,"template":{"spec":{"containers":[{"name":"web","resources":{"requests":{"cpu":"1"}}}]}}}}`

// burstPolicy places web on the on-prem clusters first and on the aws and
// gcp clusters for what does not fit there, Aggregated.
const burstPolicy = `{"clusterAffinities":[{"affinityName":"on-prem","labelSelector":{"matchLabels":{"location":"on-prem"}},` +
	`"overflowAffinities":[{"affinityName":"cloud","fieldSelector":{"matchExpressions":[{"key":"provider","operator":"In","values":["aws","gcp"]}]}}]}],` +
	`"replicaScheduling":{"replicaSchedulingType":"Divided","replicaDivisionPreference":"Aggregated"}}`

// burstCPUs is how many cpus each cluster of the test has.
var burstCPUs = map[string]int64{"idc": 4, "aws-1": 10, "gcp-1": 6}

// reportBurst reports every cluster with what web leaves free of it, as
// the cluster's peer would once web's replicas run there.
func (h *leaderHarness) reportBurst() {
	h.t.Helper()
	running := targetMap(h.binding(webKey))
	for name, cpus := range burstCPUs {
		rec := &shoalpb.ClusterRecord{Name: name, Region: "eu", Zone: "z1", Provider: map[string]string{"idc": "onprem", "aws-1": "aws", "gcp-1": "gcp"}[name],
			ReportedHealth: shoalpb.Health_HEALTH_READY,
			Capacity: &shoalpb.Capacity{Nodes: 1,
				Allocatable: &shoalpb.Resources{CpuMilli: cpus * 1000, Pods: 110},
				Available:   &shoalpb.Resources{CpuMilli: (cpus - int64(running[name])) * 1000, Pods: 110 - int64(running[name])}}}
		if name == "idc" {
			rec.Labels = map[string]string{"location": "on-prem"}
		}
		h.command(&shoalpb.Command{Cmd: &shoalpb.Command_ReportCluster{ReportCluster: &shoalpb.ReportCluster{Cluster: rec}}})
	}
}

// scaleBurst sets web's replicas, lets the leader place them, reports the
// clusters' new room and checks that the placement then holds.
func (h *leaderHarness) scaleBurst(replicas int, want string) {
	h.t.Helper()
	h.command(applyObjects(obj(webKey, fmt.Sprintf(burstDeployment, replicas))))
	h.settle()
	b := h.binding(webKey)
	if got := targets(b); got != want || b.GetAffinityTerm() != "on-prem" || b.GetUnschedulable() {
		h.t.Fatalf("%d replicas: %q in term %q (%s), want %q", replicas, got, b.GetAffinityTerm(), b.GetReason(), want)
	}
	h.reportBurst()
	h.settle()
	if got := targets(h.binding(webKey)); got != want {
		h.t.Fatalf("%d replicas: %q once the clusters report it, want it to stay %q", replicas, got, want)
	}
}

// TestLeaderOverflowBurstsAndFailsOver drives the leader through a
// bursting workload's life: scale up into the cloud tier, scale down
// draining the cloud first, then the on-prem cluster failing and its
// replicas spilling into the cloud, and Shoal's failback once it is stable
// again.
func TestLeaderOverflowBurstsAndFailsOver(t *testing.T) {
	h := newLeaderHarness(t)
	for name := range burstCPUs {
		h.members.set(name, true)
	}
	h.reportBurst()
	h.command(applyObjects(obj(webKey, fmt.Sprintf(burstDeployment, 2)), obj(ppKey, policy(burstPolicy))))
	h.settle()
	if got := targets(h.binding(webKey)); got != "idc=2" {
		t.Fatalf("first placement %q, want idc=2", got)
	}
	h.reportBurst()

	h.scaleBurst(7, "aws-1=3, idc=4")           // on-prem full, the rest on the roomiest cloud cluster
	h.scaleBurst(15, "aws-1=7, gcp-1=4, idc=4") // the cloud tier grows, on-prem stays full
	h.scaleBurst(9, "aws-1=5, idc=4")           // the cloud shrinks first
	h.scaleBurst(4, "idc=4")                    // and is drained before on-prem loses a replica
	h.scaleBurst(3, "idc=3")
	h.scaleBurst(7, "aws-1=3, idc=4")

	// The on-prem cluster's peer dies: idc is tainted and its replicas
	// spill into the cloud tier, onto the cluster already running some
	// first; idc keeps what it ran (a held eviction).
	h.members.set("idc", false)
	h.advance(time.Second)
	h.settle()
	b := h.binding(webKey)
	if targets(b) != "aws-1=7" || evictionString(b.GetEvictions()) != "idc=4" || b.GetAffinityTerm() != "on-prem" {
		t.Fatalf("after idc failed: targets %q evictions %q term %q", targets(b), evictionString(b.GetEvictions()), b.GetAffinityTerm())
	}
	h.reportBurst()
	h.settle()
	if got := targets(h.binding(webKey)); got != "aws-1=7" {
		t.Fatalf("after idc failed, once reported: %q", got)
	}

	// idc is back: nothing moves before the failback delay (Karmada would
	// not move anything at all); then Shoal's failback restores what ran
	// before the failure.
	h.members.set("idc", true)
	h.advance(time.Second)
	h.settle()
	if got := targets(h.binding(webKey)); got != "aws-1=7" {
		t.Fatalf("moved back before the failback delay: %q", got)
	}
	h.advance(11 * time.Second)
	h.settle()
	if b := h.binding(webKey); targets(b) != "aws-1=3, idc=4" || len(b.GetFailedOverFrom()) != 0 {
		t.Fatalf("after failback: %q, failed over from %v", targets(b), b.GetFailedOverFrom())
	}
}
