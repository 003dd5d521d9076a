package chaos

import (
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// shop is the edge cluster shop-1's own sample: its simulated cluster
// runs web with replicas.
func shop(sec float64, uid string, replicas int32) Sample {
	return withSim(peer(sec, "edge-shop", "shop-1"), deployment("web", uid, replicas, replicas))
}

// us is us-1's view of web: 1 replica on us-1 and onShop on shop-1;
// edge says whether its clusters list marks shop-1 as edge.
func us(sec float64, onShop int32, evicting, edge bool) Sample {
	p := place("shop-1", "edge-shop", onShop, onShop)
	p.Evicting = evicting
	s := withWorkloads(peer(sec, "us-east", "us-1"), deploymentWorkload("web", 1+onShop, place("us-1", "us-east", 1, 1), p))
	return withClusters(s, clusterView("us-1", "us-east", "Ready", ""),
		api.ClusterView{Name: "shop-1", Region: "edge-shop", Health: "Ready", Age: "1s", Edge: edge})
}

func flap(sec float64, id int, edge bool) Event {
	return Event{At: at(sec), Kind: EventFlap, ID: id, Edge: edge, Regions: []string{"edge-shop"}}
}

func TestNoEdgeChurn(t *testing.T) {
	tests := []struct {
		name    string
		history []any
		parts   []string // empty: no violation
	}{
		{"steady while flapping, changes after the heal and after autonomy", []any{
			us(1, 2, false, true), shop(1, "s1", 2), flap(10, 1, true), us(12, 2, false, true), shop(12, "s1", 2),
			heal(20, 1), us(25, 3, false, true), shop(25, "s1", 3),
			flap(30, 2, true), us(35, 3, false, true), shop(36, "s1", 3), us(45, 4, false, true), shop(45, "s2", 4),
		}, nil},
		{"a flap of a link that is not an edge uplink", []any{
			us(1, 2, false, true), shop(1, "s1", 2), flap(10, 1, false), us(12, 1, true, true), shop(12, "s1", 1),
		}, nil},
		{"the edge cluster scales", []any{
			us(1, 2, false, true), shop(1, "s1", 2), flap(10, 1, true), shop(15, "s1", 3), shop(16, "s1", 3),
		}, []string{"shop-1", "Deployment default/web", "scaled from 2 replicas"}},
		{"the edge cluster recreates", []any{
			shop(1, "s1", 2), flap(10, 1, true), shop(15, "s2", 2),
		}, []string{"shop-1", "Deployment default/web", "recreated"}},
		{"the edge cluster loses the workload", []any{
			shop(1, "s1", 2), flap(10, 1, true), withSim(peer(15, "edge-shop", "shop-1")),
		}, []string{"shop-1", "Deployment default/web", "removed"}},
		{"another region evicts it", []any{
			us(1, 2, false, true), flap(10, 1, true), us(15, 2, true, true),
		}, []string{"Deployment default/web", "shop-1", "us-1", "became evicting"}},
		{"another region moves replicas away", []any{
			us(1, 2, false, true), flap(10, 1, true), us(15, 1, false, true),
		}, []string{"Deployment default/web", "shop-1", "us-1", "changed from 2"}},
		{"a flap of clusters not yet known as edge", []any{
			us(1, 5, false, false), shop(1, "s1", 2), flap(10, 1, true), us(12, 2, false, false), us(15, 1, false, false),
		}, []string{"shop-1", "us-1", "changed from 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := run(t, NewNoEdgeChurn(10*time.Second), final(60), tt.history...)
			if tt.parts == nil {
				wantNone(t, vs)
				return
			}
			want(t, vs, 1, tt.parts...)
		})
	}
}
