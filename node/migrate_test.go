package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

const migrateApp = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27, resources: {requests: {cpu: 100m, memory: 64Mi}}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: default}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement:
    clusterAffinity: {clusterNames: [eu-1]}
    replicaScheduling: {replicaSchedulingType: Divided}
`

// shoal migrate moves web from eu-1 to eu-2, then on to eu-3 with eu-2's
// peer killed right after that move starts, with at least its 4 replicas
// Ready at every moment (sampled every 5 ms over every simulated cluster,
// the one whose peer is dead included); a move that cannot work is refused
// before anything moves.
func TestMigrateKeepsTheReplicasReadyWhenTheSourcePeerDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := newMeshWith(t, func(c *Config) { c.Sim.ReadyDelay = 1500 * time.Millisecond }, "eu-1", "eu-2", "eu-3")
	c := m.client("eu-3")
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three clusters registered", func() error {
		cs, err := c.Clusters(ctx)
		if err != nil || len(cs) != 3 {
			return fmt.Errorf("%d clusters, %v", len(cs), err)
		}
		return nil
	})
	if _, err := c.Apply(ctx, []byte(migrateApp)); err != nil {
		t.Fatal(err)
	}
	web := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}
	sims := map[string]*deploy.SimCluster{}
	for n, p := range m.peers {
		sims[n] = p.Sim()
	}
	ready := func() map[string]int32 {
		out := map[string]int32{}
		for n, s := range sims {
			out[n] = s.Objects()[web].Ready
		}
		return out
	}
	eventually(t, "web Ready on eu-1", func() error {
		if r := ready(); r["eu-1"] != 4 {
			return fmt.Errorf("ready %v", r)
		}
		return nil
	})

	if err := sims["eu-3"].SetCapacityPercent(0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "eu-3 reports no room", func() error {
		_, err := c.Migrate(ctx, api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-3", DryRun: true})
		if err == nil || !strings.Contains(err.Error(), "cluster eu-3 has room for 0 more replicas") {
			return fmt.Errorf("dry run to a full cluster: %v", err)
		}
		return nil
	})
	for _, bad := range []struct {
		req  api.MigrateRequest
		want string
	}{
		{api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-9"}, "cluster eu-9 is not a member"},
		{api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-2", To: "eu-3"}, "does not run on eu-2"},
		{api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-1"}, "both eu-1"},
		{api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "nosuch", From: "eu-1", To: "eu-2"}, "not found"},
		{api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-3"}, "the move needs 4: nothing moved"},
	} {
		if _, err := c.Migrate(ctx, bad.req); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("migrate %+v: %v, want %q", bad.req, err, bad.want)
		}
	}
	plan, err := c.Migrate(ctx, api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-2", DryRun: true})
	if err != nil || !plan.DryRun || plan.Replicas != 4 || len(plan.Plan) == 0 {
		t.Fatalf("dry run: %+v, %v", plan, err)
	}
	time.Sleep(500 * time.Millisecond) // a dry run or a refusal that moved something would show by now
	if r := ready(); r["eu-1"] != 4 || r["eu-2"] != 0 || r["eu-3"] != 0 {
		t.Fatalf("refused moves and a dry run moved replicas: %v", r)
	}

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
			r := ready()
			if r["eu-1"]+r["eu-2"]+r["eu-3"] < 4 {
				mu.Lock()
				if low == "" {
					low = fmt.Sprint(r)
				}
				mu.Unlock()
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	// A move with every peer up: eu-1 keeps its replicas until eu-2's
	// are Ready, then lets them go.
	if _, err := c.Migrate(ctx, api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-1", To: "eu-2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web Ready on eu-2, gone from eu-1", func() error {
		if r := ready(); r["eu-2"] != 4 || r["eu-1"] != 0 {
			return fmt.Errorf("ready %v", r)
		}
		return nil
	})

	// A move whose source peer dies mid-way (eu-3's replicas take 1.5 s
	// to be Ready): its cluster keeps running the old copy.
	if err := sims["eu-3"].SetCapacityPercent(100); err != nil {
		t.Fatal(err)
	}
	eventually(t, "eu-3 has room again", func() error {
		_, err := c.Migrate(ctx, api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-2", To: "eu-3", DryRun: true})
		return err
	})
	if _, err := c.Migrate(ctx, api.MigrateRequest{Kind: "Deployment", Namespace: "default", Name: "web", From: "eu-2", To: "eu-3"}); err != nil {
		t.Fatal(err)
	}
	m.kill("eu-2")
	eventually(t, "web Ready on eu-3", func() error {
		if r := ready(); r["eu-3"] != 4 {
			return fmt.Errorf("ready %v", r)
		}
		return nil
	})
	m.restart("eu-2")
	eventually(t, "eu-2's old copy removed once its peer is back", func() error {
		if o, ok := m.peers["eu-2"].Sim().Objects()[web]; ok {
			return fmt.Errorf("eu-2 still holds %+v", o)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if low != "" {
		t.Fatalf("fewer than 4 replicas Ready at a moment: %s", low)
	}
}
