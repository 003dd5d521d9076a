package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dynamicWeb is a Deployment divided by the replicas each cluster can
// still take, so that its scheduling depends on reported capacity.
func dynamicWeb(name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec: {containers: [{name: web, image: nginx, resources: {requests: {cpu: 100m, memory: 64Mi}}}]}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: %[1]s, namespace: default}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: %[1]s}]
  placement:
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference: {dynamicWeight: AvailableReplicas}
`, name)
}

// TestHTTPSimulatedCapacity: PUT /v1/agent/simulation takes a capacity
// percent (0 to 100) and refuses anything else with what it wants; GET
// /v1/simulation shows it; the cluster's reported capacity reaches the
// region, whose scheduler then finds no room for a new workload divided by
// available replicas, and room again once the capacity is back.
func TestHTTPSimulatedCapacity(t *testing.T) {
	m, p := newSinglePeer(t)
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{}`, `{"capacityPercent": 0..100}`},
		{`{"capacityPercent": 101}`, "capacityPercent 101: want a percent from 0"},
		{`{"capacityPercent": -1}`, "capacityPercent -1: want a percent from 0"},
		{`{"capacityPercent": "50"}`, "cannot unmarshal string"},
		{`{"capacityPercent": 50.5}`, "capacityPercent"},
		{`{"capacity": 50}`, `unknown field "capacity"`},
		{`not json`, "body must be"},
	} {
		code, data := call(t, p, http.MethodPut, "/v1/agent/simulation", []byte(tc.body))
		if code != http.StatusBadRequest {
			t.Errorf("%s: code %d, want 400: %s", tc.body, code, data)
			continue
		}
		if msg := errorMessage(t, data); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want it to say %q", tc.body, msg, tc.want)
		}
	}
	if got := p.Sim().CapacityPercent(); got != 100 {
		t.Fatalf("refused requests changed the capacity to %d%%", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := m.client("eu-1")
	if err := c.SetSimulatedCapacity(ctx, 0); err != nil {
		t.Fatal(err)
	}
	v, err := c.Simulation(ctx)
	if err != nil || v.CapacityPercent != 0 || !v.Ready {
		t.Fatalf("GET /v1/simulation after draining: %+v, %v", v, err)
	}
	// Setting ready alone leaves the capacity as it is.
	code, data := call(t, p, http.MethodPut, "/v1/agent/simulation", []byte(`{"ready": true}`))
	var answer map[string]any
	if code != http.StatusOK || json.Unmarshal(data, &answer) != nil || answer["capacityPercent"] != float64(0) {
		t.Fatalf("ready alone: %d %s", code, data)
	}
	eventually(t, "the region sees the drained capacity", func() error {
		cs, err := c.Clusters(ctx)
		if err != nil {
			return err
		}
		if len(cs) != 1 || cs[0].Capacity.Nodes == 0 || cs[0].Capacity.Allocatable.Pods != 0 {
			return fmt.Errorf("clusters: %+v", cs)
		}
		return nil
	})
	mustApply(t, p, dynamicWeb("drained"))
	unschedulable := func(name string, want bool) func() error {
		return func() error {
			ws, err := c.Workloads(ctx)
			if err != nil {
				return err
			}
			for _, w := range ws {
				if w.Name == name {
					if w.Unschedulable != want || !want && w.BoundReplicas != 2 {
						return fmt.Errorf("%s: unschedulable %v, %d bound (%s)", name, w.Unschedulable, w.BoundReplicas, w.Reason)
					}
					return nil
				}
			}
			return fmt.Errorf("no workload %s", name)
		}
	}
	eventually(t, "a new workload finds no room in the drained cluster", unschedulable("drained", true))

	if err := c.SetSimulatedCapacity(ctx, 100); err != nil {
		t.Fatal(err)
	}
	mustApply(t, p, dynamicWeb("refilled"))
	eventually(t, "with the capacity back, a new workload is placed", unschedulable("refilled", false))
	if v, _ := c.Simulation(ctx); v.CapacityPercent != 100 {
		t.Fatalf("GET /v1/simulation after refilling: %+v", v)
	}
}
