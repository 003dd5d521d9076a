package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// The mesh of these tests: regions eu-west (eu-1, eu-2) and us-east
// (us-1, us-2), and the edge region edge-shop (shop-1).

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus sec seconds.
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// peer is an answering peer's sample, following its region's leader.
func peer(sec float64, region, cluster string) Sample {
	return Sample{At: at(sec), Region: region, Cluster: cluster, Up: true,
		Status: &api.StatusView{Region: region, Cluster: cluster, State: "Follower", Term: 1}}
}

// down is the sample of a peer that did not answer.
func down(sec float64, region, cluster string) Sample {
	return Sample{At: at(sec), Region: region, Cluster: cluster}
}

func leader(sec float64, region, cluster string, term uint64) Sample {
	s := peer(sec, region, cluster)
	s.Status.State, s.Status.Term, s.Status.Leader = "Leader", term, cluster
	return s
}

func withSim(s Sample, objs ...api.SimObjectView) Sample {
	s.Sim = &api.SimulationView{Cluster: s.Cluster, Ready: true, Objects: objs}
	return s
}

func withWorkloads(s Sample, ws ...api.WorkloadView) Sample {
	s.Workloads = ws
	return s
}

func withClusters(s Sample, cs ...api.ClusterView) Sample {
	s.Clusters = cs
	return s
}

// configMap is a ConfigMap a simulated cluster holds.
func configMap(ns, name, uid string) api.SimObjectView {
	return api.SimObjectView{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name, UID: uid, Created: t0, Generation: 1}
}

// deployment is a Deployment default/name a simulated cluster runs.
func deployment(name, uid string, replicas, ready int32) api.SimObjectView {
	return api.SimObjectView{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: name, UID: uid,
		Created: t0, Generation: 1, Replicas: &replicas, Ready: &ready}
}

// configMapWorkload is the workload of a harness write.
func configMapWorkload(ns, name string) api.WorkloadView {
	return api.WorkloadView{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name, Generation: 1, WithoutReplicas: true}
}

// deploymentWorkload is Deployment default/name desiring desired replicas
// on the placements ps.
func deploymentWorkload(name string, desired int32, ps ...api.PlacementView) api.WorkloadView {
	w := api.WorkloadView{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: name, Generation: 1,
		DesiredReplicas: desired, Placements: ps}
	for _, p := range ps {
		if !p.Evicting {
			w.BoundReplicas += p.Replicas
			w.ReadyReplicas += p.ReadyReplicas
			w.BoundClusters++
		}
	}
	return w
}

// place is a Healthy placement unless ready falls short of replicas.
func place(cluster, region string, replicas, ready int32) api.PlacementView {
	health := "Healthy"
	if ready < replicas {
		health = "Progressing"
	}
	return api.PlacementView{Cluster: cluster, Region: region, Replicas: replicas, ReadyReplicas: ready, Health: health, AppliedGeneration: 1}
}

func clusterView(name, region, health, age string) api.ClusterView {
	return api.ClusterView{Name: name, Region: region, Health: health, Age: age}
}

func fault(sec float64, kind EventKind, id int, clusters ...string) Event {
	return Event{At: at(sec), Kind: kind, ID: id, Clusters: clusters}
}

func regionFault(sec float64, kind EventKind, id int, regions ...string) Event {
	return Event{At: at(sec), Kind: kind, ID: id, Regions: regions}
}

func heal(sec float64, ids ...int) Event { return Event{At: at(sec), Kind: EventHeal, Heals: ids} }

func write(sec float64, key, value, via string) Event {
	return Event{At: at(sec), Kind: EventWrite, Key: key, Value: value, Via: via}
}

func del(sec float64, key, via string) Event {
	return Event{At: at(sec), Kind: EventDelete, Key: key, Via: via}
}

func final(sec float64) Final { return Final{At: at(sec)} }

// run hands the history (Events and Samples, in time order) to c and
// returns what Finish returns for f.
func run(t *testing.T, c Checker, f Final, history ...any) []Violation {
	t.Helper()
	for _, h := range history {
		switch h := h.(type) {
		case Event:
			c.Event(h)
		case Sample:
			c.Observe(h)
		default:
			t.Fatalf("history holds a %T", h)
		}
	}
	return c.Finish(f)
}

func wantNone(t *testing.T, vs []Violation) {
	t.Helper()
	if len(vs) > 0 {
		t.Fatalf("want no violation, got %d:\n%s", len(vs), show(vs))
	}
}

// want checks that exactly n violations were found and that one of them
// says every part, with evidence.
func want(t *testing.T, vs []Violation, n int, parts ...string) {
	t.Helper()
	if len(vs) != n {
		t.Fatalf("want %d violations, got %d:\n%s", n, len(vs), show(vs))
	}
	for _, v := range vs {
		found := true
		for _, p := range parts {
			found = found && strings.Contains(v.Message, p)
		}
		if found {
			if v.Evidence == "" || v.At.IsZero() {
				t.Fatalf("violation %q has no evidence or no time", v.Message)
			}
			return
		}
	}
	t.Fatalf("no violation says all of %q:\n%s", parts, show(vs))
}

func show(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "  %s: %s\n    evidence: %s\n", clock(v.At), v.Message, v.Evidence)
	}
	return b.String()
}

func TestDefaultCheckers(t *testing.T) {
	cs := DefaultCheckers(CheckParams{Recover: time.Minute, Settle: 10 * time.Second, Autonomy: time.Minute,
		StatusBound: 15 * time.Second, Guarded: []string{"Deployment default/db"}})
	names := []string{"writes-kept", "one-leader-per-term", "recovery", "no-delete-while-cut-off", "no-edge-churn",
		"guarded-once", "no-stale-ready", "no-resurrection", "converged"}
	if len(cs) != len(names) {
		t.Fatalf("%d checkers, want %d", len(cs), len(names))
	}
	for i, c := range cs {
		if c.Name() != names[i] || c.Promise() == "" {
			t.Errorf("checker %d is %q (promise %q), want %q", i, c.Name(), c.Promise(), names[i])
		}
		if _, ok := c.(Counter); !ok {
			t.Errorf("%s is not a Counter", c.Name())
		}
	}
	if _, ok := cs[2].(RecoveryChecker); !ok {
		t.Errorf("recovery is not a RecoveryChecker")
	}
}

// TestDefaultCheckersCleanRun runs every checker over one clean history:
// a write, a cut of eu-1 healed, the mesh Ready again, converged.
func TestDefaultCheckersCleanRun(t *testing.T) {
	web := func(ready int32) api.WorkloadView {
		return deploymentWorkload("web", 3, place("eu-1", "eu-west", 2, min(ready, 2)), place("us-1", "us-east", 1, max(ready-2, 0)))
	}
	view := func(sec float64, region, cluster string, ready int32, objs ...api.SimObjectView) Sample {
		s := withWorkloads(peer(sec, region, cluster), web(ready), configMapWorkload("default", "k"))
		s = withClusters(s, clusterView("eu-1", "eu-west", "Ready", ""), clusterView("us-1", "us-east", "Ready", "2s"))
		return withSim(s, objs...)
	}
	eu := func(sec float64, ready int32) Sample {
		return view(sec, "eu-west", "eu-1", ready, configMap("default", "k", "c1"), deployment("web", "w1", 2, min(ready, 2)))
	}
	us := func(sec float64, ready int32) Sample {
		return view(sec, "us-east", "us-1", ready, configMap("default", "k", "c2"), deployment("web", "w2", 1, max(ready-2, 0)))
	}
	f := Final{At: at(60), Objects: map[string]map[string]string{"eu-west": {"default/k": "v"}, "us-east": {"default/k": "v"}},
		Digests: map[string]string{"eu-west": "d1", "us-east": "d1"}, Samples: []Sample{eu(60, 3), us(60, 3)}}
	history := []any{
		eu(1, 3), us(1, 3), write(2, "default/k", "v", "eu-1"), leader(3, "eu-west", "eu-1", 2),
		fault(10, EventCut, 1, "eu-1"), eu(12, 3), us(12, 3), heal(20, 1), us(21, 2), us(25, 3), eu(30, 3),
	}
	for _, c := range DefaultCheckers(CheckParams{Recover: 10 * time.Second, Settle: 5 * time.Second, Autonomy: time.Minute,
		StatusBound: 15 * time.Second, Guarded: []string{"Deployment default/web"}}) {
		t.Run(c.Name(), func(t *testing.T) {
			if c.Name() == "guarded-once" {
				c = NewGuardedOnce(nil) // web runs on two clusters on purpose
			}
			wantNone(t, run(t, c, f, history...))
		})
	}
}

func TestViolationsCapped(t *testing.T) {
	c := NewOneLeaderPerTerm()
	var history []any
	for term := range uint64(MaxViolations + 20) {
		history = append(history, leader(float64(term), "eu-west", "eu-1", term), leader(float64(term), "eu-west", "eu-2", term))
	}
	vs := run(t, c, final(1000), history...)
	if len(vs) != MaxViolations || c.(Counter).Count() != MaxViolations+20 {
		t.Fatalf("kept %d violations and counted %d, want %d and %d", len(vs), c.(Counter).Count(), MaxViolations, MaxViolations+20)
	}
}

func TestWritesKept(t *testing.T) {
	history := []any{
		write(1, "default/a", "v1", "eu-1"), write(2, "default/a", "v2", "us-1"),
		write(3, "default/b", "x", "eu-2"), del(4, "default/b", "us-2"),
	}
	objects := func(eu, us map[string]string) Final {
		return Final{At: at(10), Objects: map[string]map[string]string{"eu-west": eu, "us-east": us}}
	}
	tests := []struct {
		name  string
		final Final
		parts []string // empty: no violation
	}{
		{"kept", objects(map[string]string{"default/a": "v2"}, map[string]string{"default/a": "v2", "default/c": "other"}), nil},
		{"older value", objects(map[string]string{"default/a": "v2"}, map[string]string{"default/a": "v1"}),
			[]string{"default/a", "us-east", `expected "v2", found "v1"`}},
		{"lost", objects(map[string]string{}, map[string]string{"default/a": "v2"}),
			[]string{"default/a", "eu-west", "found absent"}},
		{"deleted back", objects(map[string]string{"default/a": "v2", "default/b": "x"}, map[string]string{"default/a": "v2"}),
			[]string{"deleted key default/b", "eu-west", "expected absent"}},
		{"no region read", final(10), []string{"could not be checked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := run(t, NewWritesKept(), tt.final, history...)
			if tt.parts == nil {
				wantNone(t, vs)
				return
			}
			want(t, vs, 1, tt.parts...)
			if tt.name == "older value" && !strings.Contains(vs[0].Evidence, "us-1") {
				t.Errorf("evidence %q does not name the peer that acknowledged the write", vs[0].Evidence)
			}
		})
	}
}

func TestOneLeaderPerTerm(t *testing.T) {
	t.Run("one leader per term", func(t *testing.T) {
		wantNone(t, run(t, NewOneLeaderPerTerm(), final(10),
			leader(1, "eu-west", "eu-1", 2), leader(1, "us-east", "us-1", 2), peer(1, "eu-west", "eu-2"),
			leader(2, "eu-west", "eu-1", 2), leader(3, "eu-west", "eu-2", 3),
			// a deposed leader that has not heard of the new term yet
			leader(3, "eu-west", "eu-1", 2), down(4, "eu-west", "eu-1")))
	})
	t.Run("two leaders in a term", func(t *testing.T) {
		vs := run(t, NewOneLeaderPerTerm(), final(10),
			leader(1, "eu-west", "eu-1", 4), leader(2, "eu-west", "eu-2", 4), leader(3, "eu-west", "eu-2", 4),
			leader(3, "eu-west", "eu-1", 4))
		want(t, vs, 1, "eu-west", "term 4", "eu-1, eu-2")
	})
	t.Run("in the final samples", func(t *testing.T) {
		f := final(10)
		f.Samples = []Sample{leader(10, "us-east", "us-2", 7)}
		want(t, run(t, NewOneLeaderPerTerm(), f, leader(1, "us-east", "us-1", 7)), 1, "us-east", "term 7")
	})
}

func TestNoResurrection(t *testing.T) {
	shows := func(sec float64, keys ...string) Sample {
		s := peer(sec, "us-east", "us-1")
		for _, k := range keys {
			ns, name, _ := strings.Cut(k, "/")
			s.Workloads = append(s.Workloads, configMapWorkload(ns, name))
		}
		return s
	}
	t.Run("deleted stays deleted", func(t *testing.T) {
		f := final(20)
		f.Objects = map[string]map[string]string{"us-east": {"default/a": "again"}}
		wantNone(t, run(t, NewNoResurrection(), f,
			write(1, "default/a", "v", "eu-1"), shows(2, "default/a"), del(10, "default/a", "eu-1"),
			shows(11, "default/a"), // not caught up yet
			shows(12), shows(13), down(14, "us-east", "us-1"),
			write(15, "default/a", "again", "eu-1"), shows(16, "default/a")))
	})
	t.Run("written again, shown before the write is acknowledged", func(t *testing.T) {
		wantNone(t, run(t, NewNoResurrection(), final(20),
			write(1, "default/a", "v", "eu-1"), del(10, "default/a", "eu-1"), shows(12),
			Event{At: at(13), Kind: EventAttempt, Key: "default/a", Value: "again"}, shows(13.5, "default/a"),
			write(14, "default/a", "again", "eu-1")))
	})
	t.Run("a write still on its way shows after a delete the peer never showed", func(t *testing.T) {
		wantNone(t, run(t, NewNoResurrection(), final(20),
			write(1, "default/a", "v", "eu-1"), del(10, "default/a", "eu-1"), shows(12), shows(13, "default/a"), shows(14)))
	})
	t.Run("a sample begun before the delete is no sign of it", func(t *testing.T) {
		// Read before the delete was acknowledged, handled after: the
		// absence shown is the write's own (not yet there), not the delete.
		wantNone(t, run(t, NewNoResurrection(), final(20),
			write(1, "default/a", "v", "eu-1"), shows(2, "default/a"), del(10, "default/a", "eu-1"), shows(9.5), shows(11, "default/a")))
	})
	t.Run("a delete on its way does not excuse a comeback", func(t *testing.T) {
		vs := run(t, NewNoResurrection(), final(20),
			write(1, "default/a", "v", "eu-1"), shows(2, "default/a"), del(10, "default/a", "eu-1"), shows(12),
			Event{At: at(13), Kind: EventAttempt, Key: "default/a", Detail: "delete"}, shows(13.5, "default/a"))
		want(t, vs, 1, "default/a", "us-1")
	})
	t.Run("comes back on a peer", func(t *testing.T) {
		vs := run(t, NewNoResurrection(), final(20),
			write(1, "default/a", "v", "eu-1"), shows(2, "default/a"), del(10, "default/a", "eu-1"), shows(12), shows(13, "default/a"), shows(14, "default/a"))
		want(t, vs, 1, "default/a", "us-1")
	})
	t.Run("back at the end", func(t *testing.T) {
		f := final(20)
		f.Objects = map[string]map[string]string{"eu-west": {}, "us-east": {"default/a": "v"}}
		want(t, run(t, NewNoResurrection(), f, del(10, "default/a", "eu-1")), 1, "default/a", "us-east")
	})
}
