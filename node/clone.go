package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/region"
)

// shoal clone: a workload as it runs on one cluster becomes a second,
// independent application - its own template (with the replicas it had
// there) and its own policy binding it to another cluster - in another
// namespace or under another name. Its dependencies go with it: into the
// new namespace as copies, or, in the same namespace, shared (they follow
// every workload that names them). Written in one write that is refused
// whole if any of it exists; the original is not touched.

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
	polKey := api.ObjectKey{APIVersion: api.PolicyAPIVersion, Kind: policyKind(dst.Namespace), Namespace: dst.Namespace, Name: dst.Name}
	pol, err := boundPolicy(polKey, dst, req.To, map[string]any{"propagateDeps": true})
	if err != nil {
		return http.StatusInternalServerError, resp, err
	}
	data := make([][]byte, 0, len(docs)+1)
	for i, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return http.StatusInternalServerError, resp, err
		}
		data = append(data, b)
		resp.Objects = append(resp.Objects, keys[i].Display())
	}
	cmd, manifests := newObjects(append(keys, polKey), append(data, pol))
	resp.Policy, resp.Manifests, resp.DryRun = polKey.Display(), manifests, req.DryRun
	if req.DryRun {
		return http.StatusOK, resp, nil
	}
	if code, err := p.commitNew(ctx, cmd); err != nil {
		return code, resp, err
	}
	return http.StatusOK, resp, nil
}

// cloneSource checks that src runs on from and that to is a member, and
// gives src's manifest and its replicas on from.
func cloneSource(s *region.State, src api.ObjectKey, from, to string) ([]byte, int32, int, error) {
	for _, n := range []string{from, to} {
		if rec, _ := findCluster(s, n); rec == nil {
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
