package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/node"
)

// benchMesh is a local mesh of one region of peer processes for a scenario.
type benchMesh struct {
	*node.Mesh
	dir     string
	clients map[string]*client.Client
}

// startBenchMesh starts a region of n peer processes with extra agent flags
// and waits until it is ready. The caller must call close.
func startBenchMesh(ctx context.Context, b *bencher, n int, extra []string) (*benchMesh, error) {
	return startBenchMeshPeers(ctx, b, n, extra, nil)
}

// startBenchMeshPeers is startBenchMesh with flags for single peers, by
// cluster name (node.MeshSpec.PeerArgs).
func startBenchMeshPeers(ctx context.Context, b *bencher, n int, extra []string, peerArgs map[string][]string) (*benchMesh, error) {
	dir, err := os.MkdirTemp("", "shoal-bench-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"--log-level", "warn"}, extra...)
	m, err := node.StartMesh(node.MeshSpec{Binary: b.bin, Regions: 1, Clusters: n, Dir: dir, ExtraArgs: args, PeerArgs: peerArgs})
	if err != nil {
		os.RemoveAll(dir)
		return nil, scrubPaths(err)
	}
	bm := &benchMesh{Mesh: m, dir: dir, clients: map[string]*client.Client{}}
	for _, p := range m.Peers() {
		c, err := m.Client(p.Cluster)
		if err != nil {
			bm.close()
			return nil, err
		}
		bm.clients[p.Cluster] = c
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := m.WaitReady(wctx); err != nil {
		bm.close()
		return nil, scrubPaths(err)
	}
	if err := bm.waitHealthy(ctx, 60*time.Second); err != nil {
		bm.close()
		return nil, err
	}
	return bm, nil
}

// close stops every peer and removes the mesh's files.
func (m *benchMesh) close() {
	m.Stop()
	os.RemoveAll(m.dir)
}

func (m *benchMesh) names() []string {
	var out []string
	for _, p := range m.Peers() {
		out = append(out, p.Cluster)
	}
	return out
}

// leader asks the live peers (all but skip) who leads the region.
func (m *benchMesh) leader(ctx context.Context, skip string) (string, error) {
	var last error = errors.New("no peer answered")
	for _, name := range m.names() {
		if name == skip {
			continue
		}
		st, err := m.clients[name].Status(ctx)
		if err == nil && st.Leader != "" {
			return st.Leader, nil
		}
		if err != nil {
			last = err
		}
	}
	return "", last
}

// waitHealthy waits until every peer knows the same leader, sees every peer
// alive in gossip and every cluster Ready and untainted.
func (m *benchMesh) waitHealthy(ctx context.Context, timeout time.Duration) error {
	return waitRegionHealthy(ctx, m.clients, timeout)
}

// waitRegionHealthy is waitHealthy for the peers behind clients (by
// cluster name).
func waitRegionHealthy(ctx context.Context, clients map[string]*client.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var names []string
	for n := range clients {
		names = append(names, n)
	}
	var why string
	for {
		why = regionUnhealthy(ctx, clients, names)
		if why == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("region not healthy after %s: %s", timeout, why)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func regionUnhealthy(ctx context.Context, clients map[string]*client.Client, names []string) string {
	leader := ""
	for _, n := range names {
		c := clients[n]
		st, err := c.Status(ctx)
		if err != nil {
			return fmt.Sprintf("%s: %v", n, err)
		}
		if st.Leader == "" || leader != "" && st.Leader != leader {
			return fmt.Sprintf("%s: leader %q", n, st.Leader)
		}
		leader = st.Leader
		alive := 0
		for _, pv := range st.Peers {
			if pv.Gossip == "alive" {
				alive++
			}
		}
		if alive < len(names) {
			return fmt.Sprintf("%s sees %d/%d peers alive", n, alive, len(names))
		}
		cs, err := c.Clusters(ctx)
		if err != nil {
			return fmt.Sprintf("%s: %v", n, err)
		}
		if len(cs) < len(names) {
			return fmt.Sprintf("%s knows %d/%d clusters", n, len(cs), len(names))
		}
		for _, cv := range cs {
			if cv.Health != "Ready" || len(cv.Taints) > 0 {
				return fmt.Sprintf("cluster %s is %s with %d taints", cv.Name, cv.Health, len(cv.Taints))
			}
		}
	}
	return ""
}

// waitWorkloads polls GET /v1/workloads on c every interval until cond
// holds, and returns the time it first held.
func waitWorkloads(ctx context.Context, c *client.Client, interval, timeout time.Duration, what string, cond func([]api.WorkloadView) bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		ws, err := c.Workloads(ctx)
		now := time.Now()
		if err == nil && cond(ws) {
			return now, nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting %s for %s: %w (last error: %v)", timeout, what, ctx.Err(), lastErr)
		case <-time.After(interval):
		}
	}
}

// failedOver: no workload keeps a non-evicting placement on the killed
// cluster, and every workload has readyReplicas == boundReplicas >=
// desiredReplicas with every (non-evicting) placement Healthy at the
// current generation. Evicting placements are the old replicas Shoal keeps
// on the unreachable cluster until it returns; they are not counted.
func failedOver(ws []api.WorkloadView, victim string) bool {
	if len(ws) == 0 {
		return false
	}
	for _, w := range ws {
		if len(w.Placements) == 0 || w.ReadyReplicas != w.BoundReplicas || w.BoundReplicas < w.DesiredReplicas {
			return false
		}
		for _, p := range w.Placements {
			if p.Evicting {
				continue
			}
			if p.Cluster == victim || p.Health != "Healthy" || p.AppliedGeneration != w.Generation {
				return false
			}
		}
	}
	return true
}

// settled: every workload Ready everywhere, nothing evicting, and (if
// cluster is set) every workload runs on cluster again (failback done).
func settled(ws []api.WorkloadView, cluster string) bool {
	if !api.WorkloadsReady(ws, "") {
		return false
	}
	return cluster == "" || api.RunsOn(ws, cluster)
}

var pathRE = regexp.MustCompile(`(/[A-Za-z0-9._@+-]+){2,}/?`)

// scrubPaths removes this machine's file paths from an error, so that
// nothing local ends up in BENCHMARKS.md.
func scrubPaths(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(scrubString(err.Error()))
}

func scrubString(s string) string {
	return pathRE.ReplaceAllStringFunc(s, func(p string) string {
		if strings.HasPrefix(p, "/v1/") {
			return p
		}
		return "<path>"
	})
}
