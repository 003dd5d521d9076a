package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
)

// statusDriver is a mesh whose peers answer only GET /v1/status, each
// with the view the test sets.
type statusDriver struct {
	shapeDriver
	mu      sync.Mutex
	status  map[string]api.StatusView
	servers map[string]*httptest.Server
}

func newStatusDriver(t *testing.T, regions, clusters int) *statusDriver {
	d := &statusDriver{shapeDriver: *newShape(regions, clusters), status: map[string]api.StatusView{},
		servers: map[string]*httptest.Server{}}
	for _, p := range d.peers {
		cluster := p.Cluster
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d.mu.Lock()
			st := d.status[cluster]
			d.mu.Unlock()
			_ = json.NewEncoder(w).Encode(st)
		}))
		t.Cleanup(srv.Close)
		d.servers[cluster] = srv
	}
	return d
}

func (d *statusDriver) Client(cluster string) (*client.Client, error) {
	srv, ok := d.servers[cluster]
	if !ok {
		return nil, fmt.Errorf("no peer %s", cluster)
	}
	return client.New(srv.URL)
}

func (d *statusDriver) set(cluster string, f func(*api.StatusView)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.status[cluster]
	f(&st)
	d.status[cluster] = st
}

// setAll gives every peer a caught-up status with digest d, the first
// peer of each region its leader.
func (d *statusDriver) setAll(digest string) {
	lead := map[string]bool{}
	for _, p := range d.peers {
		state := "Follower"
		if !lead[p.Region] {
			lead[p.Region], state = true, "Leader"
		}
		d.set(p.Cluster, func(st *api.StatusView) {
			*st = api.StatusView{Region: p.Region, Cluster: p.Cluster, State: state, CommitIndex: 40, AppliedIndex: 40}
			if digest != "" {
				st.Mesh = &api.MeshView{Digest: digest}
			}
		})
	}
}

// A restarted peer shows what it held before it stopped until it has
// caught up: the mesh is not converged while one does, so that the final
// state is never read from it, and a catch-up is not over until it is.
func TestPeersAgreeWaitsForEveryRunningPeer(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		regions int
		set     func(*api.StatusView)
		want    string
	}{
		{"stale since its start", 2, func(st *api.StatusView) { st.Stale = true }, "has not caught up"},
		{"an older digest", 2, func(st *api.StatusView) { st.Mesh = &api.MeshView{Digest: "d0"} }, "digests differ"},
		{"no digest", 2, func(st *api.StatusView) { st.Mesh = nil }, "shows no digest"},
		{"applied less in a single region", 1, func(st *api.StatusView) { st.AppliedIndex = 31 }, "applied up to 31"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newStatusDriver(t, tc.regions, 2)
			digest := "d1"
			if tc.regions == 1 {
				digest = ""
			}
			d.setAll(digest)
			r := testRunner(d, 1)
			if ok, why := r.peersAgree(ctx); !ok {
				t.Fatalf("every peer holds the same, yet: %s", why)
			}
			follower := d.peers[1].Cluster // the second peer of the first region
			d.set(follower, tc.set)
			ok, why := r.peersAgree(ctx)
			if ok || !strings.Contains(why, follower) || !strings.Contains(why, tc.want) {
				t.Fatalf("peersAgree = %v, %q; want not converged, naming %s and %q", ok, why, follower, tc.want)
			}
			p := r.poll(ctx, "converged")
			if p.ok || !p.cheap {
				t.Fatalf("poll(converged) = %+v; want a failure found by the statuses alone", p)
			}
			// A paused peer is not waited for.
			r.pausedSet = map[string]bool{follower: true}
			if ok, why := r.peersAgree(ctx); !ok {
				t.Fatalf("a paused peer was waited for: %s", why)
			}
		})
	}
}

// A mesh is not converged while a region keeps replicas it moved away
// from a cluster: the release may come during the next fault, and the
// copy then disappears from a cluster the fault disturbed.
func TestSettledWaitsForReleases(t *testing.T) {
	views := map[string]regionView{
		"ap-south": {workloads: []api.WorkloadView{{Kind: "Deployment", Namespace: "default", Name: "web",
			Placements: []api.PlacementView{{Cluster: "ap-south/ap-2", Replicas: 1}}}}},
		"eu-west": {workloads: []api.WorkloadView{{Kind: "Deployment", Namespace: "default", Name: "web",
			Placements: []api.PlacementView{{Cluster: "ap-south/ap-2", Replicas: 1}}}}},
	}
	if ok, why := settled(views); !ok {
		t.Fatalf("settled = false (%s) with nothing kept for release", why)
	}
	v := views["eu-west"]
	v.workloads[0].Placements = append(v.workloads[0].Placements, api.PlacementView{Cluster: "ap-south/ap-1", Replicas: 1, Evicting: true})
	ok, why := settled(views)
	if ok || !strings.Contains(why, "ap-south/ap-1") || !strings.Contains(why, "default/web") {
		t.Fatalf("settled = %v, %q; want not settled, naming the workload and ap-south/ap-1", ok, why)
	}
}
