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

// A restarted peer shows what it held before it stopped until it has
// caught up: the mesh is not converged while one does, so that the final
// state is never read from it.
func TestConvergedWaitsForEveryRunningPeer(t *testing.T) {
	d := newStatusDriver(t, 2, 2)
	r := testRunner(d, 1)
	views := map[string]regionView{}
	for _, p := range d.peers {
		d.set(p.Cluster, func(st *api.StatusView) {
			st.Region, st.Cluster, st.CommitIndex, st.AppliedIndex = p.Region, p.Cluster, 40, 40
			st.Mesh = &api.MeshView{Digest: "d1"}
		})
		if _, ok := views[p.Region]; !ok {
			d.mu.Lock()
			views[p.Region] = regionView{cluster: p.Cluster, status: d.status[p.Cluster]}
			d.mu.Unlock()
		}
	}
	follower := d.peers[1].Cluster
	if views[d.peers[1].Region].cluster == follower {
		t.Fatalf("test setup: %s should be a follower", follower)
	}
	ctx := context.Background()
	if ok, why := r.followersCaughtUp(ctx, views); !ok {
		t.Fatalf("every peer holds its leader's state, yet: %s", why)
	}
	for _, tc := range []struct {
		name string
		set  func(*api.StatusView)
		want string
	}{
		{"stale since its start", func(st *api.StatusView) { st.Stale = true }, "has not caught up"},
		{"an older digest", func(st *api.StatusView) { st.Mesh = &api.MeshView{Digest: "d0"} }, "digests differ"},
		{"no digest", func(st *api.StatusView) { st.Mesh = nil }, "digests differ"},
		{"applied less", func(st *api.StatusView) { st.AppliedIndex = 31 }, "applied up to 31"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.mu.Lock()
			before := d.status[follower]
			d.mu.Unlock()
			defer d.set(follower, func(st *api.StatusView) { *st = before })
			d.set(follower, tc.set)
			ok, why := r.followersCaughtUp(ctx, views)
			if ok || !strings.Contains(why, follower) || !strings.Contains(why, tc.want) {
				t.Fatalf("followersCaughtUp = %v, %q; want not converged, naming %s and %q", ok, why, follower, tc.want)
			}
		})
	}
	// A killed or paused peer is not waited for.
	d.set(follower, func(st *api.StatusView) { st.Stale = true })
	r.pausedSet = map[string]bool{follower: true}
	if ok, why := r.followersCaughtUp(ctx, views); !ok {
		t.Fatalf("a paused peer was waited for: %s", why)
	}
}
