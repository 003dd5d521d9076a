package node

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A peer cut off from the rest of its region (here: every other peer is
// gone, so it has no leader and no quorum) keeps its cluster as it was last
// told: nothing it runs is deleted or scaled, and it keeps serving reads.
func TestCutOffPeerKeepsItsClusterAsLastTold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := startRegion(t, ctx)
	before := m.peers["eu-2"].Sim().Objects()

	m.kill("eu-1")
	m.kill("eu-3")
	c := m.client("eu-2")
	eventually(t, "eu-2 has lost its leader", func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.Leader != "" {
			return fmt.Errorf("still follows %s", st.Leader)
		}
		return nil
	})
	// Watch the cluster for several heartbeats and election rounds: it
	// must hold every object it held, with the same replicas, throughout.
	watchEnd := time.Now().Add(5 * time.Second)
	for time.Now().Before(watchEnd) {
		now := m.peers["eu-2"].Sim().Objects()
		for k, o := range before {
			n, ok := now[k]
			if !ok {
				t.Fatalf("%s was deleted from a cut-off cluster", k.Display())
			}
			if n.Replicas != o.Replicas || n.Ready != o.Ready {
				t.Fatalf("%s changed on a cut-off cluster: %d/%d ready, was %d/%d", k.Display(), n.Ready, n.Replicas, o.Ready, o.Replicas)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reads still answer from the local copy.
	ws, err := c.Workloads(ctx)
	if err != nil || len(ws) != 3 {
		t.Fatalf("reads from a cut-off peer: %d workloads, %v", len(ws), err)
	}
}
