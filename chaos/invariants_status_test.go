package chaos

import (
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

func TestNoStaleReady(t *testing.T) {
	view := func(sec float64, cluster string, cs ...api.ClusterView) Sample {
		region := map[string]string{"eu-1": "eu-west", "eu-2": "eu-west", "us-1": "us-east"}[cluster]
		return withClusters(peer(sec, region, cluster), cs...)
	}
	ready := func(name, age string) api.ClusterView {
		return clusterView(name, map[string]string{"eu-1": "eu-west", "eu-2": "eu-west", "us-1": "us-east"}[name], "Ready", age)
	}
	placed := func(sec float64, health string, ready int32, age string) Sample {
		p := place("eu-1", "eu-west", 2, ready)
		p.Health, p.Age = health, age
		return withWorkloads(view(sec, "us-1"), deploymentWorkload("web", 2, p))
	}
	tests := []struct {
		name    string
		history []any
		n       int
		parts   []string
	}{
		{"fresh or shown Unknown", []any{
			view(1, "us-1", ready("eu-1", "2s"), clusterView("eu-2", "eu-west", "Unknown", "30s"), ready("us-1", "")),
			placed(2, "Unknown", 0, "30s"), placed(3, "Healthy", 2, "4s"), view(4, "us-1", ready("eu-1", "not a duration")),
			fault(10, EventKill, 1, "eu-1"), view(12, "eu-2", ready("eu-1", "")), view(16, "eu-2", clusterView("eu-1", "eu-west", "Unreachable", "")),
			view(16, "us-1", clusterView("eu-1", "eu-west", "Unknown", "6s")), heal(30, 1), view(31, "eu-2", ready("eu-1", "")),
		}, 0, nil},
		{"a stale cluster shown Ready", []any{
			view(5, "us-1", ready("eu-1", "12s")), view(6, "us-1", ready("eu-1", "13s")),
			view(7, "us-1", clusterView("eu-1", "eu-west", "Unknown", "14s")), view(8, "us-1", ready("eu-1", "1m")),
		}, 2, []string{"us-1 shows cluster eu-1 Ready", "12s old", "5s bound"}},
		{"a stale placement shown Healthy", []any{placed(5, "Healthy", 2, "9s"), placed(6, "Healthy", 2, "10s")},
			1, []string{"us-1 shows Deployment default/web on cluster eu-1 Healthy", "9s old"}},
		{"a stale placement shown with Ready replicas", []any{placed(5, "Progressing", 1, "9s")},
			1, []string{"Deployment default/web on cluster eu-1 with 1 Ready replicas"}},
		{"a killed cluster shown Ready", []any{
			fault(10, EventKill, 1, "eu-1"), view(14, "eu-2", ready("eu-1", "")), view(16, "eu-2", ready("eu-1", "")),
			view(17, "eu-2", ready("eu-1", "")), view(18, "us-1", ready("eu-1", "3s")),
		}, 2, []string{"eu-2 shows cluster eu-1 Ready 6s after it was killed"}},
		{"a stopped region shown Ready", []any{
			view(1, "us-1", ready("eu-2", "1s")), regionFault(10, EventStop, 1, "eu-west"), view(20, "us-1", ready("eu-2", "1s")),
		}, 1, []string{"us-1 shows cluster eu-2 Ready", "after it was stopped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := run(t, NewNoStaleReady(5*time.Second), final(60), tt.history...)
			if tt.n == 0 {
				wantNone(t, vs)
				return
			}
			want(t, vs, tt.n, tt.parts...)
		})
	}
}
