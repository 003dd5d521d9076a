package api

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ClusterFacts is what selectors see of a cluster: its name, topology and
// labels. An empty Region or Provider means the cluster does not have that
// field. Zones lists every zone the cluster runs in (Karmada's spec.zones),
// none, one or several, without repeats.
type ClusterFacts struct {
	Name     string
	Region   string
	Zones    []string
	Provider string
	Labels   map[string]string
}

// field gives the value of the single-valued field selector keys (provider,
// region) and whether the key is one of those.
func (c ClusterFacts) field(key string) (value string, known bool) {
	switch key {
	case ProviderField:
		return c.Provider, true
	case RegionField:
		return c.Region, true
	}
	return "", false
}

// NamedBy reports whether a policy's cluster name entry names this
// cluster. Cluster names are unique per region: in a mesh of several
// regions the scheduler names clusters REGION/CLUSTER, and an entry names
// a cluster either so or by its own name alone (matching it in every
// region that has a cluster of that name).
func (c ClusterFacts) NamedBy(entry string) bool {
	if entry == c.Name {
		return true
	}
	if c.Region == "" {
		return false
	}
	if short, ok := strings.CutPrefix(c.Name, c.Region+"/"); ok {
		return entry == short
	}
	return entry == c.Region+"/"+c.Name
}

// Matches reports whether the cluster satisfies the affinity. When it does
// not, reason says which part failed: "excluded", "not in clusterNames",
// "labelSelector does not match", "invalid labelSelector: ...",
// "fieldSelector region NotIn [x]". A nil affinity matches everything; an
// empty one too. All parts must hold (they are ANDed, as in Karmada).
//
// Field selector operators follow Kubernetes node selector requirements over
// the fields provider and region, an empty field counting as absent: In
// needs the field present with one of the values, NotIn matches an absent
// field (but, as in Karmada, NotIn without values matches nothing), Exists
// and DoesNotExist test presence. Zones are matched as Karmada's matchZones
// (pkg/util/selector.go) matches spec.zones: In needs at least one of the
// cluster's zones among the values, NotIn none of them (a cluster without
// zones, or NotIn without values, matches), Exists needs a zone and
// DoesNotExist none. Gt, Lt and unknown operators or keys never match. An
// invalid label selector never matches.
func (a *ClusterAffinity) Matches(c ClusterFacts) (ok bool, reason string) {
	if a == nil {
		return true, ""
	}
	if slices.ContainsFunc(a.ExcludeClusters, c.NamedBy) {
		return false, "excluded"
	}
	if len(a.ClusterNames) > 0 && !slices.ContainsFunc(a.ClusterNames, c.NamedBy) {
		return false, "not in clusterNames"
	}
	if a.LabelSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(a.LabelSelector)
		if err != nil {
			return false, "invalid labelSelector: " + err.Error()
		}
		if !sel.Matches(labels.Set(c.Labels)) {
			return false, "labelSelector does not match"
		}
	}
	if a.FieldSelector != nil {
		for _, r := range a.FieldSelector.MatchExpressions {
			if !affinityFieldMatches(r, c) {
				return false, "fieldSelector " + affinityFieldString(r)
			}
		}
	}
	return true, ""
}

// affinityFieldString gives a requirement as "region NotIn [x y]" or
// "zone Exists".
func affinityFieldString(r FieldSelectorRequirement) string {
	switch r.Operator {
	case "Exists", "DoesNotExist":
		return r.Key + " " + r.Operator
	}
	return fmt.Sprintf("%s %s %v", r.Key, r.Operator, r.Values)
}

func affinityFieldMatches(r FieldSelectorRequirement, c ClusterFacts) bool {
	if r.Key == ZoneField {
		return matchZones(r, c.Zones)
	}
	v, known := c.field(r.Key)
	if !known {
		return false
	}
	present := v != ""
	switch r.Operator {
	case "In":
		return present && slices.Contains(r.Values, v)
	case "NotIn":
		// Karmada turns provider and region expressions into label
		// requirements, and NotIn without values does not make one: the
		// affinity then matches no cluster.
		if len(r.Values) == 0 {
			return false
		}
		return !present || !slices.Contains(r.Values, v)
	case "Exists":
		return present
	case "DoesNotExist":
		return !present
	}
	return false
}

// matchZones is Karmada's matchZones: In holds when any of the cluster's
// zones is among the values, NotIn when none is (so a cluster without zones
// passes), Exists when the cluster has a zone, DoesNotExist when it has
// none; any other operator fails.
func matchZones(r FieldSelectorRequirement, zones []string) bool {
	overlaps := slices.ContainsFunc(zones, func(z string) bool { return slices.Contains(r.Values, z) })
	switch r.Operator {
	case "In":
		return overlaps
	case "NotIn":
		return !overlaps
	case "Exists":
		return len(zones) > 0
	case "DoesNotExist":
		return len(zones) == 0
	}
	return false
}
