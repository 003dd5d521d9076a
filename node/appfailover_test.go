package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

const appFailoverManifests = `
apiVersion: v1
kind: ConfigMap
metadata: {name: job-config, namespace: default}
data: {checkpoint: s3://bucket/job}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: job, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: job}}
  template:
    metadata: {labels: {app: job}}
    spec:
      containers:
        - name: job
          image: flink:1.20
          envFrom: [{configMapRef: {name: job-config}}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: job, namespace: default}
spec:
  propagateDeps: true
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: job}]
  placement:
    clusterAffinity: {clusterNames: [eu-1, eu-2]}
    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Aggregated}
  failover:
    application:
      decisionConditions: {tolerationSeconds: 2}
      purgeMode: Gracefully
      gracePeriodSeconds: 120
      statePreservation:
        rules: [{aliasLabelName: example.com/job-id, jsonPath: "{ .jobId }"}]
`

// A Deployment that fails on the simulated cluster it runs on (and only
// there) moves to the other one after the toleration, with its dependency
// and the job id its old copy reported as a label on the new copy; the old
// copy goes once the new one is Ready; describe says where it failed.
func TestApplicationFailoverOnSimulatedClusters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := newMesh(t, "eu-1", "eu-2")
	c := m.client("eu-1")
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two clusters registered", func() error {
		cs, err := c.Clusters(ctx)
		if err != nil || len(cs) != 2 {
			return fmt.Errorf("%d clusters, %v", len(cs), err)
		}
		return nil
	})
	if _, err := c.Apply(ctx, []byte(appFailoverManifests)); err != nil {
		t.Fatal(err)
	}
	job := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "job"}
	cfg := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "job-config"}
	var from, to string
	eventually(t, "job Ready on one cluster", func() error {
		run := m.running(job)
		switch {
		case run["eu-1"] == 2 && run["eu-2"] == 0:
			from, to = "eu-1", "eu-2"
		case run["eu-2"] == 2 && run["eu-1"] == 0:
			from, to = "eu-2", "eu-1"
		default:
			return fmt.Errorf("running %v", run)
		}
		return nil
	})
	m.peers[from].Sim().SetStatusFields(job, map[string]any{"jobId": "job-17"})
	m.peers[from].Sim().SetFailing(job, "CrashLoopBackOff")

	eventually(t, "job moved to "+to+" with the job id as a label, its dependency with it", func() error {
		o, ok := m.peers[to].Sim().Objects()[job]
		if !ok {
			ds, _ := c.Describe(ctx, "Deployment", "default", "job")
			return fmt.Errorf("not on %s: %+v", to, ds)
		}
		var man struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(o.Manifest, &man); err != nil {
			return err
		}
		if got := man.Metadata.Labels["example.com/job-id"]; got != "job-17" {
			return fmt.Errorf("label example.com/job-id = %q", got)
		}
		if _, ok := m.peers[to].Sim().Objects()[cfg]; !ok {
			return fmt.Errorf("job-config not on %s", to)
		}
		return nil
	})
	eventually(t, "old copy on "+from+" gone once the new one is Ready", func() error {
		if _, ok := m.peers[from].Sim().Objects()[job]; ok {
			return fmt.Errorf("still on %s (running %v)", from, m.running(job))
		}
		return nil
	})
	ds, err := c.Describe(ctx, "Deployment", "default", "job")
	if err != nil || len(ds) != 1 {
		t.Fatalf("describe: %v, %v", ds, err)
	}
	d := ds[0]
	if len(d.ApplicationFailover) != 1 || d.ApplicationFailover[0].Cluster != from ||
		d.ApplicationFailover[0].PreservedLabels["example.com/job-id"] != "job-17" {
		t.Fatalf("describe's application failover: %+v", d.ApplicationFailover)
	}
	found := false
	for _, e := range d.Events {
		found = found || e.Reason == "ApplicationFailover"
	}
	if !found {
		t.Errorf("no ApplicationFailover event in %+v", d.Events)
	}
	// The cluster it failed on stays in use: Ready, no taint.
	cs, err := c.Clusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range cs {
		if cl.Name == from && (cl.Health != "Ready" || len(cl.Taints) > 0) {
			t.Errorf("%s after the application failed there: %+v", from, cl)
		}
	}
}
