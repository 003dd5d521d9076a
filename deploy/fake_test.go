package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
)

// fakeCluster is a scriptable deploy.Cluster: Apply can fail a number of
// times or block on a gate, and statuses can be changed from the test.
type fakeCluster struct {
	clock   *testingclock.FakeClock
	changed chan struct{}

	mu         sync.Mutex
	objs       map[api.ObjectKey]deploy.Status
	failApply  int           // Apply calls left to fail
	gate       chan struct{} // if set, Apply waits for it to close
	entered    chan struct{} // closed when Apply first waits on gate
	applies    []deploy.Work
	applyTimes []time.Time
	deletes    []api.ObjectKey
	releases   []api.ObjectKey
	foreign    map[api.ObjectKey]bool // objects that exist but are not Shoal's
	lists      int
	statusOf   map[api.ObjectKey]int // Status calls per key
}

var _ deploy.Cluster = (*fakeCluster)(nil)

func newFakeCluster(clock *testingclock.FakeClock) *fakeCluster {
	return &fakeCluster{
		clock:    clock,
		changed:  make(chan struct{}, 1),
		objs:     map[api.ObjectKey]deploy.Status{},
		foreign:  map[api.ObjectKey]bool{},
		statusOf: map[api.ObjectKey]int{},
	}
}

func (f *fakeCluster) Apply(ctx context.Context, w deploy.Work) error {
	f.mu.Lock()
	f.applies = append(f.applies, w)
	f.applyTimes = append(f.applyTimes, f.clock.Now())
	gate, entered := f.gate, f.entered
	f.entered = nil
	f.mu.Unlock()
	if gate != nil {
		if entered != nil {
			close(entered)
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failApply > 0 {
		f.failApply--
		return errors.New("boom")
	}
	if f.foreign[w.Key] {
		if w.ConflictResolution != deploy.ConflictOverwrite {
			return fmt.Errorf("%s %w", w.Key.Display(), deploy.ErrConflict)
		}
		delete(f.foreign, w.Key) // adopted
	}
	f.objs[w.Key] = deploy.Status{Key: w.Key, AppliedGeneration: w.Generation, Replicas: w.Replicas, ReadyReplicas: w.Replicas, Health: deploy.HealthHealthy}
	return nil
}

func (f *fakeCluster) Delete(ctx context.Context, k api.ObjectKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, k)
	delete(f.objs, k)
	return nil
}

// Release forgets the object as Shoal's: it stays in the cluster as a
// foreign one.
func (f *fakeCluster) Release(ctx context.Context, k api.ObjectKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases = append(f.releases, k)
	if _, ok := f.objs[k]; ok {
		delete(f.objs, k)
		f.foreign[k] = true
	}
	return nil
}

func (f *fakeCluster) List(ctx context.Context) ([]api.ObjectKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	var keys []api.ObjectKey
	for k := range f.objs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b api.ObjectKey) int { return strings.Compare(a.String(), b.String()) })
	return keys, nil
}

func (f *fakeCluster) Status(ctx context.Context, k api.ObjectKey) (deploy.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusOf[k]++
	st, ok := f.objs[k]
	if !ok {
		return deploy.Status{}, fmt.Errorf("%s: %w", k.Display(), deploy.ErrNotFound)
	}
	return st, nil
}

func (f *fakeCluster) Health(context.Context) (shoalpb.Health, string, error) {
	return shoalpb.Health_HEALTH_READY, "fake", nil
}

func (f *fakeCluster) Capacity(context.Context) (*shoalpb.Capacity, error) {
	return &shoalpb.Capacity{}, nil
}

func (f *fakeCluster) Changed() <-chan struct{} { return f.changed }

// setStatus changes an object behind the reconciler's back and signals it.
func (f *fakeCluster) setStatus(st deploy.Status) {
	f.mu.Lock()
	f.objs[st.Key] = st
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeCluster) counts() (applies, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applies), f.lists
}

func (f *fakeCluster) statusCalls(k api.ObjectKey) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statusOf[k]
}

// recorder collects what a Reconciler reports, and counts the calls that
// overlapped another.
type recorder struct {
	reporting atomic.Int32
	overlaps  atomic.Int32

	mu      sync.Mutex
	calls   [][]deploy.Status
	latest  map[api.ObjectKey]deploy.Status
	removed []api.ObjectKey
}

func newRecorder() *recorder { return &recorder{latest: map[api.ObjectKey]deploy.Status{}} }

func (r *recorder) report(statuses []deploy.Status, removed []api.ObjectKey) {
	if r.reporting.Add(1) > 1 {
		r.overlaps.Add(1)
	}
	defer r.reporting.Add(-1)
	runtime.Gosched() // give another call the chance to overlap
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, slices.Clone(statuses))
	for _, st := range statuses {
		r.latest[st.Key] = st
	}
	for _, k := range removed {
		delete(r.latest, k)
		r.removed = append(r.removed, k)
	}
}

func (r *recorder) status(k api.ObjectKey) (deploy.Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.latest[k]
	return st, ok
}

func (r *recorder) wasRemoved(k api.ObjectKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.removed, k)
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) call(i int) []deploy.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[i]
}
