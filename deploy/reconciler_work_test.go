package deploy_test

import (
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/deploy"
)

// Release, RenderError and conflictResolution, as the Reconciler handles
// them against a scriptable cluster.

func TestReconcilerReleasesInsteadOfDeleting(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{})
	h.run(t)
	w := work("web", "100m", "1Mi", 1, 2)
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "applied", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })

	// The template is deleted under preserveResourcesOnDeletion.
	h.r.SetDesired([]deploy.Work{{Key: w.Key, Generation: 1, Release: true}})
	waitFor(t, "reported removed", func() bool { return h.rec.wasRemoved(w.Key) })
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.releases) != 1 || len(fc.deletes) != 0 || !fc.foreign[w.Key] {
		t.Fatalf("releases %v, deletes %v, left in the cluster %v", fc.releases, fc.deletes, fc.foreign[w.Key])
	}
	if len(fc.applies) != 1 {
		t.Fatalf("%d applies, want 1: a released work is not applied", len(fc.applies))
	}
}

func TestReconcilerReleaseOfAbsentObject(t *testing.T) {
	sim, clock := newSim(t, deploy.SimConfig{})
	h := newReconciler(t, clock, sim, deploy.ReconcilerConfig{})
	h.run(t)
	cfg := deploy.Work{Key: configMapKey("cfg"), Manifest: configMap("cfg"), Generation: 1}
	gone := deploy.Work{Key: configMapKey("gone"), Generation: 3, Release: true}
	h.r.SetDesired([]deploy.Work{cfg, gone})
	waitFor(t, "Ready", h.r.Ready)
	h.waitStatus(t, cfg.Key, "applied", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	if _, ok := h.rec.status(gone.Key); ok {
		t.Fatal("a released key that was never held is reported")
	}
	// Releasing in the sim forgets the object without deleting it.
	h.r.SetDesired([]deploy.Work{{Key: cfg.Key, Generation: 1, Release: true}, gone})
	waitFor(t, "cfg reported removed", func() bool { return h.rec.wasRemoved(cfg.Key) })
	if n := len(sim.Objects()); n != 0 {
		t.Fatalf("sim still manages %d objects", n)
	}
}

func TestReconcilerReportsRenderError(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{})
	h.run(t)
	w := work("web", "100m", "1Mi", 1, 2)
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "applied", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })

	const why = "OverridePolicy default/img: overrideRules[0].overriders.plaintext[0]: path /spec/nope: not found"
	bad := work("web", "100m", "1Mi", 2, 3)
	bad.RenderError = why
	h.r.SetDesired([]deploy.Work{bad})
	st := h.waitStatus(t, w.Key, "render error", func(st deploy.Status) bool { return st.Error == why })
	if st.Health != deploy.HealthUnhealthy || st.AppliedGeneration != 1 || st.Replicas != 2 {
		t.Fatalf("status %+v: want Unhealthy, still generation 1 with 2 replicas", st)
	}
	if n, _ := fc.counts(); n != 1 {
		t.Fatalf("%d applies, want 1: nothing is applied while overrides do not render", n)
	}

	// Fixed overrides come as a new desired work and are applied.
	h.r.SetDesired([]deploy.Work{work("web", "100m", "1Mi", 2, 3)})
	h.waitStatus(t, w.Key, "applied after the fix", func(st deploy.Status) bool {
		return st.Error == "" && st.AppliedGeneration == 2 && st.Health == deploy.HealthHealthy
	})

	// A render error for an object the cluster does not hold is reported too.
	nw := work("new", "100m", "1Mi", 1, 1)
	nw.RenderError = why
	h.r.SetDesired([]deploy.Work{work("web", "100m", "1Mi", 2, 3), nw})
	h.waitStatus(t, nw.Key, "render error of an absent object", func(st deploy.Status) bool {
		return st.Error == why && st.Health == deploy.HealthUnhealthy && st.AppliedGeneration == 0
	})
}

func TestReconcilerConflictResolution(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	w := work("web", "100m", "1Mi", 1, 2)
	fc.foreign[w.Key] = true // someone else's Deployment of that name
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{ResyncInterval: time.Minute, MinRetryDelay: time.Second})
	h.run(t)
	h.r.SetDesired([]deploy.Work{w})

	st := h.waitStatus(t, w.Key, "conflict reported", func(st deploy.Status) bool { return st.Error != "" })
	if !strings.Contains(st.Error, "exists in the cluster and is not Shoal's; conflictResolution Abort") || st.Health != deploy.HealthUnhealthy {
		t.Fatalf("status %+v", st)
	}
	waitFor(t, "Ready", h.r.Ready)
	// Not retried with backoff: only the resync timer is pending. (The
	// first desired set and the first resync may both have synced it.)
	waitFor(t, "only the resync timer", func() bool { return clock.Waiters() == 1 })
	n0, _ := fc.counts()
	// The periodic resync tries again, and is refused again.
	clock.Step(time.Minute)
	waitFor(t, "retried on resync", func() bool { n, _ := fc.counts(); return n > n0 })
	if st, _ := h.rec.status(w.Key); !strings.Contains(st.Error, "conflictResolution Abort") {
		t.Fatalf("status after the retry %+v", st)
	}

	// Overwrite adopts it.
	w.ConflictResolution = deploy.ConflictOverwrite
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "adopted", func(st deploy.Status) bool {
		return st.Error == "" && st.AppliedGeneration == 1 && st.Health == deploy.HealthHealthy
	})
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.foreign[w.Key] {
		t.Fatal("still someone else's")
	}
}

func TestReconcilerReappliesDrift(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{})
	h.run(t)
	w := work("web", "100m", "1Mi", 1, 2)
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "applied", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	waitFor(t, "Ready", h.r.Ready)
	calls := h.rec.callCount()

	// Edited by hand: same generation and replicas, but drifted.
	fc.setStatus(deploy.Status{Key: w.Key, AppliedGeneration: 1, Replicas: 2, ReadyReplicas: 2, Health: deploy.HealthHealthy, Drifted: true})
	waitFor(t, "re-applied", func() bool { n, _ := fc.counts(); return n == 2 })
	for i := calls; i < h.rec.callCount(); i++ {
		for _, st := range h.rec.call(i) {
			if st.Drifted {
				t.Fatalf("Drifted reported: %+v", st)
			}
		}
	}
}

// A manifest that changes without a new generation (an override policy
// changed) is applied again.
func TestReconcilerReappliesChangedManifest(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{})
	h.run(t)
	w := work("web", "100m", "1Mi", 1, 2)
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "applied", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	applies := func() int {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.applies)
	}
	if n := applies(); n != 1 {
		t.Fatalf("%d applies, want 1", n)
	}
	w.Manifest = []byte(strings.Replace(string(w.Manifest), `"100m"`, `"200m"`, 1))
	h.r.SetDesired([]deploy.Work{w})
	waitFor(t, "the changed manifest applied", func() bool { return applies() == 2 })
	fc.mu.Lock()
	last := fc.applies[len(fc.applies)-1]
	fc.mu.Unlock()
	if !strings.Contains(string(last.Manifest), `"200m"`) {
		t.Fatalf("applied %s", last.Manifest)
	}
}
