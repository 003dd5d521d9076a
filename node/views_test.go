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

// TestStatusShowsTheMeshDigestOnEveryPeer: every peer's status — the
// follower's too, in a region alone in its mesh — carries the digest of
// the mesh objects its copy of the state holds and how many live ones
// there are; peers holding the same versions show the same digest.
func TestStatusShowsTheMeshDigestOnEveryPeer(t *testing.T) {
	m := newMesh(t, "eu-1", "eu-2")
	eventually(t, "a leader", func() error {
		if m.leader() == "" {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	first := m.peers[m.leader()].StatusView().Mesh
	if first == nil || first.Digest == "" || first.Objects != 0 {
		t.Fatalf("an empty region's mesh view: %+v", first)
	}
	mustApply(t, m.peers["eu-1"], configMap("a")+"---\n"+configMap("b")+"---\n"+configMap("c"))
	code, _ := call(t, m.peers["eu-1"], http.MethodDelete, "/v1/objects?kind=ConfigMap&namespace=default&name=c", nil)
	if code != http.StatusOK {
		t.Fatalf("delete c: %d", code)
	}
	eventually(t, "both peers show two objects and one digest", func() error {
		var digests []string
		for _, n := range []string{"eu-1", "eu-2"} {
			st := m.peers[n].StatusView()
			if st.Mesh == nil || st.Mesh.Objects != 2 {
				return fmt.Errorf("%s (%s): mesh view %+v", n, st.State, st.Mesh)
			}
			digests = append(digests, st.Mesh.Digest)
		}
		if digests[0] != digests[1] || digests[0] == first.Digest {
			return fmt.Errorf("digests %v (empty region: %s)", digests, first.Digest)
		}
		return nil
	})
}
