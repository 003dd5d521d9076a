package deploy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

type harness struct {
	r     *deploy.Reconciler
	rec   *recorder
	clock *testingclock.FakeClock
}

// newReconciler builds a Reconciler on cluster; run starts it and stops it
// when the test ends.
func newReconciler(t *testing.T, clock *testingclock.FakeClock, cluster deploy.Cluster, cfg deploy.ReconcilerConfig) *harness {
	t.Helper()
	cfg.ClusterName = "c1"
	cfg.Clock = clock
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := newRecorder()
	r, err := deploy.NewReconciler(cfg, cluster, rec.report)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{r: r, rec: rec, clock: clock}
}

func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := h.r.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func (h *harness) waitStatus(t *testing.T, k api.ObjectKey, what string, cond func(deploy.Status) bool) deploy.Status {
	t.Helper()
	var st deploy.Status
	waitFor(t, k.Display()+" "+what, func() bool {
		var ok bool
		st, ok = h.rec.status(k)
		return ok && cond(st)
	})
	return st
}

func TestReconcilerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  deploy.ReconcilerConfig
		ok   bool
	}{
		{"defaults", deploy.DefaultReconcilerConfig("c1"), true},
		{"zero but named", deploy.ReconcilerConfig{ClusterName: "c1"}, true},
		{"no name", deploy.ReconcilerConfig{}, false},
		{"negative resync", deploy.ReconcilerConfig{ClusterName: "c1", ResyncInterval: -1}, false},
		{"min above max", deploy.ReconcilerConfig{ClusterName: "c1", MinRetryDelay: time.Minute, MaxRetryDelay: time.Second}, false},
		{"negative workers", deploy.ReconcilerConfig{ClusterName: "c1", Workers: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, err := deploy.NewReconciler(deploy.ReconcilerConfig{ClusterName: "c1"}, nil, func([]deploy.Status, []api.ObjectKey) {}); err == nil {
		t.Fatal("NewReconciler accepted a nil cluster")
	}
}

func TestReconcilerAppliesAndReportsReadiness(t *testing.T) {
	sim, clock := newSim(t, deploy.SimConfig{ReadyDelay: 200 * time.Millisecond})
	h := newReconciler(t, clock, sim, deploy.ReconcilerConfig{})
	h.run(t)
	web, cfg := work("web", "500m", "64Mi", 1, 3), deploy.Work{Key: configMapKey("cfg"), Manifest: configMap("cfg"), Generation: 1}
	h.r.SetDesired([]deploy.Work{web, cfg})

	h.waitStatus(t, web.Key, "applied", func(st deploy.Status) bool {
		return st.AppliedGeneration == 1 && st.Replicas == 3 && st.ReadyReplicas == 0 && st.Health == deploy.HealthProgressing
	})
	h.waitStatus(t, cfg.Key, "healthy", func(st deploy.Status) bool { return st.Health == deploy.HealthHealthy })
	waitFor(t, "Ready", h.r.Ready)

	clock.Step(200 * time.Millisecond) // the sim signals Changed; the reconciler re-reads
	h.waitStatus(t, web.Key, "ready", func(st deploy.Status) bool {
		return st.ReadyReplicas == 3 && st.Health == deploy.HealthHealthy
	})

	// Scale and roll.
	h.r.SetDesired([]deploy.Work{work("web", "500m", "64Mi", 2, 5), cfg})
	h.waitStatus(t, web.Key, "rolled", func(st deploy.Status) bool { return st.AppliedGeneration == 2 && st.Replicas == 5 })
	clock.Step(200 * time.Millisecond)
	h.waitStatus(t, web.Key, "ready again", func(st deploy.Status) bool { return st.ReadyReplicas == 5 })
	if o := sim.Objects()[web.Key]; o.Generation != 2 || o.Ready != 5 {
		t.Fatalf("sim holds %+v", o)
	}
}

func TestReconcilerDeletesUndesired(t *testing.T) {
	sim, clock := newSim(t, deploy.SimConfig{})
	keep, stale := work("keep", "100m", "1Mi", 1, 1), work("stale", "100m", "1Mi", 1, 1)
	mustApply(t, sim, keep)
	mustApply(t, sim, stale)
	h := newReconciler(t, clock, sim, deploy.ReconcilerConfig{})
	h.r.SetDesired([]deploy.Work{keep})
	h.run(t)

	waitFor(t, "stale reported removed", func() bool { return h.rec.wasRemoved(stale.Key) })
	if _, ok := sim.Objects()[stale.Key]; ok {
		t.Fatal("stale still in the cluster")
	}
	h.waitStatus(t, keep.Key, "reported", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	waitFor(t, "Ready", h.r.Ready)

	// Dropping a key from the desired set deletes it.
	h.r.SetDesired(nil)
	waitFor(t, "keep reported removed", func() bool { return h.rec.wasRemoved(keep.Key) })
	if n := len(sim.Objects()); n != 0 {
		t.Fatalf("%d objects left", n)
	}
}

func TestReconcilerKeepsEverythingUntilFirstSetDesired(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	held := work("held", "100m", "1Mi", 1, 1)
	if err := fc.Apply(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{ResyncInterval: time.Minute})
	h.run(t)

	// The initial list, a Changed signal and a periodic resync all look at
	// the held key without a desired set.
	waitFor(t, "initial sync of held key", func() bool { return fc.statusCalls(held.Key) >= 1 })
	fc.setStatus(deploy.Status{Key: held.Key, AppliedGeneration: 1, Replicas: 1, Health: deploy.HealthProgressing})
	waitFor(t, "sync after Changed", func() bool { return fc.statusCalls(held.Key) >= 2 })
	waitFor(t, "resync timer armed", func() bool { return clock.Waiters() == 1 })
	clock.Step(time.Minute)
	waitFor(t, "sync after resync", func() bool { _, lists := fc.counts(); return lists >= 2 && fc.statusCalls(held.Key) >= 3 })

	fc.mu.Lock()
	deletes := len(fc.deletes)
	fc.mu.Unlock()
	if deletes != 0 || h.r.Ready() || h.rec.callCount() != 0 {
		t.Fatalf("before the first SetDesired: %d deletes, ready %v, %d reports", deletes, h.r.Ready(), h.rec.callCount())
	}

	h.r.SetDesired(nil) // an empty set that is known: now delete
	waitFor(t, "held reported removed", func() bool { return h.rec.wasRemoved(held.Key) })
	waitFor(t, "Ready", h.r.Ready)
}

func TestReconcilerRetriesWithBackoff(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	fc.failApply = 3
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{MinRetryDelay: time.Second, MaxRetryDelay: 2 * time.Second})
	h.run(t)
	// Let the first desired set (and the resync it starts) pass first, so
	// that only the retries below sync the key.
	h.r.SetDesired(nil)
	waitFor(t, "Ready", h.r.Ready)
	w := work("web", "100m", "1Mi", 1, 2)
	h.r.SetDesired([]deploy.Work{w})

	h.waitStatus(t, w.Key, "apply error reported", func(st deploy.Status) bool {
		return strings.Contains(st.Error, "boom") && st.Health == deploy.HealthUnknown
	})
	for i, delay := range []time.Duration{time.Second, 2 * time.Second, 2 * time.Second} {
		// Pending: the resync timer and the retry.
		waitFor(t, "retry timer", func() bool { return clock.Waiters() == 2 })
		// A timer that falls due leaves the fake clock's waiters within
		// Step: two still pending means the retry has not fallen due.
		clock.Step(delay - time.Millisecond)
		if n, _ := fc.counts(); n != i+1 || clock.Waiters() != 2 {
			t.Fatalf("retry %d came early: %d applies, %d timers pending", i+1, n, clock.Waiters())
		}
		clock.Step(time.Millisecond)
		waitFor(t, "retry", func() bool { n, _ := fc.counts(); return n == i+2 })
	}
	h.waitStatus(t, w.Key, "error cleared", func(st deploy.Status) bool {
		return st.Error == "" && st.AppliedGeneration == 1 && st.Health == deploy.HealthHealthy
	})
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(fc.applyTimes); i++ {
		gaps = append(gaps, fc.applyTimes[i].Sub(fc.applyTimes[i-1]))
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}; !slices.Equal(gaps, want) {
		t.Fatalf("gaps between applies %v, want %v", gaps, want)
	}
}

func TestReconcilerCoalescesSetDesired(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	fc.gate, fc.entered = make(chan struct{}), make(chan struct{})
	entered := fc.entered
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{})
	h.run(t)

	h.r.SetDesired([]deploy.Work{work("web", "100m", "1Mi", 1, 1)})
	<-entered // the worker is inside Apply of generation 1
	const last = 100
	for gen := int64(2); gen <= last; gen++ {
		h.r.SetDesired([]deploy.Work{work("web", "100m", "1Mi", gen, int32(gen%7))})
	}
	close(fc.gate)
	h.waitStatus(t, deploymentKey("web"), "last generation", func(st deploy.Status) bool { return st.AppliedGeneration == last })
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.applies) != 2 || fc.applies[1].Generation != last || fc.applies[1].Replicas != last%7 {
		t.Fatalf("applies: %d, want 2 (generation 1 and %d)", len(fc.applies), last)
	}
}

func TestReconcilerReportsChangedStatuses(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{})
	h.run(t)
	a, b := work("a", "100m", "1Mi", 1, 2), work("b", "100m", "1Mi", 1, 2)
	h.r.SetDesired([]deploy.Work{a, b})
	h.waitStatus(t, a.Key, "reported", func(deploy.Status) bool { return true })
	h.waitStatus(t, b.Key, "reported", func(deploy.Status) bool { return true })
	waitFor(t, "Ready", h.r.Ready)
	calls := h.rec.callCount()

	changed := deploy.Status{Key: b.Key, AppliedGeneration: 1, Replicas: 2, ReadyReplicas: 1, Health: deploy.HealthProgressing, Reason: "1/2 replicas ready"}
	fc.setStatus(changed)
	h.waitStatus(t, b.Key, "updated", func(st deploy.Status) bool { return reflect.DeepEqual(st, changed) })
	// Only b changed: no later report may carry a.
	for i := calls; i < h.rec.callCount(); i++ {
		for _, st := range h.rec.call(i) {
			if st.Key == a.Key {
				t.Fatalf("unchanged status of a reported again: %+v", st)
			}
		}
	}
}

func TestReconcilerFailsOverWithSimNotReady(t *testing.T) {
	sim, clock := newSim(t, deploy.SimConfig{})
	h := newReconciler(t, clock, sim, deploy.ReconcilerConfig{MinRetryDelay: time.Second, MaxRetryDelay: time.Minute})
	h.run(t)
	w := work("web", "100m", "1Mi", 1, 2)
	h.r.SetDesired([]deploy.Work{w})
	h.waitStatus(t, w.Key, "applied", func(st deploy.Status) bool { return st.Replicas == 2 })
	clock.Step(time.Second)
	h.waitStatus(t, w.Key, "ready", func(st deploy.Status) bool { return st.ReadyReplicas == 2 })

	sim.SetReady(false)
	h.waitStatus(t, w.Key, "unhealthy", func(st deploy.Status) bool {
		return st.ReadyReplicas == 0 && st.Health == deploy.HealthUnhealthy
	})
	h.r.SetDesired([]deploy.Work{work("web", "100m", "1Mi", 1, 3)})
	st := h.waitStatus(t, w.Key, "apply error", func(st deploy.Status) bool { return st.Error != "" })
	if !strings.Contains(st.Error, deploy.ErrUnavailable.Error()) {
		t.Fatalf("error %q does not say the cluster is unavailable", st.Error)
	}

	sim.SetReady(true) // Changed: the reconciler retries at once, not after its backoff
	h.waitStatus(t, w.Key, "applied after recovery", func(st deploy.Status) bool { return st.Error == "" && st.Replicas == 3 })
	clock.Step(time.Second)
	h.waitStatus(t, w.Key, "ready after recovery", func(st deploy.Status) bool { return st.ReadyReplicas == 3 })
}

func TestReconcilerRunTwice(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	h := newReconciler(t, clock, newFakeCluster(clock), deploy.ReconcilerConfig{})
	h.run(t)
	waitFor(t, "first Run started", func() bool { return clock.Waiters() == 1 })
	if err := h.r.Run(context.Background()); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("second Run = %v, want an error", err)
	}
}

// The region forgets what a failed cluster reported; ResendStatuses has
// the reconciler report every status again, changed or not.
func TestReconcilerResendsStatuses(t *testing.T) {
	clock := testingclock.NewFakeClock(time.Unix(1_700_000_000, 0))
	sim, err := deploy.NewSimCluster(deploy.SimConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	h := newReconciler(t, clock, sim, deploy.ReconcilerConfig{})
	h.run(t)
	cfg := deploy.Work{Key: configMapKey("cfg"), Manifest: configMap("cfg"), Generation: 1}
	h.r.SetDesired([]deploy.Work{cfg})
	h.waitStatus(t, cfg.Key, "healthy", func(st deploy.Status) bool { return st.Health == deploy.HealthHealthy })
	waitFor(t, "Ready", h.r.Ready)
	reportsOf := func() int {
		n := 0
		for i := range h.rec.callCount() {
			for _, st := range h.rec.call(i) {
				if st.Key == cfg.Key {
					n++
				}
			}
		}
		return n
	}
	before := reportsOf()
	h.r.ResendStatuses()
	waitFor(t, "the unchanged status reported again", func() bool { return reportsOf() > before })
}
