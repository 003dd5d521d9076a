package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/region"
)

// shoal promote: an object that already runs in a member cluster becomes
// Shoal's without a restart. Its peer reads it from the cluster, keeps
// what the user wrote (metadata.name, namespace, labels, annotations, the
// spec and data) and drops what the cluster wrote (status, uid,
// resourceVersion, managedFields, assigned addresses), and commits in one
// write - refused whole if any of it is Shoal's already - the template and
// a policy bound to that cluster alone with conflictResolution Overwrite
// (as karmadactl promote writes it). The peer then applies the template
// over the live object: the same object (its uid stays), and its pods
// restart only if their template changed, which it has not.

// promoteDrop are labels and annotations Shoal or the cluster put on a
// live object, never part of a template.
var promoteDrop = []string{
	deploy.ManagedByLabel, deploy.GenerationAnnotation, deploy.TemplateAnnotation, deploy.ClusterLabel,
	"kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision",
}

func (p *Peer) promote(ctx context.Context, req api.PromoteRequest) (int, api.PromoteResponse, error) {
	var resp api.PromoteResponse
	if req.APIVersion == "" || req.Kind == "" || req.Name == "" || req.Cluster == "" {
		return http.StatusBadRequest, resp, errors.New("promote needs apiVersion, kind, name and cluster")
	}
	if req.Cluster != p.cfg.Cluster {
		return p.notMyCluster(req.Cluster)
	}
	reader, ok := p.cluster.(deploy.ObjectReader)
	if !ok {
		return http.StatusNotImplemented, resp, fmt.Errorf("cluster %s cannot be read object by object", p.cfg.Cluster)
	}
	key := api.ObjectKey{APIVersion: req.APIVersion, Kind: req.Kind, Namespace: req.Namespace, Name: req.Name}
	if api.IsClusterScoped(key.APIVersion, key.Kind) {
		key.Namespace = ""
	} else if key.Namespace == "" {
		key.Namespace = "default"
	}
	if err := api.ValidateKey(key); err != nil {
		return http.StatusBadRequest, resp, err
	}
	tmpl, uid, code, err := p.promoteTemplate(ctx, reader, key)
	if err != nil {
		return code, resp, err
	}
	docs := [][]byte{tmpl}
	keys := []api.ObjectKey{key}
	resp.UIDs = map[string]string{key.Display(): uid}
	if req.Deps {
		deps, err := api.Dependencies(tmpl)
		if err != nil {
			return http.StatusUnprocessableEntity, resp, fmt.Errorf("%s: its dependencies cannot be read: %v", key.Display(), err)
		}
		for _, d := range deps {
			if p.holds(d) {
				resp.Warnings = append(resp.Warnings, d.Display()+" is Shoal's already: it follows the workload (propagateDeps)")
				continue
			}
			dt, duid, code, err := p.promoteTemplate(ctx, reader, d)
			if code == http.StatusNotFound {
				resp.Warnings = append(resp.Warnings, fmt.Sprintf("%s is named by its pod template but not in cluster %s: not promoted", d.Display(), req.Cluster))
				continue
			}
			if err != nil {
				return code, resp, err
			}
			docs, keys = append(docs, dt), append(keys, d)
			resp.UIDs[d.Display()] = duid
		}
	}
	pol, polKey, err := p.promotePolicy(key, req.Cluster, req.Deps)
	if err != nil {
		return http.StatusConflict, resp, err
	}
	for _, k := range keys {
		resp.Objects = append(resp.Objects, k.Display())
	}
	resp.Policy = polKey.Display()
	cmd, manifests := newObjects(append(keys, polKey), append(docs, pol))
	resp.Manifests, resp.DryRun = manifests, req.DryRun
	if req.DryRun {
		return http.StatusOK, resp, nil
	}
	if code, err := p.commitNew(ctx, cmd); err != nil {
		return code, resp, err
	}
	return http.StatusOK, resp, nil
}

// notMyCluster answers a request for another cluster's peer.
func (p *Peer) notMyCluster(cluster string) (int, api.PromoteResponse, error) {
	var rec *shoalpb.ClusterRecord
	p.fsm.Read(func(s *region.State) { rec, _ = findCluster(s, cluster) })
	if rec == nil {
		return http.StatusNotFound, api.PromoteResponse{}, fmt.Errorf("cluster %s is not a member of the mesh", cluster)
	}
	return http.StatusMisdirectedRequest, api.PromoteResponse{}, fmt.Errorf("this peer runs cluster %s; ask the peer of %s (%s)", p.cfg.Cluster, cluster, orUnknown(rec.GetHttpAddr()))
}

func orUnknown(s string) string {
	if s == "" {
		return "address unknown"
	}
	return s
}

// holds reports whether the region holds a live template of key.
func (p *Peer) holds(key api.ObjectKey) bool {
	held := false
	p.fsm.Read(func(s *region.State) { held = s.Object(key) != nil })
	return held
}

// promoteTemplate reads key from the cluster and gives it as a template,
// with the live object's uid.
func (p *Peer) promoteTemplate(ctx context.Context, reader deploy.ObjectReader, key api.ObjectKey) ([]byte, string, int, error) {
	if p.holds(key) {
		return nil, "", http.StatusConflict, fmt.Errorf("%s is already Shoal's: nothing was written", key.Display())
	}
	obj, managed, err := reader.ReadObject(ctx, key)
	switch {
	case errors.Is(err, deploy.ErrNotFound):
		return nil, "", http.StatusNotFound, fmt.Errorf("%s does not exist in cluster %s: nothing was written", key.Display(), p.cfg.Cluster)
	case err != nil:
		return nil, "", http.StatusBadGateway, fmt.Errorf("read %s from cluster %s: %v", key.Display(), p.cfg.Cluster, err)
	case managed:
		return nil, "", http.StatusConflict, fmt.Errorf("%s in cluster %s is managed by Shoal already (label %s): nothing was written", key.Display(), p.cfg.Cluster, deploy.ManagedByLabel)
	}
	meta, _ := obj["metadata"].(map[string]any)
	uid, _ := meta["uid"].(string)
	t := map[string]any{}
	for k, v := range obj {
		if k != "status" && k != "metadata" {
			t[k] = v
		}
	}
	m := map[string]any{"name": key.Name}
	if key.Namespace != "" {
		m["namespace"] = key.Namespace
	}
	for _, field := range []string{"labels", "annotations"} {
		src, _ := meta[field].(map[string]any)
		kept := map[string]any{}
		for k, v := range src {
			if !slices.Contains(promoteDrop, k) {
				kept[k] = v
			}
		}
		if len(kept) > 0 {
			m[field] = kept
		}
	}
	t["metadata"] = m
	dropAssigned(key, t)
	out, err := json.Marshal(t)
	if err != nil {
		return nil, "", http.StatusInternalServerError, err
	}
	if _, err := api.ParseTemplate(out); err != nil {
		return nil, "", http.StatusUnprocessableEntity, fmt.Errorf("%s from cluster %s is no template Shoal can hold: %v", key.Display(), p.cfg.Cluster, err)
	}
	return out, uid, http.StatusOK, nil
}

// dropAssigned removes the fields a cluster assigns that would be wrong
// in any other cluster: a Service's cluster IPs, a claim's volume, a
// pod's node.
func dropAssigned(key api.ObjectKey, t map[string]any) {
	spec, _ := t["spec"].(map[string]any)
	if spec == nil || key.APIVersion != "v1" {
		return
	}
	switch key.Kind {
	case "Service":
		if ip, _ := spec["clusterIP"].(string); ip != "None" {
			delete(spec, "clusterIP")
			delete(spec, "clusterIPs")
		}
	case "PersistentVolumeClaim":
		delete(spec, "volumeName")
	case "Pod":
		delete(spec, "nodeName")
	}
}

// promotePolicy writes the policy that binds a promoted workload to its
// cluster: named after it (or NAME-promoted when that name is taken).
func (p *Peer) promotePolicy(key api.ObjectKey, cluster string, deps bool) ([]byte, api.ObjectKey, error) {
	var polKey api.ObjectKey
	for _, name := range []string{key.Name, key.Name + "-promoted"} {
		k := api.ObjectKey{APIVersion: api.PolicyAPIVersion, Kind: policyKind(key.Namespace), Namespace: key.Namespace, Name: name}
		if !p.holds(k) {
			polKey = k
			break
		}
	}
	if polKey.Name == "" {
		return nil, polKey, fmt.Errorf("policies %s and %s-promoted exist already: nothing was written", key.Name, key.Name)
	}
	extra := map[string]any{"conflictResolution": string(api.ConflictOverwrite)}
	if deps {
		extra["propagateDeps"] = true
	}
	out, err := boundPolicy(polKey, key, cluster, extra)
	return out, polKey, err
}
