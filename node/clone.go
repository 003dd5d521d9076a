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

// shoal clone: a workload as it runs on one cluster becomes a second,
// independent application - its own template (with the replicas it had
// there) and its own policy binding it to another cluster - in another
// namespace or under another name. Its dependencies go with it: into the
// new namespace as copies, or, in the same namespace, shared (they follow
// every workload that names them). Written in one write that is refused
// whole if any of it exists; the original is not touched.

func (p *Peer) handleClone(w http.ResponseWriter, r *http.Request) {
	body, ok := p.readBody(w, r)
	if !ok {
		return
	}
	var req api.CloneRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("a clone request is JSON {kind, namespace, name, from, to, toNamespace, toName}: %v", err))
		return
	}
	code, resp, err := p.clone(r.Context(), req)
	if err != nil {
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Peer) clone(ctx context.Context, req api.CloneRequest) (int, api.CloneResponse, error) {
	var resp api.CloneResponse
	if req.Kind == "" || req.Name == "" || req.From == "" || req.To == "" {
		return http.StatusBadRequest, resp, fmt.Errorf("clone needs a kind, a name, --from and --to")
	}
	keys := p.findObjects(req.APIVersion, req.Kind, req.Namespace, req.Name)
	switch {
	case len(keys) == 0:
		return http.StatusNotFound, resp, fmt.Errorf("%s %s not found", req.Kind, joinNS(req.Namespace, req.Name))
	case len(keys) > 1:
		return http.StatusConflict, resp, fmt.Errorf("%s %s is ambiguous: it exists in %d apiVersions; give apiVersion", req.Kind, joinNS(req.Namespace, req.Name), len(keys))
	}
	src := keys[0]
	dst := src
	if req.ToNamespace != "" {
		dst.Namespace = req.ToNamespace
	}
	if req.ToName != "" {
		dst.Name = req.ToName
	}
	switch {
	case dst == src:
		return http.StatusBadRequest, resp, fmt.Errorf("a clone is a new template: give --namespace or --name (%s is the original)", src.Display())
	case src.Namespace == "" && dst.Namespace != "":
		return http.StatusBadRequest, resp, fmt.Errorf("%s is cluster-scoped: it has no namespace to clone into", src.Display())
	}
	if err := api.ValidateKey(dst); err != nil {
		return http.StatusBadRequest, resp, err
	}
	var manifest []byte
	var code int
	var err error
	p.fsm.Read(func(s *region.State) {
		manifest, resp.Replicas, code, err = cloneSource(s, src, req.From, req.To)
	})
	if err != nil {
		return code, resp, err
	}
	tmpl, err := api.ParseTemplate(manifest)
	if err != nil {
		return http.StatusUnprocessableEntity, resp, err
	}
	docs := []map[string]any{}
	keys = nil
	main, err := renamed(manifest, dst, tmpl.HasReplicas, resp.Replicas)
	if err != nil {
		return http.StatusUnprocessableEntity, resp, err
	}
	docs, keys = append(docs, main), append(keys, dst)
	deps, err := api.Dependencies(manifest)
	if err != nil {
		return http.StatusUnprocessableEntity, resp, fmt.Errorf("%s: its dependencies cannot be read: %v", src.Display(), err)
	}
	for _, d := range deps {
		if dst.Namespace == src.Namespace {
			break // shared: propagateDeps takes them along
		}
		var dm []byte
		p.fsm.Read(func(s *region.State) { dm = s.Object(d).GetManifest() })
		if dm == nil {
			resp.Warnings = append(resp.Warnings, d.Display()+" is named by its pod template but is not Shoal's: not cloned")
			continue
		}
		nd := d
		nd.Namespace = dst.Namespace
		if p.holds(nd) {
			resp.Warnings = append(resp.Warnings, nd.Display()+" exists already: the clone uses it")
			continue
		}
		doc, err := renamed(dm, nd, false, 0)
		if err != nil {
			return http.StatusUnprocessableEntity, resp, err
		}
		docs, keys = append(docs, doc), append(keys, nd)
	}
	polKind := api.KindPropagationPolicy
	if dst.Namespace == "" {
		polKind = api.KindClusterPropagationPolicy
	}
	polKey := api.ObjectKey{APIVersion: api.PolicyAPIVersion, Kind: polKind, Namespace: dst.Namespace, Name: dst.Name}
	sel := map[string]any{"apiVersion": dst.APIVersion, "kind": dst.Kind, "name": dst.Name}
	meta := map[string]any{"name": polKey.Name}
	if dst.Namespace != "" {
		sel["namespace"], meta["namespace"] = dst.Namespace, dst.Namespace
	}
	docs = append(docs, map[string]any{"apiVersion": api.PolicyAPIVersion, "kind": polKind, "metadata": meta, "spec": map[string]any{
		"resourceSelectors": []any{sel}, "propagateDeps": true,
		"placement": map[string]any{"clusterAffinity": map[string]any{"clusterNames": []any{req.To}}},
	}})
	keys = append(keys, polKey)

	cmd := &shoalpb.ApplyObjects{OnlyNew: true}
	var all strings.Builder
	for i, d := range docs {
		data, err := json.Marshal(d)
		if err != nil {
			return http.StatusInternalServerError, resp, err
		}
		if i > 0 {
			all.WriteString("---\n")
		}
		y, _ := yaml.JSONToYAML(data)
		all.Write(y)
		cmd.Objects = append(cmd.Objects, &shoalpb.Object{Key: keys[i].Proto(), Manifest: data})
		if i < len(docs)-1 {
			resp.Objects = append(resp.Objects, keys[i].Display())
		}
	}
	resp.Policy, resp.Manifests, resp.DryRun = polKey.Display(), all.String(), req.DryRun
	if req.DryRun {
		return http.StatusOK, resp, nil
	}
	if err := p.commit(ctx, &shoalpb.Command{Cmd: &shoalpb.Command_ApplyObjects{ApplyObjects: cmd}}); err != nil {
		if strings.Contains(err.Error(), region.ErrExists.Error()) {
			return http.StatusConflict, resp, err
		}
		return http.StatusServiceUnavailable, resp, fmt.Errorf("region %s: %v", p.cfg.Region, err)
	}
	return http.StatusOK, resp, nil
}

// cloneSource checks that src runs on from and that to is a member, and
// gives src's manifest and its replicas on from.
func cloneSource(s *region.State, src api.ObjectKey, from, to string) ([]byte, int32, int, error) {
	member := func(name string) bool {
		if s.Cluster(name) != nil {
			return true
		}
		for _, rr := range s.Regions() {
			for _, c := range rr.GetSummary().GetClusters() {
				if c.GetName() == name {
					return true
				}
			}
		}
		return false
	}
	for _, n := range []string{from, to} {
		if !member(n) {
			return nil, 0, http.StatusNotFound, fmt.Errorf("cluster %s is not a member of the mesh", n)
		}
	}
	var replicas int32
	found := false
	targets := s.Binding(src).GetClusters()
	for _, rr := range s.Regions() {
		for _, b := range rr.GetSummary().GetBindings() {
			if api.KeyFromProto(b.GetWorkload()) == src {
				targets = append(targets, b.GetClusters()...)
			}
		}
	}
	for _, t := range targets {
		if t.GetName() == from {
			replicas, found = t.GetReplicas(), true
		}
	}
	if !found {
		return nil, 0, http.StatusConflict, fmt.Errorf("%s does not run on %s: nothing to clone from there", src.Display(), from)
	}
	return s.Object(src).GetManifest(), replicas, 0, nil
}

// renamed gives manifest as the object key names, with replicas set when
// the kind has them.
func renamed(manifest []byte, key api.ObjectKey, hasReplicas bool, replicas int32) (map[string]any, error) {
	var obj map[string]any
	if err := json.Unmarshal(manifest, &obj); err != nil {
		return nil, err
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	meta["name"] = key.Name
	if key.Namespace != "" {
		meta["namespace"] = key.Namespace
	}
	if hasReplicas {
		field := "replicas"
		if key.APIVersion == "batch/v1" && key.Kind == "Job" {
			field = "parallelism"
		}
		spec, _ := obj["spec"].(map[string]any)
		if spec != nil {
			spec[field] = replicas
		}
	}
	return obj, nil
}
