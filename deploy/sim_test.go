package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
)

const gi = int64(1) << 30

func newSim(t *testing.T, cfg deploy.SimConfig) (*deploy.SimCluster, *testingclock.FakeClock) {
	t.Helper()
	clock := testingclock.NewFakeClock(epoch)
	cfg.Clock = clock
	s, err := deploy.NewSimCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, clock
}

func mustApply(t *testing.T, c deploy.Cluster, w deploy.Work) {
	t.Helper()
	if err := c.Apply(context.Background(), w); err != nil {
		t.Fatalf("apply %s: %v", w.Key.Display(), err)
	}
}

func mustStatus(t *testing.T, c deploy.Cluster, k api.ObjectKey) deploy.Status {
	t.Helper()
	st, err := c.Status(context.Background(), k)
	if err != nil {
		t.Fatalf("status %s: %v", k.Display(), err)
	}
	return st
}

func work(name, cpu, memory string, gen int64, replicas int32) deploy.Work {
	return deploy.Work{Key: deploymentKey(name), Manifest: deployment(name, cpu, memory), Generation: gen, HasReplicas: true, Replicas: replicas}
}

func TestSimConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  deploy.SimConfig
		ok   bool
	}{
		{"zero takes defaults", deploy.SimConfig{}, true},
		{"defaults", deploy.DefaultSimConfig(), true},
		{"negative nodes", deploy.SimConfig{Nodes: -1}, false},
		{"negative cpu", deploy.SimConfig{NodeCPUMilli: -1}, false},
		{"negative memory", deploy.SimConfig{NodeMemoryBytes: -1}, false},
		{"negative pods", deploy.SimConfig{NodePods: -1}, false},
		{"negative delay", deploy.SimConfig{ReadyDelay: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if _, err := deploy.NewSimCluster(tc.cfg); (err == nil) != tc.ok {
				t.Fatalf("NewSimCluster() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestSimReplicasReadyAfterDelay(t *testing.T) {
	s, clock := newSim(t, deploy.SimConfig{ReadyDelay: 200 * time.Millisecond})
	w := work("web", "500m", "256Mi", 1, 3)
	mustApply(t, s, w)
	<-s.Changed()

	st := mustStatus(t, s, w.Key)
	want := deploy.Status{Key: w.Key, AppliedGeneration: 1, Replicas: 3, ReadyReplicas: 0, Health: deploy.HealthProgressing, Reason: "0/3 replicas ready"}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("just applied: got %+v, want %+v", st, want)
	}
	clock.Step(199 * time.Millisecond)
	if st := mustStatus(t, s, w.Key); st.ReadyReplicas != 0 {
		t.Fatalf("ready before the delay: %+v", st)
	}
	clock.Step(time.Millisecond)
	want.ReadyReplicas, want.Health, want.Reason = 3, deploy.HealthHealthy, ""
	if st := mustStatus(t, s, w.Key); !reflect.DeepEqual(st, want) {
		t.Fatalf("after the delay: got %+v, want %+v", st, want)
	}
	select {
	case <-s.Changed():
	default:
		t.Fatal("readiness did not signal Changed")
	}
}

func TestSimPending(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		cpu, memory             string
		replicas                int32
		wantPlaced, wantPending int32
		wantReason              string
	}{
		{"larger than any node", "5", "1Gi", 2, 0, 2, "2/2 replicas Pending: insufficient cpu"},
		{"partly fits", "3", "1Gi", 4, 3, 1, "1/4 replicas Pending: insufficient cpu"},
		{"memory", "100m", "5Gi", 4, 3, 1, "1/4 replicas Pending: insufficient memory"},
		{"both", "3", "7Gi", 4, 3, 1, "1/4 replicas Pending: insufficient cpu, memory"},
		{"pods", "1m", "1Mi", 8, 6, 2, "2/8 replicas Pending: insufficient pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := newSim(t, deploy.SimConfig{Nodes: 3, NodeCPUMilli: 4000, NodeMemoryBytes: 8 * gi, NodePods: 2})
			w := work("big", tc.cpu, tc.memory, 1, tc.replicas)
			mustApply(t, s, w)
			clock.Step(time.Second)
			st := mustStatus(t, s, w.Key)
			if st.Health != deploy.HealthUnhealthy || st.Reason != tc.wantReason || st.ReadyReplicas != tc.wantPlaced {
				t.Fatalf("got %+v, want Unhealthy %q with %d ready", st, tc.wantReason, tc.wantPlaced)
			}
			o := s.Objects()[w.Key]
			if o.Placed != tc.wantPlaced || o.Pending != tc.wantPending {
				t.Fatalf("placed/pending = %d/%d, want %d/%d", o.Placed, o.Pending, tc.wantPlaced, tc.wantPending)
			}
		})
	}
}

func TestSimCapacity(t *testing.T) {
	s, _ := newSim(t, deploy.SimConfig{Nodes: 2, NodeCPUMilli: 4000, NodeMemoryBytes: 8 * gi, NodePods: 110})
	ctx := context.Background()
	res := func(cpu, mem, pods int64) *shoalpb.Resources {
		return &shoalpb.Resources{CpuMilli: cpu, MemoryBytes: mem, Pods: pods}
	}
	check := func(what string, available *shoalpb.Resources) {
		t.Helper()
		c, err := s.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.GetNodes() != 2 || !sameRes(c.GetAllocatable(), res(8000, 16*gi, 220)) ||
			!sameRes(c.GetMaxNode(), res(4000, 8*gi, 110)) || !sameRes(c.GetAvailable(), available) {
			t.Fatalf("%s: capacity %v, want 2 nodes, available %v", what, c, available)
		}
	}
	check("empty", res(8000, 16*gi, 220))
	mustApply(t, s, work("a", "1", "1Gi", 1, 3))
	mustApply(t, s, deploy.Work{Key: configMapKey("cfg"), Manifest: configMap("cfg"), Generation: 1})
	check("three replicas", res(5000, 13*gi, 217))
	mustApply(t, s, work("b", "3", "1Gi", 1, 2)) // one fits beside a, the other is Pending
	check("b placed once", res(2000, 12*gi, 216))
	if err := s.Delete(ctx, deploymentKey("a")); err != nil {
		t.Fatal(err)
	}
	// b's pending replica now fits.
	check("a deleted", res(2000, 14*gi, 218))
	if o := s.Objects()[deploymentKey("b")]; o.Placed != 2 || o.Pending != 0 {
		t.Fatalf("b not placed after capacity freed: %+v", o)
	}
}

func sameRes(a, b *shoalpb.Resources) bool {
	return a.GetCpuMilli() == b.GetCpuMilli() && a.GetMemoryBytes() == b.GetMemoryBytes() && a.GetPods() == b.GetPods()
}

func TestSimScale(t *testing.T) {
	// Two nodes that take one replica each.
	s, clock := newSim(t, deploy.SimConfig{Nodes: 2, NodeCPUMilli: 1000})
	k := deploymentKey("web")
	step := func(replicas int32, wantPlaced, wantPending, wantReady int32) {
		t.Helper()
		mustApply(t, s, work("web", "600m", "1Mi", 1, replicas))
		o := s.Objects()[k]
		if o.Replicas != replicas || o.Placed != wantPlaced || o.Pending != wantPending || o.Ready != wantReady {
			t.Fatalf("scale to %d: got %+v, want placed %d pending %d ready %d", replicas, o, wantPlaced, wantPending, wantReady)
		}
	}
	step(1, 1, 0, 0)
	clock.Step(time.Second)
	step(4, 2, 2, 1)
	step(3, 2, 1, 1) // a Pending replica goes first
	clock.Step(time.Second)
	step(2, 2, 0, 2)
	step(1, 1, 0, 1)
	step(0, 0, 0, 0)
	if st := mustStatus(t, s, k); st.Health != deploy.HealthHealthy || st.Replicas != 0 {
		t.Fatalf("scaled to zero: %+v", st)
	}

	// A Pending replica of another object is placed when capacity frees up.
	step(2, 2, 0, 0)
	other := work("other", "600m", "1Mi", 1, 1)
	mustApply(t, s, other)
	if st := mustStatus(t, s, other.Key); st.Reason != "1/1 replicas Pending: insufficient cpu" {
		t.Fatalf("other: %+v", st)
	}
	step(1, 1, 0, 0)
	clock.Step(time.Second)
	if st := mustStatus(t, s, other.Key); st.Health != deploy.HealthHealthy || st.ReadyReplicas != 1 {
		t.Fatalf("other after capacity freed: %+v", st)
	}
}

func TestSimSetReady(t *testing.T) {
	s, clock := newSim(t, deploy.SimConfig{})
	ctx := context.Background()
	w := work("web", "100m", "1Mi", 1, 2)
	mustApply(t, s, w)
	clock.Step(time.Second)
	<-s.Changed()

	s.SetReady(false)
	<-s.Changed()
	h, reason, err := s.Health(ctx)
	if err != nil || h != shoalpb.Health_HEALTH_NOT_READY || reason != "simulated: set NotReady" {
		t.Fatalf("Health() = %v %q %v", h, reason, err)
	}
	st := mustStatus(t, s, w.Key)
	if st.ReadyReplicas != 0 || st.Health != deploy.HealthUnhealthy || st.Reason != "cluster NotReady: 0/2 replicas ready" {
		t.Fatalf("status while NotReady: %+v", st)
	}
	if c, _ := s.Capacity(ctx); c.GetNodes() != 0 || c.GetAvailable().GetCpuMilli() != 0 {
		t.Fatalf("capacity while NotReady: %v", c)
	}
	if err := s.Apply(ctx, work("web", "100m", "1Mi", 1, 3)); !errors.Is(err, deploy.ErrUnavailable) {
		t.Fatalf("Apply while NotReady = %v, want ErrUnavailable", err)
	}
	if err := s.Delete(ctx, w.Key); !errors.Is(err, deploy.ErrUnavailable) {
		t.Fatalf("Delete while NotReady = %v, want ErrUnavailable", err)
	}
	if keys, err := s.List(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("List while NotReady = %v %v", keys, err)
	}
	clock.Step(time.Second)
	if st := mustStatus(t, s, w.Key); st.ReadyReplicas != 0 {
		t.Fatalf("replicas became ready while NotReady: %+v", st)
	}

	s.SetReady(true)
	if h, _, _ := s.Health(ctx); h != shoalpb.Health_HEALTH_READY {
		t.Fatalf("Health() = %v after SetReady(true)", h)
	}
	clock.Step(time.Second)
	if st := mustStatus(t, s, w.Key); st.ReadyReplicas != 2 || st.Health != deploy.HealthHealthy {
		t.Fatalf("after SetReady(true): %+v", st)
	}
}

func TestSimGenerationChangeRecreates(t *testing.T) {
	s, clock := newSim(t, deploy.SimConfig{})
	w := work("web", "100m", "1Mi", 1, 3)
	mustApply(t, s, w)
	clock.Step(time.Second)
	mustApply(t, s, w) // same generation: nothing changes
	if st := mustStatus(t, s, w.Key); st.ReadyReplicas != 3 {
		t.Fatalf("re-applying the same generation disturbed replicas: %+v", st)
	}

	w2 := work("web", "200m", "1Mi", 2, 3)
	mustApply(t, s, w2)
	st := mustStatus(t, s, w.Key)
	if st.AppliedGeneration != 2 || st.ReadyReplicas != 0 || st.Health != deploy.HealthProgressing {
		t.Fatalf("just after the new generation: %+v", st)
	}
	if c, _ := s.Capacity(context.Background()); c.GetAvailable().GetCpuMilli() != 12000-600 {
		t.Fatalf("old replicas' requests not released: available %v", c.GetAvailable())
	}
	clock.Step(time.Second)
	if st := mustStatus(t, s, w.Key); st.ReadyReplicas != 3 || st.Health != deploy.HealthHealthy {
		t.Fatalf("after rollout: %+v", st)
	}

	o := s.Objects()[w.Key]
	var m struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			Replicas int32 `json:"replicas"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(o.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if o.Generation != 2 || m.Spec.Replicas != 3 || m.Metadata.Labels[deploy.ManagedByLabel] != deploy.ManagedByValue ||
		m.Metadata.Labels["app"] != "web" || m.Metadata.Annotations[deploy.GenerationAnnotation] != "2" {
		t.Fatalf("applied manifest: generation %d, %s", o.Generation, o.Manifest)
	}
}

func TestSimObjectWithoutReplicas(t *testing.T) {
	s, _ := newSim(t, deploy.SimConfig{})
	ctx := context.Background()
	k := configMapKey("cfg")
	if _, err := s.Status(ctx, k); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("Status of absent object = %v, want ErrNotFound", err)
	}
	mustApply(t, s, deploy.Work{Key: k, Manifest: configMap("cfg"), Generation: 4})
	want := deploy.Status{Key: k, AppliedGeneration: 4, Health: deploy.HealthHealthy}
	if st := mustStatus(t, s, k); !reflect.DeepEqual(st, want) {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	if keys, _ := s.List(ctx); !slices.Equal(keys, []api.ObjectKey{k}) {
		t.Fatalf("List() = %v", keys)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatalf("deleting an absent object: %v", err)
	}
	if _, err := s.Status(ctx, k); !errors.Is(err, deploy.ErrNotFound) {
		t.Fatalf("Status after Delete = %v, want ErrNotFound", err)
	}
}

func TestSimRejectsBadWork(t *testing.T) {
	s, _ := newSim(t, deploy.SimConfig{})
	for _, tc := range []struct {
		name string
		w    deploy.Work
	}{
		{"not JSON", deploy.Work{Key: configMapKey("x"), Manifest: []byte("{")}},
		{"other key", deploy.Work{Key: configMapKey("x"), Manifest: configMap("y")}},
		{"negative replicas", work("web", "1", "1Mi", 1, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Apply(context.Background(), tc.w); err == nil {
				t.Fatal("Apply succeeded")
			}
		})
	}
	if len(s.Objects()) != 0 {
		t.Fatalf("bad work left objects: %v", s.Objects())
	}
}

// The fake clock runs AfterFunc callbacks with its own lock held, while
// Apply holds the sim's lock and arms timers: a callback that took the
// sim's lock would deadlock against a concurrent Apply.
func TestSimClockStepsWhileApplying(t *testing.T) {
	s, clock := newSim(t, deploy.SimConfig{ReadyDelay: time.Millisecond})
	ctx := context.Background()
	stop, stepped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stepped)
		for {
			select {
			case <-stop:
				return
			default:
				clock.Step(time.Millisecond)
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		for i := range 2000 {
			if err := s.Apply(ctx, work("web", "10m", "1Mi", int64(i%3), int32(i%5))); err != nil {
				done <- err
				return
			}
			_, _ = s.Status(ctx, deploymentKey("web"))
			if i%7 == 0 {
				if err := s.Delete(ctx, deploymentKey("web")); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Apply and the fake clock deadlocked")
	}
	close(stop)
	<-stepped
}
