package deploy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
)

// TestSimCapacityPercentScalesAllocatable: the capacity percent scales
// every node's allocatable as Capacity reports it and as replicas are
// placed; what already runs keeps running; 0 lets nothing new fit, and
// raised again the Pending replicas are placed.
func TestSimCapacityPercentScalesAllocatable(t *testing.T) {
	s, clock := newSim(t, deploy.SimConfig{Nodes: 2, NodeCPUMilli: 4000, NodeMemoryBytes: 8 * gi, NodePods: 110})
	ctx := context.Background()
	res := func(cpu, mem, pods int64) *shoalpb.Resources {
		return &shoalpb.Resources{CpuMilli: cpu, MemoryBytes: mem, Pods: pods}
	}
	check := func(what string, allocatable, available *shoalpb.Resources) {
		t.Helper()
		c, err := s.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.GetNodes() != 2 || !sameRes(c.GetAllocatable(), allocatable) || !sameRes(c.GetAvailable(), available) {
			t.Fatalf("%s: capacity %v, want 2 nodes, allocatable %v, available %v", what, c, allocatable, available)
		}
	}
	if s.CapacityPercent() != 100 {
		t.Fatalf("a new cluster offers %d%%", s.CapacityPercent())
	}
	mustApply(t, s, work("a", "1", "1Gi", 1, 3)) // all three on node 0
	clock.Step(time.Second)

	if err := s.SetCapacityPercent(50); err != nil {
		t.Fatal(err)
	}
	// Node 0 now offers 2 CPUs and runs 3: nothing available there.
	check("at 50%", res(4000, 8*gi, 110), res(2000, 5*gi, 107))
	if st := mustStatus(t, s, deploymentKey("a")); st.ReadyReplicas != 3 {
		t.Fatalf("a lost replicas when the capacity shrank: %+v", st)
	}
	mustApply(t, s, work("b", "1", "1Gi", 1, 3)) // two fit on node 1
	if o := s.Objects()[deploymentKey("b")]; o.Placed != 2 || o.Pending != 1 {
		t.Fatalf("b at 50%%: %+v, want 2 placed and 1 Pending", o)
	}

	if err := s.SetCapacityPercent(0); err != nil {
		t.Fatal(err)
	}
	check("drained", res(0, 0, 0), res(0, 0, 0))
	mustApply(t, s, work("c", "10m", "1Mi", 1, 1))
	if o := s.Objects()[deploymentKey("c")]; o.Pending != 1 {
		t.Fatalf("c fits into a drained cluster: %+v", o)
	}
	for _, bad := range []int{-1, 101} {
		if err := s.SetCapacityPercent(bad); !errors.Is(err, deploy.ErrBadPercent) {
			t.Fatalf("SetCapacityPercent(%d) = %v, want ErrBadPercent", bad, err)
		}
	}
	if s.CapacityPercent() != 0 {
		t.Fatalf("a refused percent changed it to %d", s.CapacityPercent())
	}

	if err := s.SetCapacityPercent(100); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"b", "c"} {
		if o := s.Objects()[deploymentKey(n)]; o.Pending != 0 {
			t.Fatalf("%s still Pending at 100%%: %+v", n, o)
		}
	}
}

// TestSimPersistsCapacityPercent: a drained cluster stays drained across a
// restart of its peer, and what it ran keeps running.
func TestSimPersistsCapacityPercent(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := openSimDir(t, dir, epoch)
	w := work("web", "100m", "1Mi", 1, 2)
	mustApply(t, s, w)
	if err := s.SetCapacityPercent(0); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s2, _ := openSimDir(t, dir, epoch)
	if p := s2.CapacityPercent(); p != 0 {
		t.Fatalf("after a restart the cluster offers %d%%, want 0", p)
	}
	c, err := s2.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.GetAllocatable().GetPods() != 0 || c.GetAvailable().GetCpuMilli() != 0 || c.GetNodes() != 3 {
		t.Fatalf("capacity of a drained cluster after a restart: %v", c)
	}
	if st := mustStatus(t, s2, w.Key); st.ReadyReplicas != 2 {
		t.Fatalf("what ran before the restart: %+v", st)
	}
	mustApply(t, s2, work("new", "100m", "1Mi", 1, 1))
	if o := s2.Objects()[deploymentKey("new")]; o.Pending != 1 {
		t.Fatalf("a new replica fits into a drained cluster after a restart: %+v", o)
	}
	if err := s2.SetCapacityPercent(70); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s2)
	s3, _ := openSimDir(t, dir, epoch)
	if p := s3.CapacityPercent(); p != 70 {
		t.Fatalf("after a second restart the cluster offers %d%%, want 70", p)
	}
}
