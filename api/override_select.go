package api

import "sort"

// OverridePolicy is a decoded, defaulted, validated OverridePolicy or
// ClusterOverridePolicy. Once decoded, the deprecated spec.targetCluster and
// spec.overriders are found as Spec.OverrideRules[0].
type OverridePolicy struct {
	Kind      string // KindOverridePolicy or KindClusterOverridePolicy
	Namespace string // empty for cluster-scoped
	Name      string
	Spec      OverrideSpec
}

// Ref names the policy as people read it: "OverridePolicy default/web-op"
// or "ClusterOverridePolicy all".
func (o *OverridePolicy) Ref() string {
	return o.Key().Display()
}

// Key gives the policy's object key.
func (o *OverridePolicy) Key() ObjectKey {
	return ObjectKey{APIVersion: PolicyAPIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

// IsCluster reports whether the policy is a ClusterOverridePolicy.
func (o *OverridePolicy) IsCluster() bool { return o.Kind == KindClusterOverridePolicy }

// strength is how precisely the policy selects t, or noMatch. As in
// Karmada's override manager (pkg/util/overridemanager/overridemanager.go):
// an OverridePolicy applies only to templates of its own namespace (it
// never applies to cluster-scoped ones), a ClusterOverridePolicy to any
// template; no resourceSelectors at all selects every template in scope,
// as weakly as a selector by apiVersion and kind.
func (o *OverridePolicy) strength(t *Template) matchStrength {
	if t == nil {
		return noMatch
	}
	if o.Kind == KindOverridePolicy && (t.Key.Namespace == "" || t.Key.Namespace != o.Namespace) {
		return noMatch
	}
	if len(o.Spec.ResourceSelectors) == 0 {
		return matchAll
	}
	best := noMatch
	for i := range o.Spec.ResourceSelectors {
		best = max(best, selectorMatch(&o.Spec.ResourceSelectors[i], t))
	}
	return best
}

// Selects reports whether the policy applies to the template: it is in the
// policy's scope and one of its resourceSelectors matches (or it has none).
func (o *OverridePolicy) Selects(t *Template) bool {
	return o.strength(t) > noMatch
}

// SelectOverrides returns the policies that apply to t, in the order they
// must be applied, which is Karmada's (ApplyOverridePolicies and
// getOverridersFromOverridePolicies in pkg/util/overridemanager):
//
//  1. every ClusterOverridePolicy before every OverridePolicy, so that the
//     namespace's own policies have the last word;
//  2. within each kind, the less precise match first: by apiVersion and
//     kind only (or no selectors), then by labelSelector, then by name, so
//     that the most precise policy has the last word;
//  3. then by name (and namespace, for a total order).
//
// Nil entries are skipped. The result does not depend on the order of ops;
// it is a new slice.
func SelectOverrides(ops []*OverridePolicy, t *Template) []*OverridePolicy {
	type match struct {
		o *OverridePolicy
		s matchStrength
	}
	var ms []match
	for _, o := range ops {
		if o == nil {
			continue
		}
		if s := o.strength(t); s > noMatch {
			ms = append(ms, match{o, s})
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if a.o.IsCluster() != b.o.IsCluster() {
			return a.o.IsCluster()
		}
		if a.s != b.s {
			return a.s < b.s
		}
		if a.o.Name != b.o.Name {
			return a.o.Name < b.o.Name
		}
		return a.o.Namespace < b.o.Namespace
	})
	out := make([]*OverridePolicy, len(ms))
	for i, m := range ms {
		out[i] = m.o
	}
	return out
}
