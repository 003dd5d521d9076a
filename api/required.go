package api

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Karmada's CRD schemas (charts/karmada/_crds/bases/policy/*.yaml, generated
// from the +required markers and the fields without omitempty) list the keys
// each object must have. The API server refuses a policy without one, or
// with it null, but accepts it empty ("", {} or []). Shoal's Go types cannot
// tell an absent key from an empty one, so the document as written is
// checked against these lists. Only keys whose empty value is valid are
// listed: for the others (an operator, a component, a weight) the check of
// the value already refuses what is missing, with a better message.

// required is one object of the schema and the keys it must have.
type required struct {
	at   string // where the object is, dotted, "[]" after a list; "" is the root
	keys []string
}

// labelSelectorKeys are required in every label selector's matchExpressions.
var labelSelectorKeys = []string{"key", "operator"}

// propagationRequired are the required keys of PropagationPolicy and
// ClusterPropagationPolicy, which share their schema.
var propagationRequired = []required{
	{"", []string{"spec"}},
	{"spec.resourceSelectors[]", []string{"apiVersion", "kind"}},
	{"spec.resourceSelectors[].labelSelector.matchExpressions[]", labelSelectorKeys},
	{"spec.placement.clusterAffinity.labelSelector.matchExpressions[]", labelSelectorKeys},
	{"spec.placement.clusterAffinities[].labelSelector.matchExpressions[]", labelSelectorKeys},
	{"spec.placement.clusterAffinities[].overflowAffinities[].labelSelector.matchExpressions[]", labelSelectorKeys},
	{"spec.placement.replicaScheduling.weightPreference.staticWeightList[]", []string{"targetCluster"}},
	{"spec.placement.replicaScheduling.weightPreference.staticWeightList[].targetCluster.labelSelector.matchExpressions[]", labelSelectorKeys},
	{"spec.failover.application", []string{"decisionConditions"}},
	{"spec.failover.application.statePreservation", []string{"rules"}},
	{"spec.failover.application.statePreservation.rules[]", []string{"jsonPath"}},
	{"spec.failover.cluster.statePreservation", []string{"rules"}},
	{"spec.failover.cluster.statePreservation.rules[]", []string{"jsonPath"}},
	{"spec.schedulePriority", []string{"priorityClassName"}},
}

// overrideRequired are the required keys of OverridePolicy and
// ClusterOverridePolicy, which share their schema. The overriders of a rule
// and the deprecated spec.overriders have the same ones.
var overrideRequired = func() []required {
	out := []required{
		{"", []string{"spec"}},
		{"spec.resourceSelectors[]", []string{"apiVersion", "kind"}},
		{"spec.resourceSelectors[].labelSelector.matchExpressions[]", labelSelectorKeys},
		{"spec.targetCluster.labelSelector.matchExpressions[]", labelSelectorKeys},
		{"spec.overrideRules[]", []string{"overriders"}},
		{"spec.overrideRules[].targetCluster.labelSelector.matchExpressions[]", labelSelectorKeys},
	}
	for _, ov := range []string{"spec.overrideRules[].overriders", "spec.overriders"} {
		out = append(out,
			required{ov + ".plaintext[]", []string{"path"}},
			required{ov + ".imageOverrider[].predicate", []string{"path"}},
			required{ov + ".commandOverrider[]", []string{"containerName"}},
			required{ov + ".argsOverrider[]", []string{"containerName"}},
			required{ov + ".labelsOverrider[]", []string{"value"}},
			required{ov + ".annotationsOverrider[]", []string{"value"}},
			required{ov + ".fieldOverrider[]", []string{"fieldPath"}},
			required{ov + ".fieldOverrider[].json[]", []string{"subPath"}},
			required{ov + ".fieldOverrider[].yaml[]", []string{"subPath"}},
		)
	}
	return out
}()

// checkRequired reports every required key that the JSON document j lacks
// or sets to null. Parts of j of the wrong type are skipped: the decoder
// reports those.
func checkRequired(j []byte, schema []required, perr *PolicyError) {
	var doc any
	if json.Unmarshal(j, &doc) != nil {
		return
	}
	for _, r := range schema {
		var segs []string
		if r.at != "" {
			segs = strings.Split(r.at, ".")
		}
		visitObjects(doc, segs, "", func(obj map[string]any, path string) {
			for _, k := range r.keys {
				if v, ok := obj[k]; !ok || v == nil {
					perr.add(joinPath(path, k), "is required")
				}
			}
		})
	}
}

// visitObjects calls fn on every object at segs under node; path is node's.
func visitObjects(node any, segs []string, path string, fn func(obj map[string]any, path string)) {
	obj, ok := node.(map[string]any)
	if !ok {
		return
	}
	if len(segs) == 0 {
		fn(obj, path)
		return
	}
	name, isList := strings.CutSuffix(segs[0], "[]")
	child := obj[name]
	path = joinPath(path, name)
	if !isList {
		visitObjects(child, segs[1:], path, fn)
		return
	}
	items, _ := child.([]any)
	for i, item := range items {
		visitObjects(item, segs[1:], path+"["+strconv.Itoa(i)+"]", fn)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
