package chaos

import (
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// eu1 is eu-1's sample with its simulated cluster holding objs.
func eu1(sec float64, objs ...api.SimObjectView) Sample {
	return withSim(peer(sec, "eu-west", "eu-1"), objs...)
}

func TestNoDeleteWhileCutOffLeavesGuardedWorkloadsToTheGuard(t *testing.T) {
	web := deployment("web", "w1", 2, 2)
	history := []any{eu1(1, web), fault(10, EventCut, 1, "eu-1"), eu1(12)}
	want(t, run(t, NewNoDeleteWhileCutOff(5*time.Second), final(60), history...), 1, "Deployment default/web", "eu-1")
	wantNone(t, run(t, NewNoDeleteWhileCutOff(5*time.Second, "Deployment default/web"), final(60), history...))
}

func TestNoDeleteWhileCutOff(t *testing.T) {
	cm := configMap("default", "a", "c1")
	web := deployment("web", "w1", 2, 2)
	tests := []struct {
		name    string
		history []any
		parts   []string // empty: no violation
	}{
		{"harness deletes and rewrites, mesh moves web after settling", []any{
			eu1(1, cm, web), fault(10, EventCut, 1, "eu-1"), eu1(12, cm, web), heal(20, 1),
			del(22, "default/a", "us-1"), eu1(23, web), write(24, "default/a", "v", "us-1"),
			eu1(26, configMap("default", "a", "c2"), web),
			eu1(30, configMap("default", "a", "c2")), // moved away once settled
		}, nil},
		{"a fault that does not cut the cluster off", []any{
			eu1(1, cm, web), fault(10, EventDelay, 1, "eu-1"), fault(11, EventCut, 2, "us-1"), eu1(12, cm),
		}, nil},
		{"deleted while cut off", []any{
			eu1(1, cm, web), fault(10, EventCut, 1, "eu-1"), eu1(12, cm, web), eu1(15, cm), eu1(16, cm),
		}, []string{"Deployment default/web", "eu-1", "deleted"}},
		{"deleted while settling", []any{
			eu1(1, cm, web), fault(10, EventNotReady, 1, "eu-1"), heal(20, 1), eu1(23, cm),
		}, []string{"Deployment default/web", "eu-1"}},
		{"deleted while its peer was down, seen once settled", []any{
			eu1(1, cm, web), fault(10, EventKill, 1, "eu-1"), down(12, "eu-west", "eu-1"), heal(20, 1), eu1(40, web),
		}, []string{"ConfigMap default/a", "eu-1"}},
		{"moved by its own leader while its region was cut from the others", []any{
			withSim(peer(1, "eu-west", "eu-2"), web), regionFault(10, EventCut, 1, "eu-west"),
			withSim(peer(12, "eu-west", "eu-2")),
		}, nil},
		{"recreated behind the harness's back", []any{
			eu1(1, cm, web), eu1(5, cm, deployment("web", "w2", 2, 2)),
		}, []string{"Deployment default/web", "recreated on eu-1", "w1", "w2"}},
		{"recreated after a restart", []any{
			eu1(1, cm, web), fault(10, EventRestart, 1, "eu-1"), eu1(12, configMap("default", "a", "c9"), web),
		}, []string{"ConfigMap default/a", "recreated"}},
		{"deleted by the harness under another form of its key", []any{
			eu1(1, cm, web), fault(10, EventCut, 1, "eu-1"), del(11, "Deployment/default/web", "us-1"), eu1(12, cm),
			eu1(13, cm, deployment("web", "w3", 2, 2)), del(14, "Deployment default/web", "us-1"), eu1(15, cm),
			eu1(16, cm, deployment("web", "w4", 2, 2)), del(17, "apps/v1/Deployment/default/web", "us-1"), eu1(18, cm),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := run(t, NewNoDeleteWhileCutOff(5*time.Second), final(60), tt.history...)
			if tt.parts == nil {
				wantNone(t, vs)
				return
			}
			want(t, vs, 1, tt.parts...)
		})
	}
}

func TestGuardedOnce(t *testing.T) {
	db := func(ready int32) api.SimObjectView {
		o := deployment("db", "d1", 1, ready)
		o.Kind = "StatefulSet"
		return o
	}
	view := func(s Sample) Sample {
		w := deploymentWorkload("db", 1, place("eu-1", "eu-west", 1, 1))
		w.Kind = "StatefulSet"
		return withWorkloads(s, w)
	}
	guarded := []string{"StatefulSet default/db"}
	t.Run("moved once the old copy stopped", func(t *testing.T) {
		wantNone(t, run(t, NewGuardedOnce(guarded), final(60),
			// before any view shows the desired count, nothing is judged
			withSim(peer(1, "eu-west", "eu-2"), db(1)), eu1(1.2, db(1)), withSim(peer(1.5, "eu-west", "eu-2")),
			view(eu1(2, db(1))),
			fault(10, EventCut, 1, "eu-1"), eu1(12, db(0)), view(withSim(peer(14, "eu-west", "eu-2"), db(0))),
			view(withSim(peer(16, "eu-west", "eu-2"), db(1)))))
	})
	t.Run("two copies while the first one's peer is down", func(t *testing.T) {
		c := NewGuardedOnce(guarded)
		vs := run(t, c, final(60),
			view(eu1(2, db(1))), fault(10, EventKill, 1, "eu-1"), down(12, "eu-west", "eu-1"),
			view(withSim(peer(14, "eu-west", "eu-2"), db(1))), view(withSim(peer(15, "eu-west", "eu-2"), db(1))))
		want(t, vs, 1, "StatefulSet default/db", "2 active replicas", "eu-1 1, eu-2 1")
	})
	t.Run("the other copy has no Ready count", func(t *testing.T) {
		other := deployment("db", "d2", 1, 0)
		other.Kind, other.Ready = "StatefulSet", nil
		vs := run(t, NewGuardedOnce(guarded), final(60), view(eu1(2, db(1))), withSim(peer(3, "us-east", "us-1"), other))
		want(t, vs, 1, "eu-1 1, us-1 1")
	})
}

func TestConverged(t *testing.T) {
	web := func(ps ...api.PlacementView) api.WorkloadView { return deploymentWorkload("web", 2, ps...) }
	evicting := api.PlacementView{Cluster: "eu-2", Region: "eu-west", Replicas: 1, Health: "Healthy", Evicting: true}
	finalOf := func(digests map[string]string, ss ...Sample) Final {
		return Final{At: at(60), Digests: digests, Samples: ss}
	}
	same := map[string]string{"eu-west": "abc", "us-east": "abc"}
	tests := []struct {
		name  string
		final Final
		parts []string // empty: no violation
		n     int
	}{
		{"converged", finalOf(same,
			withWorkloads(eu1(60, configMap("default", "k", "c1"), deployment("web", "w1", 2, 2)),
				web(place("eu-1", "eu-west", 2, 2)), configMapWorkload("default", "k")),
			withWorkloads(withSim(peer(60, "eu-west", "eu-2"), deployment("other", "o1", 0, 0)), web(place("eu-1", "eu-west", 2, 2), evicting)),
			down(60, "us-east", "us-1"),
		), nil, 0},
		{"digests differ", finalOf(map[string]string{"eu-west": "abc", "us-east": "abd", "edge-shop": "abc"}),
			[]string{"edge-shop, eu-west, us-east"}, 1},
		{"runs other replicas than bound", finalOf(same,
			withWorkloads(eu1(60, deployment("web", "w1", 3, 3)), web(place("eu-1", "eu-west", 2, 2))),
		), []string{"eu-1 runs 3 replicas of Deployment default/web, expected 2"}, 1},
		{"does not run what is bound", finalOf(same,
			withWorkloads(eu1(60), web(place("eu-1", "eu-west", 2, 2))),
		), []string{"eu-1 does not run Deployment default/web"}, 1},
		{"runs what is no longer bound", finalOf(same,
			withWorkloads(withSim(peer(60, "eu-west", "eu-2"), deployment("web", "w2", 1, 1)), web(place("eu-1", "eu-west", 2, 2), evicting)),
		), []string{"eu-2 runs replicas of Deployment default/web not bound to it"}, 1},
		{"another API version is another object", finalOf(same,
			withWorkloads(eu1(60, func() api.SimObjectView {
				o := deployment("web", "w1", 2, 2)
				o.APIVersion = "extensions/v1beta1"
				return o
			}()), web(place("eu-1", "eu-west", 2, 2))),
		), []string{"Deployment default/web"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := run(t, NewConverged(), tt.final, eu1(1, deployment("web", "w0", 5, 5)))
			if tt.parts == nil {
				wantNone(t, vs)
				return
			}
			want(t, vs, tt.n, tt.parts...)
		})
	}
}
