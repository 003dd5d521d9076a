package deploy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

// Several workers: keys are synced in parallel, never one key twice at a
// time, and Report is never called concurrently.

// gatedCluster holds every Apply until the gate opens, counting how many
// wait at once.
type gatedCluster struct {
	*fakeCluster
	gate    chan struct{}
	waiting atomic.Int32
	most    atomic.Int32
}

func (g *gatedCluster) Apply(ctx context.Context, w deploy.Work) error {
	n := g.waiting.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
	}
	g.waiting.Add(-1)
	return g.fakeCluster.Apply(ctx, w)
}

func TestReconcilerSyncsKeysInParallel(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	gc := &gatedCluster{fakeCluster: newFakeCluster(clock), gate: make(chan struct{})}
	h := newReconciler(t, clock, gc, deploy.ReconcilerConfig{Workers: 8})
	h.run(t)
	var works []deploy.Work
	for i := range 12 {
		works = append(works, work(fmt.Sprint("w", i), "100m", "1Mi", 1, 1))
	}
	h.r.SetDesired(works)
	waitFor(t, "8 applies in flight at once", func() bool { return gc.waiting.Load() == 8 })
	close(gc.gate)
	for _, w := range works {
		h.waitStatus(t, w.Key, "applied", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	}
	if m := gc.most.Load(); m != 8 {
		t.Fatalf("at most %d applies in flight, want 8 (the workers)", m)
	}
}

// exclusiveCluster counts, per key, the calls in flight: any two at once
// mean two workers were syncing the key.
type exclusiveCluster struct {
	*fakeCluster
	mu         sync.Mutex
	inFlight   map[api.ObjectKey]int
	violations atomic.Int32
}

func (e *exclusiveCluster) enter(k api.ObjectKey) func() {
	e.mu.Lock()
	e.inFlight[k]++
	if e.inFlight[k] > 1 {
		e.violations.Add(1)
	}
	e.mu.Unlock()
	runtime.Gosched() // give another worker the chance to enter
	return func() {
		e.mu.Lock()
		e.inFlight[k]--
		e.mu.Unlock()
	}
}

func (e *exclusiveCluster) Apply(ctx context.Context, w deploy.Work) error {
	defer e.enter(w.Key)()
	return e.fakeCluster.Apply(ctx, w)
}

func (e *exclusiveCluster) Delete(ctx context.Context, k api.ObjectKey) error {
	defer e.enter(k)()
	return e.fakeCluster.Delete(ctx, k)
}

func (e *exclusiveCluster) Status(ctx context.Context, k api.ObjectKey) (deploy.Status, error) {
	defer e.enter(k)()
	return e.fakeCluster.Status(ctx, k)
}

func TestReconcilerNeverSyncsAKeyTwiceAtOnce(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	ec := &exclusiveCluster{fakeCluster: newFakeCluster(clock), inFlight: map[api.ObjectKey]int{}}
	h := newReconciler(t, clock, ec, deploy.ReconcilerConfig{Workers: 8})
	h.run(t)

	// Four keys, desired over and over with new generations, some
	// dropped, while the cluster keeps signalling changes.
	rng := rand.New(rand.NewPCG(1, 2))
	var last []deploy.Work
	for gen := int64(1); gen <= 300; gen++ {
		last = last[:0]
		for i := range 4 {
			if rng.IntN(5) > 0 || gen == 300 {
				last = append(last, work(fmt.Sprint("k", i), "100m", "1Mi", gen, int32(rng.IntN(4))))
			}
		}
		h.r.SetDesired(last)
		select {
		case ec.changed <- struct{}{}:
		default:
		}
	}
	for _, w := range last {
		h.waitStatus(t, w.Key, "last generation applied", func(st deploy.Status) bool {
			return st.AppliedGeneration == w.Generation && st.Replicas == w.Replicas
		})
	}
	if n := ec.violations.Load(); n > 0 {
		t.Fatalf("a key was synced by two workers at once, %d times", n)
	}
	if n := h.rec.overlaps.Load(); n > 0 {
		t.Fatalf("Report was called concurrently %d times", n)
	}
}

func TestReconcilerReportsInBatches(t *testing.T) {
	clock := testingclock.NewFakeClock(epoch)
	fc := newFakeCluster(clock)
	h := newReconciler(t, clock, fc, deploy.ReconcilerConfig{Workers: 8})
	var works []deploy.Work
	for i := range 700 {
		works = append(works, deploy.Work{Key: configMapKey(fmt.Sprint("c", i)), Manifest: configMap(fmt.Sprint("c", i)), Generation: 1})
	}
	h.r.SetDesired(works) // before Run: all 700 wait in the queue at once
	h.run(t)
	for _, w := range works {
		h.waitStatus(t, w.Key, "reported", func(st deploy.Status) bool { return st.AppliedGeneration == 1 })
	}
	var sizes []int
	full := 0
	for i := range h.rec.callCount() {
		l := len(h.rec.call(i))
		sizes = append(sizes, l)
		if l == 256 {
			full++
		}
		if l > 256 {
			t.Fatalf("a report of %d statuses, more than 256: %v", l, sizes)
		}
	}
	// With one worker: 256, 256, 188. Workers finishing their last keys
	// after the queue ran dry may add a few small ones.
	if full != 2 || len(sizes) >= 30 {
		t.Fatalf("700 statuses reported in batches of %v: want two full batches and few others", sizes)
	}
}
