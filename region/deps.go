package region

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// Dependencies (a policy's propagateDeps, as Karmada's dependencies
// distributor has it). The ConfigMaps, Secrets, PersistentVolumeClaims
// and ServiceAccounts a workload's pod template names (api.Dependencies)
// go to every cluster the workload is bound to or still keeps old
// replicas on (an eviction: a failover or failback in progress), so they
// follow it through failover and failback; a cluster no workload needs
// them on any more loses them (the binding no longer names it, and the
// peer deletes what it holds there). A dependency selected by its own
// policy as well runs on the union of both. A dependency Shoal holds no
// template of is reported on the workload (MissingDependencies), which is
// placed all the same.

// attachDependencies adds the dependencies' clusters to their bindings in
// next (by key), and the missing ones to the workloads'.
func (l *Leader) attachDependencies(objects []*shoalpb.Object, policies []*api.Policy, next map[string]*shoalpb.Binding) {
	required := map[string]map[string]bool{} // dependency -> clusters
	requiredBy := map[string][]string{}      // dependency -> workloads
	overwrite := map[string]bool{}           // dependency -> a workload adopts existing objects
	for _, o := range objects {
		key := api.KeyFromProto(o.GetKey())
		nb := next[key.String()]
		if nb == nil || nb.GetPolicy() == "" {
			continue
		}
		t, err := l.template(o)
		if err != nil {
			continue
		}
		if pol := api.SelectPolicy(policies, t); pol == nil || !pol.Spec.PropagateDeps {
			continue
		}
		deps, err := l.dependencies(o)
		if err != nil || len(deps) == 0 {
			continue
		}
		var clusters []string
		for _, tc := range nb.GetClusters() {
			clusters = append(clusters, tc.GetName())
		}
		for _, e := range nb.GetEvictions() {
			clusters = append(clusters, e.GetCluster())
		}
		for _, d := range deps {
			ds := d.String()
			if db := next[ds]; db == nil {
				nb.MissingDependencies = append(nb.MissingDependencies, d.Display())
				continue
			}
			if required[ds] == nil {
				required[ds] = map[string]bool{}
			}
			for _, c := range clusters {
				required[ds][c] = true
			}
			requiredBy[ds] = append(requiredBy[ds], key.Display())
			overwrite[ds] = overwrite[ds] || nb.GetConflictResolution() == string(api.ConflictOverwrite)
		}
	}
	for ds, clusters := range required {
		db := next[ds]
		have := map[string]bool{}
		for _, tc := range db.GetClusters() {
			have[tc.GetName()] = true
		}
		for _, c := range sortedKeys(clusters) {
			if !have[c] {
				db.Clusters = append(db.Clusters, &shoalpb.TargetCluster{Name: c})
			}
		}
		slices.SortFunc(db.Clusters, func(a, b *shoalpb.TargetCluster) int { return strings.Compare(a.GetName(), b.GetName()) })
		by := requiredBy[ds]
		slices.Sort(by)
		db.RequiredBy = slices.Compact(by)
		why := fmt.Sprintf("required by %s (propagateDeps)", strings.Join(db.RequiredBy, ", "))
		if db.GetPolicy() == "" {
			db.Reason, db.Unschedulable = why, false
			// As Karmada's attached bindings: a dependency of a
			// workload that adopts what exists in the clusters
			// (conflictResolution Overwrite) adopts it too.
			if overwrite[ds] {
				db.ConflictResolution = string(api.ConflictOverwrite)
			}
		} else {
			db.Reason += "; " + why
		}
	}
}

// dependencies are the objects o's pod template names (cached by
// generation, as templates are).
func (l *Leader) dependencies(o *shoalpb.Object) ([]api.ObjectKey, error) {
	ks := api.KeyFromProto(o.GetKey()).String()
	if c, ok := l.deps[ks]; ok && c.gen == o.GetGeneration() {
		return c.keys, c.err
	}
	keys, err := api.Dependencies(o.GetManifest())
	l.deps[ks] = cachedDeps{gen: o.GetGeneration(), keys: keys, err: err}
	return keys, err
}

type cachedDeps struct {
	gen  int64
	keys []api.ObjectKey
	err  error
}
