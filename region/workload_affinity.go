package region

import (
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// Workload affinity (placement.workloadAffinity, Karmada v1.18+): a policy
// names a label key; templates whose label of that key has the same value
// form a group ("key=value", within one namespace).
//
//   - affinity: a workload may go only to clusters that every other
//     workload of its group already runs on (the first of a group, or one
//     whose others run nowhere yet, goes anywhere);
//   - antiAffinity: a workload may not go to a cluster another workload of
//     its group runs on.
//
// As Karmada's filters (plugins workloadaffinity and workloadantiaffinity),
// both are hard rules, and a cluster the workload already runs on always
// passes: the rule never removes what is scheduled. A workload without the
// label is in no group. Workloads are placed one after the other in key
// order within a leader pass, each seeing where the ones before it were
// just placed (Karmada's scheduler sees the bindings it is assigning).

// affinityGroups is a workload's groups, "" for none.
type affinityGroups struct{ affinity, anti string }

// affinityIndex is what a scheduling pass knows of the workloads that take
// part in workload affinity.
type affinityIndex struct {
	groups  map[string]affinityGroups // by workload key
	targets map[string][]string       // clusters each is placed on (names as place sees them)
	byAff   map[string][]string       // namespace|group -> workload keys
	byAnti  map[string][]string
}

// newAffinityIndex indexes the workloads whose policy has a workload
// affinity; nil if none has. prev gives a workload's previous clusters.
func (l *Leader) newAffinityIndex(objects []*shoalpb.Object, policies []*api.Policy, prev func(api.ObjectKey) []*shoalpb.TargetCluster) *affinityIndex {
	if !slices.ContainsFunc(policies, func(p *api.Policy) bool { return p.Spec.Placement.WorkloadAffinity != nil }) {
		return nil
	}
	ix := &affinityIndex{groups: map[string]affinityGroups{}, targets: map[string][]string{},
		byAff: map[string][]string{}, byAnti: map[string][]string{}}
	for _, o := range objects {
		t, err := l.template(o)
		if err != nil {
			continue
		}
		pol := api.SelectPolicy(policies, t)
		if pol == nil || pol.Spec.Placement.WorkloadAffinity == nil {
			continue
		}
		g := groupsOf(pol.Spec.Placement.WorkloadAffinity, t.Labels)
		if g == (affinityGroups{}) {
			continue
		}
		key := api.KeyFromProto(o.GetKey())
		ks := key.String()
		ix.groups[ks] = g
		for _, tc := range prev(key) {
			ix.targets[ks] = append(ix.targets[ks], tc.GetName())
		}
		if g.affinity != "" {
			ix.byAff[key.Namespace+"|"+g.affinity] = append(ix.byAff[key.Namespace+"|"+g.affinity], ks)
		}
		if g.anti != "" {
			ix.byAnti[key.Namespace+"|"+g.anti] = append(ix.byAnti[key.Namespace+"|"+g.anti], ks)
		}
	}
	return ix
}

// groupsOf gives a template's groups by its labels, as Karmada's detector
// names them: "key=value".
func groupsOf(wa *api.WorkloadAffinity, labels map[string]string) affinityGroups {
	var g affinityGroups
	if t := wa.Affinity; t != nil {
		if v, ok := labels[t.GroupByLabelKey]; ok {
			g.affinity = t.GroupByLabelKey + "=" + v
		}
	}
	if t := wa.AntiAffinity; t != nil {
		if v, ok := labels[t.GroupByLabelKey]; ok {
			g.anti = t.GroupByLabelKey + "=" + v
		}
	}
	return g
}

// filter leaves out of clusters those workload key may not go to, and
// says why when it left any out.
func (ix *affinityIndex) filter(key api.ObjectKey, clusters []ClusterInfo) ([]ClusterInfo, string) {
	if ix == nil {
		return clusters, ""
	}
	ks := key.String()
	g, ok := ix.groups[ks]
	if !ok {
		return clusters, ""
	}
	var affOthers, antiOthers []string
	if g.affinity != "" {
		affOthers = ix.byAff[key.Namespace+"|"+g.affinity]
	}
	if g.anti != "" {
		antiOthers = ix.byAnti[key.Namespace+"|"+g.anti]
	}
	var out []ClusterInfo
	var offAff, offAnti []string
	for _, c := range clusters {
		if slices.Contains(ix.targets[ks], c.Name) {
			out = append(out, c)
			continue
		}
		switch {
		case !ix.withAll(ks, affOthers, c.Name):
			offAff = append(offAff, c.Name)
		case ix.besideAny(ks, antiOthers, c.Name):
			offAnti = append(offAnti, c.Name)
		default:
			out = append(out, c)
		}
	}
	var why []string
	if len(offAff) > 0 {
		why = append(why, "workloadAffinity "+g.affinity+": not on "+strings.Join(offAff, ", ")+", where the rest of its group is not")
	}
	if len(offAnti) > 0 {
		why = append(why, "workloadAntiAffinity "+g.anti+": not on "+strings.Join(offAnti, ", ")+", where another of its group runs")
	}
	return out, strings.Join(why, "; ")
}

// withAll reports whether every other placed workload of others runs on
// cluster.
func (ix *affinityIndex) withAll(self string, others []string, cluster string) bool {
	for _, o := range others {
		if o != self && len(ix.targets[o]) > 0 && !slices.Contains(ix.targets[o], cluster) {
			return false
		}
	}
	return true
}

// besideAny reports whether another workload of others runs on cluster.
func (ix *affinityIndex) besideAny(self string, others []string, cluster string) bool {
	for _, o := range others {
		if o != self && slices.Contains(ix.targets[o], cluster) {
			return true
		}
	}
	return false
}

// placed records where a workload was just placed, for the ones after it.
func (ix *affinityIndex) placed(key api.ObjectKey, ts []*shoalpb.TargetCluster) {
	if ix == nil {
		return
	}
	ks := key.String()
	if _, ok := ix.groups[ks]; !ok {
		return
	}
	ix.targets[ks] = ix.targets[ks][:0]
	for _, t := range ts {
		ix.targets[ks] = append(ix.targets[ks], t.GetName())
	}
}
