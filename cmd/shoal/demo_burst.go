package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/examples"
	"github.com/shoalmesh/shoal/node"
)

// The bursting step of the first act: examples/bursting.yaml runs on the
// region's on-premises cluster and spills into the cloud clusters when
// scaled past the on-prem cluster's room, then leaves the cloud first when
// scaled down.

// burstName is the workload of examples/bursting.yaml.
const burstName = "bursting"

// demoOnPrem are the on-premises clusters of the demo's region (those
// StartMesh makes with provider onprem and label location=on-prem: eu-3,
// eu-6...), none when the region is too small to have one. The demo gives
// each a single simulated node, so that its room is small and is exactly
// what the scheduler estimates (no pod left Pending by how pods pack onto
// nodes).
func demoOnPrem(clusters int) []string {
	var out []string
	for i := 0; i < clusters; i++ {
		if node.MeshProvider(i) == "onprem" {
			out = append(out, node.MeshClusterName(node.MeshRegionName(0), i))
		}
	}
	return out
}

// demoOnPremArgs are the agent flags of the demo's on-premises clusters.
func demoOnPremArgs(onprem []string) map[string][]string {
	args := map[string][]string{}
	for _, c := range onprem {
		args[c] = []string{"--sim-nodes", "1"}
	}
	return args
}

var replicasLine = regexp.MustCompile(`(?m)^  replicas: \d+$`)

// withReplicas sets the Deployment's replicas in examples/bursting.yaml.
func withReplicas(doc []byte, n int) []byte {
	return replicasLine.ReplaceAll(doc, []byte(fmt.Sprintf("  replicas: %d", n)))
}

func (d *demo) burstStep(ctx context.Context, onprem []string) error {
	doc, err := examples.Bursting()
	if err != nil {
		return err
	}
	per, err := perReplica(doc)
	if err != nil {
		return err
	}
	names := strings.Join(onprem, ", ")
	started := time.Now()
	d.step("Bursting: on premises (%s) first, the cloud for what does not fit", names)
	d.say("  examples/bursting.yaml: Deployment bursting, 1 cpu per replica; its policy's clusterAffinities")
	d.say("  term \"on-prem\" (label location=on-prem: %s, one node each) has overflowAffinities", names)
	d.say("  \"cloud\" (provider aws or gcp), Aggregated: Karmada v1.18's tiered bursting.")
	if _, err := d.client.Apply(ctx, doc); err != nil {
		return err
	}
	if err := d.waitBurst(ctx, 2, onprem, false); err != nil {
		return err
	}
	// The room the scheduler sees is what the clusters last reported:
	// wait until those reports count the replicas just started.
	room, err := d.waitReported(ctx, onprem, per)
	if err != nil {
		return err
	}
	up, down := 2+int(room)+3, 2+int(room)
	d.say("  2 replicas run on premises, with room for %d more. Scaling to %d:", room, up)
	if _, err := d.client.Apply(ctx, withReplicas(doc, up)); err != nil {
		return err
	}
	if err := d.waitBurst(ctx, int32(up), onprem, true); err != nil {
		return err
	}
	d.showBurst(ctx, onprem)
	d.say("  on premises filled up to its room, the other 3 spilled into the cloud tier (Aggregated:")
	d.say("  onto as few cloud clusters as can hold them, the roomiest first). Scaling back to %d:", down)
	if _, err := d.client.Apply(ctx, withReplicas(doc, down)); err != nil {
		return err
	}
	if err := d.waitBurst(ctx, int32(down), onprem, false); err != nil {
		return err
	}
	d.showBurst(ctx, onprem)
	d.say("  the cloud share went first; on premises kept all it ran. Bursting took %s.", time.Since(started).Round(10*time.Millisecond))
	return nil
}

// perReplica is what one replica of the example's Deployment requests.
func perReplica(doc []byte) (api.Resources, error) {
	docs, err := api.DecodeDocuments(doc)
	if err != nil {
		return api.Resources{}, err
	}
	for _, dc := range docs {
		if dc.Key.Kind == "Deployment" {
			t, err := api.ParseTemplate(dc.Manifest)
			if err != nil {
				return api.Resources{}, err
			}
			return t.PerReplica, nil
		}
	}
	return api.Resources{}, fmt.Errorf("examples/bursting.yaml has no Deployment")
}

// roomFor is how many replicas of per fit in what the cluster reports
// free (the scheduler's estimate).
func roomFor(c api.ClusterView, per api.Resources) int64 {
	n := c.Capacity.Available.Pods / max(per.Pods, 1)
	if per.CPUMilli > 0 {
		n = min(n, c.Capacity.Available.CPUMilli/per.CPUMilli)
	}
	if per.MemoryBytes > 0 {
		n = min(n, c.Capacity.Available.MemoryBytes/per.MemoryBytes)
	}
	return max(n, 0)
}

// waitBurst waits until bursting has its replicas Ready, on every
// on-premises cluster and also on cloud ones (spilled) or only there.
func (d *demo) waitBurst(ctx context.Context, replicas int32, onprem []string, spilled bool) error {
	what := fmt.Sprintf("bursting at %d replicas Ready", replicas)
	return d.waitFor(ctx, what, func(ws []api.WorkloadView) bool {
		w, ok := findWorkload(ws, burstName)
		if !ok || w.DesiredReplicas != replicas || !api.WorkloadsReady([]api.WorkloadView{w}, "") {
			return false
		}
		elsewhere := false
		for _, p := range w.Placements {
			elsewhere = elsewhere || !slices.Contains(onprem, p.Cluster)
		}
		for _, c := range onprem {
			if !api.RunsOn([]api.WorkloadView{w}, c) {
				return false
			}
		}
		return elsewhere == spilled
	})
}

// waitReported waits until the region's record of each cluster counts
// every replica bound to it (its pods in use are the replicas placed
// there), and returns how many more replicas of per they have room for.
func (d *demo) waitReported(ctx context.Context, clusters []string, per api.Resources) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ws, err := d.client.Workloads(ctx)
		cs, cerr := d.client.Clusters(ctx)
		if err == nil && cerr == nil {
			placed := map[string]int64{}
			for _, w := range ws {
				for _, p := range w.Placements {
					if !w.WithoutReplicas {
						placed[p.Cluster] += int64(p.Replicas)
					}
				}
			}
			var room int64
			current := 0
			for _, c := range cs {
				if slices.Contains(clusters, c.Name) && c.Capacity.Allocatable.Pods-c.Capacity.Available.Pods == placed[c.Name] {
					current++
					room += roomFor(c, per)
				}
			}
			if current == len(clusters) {
				return room, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for %s to report what they run: %w", strings.Join(clusters, ", "), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func findWorkload(ws []api.WorkloadView, name string) (api.WorkloadView, bool) {
	for _, w := range ws {
		if w.Kind == "Deployment" && w.Name == name {
			return w, true
		}
	}
	return api.WorkloadView{}, false
}

// showBurst prints bursting's placement, each cluster with its tier, and
// the scheduler's own account.
func (d *demo) showBurst(ctx context.Context, onprem []string) {
	ws, err := d.client.Workloads(ctx)
	if err != nil {
		return
	}
	w, ok := findWorkload(ws, burstName)
	if !ok {
		return
	}
	ps := slices.Clone(w.Placements)
	slices.SortStableFunc(ps, func(a, b api.PlacementView) int {
		return boolRank(slices.Contains(onprem, b.Cluster)) - boolRank(slices.Contains(onprem, a.Cluster))
	})
	var parts []string
	for _, p := range ps {
		tier := "cloud"
		if slices.Contains(onprem, p.Cluster) {
			tier = "on-prem"
		}
		parts = append(parts, fmt.Sprintf("%s (%s) %d", p.Cluster, tier, p.Replicas))
	}
	d.say("    %s", strings.Join(parts, ", "))
	d.say("    scheduler: %s", w.Reason)
}
