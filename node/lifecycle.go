package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/region"
)

// What the lifecycle endpoints (promote, migrate, clone) share.

// lifecycleHandler serves one of them: a JSON request of shape (named in
// the error for a body that does not decode), run, and the answer as JSON
// or the error with run's status.
func lifecycleHandler[Req, Resp any](p *Peer, shape string, run func(context.Context, Req) (int, Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := p.readBody(w, r)
		if !ok {
			return
		}
		var req Req
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("the request is JSON %s: %v", shape, err))
			return
		}
		code, resp, err := run(r.Context(), req)
		if err != nil {
			writeError(w, code, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// findCluster gives a cluster of the mesh by name: its record in this
// region's state or in another region's summary, and that region; nil if
// the mesh has no such cluster.
func findCluster(s *region.State, name string) (*shoalpb.ClusterRecord, string) {
	if c := s.Cluster(name); c != nil {
		return c, c.GetRegion()
	}
	for _, rr := range s.Regions() {
		for _, c := range rr.GetSummary().GetClusters() {
			if c.GetName() == name {
				return c, rr.GetSummary().GetRegion()
			}
		}
	}
	return nil, ""
}

// newObjects is the one write of the templates and policy a lifecycle
// command creates (docs are JSON, keys name them), refused whole if any
// exists, and its documents as YAML for the answer.
func newObjects(keys []api.ObjectKey, docs [][]byte) (*shoalpb.Command, string) {
	cmd := &shoalpb.ApplyObjects{OnlyNew: true}
	var all strings.Builder
	for i, d := range docs {
		if i > 0 {
			all.WriteString("---\n")
		}
		y, _ := yaml.JSONToYAML(d)
		all.Write(y)
		cmd.Objects = append(cmd.Objects, &shoalpb.Object{Key: keys[i].Proto(), Manifest: d})
	}
	return &shoalpb.Command{Cmd: &shoalpb.Command_ApplyObjects{ApplyObjects: cmd}}, all.String()
}

// commitNew commits a newObjects write: 409 when something exists
// already, 503 when the region could not take it.
func (p *Peer) commitNew(ctx context.Context, cmd *shoalpb.Command) (int, error) {
	if err := p.commit(ctx, cmd); err != nil {
		if strings.Contains(err.Error(), region.ErrExists.Error()) {
			return http.StatusConflict, err
		}
		return http.StatusServiceUnavailable, fmt.Errorf("region %s: %v", p.cfg.Region, err)
	}
	return http.StatusOK, nil
}

// boundPolicy is the policy that binds object to cluster alone, named by
// polKey (a PropagationPolicy in the object's namespace, or a
// ClusterPropagationPolicy for a cluster-scoped object), with spec fields
// added from extra.
func boundPolicy(polKey, object api.ObjectKey, cluster string, extra map[string]any) ([]byte, error) {
	sel := map[string]any{"apiVersion": object.APIVersion, "kind": object.Kind, "name": object.Name}
	meta := map[string]any{"name": polKey.Name}
	if object.Namespace != "" {
		sel["namespace"], meta["namespace"] = object.Namespace, object.Namespace
	}
	spec := map[string]any{
		"resourceSelectors": []any{sel},
		"placement":         map[string]any{"clusterAffinity": map[string]any{"clusterNames": []any{cluster}}},
	}
	for k, v := range extra {
		spec[k] = v
	}
	return json.Marshal(map[string]any{"apiVersion": api.PolicyAPIVersion, "kind": polKey.Kind, "metadata": meta, "spec": spec})
}

// policyKind is the kind of policy that selects a template of namespace.
func policyKind(namespace string) string {
	if namespace == "" {
		return api.KindClusterPropagationPolicy
	}
	return api.KindPropagationPolicy
}
