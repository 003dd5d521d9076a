package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// matchStrength is how precisely a resource selector matches a template:
// Karmada's implicit priority (ImplicitPriority and ResourceSelectorPriority
// in pkg/util), which breaks ties between policies of the same explicit
// priority.
type matchStrength int

const (
	noMatch      matchStrength = iota // the selector does not match
	matchAll                          // by apiVersion and kind only
	matchByLabel                      // by labelSelector
	matchByName                       // by name
)

// selectorMatch says how rs matches t. As in Karmada, an empty selector
// namespace matches any namespace (and cluster-scoped templates), and a
// selector with a name ignores its labelSelector.
func selectorMatch(rs *ResourceSelector, t *Template) matchStrength {
	if rs.APIVersion != t.Key.APIVersion || rs.Kind != t.Key.Kind {
		return noMatch
	}
	if rs.Namespace != "" && rs.Namespace != t.Key.Namespace {
		return noMatch
	}
	if rs.Name != "" {
		if rs.Name == t.Key.Name {
			return matchByName
		}
		return noMatch
	}
	if rs.LabelSelector == nil {
		return matchAll
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.LabelSelector)
	if err != nil {
		return noMatch // validation refuses such selectors
	}
	if sel.Matches(labels.Set(t.Labels)) {
		return matchByLabel
	}
	return noMatch
}

// strength is the best match of any of the policy's selectors for t, or
// noMatch. A PropagationPolicy only ever matches templates in its own
// namespace.
func (p *Policy) strength(t *Template) matchStrength {
	if p.Kind == KindPropagationPolicy && (t.Key.Namespace == "" || t.Key.Namespace != p.Namespace) {
		return noMatch
	}
	best := noMatch
	for i := range p.Spec.ResourceSelectors {
		best = max(best, selectorMatch(&p.Spec.ResourceSelectors[i], t))
	}
	return best
}

// Selects reports whether any of the policy's resource selectors matches the
// template. A PropagationPolicy only selects templates in its own namespace;
// a ClusterPropagationPolicy may select templates in any namespace and
// cluster-scoped ones.
func (p *Policy) Selects(t *Template) bool {
	return p.strength(t) > noMatch
}

// ExplicitPriority is spec.priority, 0 when unset.
func (p *Policy) ExplicitPriority() int32 {
	if p.Spec.Priority == nil {
		return 0
	}
	return *p.Spec.Priority
}

// SelectPolicy picks the policy that propagates the template, with Karmada's
// precedence (pkg/detector/policy.go), or returns nil if none selects it:
//
//  1. a PropagationPolicy in the template's namespace beats any
//     ClusterPropagationPolicy, whatever their priorities;
//  2. among policies of the same kind, the higher spec.priority wins;
//  3. then the more precise match: by name, over by labelSelector, over by
//     apiVersion and kind only;
//  4. then the name that sorts first.
//
// Nil entries are skipped. The result does not depend on the order of
// policies.
func SelectPolicy(policies []*Policy, t *Template) *Policy {
	if t == nil {
		return nil
	}
	if p := bestOfKind(policies, t, KindPropagationPolicy); p != nil {
		return p
	}
	return bestOfKind(policies, t, KindClusterPropagationPolicy)
}

func bestOfKind(policies []*Policy, t *Template, kind string) *Policy {
	var (
		best         *Policy
		bestPriority int32
		bestStrength matchStrength
	)
	for _, p := range policies {
		if p == nil || p.Kind != kind {
			continue
		}
		s := p.strength(t)
		if s == noMatch {
			continue
		}
		prio := p.ExplicitPriority()
		if best == nil || prio > bestPriority ||
			(prio == bestPriority && (s > bestStrength ||
				(s == bestStrength && lessByName(p, best)))) {
			best, bestPriority, bestStrength = p, prio, s
		}
	}
	return best
}

// lessByName orders policies by name, then namespace, so that the choice is
// total even for policies that should not coexist.
func lessByName(a, b *Policy) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Namespace < b.Namespace
}
