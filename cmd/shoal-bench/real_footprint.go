package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const realFootprintWorkloads = 200

// realFootprintPolicy Duplicates the footprint's Deployments (1 replica)
// to the 3 members: 200 Deployments and 200 pods in each.
var realFootprintPolicy = fmt.Sprintf(`apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: rfp, namespace: %s}
spec:
  resourceSelectors:
    - apiVersion: apps/v1
      kind: Deployment
      labelSelector: {matchLabels: {footprint: real}}
  placement:
    replicaScheduling: {replicaSchedulingType: Duplicated}
`, realNamespace)

func realFootprintDeployment(i int) (string, string) {
	name := fmt.Sprintf("rfp-%03d", i)
	return name, benchDeployment(name, realNamespace, 1, "footprint: real")
}

func benchRealFootprint(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	rss := &benchFigure{
		Title: "Real clusters, peer footprint: RSS per peer process, 200 workloads, idle", Unit: "MiB",
		Target: "≤ 50 MiB (max over peers)", Check: func(s benchStats) bool { return s.Max <= 50 },
		Compare: "karmada-agent: 266 MiB",
	}
	hwm := &benchFigure{
		Title: "Real clusters, peer footprint: peak RSS per peer process (VmHWM, includes applying the 200)", Unit: "MiB",
		Target: "≤ 50 MiB (max over peers)", Check: func(s benchStats) bool { return s.Max <= 50 },
		Compare: "karmada-agent: 266 MiB",
	}
	cpu := &benchFigure{
		Title: "Real clusters, peer footprint: CPU per peer process over 30 s idle, 200 workloads", Unit: "%",
		Target: "none set", Compare: "–",
	}
	figs := []*benchFigure{rss, hwm, cpu}
	r, err := startRealRegion(ctx, b, nil)
	if err != nil {
		return figs, err
	}
	defer r.close()
	peers := r.mesh.Peers()
	var base []string
	for _, p := range peers {
		v, err := procStatusMiB(p.PID, "VmRSS")
		if err != nil {
			return figs, err
		}
		base = append(base, fmt.Sprintf("%s %.1f MiB", p.Cluster, v))
	}
	w, err := watchDeployments(ctx, r.members())
	if err != nil {
		return figs, err
	}
	defer w.close()
	c := r.mesh.clients[peers[0].Cluster]
	t0 := time.Now()
	if _, err := c.Apply(ctx, []byte(realFootprintPolicy)); err != nil {
		return figs, err
	}
	const batch = 50
	var names []string
	for i := 0; i < realFootprintWorkloads; i += batch {
		var docs []string
		for j := i; j < i+batch && j < realFootprintWorkloads; j++ {
			name, doc := realFootprintDeployment(j)
			names = append(names, name)
			docs = append(docs, doc)
		}
		if _, err := c.Apply(ctx, []byte(strings.Join(docs, "---\n"))); err != nil {
			return figs, fmt.Errorf("applying workloads %d-%d: %w", i, i+batch-1, err)
		}
	}
	applied := time.Since(t0)
	b.progress("  applied %d Deployments in %s; waiting until each is Ready in every member", realFootprintWorkloads, applied.Round(time.Millisecond))
	if _, err := w.wait(ctx, 5*time.Minute, "200 Deployments Ready in every member", func() error {
		return w.allReady(names, everywhere(1))
	}); err != nil {
		return figs, err
	}
	ready := time.Since(t0)
	w.close() // the bench's own watches play no part in the idle window
	b.progress("  all Ready %s after the first apply; idle for %s", ready.Round(100*time.Millisecond), footprintIdle)

	rows, series, err := measureIdle(ctx, peers, rss, hwm, cpu)
	if err != nil {
		return figs, err
	}
	byComp, total := controlPlaneRSS(r.cp)
	var cpRows []string
	for _, comp := range sortedKeys(byComp) {
		per := ""
		if comp != "etcd" {
			per = fmt.Sprintf(" (%.1f per member)", byComp[comp]/float64(len(realClusterNames)))
		}
		cpRows = append(cpRows, fmt.Sprintf("| %s | %.1f%s |", comp, byComp[comp], per))
	}
	leader, _ := r.mesh.leader(ctx, "")

	rss.How = fmt.Sprintf("%s A PropagationPolicy selects Deployments by label and Duplicates them; %d Deployments "+
		"of 1 replica (10m CPU, 16Mi) are applied in batches of %d per `POST /v1/apply` (%s for all), so each member "+
		"holds %d Deployments and %d pods. All were Ready in every member (the bench's informers on the members' API "+
		"servers, then stopped) %s after the first apply. Then nothing is sent for %s. The figure is each peer "+
		"process's VmRSS (/proc/PID/status) at the end of that idle window: the samples are the 3 peers (median is the "+
		"middle one, max the largest; the target is on the max). The leader was %s.",
		realSetup, realFootprintWorkloads, batch, applied.Round(time.Millisecond), realFootprintWorkloads,
		realFootprintWorkloads, ready.Round(100*time.Millisecond), footprintIdle, leader)
	rss.Details = append(rss.Details,
		"| peer | VmRSS at end of idle (MiB) | of which RssAnon / RssFile (MiB) | max VmRSS sampled every 1 s while idle | VmHWM (peak since start) | CPU % while idle |",
		"|---|---|---|---|---|---|")
	rss.Details = append(rss.Details, rows...)
	rss.Details = append(rss.Details, "", "VmRSS (MiB) sampled every second of the idle window:", "")
	for i, p := range peers {
		rss.Details = append(rss.Details, fmt.Sprintf("- %s: %s", p.Cluster, strings.Join(series[i], " ")))
	}
	rss.Details = append(rss.Details, "", "RssFile is file-backed memory: the pages of the shoal executable "+
		"that the process has touched (the same binary also holds the CLI, the simulated cluster and the bench; "+
		"these pages are shared between processes running it and the kernel can drop them) and the memory-mapped "+
		"Raft log (bbolt). RssAnon is the process's own memory: Go heap, stacks, client-go's informer caches of "+
		"the member's Nodes, Pods and Shoal's objects. Against a real cluster the peer touches client-go's code "+
		"paths, which the simulated figures above do not.")
	rss.Details = append(rss.Details, "", "VmRSS of each peer right after the region formed, before any workload: "+strings.Join(base, ", ")+".")
	rss.Details = append(rss.Details, "", fmt.Sprintf("For context, the control planes' resident memory at the end "+
		"of the idle window (`kubetest.ControlPlane.RSS`, summed over the 3 members; one etcd is shared): %.0f MiB "+
		"in all.", total), "", "| component | RSS (MiB) |", "|---|---|")
	rss.Details = append(rss.Details, cpRows...)
	rss.Details = append(rss.Details, "", rssFileNote)
	hwm.How = fmt.Sprintf("The same peer processes: VmHWM from /proc/PID/status at the end of the idle window, the "+
		"largest resident set each had since it started, so it includes receiving, committing, scheduling and "+
		"applying the %d Deployments to its member and following their status, on top of the idle state.", realFootprintWorkloads)
	cpu.How = fmt.Sprintf("The same peer processes over the same %s idle window: (utime + stime) from "+
		"/proc/PID/stat at the end minus at the start, in clock ticks of 1/100 s, divided by the window's wall time. "+
		"100%% is one CPU. Idle work against a real member is gossip probes, Raft heartbeats, the cluster report loop "+
		"(a `/readyz` request to the member's API server every second, capacity from the informers' caches), the "+
		"reconciler's resync, and the watch events of the members' own status updates.", footprintIdle)
	return figs, nil
}
