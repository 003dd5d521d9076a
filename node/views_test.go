package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

// TestWorkloadsWithoutReplicas: a kind without replicas is counted in
// clusters, not shown as 0/0 replicas; the replica fields keep their
// meaning for every kind.
func TestWorkloadsWithoutReplicas(t *testing.T) {
	_, p := newSinglePeer(t)
	mustApply(t, p, string(readExamples(t)))
	var raw []map[string]json.RawMessage
	eventually(t, "the examples are ready on eu-1", func() error {
		code, data := call(t, p, http.MethodGet, "/v1/workloads", nil)
		var ws []api.WorkloadView
		if err := json.Unmarshal(data, &ws); code != http.StatusOK || err != nil {
			return fmt.Errorf("%d %s", code, data)
		}
		for _, w := range ws {
			if w.BoundClusters != 1 || w.ReadyClusters != 1 {
				return fmt.Errorf("%s %s: %d/%d clusters", w.Kind, w.Name, w.ReadyClusters, w.BoundClusters)
			}
		}
		raw = nil
		return json.Unmarshal(data, &raw)
	})
	for _, w := range raw {
		var kind string
		_ = json.Unmarshal(w["kind"], &kind)
		got := map[string]string{}
		for _, f := range []string{"withoutReplicas", "desiredReplicas", "boundReplicas", "readyReplicas", "boundClusters", "readyClusters"} {
			got[f] = string(w[f])
		}
		want := map[string]string{"withoutReplicas": "true", "desiredReplicas": "0", "boundReplicas": "0", "readyReplicas": "0", "boundClusters": "1", "readyClusters": "1"}
		if kind == "Deployment" {
			// withoutReplicas is left out: a client that does not know it
			// reads a Deployment as before.
			want["withoutReplicas"], want["desiredReplicas"], want["boundReplicas"], want["readyReplicas"] = "", string(w["desiredReplicas"]), string(w["desiredReplicas"]), string(w["desiredReplicas"])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", kind, got, want)
		}
	}
}
