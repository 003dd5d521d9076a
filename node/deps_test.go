package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

const depsManifests = `
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: default}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          envFrom: [{configMapRef: {name: web-config}}, {secretRef: {name: not-applied}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: default}
spec:
  propagateDeps: true
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  placement:
    clusterAffinity: {clusterNames: [%s]}
    replicaScheduling: {replicaSchedulingType: Divided}
`

// With propagateDeps, the ConfigMap web names reaches the simulated
// clusters web runs on and only those, leaves a cluster web leaves, and
// the Secret it names without a template in Shoal is reported on web.
func TestDependenciesReachTheClustersOfTheirWorkload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := newMesh(t, "eu-1", "eu-2", "eu-3")
	c := m.client("eu-1")
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
	cfg := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "web-config"}
	holders := func() []string {
		var out []string
		for n, p := range m.peers {
			if _, ok := p.Sim().Objects()[cfg]; ok {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	if _, err := c.Apply(ctx, []byte(fmt.Sprintf(depsManifests, "eu-1, eu-2"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-config on eu-1 and eu-2 only", func() error {
		if h := holders(); fmt.Sprint(h) != "[eu-1 eu-2]" {
			return fmt.Errorf("held by %v", h)
		}
		return nil
	})
	eventually(t, "web reports the Secret it names that Shoal does not hold", func() error {
		ds, err := c.Describe(ctx, "Deployment", "default", "web")
		if err != nil {
			return err
		}
		if len(ds) != 1 || fmt.Sprint(ds[0].MissingDependencies) != "[Secret default/not-applied]" {
			return fmt.Errorf("describe: %+v", ds)
		}
		return nil
	})
	if _, err := c.Apply(ctx, []byte(fmt.Sprintf(depsManifests, "eu-1"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-config gone from eu-2 once web left it", func() error {
		if h := holders(); fmt.Sprint(h) != "[eu-1]" {
			return fmt.Errorf("held by %v", h)
		}
		return nil
	})
	ds, err := c.Describe(ctx, "ConfigMap", "default", "web-config")
	if err != nil || len(ds) != 1 || fmt.Sprint(ds[0].RequiredBy) != "[Deployment default/web]" {
		t.Fatalf("describe web-config: %+v, %v", ds, err)
	}
}
