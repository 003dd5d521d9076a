package api

import (
	"math/rand"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func override(kind, ns, name string, sel ...ResourceSelector) *OverridePolicy {
	return &OverridePolicy{Kind: kind, Namespace: ns, Name: name, Spec: OverrideSpec{ResourceSelectors: sel}}
}

func TestOverrideSelects(t *testing.T) {
	web := &Template{Key: ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "front"}, Labels: map[string]string{"app": "front"}}
	node := &Template{Key: ObjectKey{APIVersion: "v1", Kind: "Namespace", Name: "web"}}
	deployments := ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment"}
	tests := []struct {
		name string
		o    *OverridePolicy
		t    *Template
		want bool
	}{
		{"no selectors: everything in its namespace", override(KindOverridePolicy, "web", "a"), web, true},
		{"no selectors: not another namespace", override(KindOverridePolicy, "other", "a"), web, false},
		{"an OverridePolicy never applies to cluster-scoped templates", override(KindOverridePolicy, "web", "a"), node, false},
		{"no selectors: a cluster policy applies to everything", override(KindClusterOverridePolicy, "", "a"), node, true},
		{"by kind", override(KindClusterOverridePolicy, "", "a", deployments), web, true},
		{"other kind", override(KindClusterOverridePolicy, "", "a", deployments), node, false},
		{"selector in another namespace", override(KindClusterOverridePolicy, "", "a",
			ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "other"}), web, false},
		{"by label", override(KindOverridePolicy, "web", "a", ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web",
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "front"}}}), web, true},
		{"by label, no match", override(KindOverridePolicy, "web", "a", ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web",
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "back"}}}), web, false},
		{"by name", override(KindOverridePolicy, "web", "a", ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "front"}), web, true},
		{"nil template", override(KindClusterOverridePolicy, "", "a"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.Selects(tt.t); got != tt.want {
				t.Errorf("Selects = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSelectOverridesOrder checks Karmada's order of application: every
// ClusterOverridePolicy before every OverridePolicy, the less precise match
// before the more precise one (so that the precise one has the last word),
// then by name; whatever the order of the input.
func TestSelectOverridesOrder(t *testing.T) {
	tpl := &Template{Key: ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "front"}, Labels: map[string]string{"app": "front"}}
	all := ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment"}
	byLabel := ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "front"}}}
	byName := ResourceSelector{APIVersion: "apps/v1", Kind: "Deployment", Name: "front"}
	ns := func(rs ResourceSelector) ResourceSelector { rs.Namespace = "web"; return rs }
	want := []*OverridePolicy{
		override(KindClusterOverridePolicy, "", "a-all", all),
		override(KindClusterOverridePolicy, "", "b-everything"), // no selectors: as weak as by kind
		override(KindClusterOverridePolicy, "", "z-all", all),
		override(KindClusterOverridePolicy, "", "a-label", byLabel),
		override(KindClusterOverridePolicy, "", "a-name", byName, all),
		override(KindOverridePolicy, "web", "z-all", ns(all)),
		override(KindOverridePolicy, "web", "m-label", ns(byLabel)),
		override(KindOverridePolicy, "web", "b-name", ns(byName)),
		override(KindOverridePolicy, "web", "c-name", ns(byName)),
	}
	ignored := []*OverridePolicy{
		nil,
		override(KindOverridePolicy, "other", "a-all", ns(all)),
		override(KindClusterOverridePolicy, "", "a-svc", ResourceSelector{APIVersion: "v1", Kind: "Service"}),
	}
	rng := rand.New(rand.NewSource(1))
	for range 20 {
		in := append(append([]*OverridePolicy(nil), want...), ignored...)
		rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		got := SelectOverrides(in, tpl)
		if len(got) != len(want) {
			t.Fatalf("got %d policies, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("position %d: got %s %s, want %s %s", i, got[i].Ref(), got[i].Spec.ResourceSelectors, want[i].Ref(), want[i].Spec.ResourceSelectors)
			}
		}
	}
	if got := SelectOverrides(want, &Template{Key: ObjectKey{APIVersion: "v1", Kind: "Secret", Namespace: "web", Name: "s"}}); len(got) != 1 || got[0].Name != "b-everything" {
		t.Errorf("for a Secret: %v", got)
	}
}
