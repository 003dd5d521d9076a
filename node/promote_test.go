package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

const legacyApp = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"legacy","namespace":"default","labels":{"team":"a"}},
"spec":{"replicas":2,"selector":{"matchLabels":{"app":"legacy"}},"template":{"metadata":{"labels":{"app":"legacy"}},
"spec":{"containers":[{"name":"app","image":"legacy:1","envFrom":[{"configMapRef":{"name":"legacy-config"}}]}]}}}}`

const legacyConfig = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"legacy-config","namespace":"default"},"data":{"mode":"old"}}`

// shoal promote adopts a Deployment (and, with deps, its ConfigMap) that
// runs in a simulated member cluster: the same objects (uids), no replica
// restarted, Ready all along; then the policy is edited to spread it.
// Promoting what is Shoal's already, what does not exist, or from a
// cluster that is not a member writes nothing; asked of another cluster's
// peer, it says which peer to ask.
func TestPromoteAdoptsARunningAppWithoutARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := newMesh(t, "eu-1", "eu-2")
	if _, err := m.client("eu-1").WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two clusters registered", func() error {
		cs, err := m.client("eu-1").Clusters(ctx)
		if err != nil || len(cs) != 2 {
			return fmt.Errorf("%d clusters, %v", len(cs), err)
		}
		return nil
	})
	sim := m.peers["eu-2"].Sim()
	for _, doc := range []string{legacyApp, legacyConfig} {
		if err := sim.Create([]byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	app := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "legacy"}
	cfg := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "legacy-config"}
	eventually(t, "legacy Ready before Shoal knows it", func() error {
		if o := sim.Objects()[app]; o.Ready != 2 {
			return fmt.Errorf("ready %d", o.Ready)
		}
		return nil
	})
	before := sim.Objects()

	// Sample: at no moment from here on fewer than 2 Ready.
	var mu sync.Mutex
	low := ""
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if o := sim.Objects()[app]; o.Ready < 2 {
				mu.Lock()
				low = fmt.Sprintf("%+v", o)
				mu.Unlock()
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	req := api.PromoteRequest{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "legacy", Cluster: "eu-2", Deps: true}
	if _, err := m.client("eu-1").Promote(ctx, req); err == nil || !strings.Contains(err.Error(), "ask the peer of eu-2") {
		t.Fatalf("promote asked of eu-1's peer: %v", err)
	}
	for _, bad := range []struct {
		req  api.PromoteRequest
		want string
	}{
		{api.PromoteRequest{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "nosuch", Cluster: "eu-2"}, "does not exist in cluster eu-2"},
		{api.PromoteRequest{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "legacy", Cluster: "eu-9"}, "not a member"},
	} {
		if _, err := m.client("eu-2").Promote(ctx, bad.req); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("promote %+v: %v, want %q", bad.req, err, bad.want)
		}
	}
	if ws, _ := m.client("eu-2").Workloads(ctx); len(ws) != 0 {
		t.Fatalf("refused promotes wrote %+v", ws)
	}
	resp, err := m.client("eu-2").Promote(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(resp.Objects) != "[Deployment default/legacy ConfigMap default/legacy-config]" || resp.Policy != "PropagationPolicy default/legacy" ||
		resp.UIDs["Deployment default/legacy"] != before[app].UID {
		t.Fatalf("promote answered %+v", resp)
	}
	eventually(t, "legacy managed by Shoal in eu-2, same objects, no restart", func() error {
		now := sim.Objects()
		for _, k := range []api.ObjectKey{app, cfg} {
			o := now[k]
			if o.Foreign || o.UID != before[k].UID || o.Restarts != 0 {
				return fmt.Errorf("%s: %+v", k.Display(), o)
			}
		}
		return nil
	})
	if _, err := m.client("eu-2").Promote(ctx, req); err == nil || !strings.Contains(err.Error(), "already Shoal's") {
		t.Fatalf("promoting again: %v", err)
	}

	// The user spreads it: eu-1 gets a copy, eu-2's keeps running.
	pol := `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"legacy","namespace":"default"},` +
		`"spec":{"propagateDeps":true,"conflictResolution":"Overwrite","resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"legacy","namespace":"default"}],` +
		`"placement":{"clusterAffinity":{"clusterNames":["eu-1","eu-2"]}}}}`
	if _, err := m.client("eu-1").Apply(ctx, []byte(pol)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "legacy and its config on eu-1 too", func() error {
		o := m.peers["eu-1"].Sim().Objects()
		if o[app].Ready != 2 || o[cfg].UID == "" {
			return fmt.Errorf("eu-1 holds %+v", o)
		}
		return nil
	})
	if o := sim.Objects()[app]; o.UID != before[app].UID || o.Restarts != 0 {
		t.Fatalf("eu-2's copy after spreading: %+v", o)
	}
	mu.Lock()
	defer mu.Unlock()
	if low != "" {
		t.Fatalf("fewer than 2 Ready on eu-2 at a moment: %s", low)
	}
}
