package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

func TestPrintWorkloadsWithoutReplicas(t *testing.T) {
	ws := []api.WorkloadView{
		{Kind: "Deployment", Namespace: "default", Name: "web", Generation: 2, DesiredReplicas: 8, BoundReplicas: 8, ReadyReplicas: 6,
			BoundClusters: 2, ReadyClusters: 1,
			Placements: []api.PlacementView{{Cluster: "eu-1", Replicas: 4, ReadyReplicas: 4}, {Cluster: "eu-2", Replicas: 4, ReadyReplicas: 2}}},
		{Kind: "ConfigMap", Namespace: "default", Name: "cfg", Generation: 3, WithoutReplicas: true, BoundClusters: 4, ReadyClusters: 1,
			Placements: []api.PlacementView{
				{Cluster: "eu-1", Health: "Healthy", AppliedGeneration: 3},
				{Cluster: "eu-2", Health: "Pending"},
				{Cluster: "eu-3", Health: "Healthy", AppliedGeneration: 2},
				{Cluster: "eu-4", Health: "Unhealthy", AppliedGeneration: 3, Error: "forbidden"},
			}},
		{Kind: "Namespace", Name: "shop", WithoutReplicas: true, Unschedulable: true},
	}
	var out bytes.Buffer
	printWorkloads(&out, ws, false)
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 4 {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"web", "6/8", "eu-1=4/4 eu-2=2/4"},
		{"cfg", "1/4 clusters", "eu-1=applied eu-2=pending eu-3=applying eu-4=error"},
		{"shop", "0/0 clusters (unschedulable)", "<none>"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %q does not contain %q", lines[i+1], w)
			}
		}
	}

	var detail bytes.Buffer
	printDetail(&detail, api.WorkloadDetail{WorkloadView: ws[1]})
	wantIn(t, "describe of a ConfigMap", detail.String(), "Clusters:      4 bound, 1 applied and Healthy", "has no replicas")
	if strings.Contains(detail.String(), "Replicas:") {
		t.Errorf("describe of a ConfigMap counts replicas:\n%s", detail.String())
	}
}
