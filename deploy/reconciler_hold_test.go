package deploy_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

// countingCluster counts the lists, status reads and changes asked of a
// cluster.
type countingCluster struct {
	deploy.Cluster
	lists, statuses, changes atomic.Int32
}

func (c *countingCluster) List(ctx context.Context) ([]api.ObjectKey, error) {
	c.lists.Add(1)
	return c.Cluster.List(ctx)
}

func (c *countingCluster) Status(ctx context.Context, k api.ObjectKey) (deploy.Status, error) {
	c.statuses.Add(1)
	return c.Cluster.Status(ctx, k)
}

func (c *countingCluster) Apply(ctx context.Context, w deploy.Work) error {
	c.changes.Add(1)
	return c.Cluster.Apply(ctx, w)
}

func (c *countingCluster) Delete(ctx context.Context, k api.ObjectKey) error {
	c.changes.Add(1)
	return c.Cluster.Delete(ctx, k)
}

func (c *countingCluster) Release(ctx context.Context, k api.ObjectKey) error {
	c.changes.Add(1)
	return c.Cluster.Release(ctx, k)
}

// A peer restarted cut off from its region starts held: its cluster stays
// exactly as it is, statuses are still read and reported, and lifting the
// hold converges the cluster at once.
func TestReconcilerHoldChangesNothing(t *testing.T) {
	sim, clock := newSim(t, deploy.SimConfig{})
	extra, other, regen := work("extra", "100m", "1Mi", 1, 1), work("other", "100m", "1Mi", 1, 2), work("regen", "100m", "1Mi", 1, 1)
	rel, keep := work("rel", "100m", "1Mi", 1, 1), work("keep", "100m", "1Mi", 1, 1)
	for _, w := range []deploy.Work{extra, other, regen, rel, keep} {
		mustApply(t, sim, w)
	}
	clock.Step(time.Second)
	before := sim.Objects()

	cc := &countingCluster{Cluster: sim}
	h := newReconciler(t, clock, cc, deploy.ReconcilerConfig{StartHeld: true, ResyncInterval: time.Minute})
	missing := work("missing", "100m", "1Mi", 1, 1)
	h.r.SetDesired([]deploy.Work{
		missing,                            // not in the cluster: to create
		work("other", "100m", "1Mi", 1, 3), // other replicas
		work("regen", "100m", "1Mi", 2, 1), // a new generation
		{Key: rel.Key, Generation: 1, Release: true},
		keep,
		// extra: held by the cluster, no longer desired: to delete
	})
	h.run(t)

	h.waitStatus(t, extra.Key, "reported", func(st deploy.Status) bool { return st.Health == deploy.HealthHealthy })
	h.waitStatus(t, other.Key, "reported as it is", func(st deploy.Status) bool { return st.Replicas == 2 && st.ReadyReplicas == 2 })
	h.waitStatus(t, regen.Key, "reported as it is", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	h.waitStatus(t, rel.Key, "reported", func(st deploy.Status) bool { return st.Health == deploy.HealthHealthy })
	h.waitStatus(t, keep.Key, "reported", func(st deploy.Status) bool { return st.Health == deploy.HealthHealthy })
	waitFor(t, "five changes withheld", func() bool { return h.r.WithheldChanges() == 5 })
	// Three periodic resyncs, each stepped to once its timer is armed (the
	// only timer: the sim has none while nothing changes) and waited out:
	// a list and the six keys' statuses read.
	for i := range 3 {
		waitFor(t, "the resync timer armed", func() bool { return clock.Waiters() == 1 })
		lists, statuses := cc.lists.Load(), cc.statuses.Load()
		clock.Step(time.Minute)
		waitFor(t, "a periodic resync", func() bool { return cc.lists.Load() > lists && cc.statuses.Load() >= statuses+6 })
		if h.r.Ready() {
			t.Fatalf("Ready after held resync %d", i+1)
		}
	}
	waitFor(t, "the resync timer armed again", func() bool { return clock.Waiters() == 1 })
	if n := cc.changes.Load(); n != 0 {
		t.Fatalf("%d changes asked of the cluster while held", n)
	}
	if _, ok := h.rec.status(missing.Key); ok {
		t.Fatal("a key the cluster does not hold is reported while held")
	}
	after := sim.Objects()
	if len(after) != len(before) {
		t.Fatalf("%d objects while held, want %d", len(after), len(before))
	}
	for k, b := range before {
		if a := after[k]; a.UID != b.UID || a.Generation != b.Generation || a.Replicas != b.Replicas {
			t.Fatalf("%s changed while held: %+v, was %+v", k.Display(), a, b)
		}
	}
	if !h.r.Held() || h.r.WithheldChanges() != 5 {
		t.Fatalf("held %v, %d changes withheld", h.r.Held(), h.r.WithheldChanges())
	}

	// No clock step: lifting the hold resyncs at once.
	h.r.SetHold(false)
	h.waitStatus(t, missing.Key, "created", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	h.waitStatus(t, other.Key, "scaled", func(st deploy.Status) bool { return st.Replicas == 3 })
	h.waitStatus(t, regen.Key, "rolled", func(st deploy.Status) bool { return st.AppliedGeneration == 2 })
	waitFor(t, "extra and rel reported removed", func() bool { return h.rec.wasRemoved(extra.Key) && h.rec.wasRemoved(rel.Key) })
	waitFor(t, "Ready", h.r.Ready)
	objs := sim.Objects()
	if _, ok := objs[extra.Key]; ok {
		t.Fatal("extra not deleted")
	}
	if _, ok := objs[rel.Key]; ok {
		t.Fatal("rel not released")
	}
	if o := objs[keep.Key]; o.UID != before[keep.Key].UID {
		t.Fatalf("keep re-created: %+v", o)
	}
	waitFor(t, "nothing withheld", func() bool { return h.r.WithheldChanges() == 0 })
}

// A hold set while running stops changes but not reports, and leaves Ready
// as it was.
func TestReconcilerHoldWhileRunning(t *testing.T) {
	sim, clock := newSim(t, deploy.SimConfig{})
	cc := &countingCluster{Cluster: sim}
	h := newReconciler(t, clock, cc, deploy.ReconcilerConfig{})
	h.run(t)
	w := work("web", "100m", "1Mi", 1, 1)
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "applied", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	waitFor(t, "Ready", h.r.Ready)
	n := cc.changes.Load()

	h.r.SetHold(true)
	h.r.SetDesired([]deploy.Work{work("web", "100m", "1Mi", 2, 3)})
	waitFor(t, "the change withheld", func() bool { return h.r.WithheldChanges() == 1 })
	clock.Step(time.Second) // the replica becomes Ready: still reported
	h.waitStatus(t, w.Key, "ready", func(st deploy.Status) bool { return st.ReadyReplicas == 1 && st.AppliedGeneration == 1 })
	if got := cc.changes.Load(); got != n || !h.r.Ready() {
		t.Fatalf("while held: %d changes (had %d), Ready %v", got, n, h.r.Ready())
	}

	h.r.SetHold(false)
	h.waitStatus(t, w.Key, "applied after the hold", func(st deploy.Status) bool { return st.AppliedGeneration == 2 && st.Replicas == 3 })
}
