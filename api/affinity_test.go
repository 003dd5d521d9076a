package api

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestClusterAffinityMatches(t *testing.T) {
	eu := ClusterFacts{Name: "eu-1", Region: "eu-west", Zones: []string{"eu-west-1a"}, Provider: "aws",
		Labels: map[string]string{"env": "prod", "tier": "gold"}}
	bare := ClusterFacts{Name: "edge-1"}
	sel := func(m map[string]string) *metav1.LabelSelector { return &metav1.LabelSelector{MatchLabels: m} }
	field := func(key, op string, vals ...string) *FieldSelector {
		return &FieldSelector{MatchExpressions: []FieldSelectorRequirement{{Key: key, Operator: op, Values: vals}}}
	}
	tests := []struct {
		name   string
		aff    *ClusterAffinity
		c      ClusterFacts
		ok     bool
		reason string
	}{
		{"nil matches all", nil, eu, true, ""},
		{"empty matches all", &ClusterAffinity{}, bare, true, ""},
		{"in clusterNames", &ClusterAffinity{ClusterNames: []string{"x", "eu-1"}}, eu, true, ""},
		{"not in clusterNames", &ClusterAffinity{ClusterNames: []string{"x"}}, eu, false, "not in clusterNames"},
		{"excluded", &ClusterAffinity{ExcludeClusters: []string{"eu-1"}}, eu, false, "excluded"},
		{"excluded wins over names", &ClusterAffinity{ClusterNames: []string{"eu-1"}, ExcludeClusters: []string{"eu-1"}}, eu, false, "excluded"},
		{"label matches", &ClusterAffinity{LabelSelector: sel(map[string]string{"env": "prod"})}, eu, true, ""},
		{"label does not match", &ClusterAffinity{LabelSelector: sel(map[string]string{"env": "dev"})}, eu, false, "labelSelector does not match"},
		{"label on cluster without labels", &ClusterAffinity{LabelSelector: sel(map[string]string{"env": "prod"})}, bare, false, "labelSelector does not match"},
		{"label expression NotIn", &ClusterAffinity{LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"gold"}}}}}, eu, false, "labelSelector does not match"},
		{"invalid label selector", &ClusterAffinity{LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: "Bogus"}}}}, eu, false, "invalid labelSelector: "},
		{"field In", &ClusterAffinity{FieldSelector: field("region", "In", "eu-west", "us-east")}, eu, true, ""},
		{"field In misses", &ClusterAffinity{FieldSelector: field("region", "In", "us-east")}, eu, false, "fieldSelector region In [us-east]"},
		{"field In on absent field", &ClusterAffinity{FieldSelector: field("zone", "In", "")}, bare, false, "fieldSelector zone In []"},
		{"field NotIn", &ClusterAffinity{FieldSelector: field("region", "NotIn", "eu-west")}, eu, false, "fieldSelector region NotIn [eu-west]"},
		{"field NotIn on absent field", &ClusterAffinity{FieldSelector: field("region", "NotIn", "eu-west")}, bare, true, ""},
		// Karmada's ClusterMatches (pkg/util/selector.go): provider and
		// region expressions become label requirements, and NotIn without
		// values makes none (no match); zone goes through matchZones, where
		// NotIn nothing holds.
		{"field NotIn without values matches nothing", &ClusterAffinity{FieldSelector: field("region", "NotIn")}, bare, false, "fieldSelector region NotIn []"},
		{"field zone NotIn without values matches all", &ClusterAffinity{FieldSelector: field("zone", "NotIn")}, eu, true, ""},
		{"field In without values matches nothing", &ClusterAffinity{FieldSelector: field("zone", "In")}, eu, false, "fieldSelector zone In []"},
		{"field Exists", &ClusterAffinity{FieldSelector: field("provider", "Exists")}, eu, true, ""},
		{"field Exists absent", &ClusterAffinity{FieldSelector: field("provider", "Exists")}, bare, false, "fieldSelector provider Exists"},
		{"field DoesNotExist", &ClusterAffinity{FieldSelector: field("zone", "DoesNotExist")}, bare, true, ""},
		{"field unknown key", &ClusterAffinity{FieldSelector: field("color", "Exists")}, eu, false, "fieldSelector color Exists"},
		{"field Gt never matches", &ClusterAffinity{FieldSelector: field("zone", "Gt", "1")}, eu, false, "fieldSelector zone Gt [1]"},
		{"all parts ANDed", &ClusterAffinity{ClusterNames: []string{"eu-1"}, LabelSelector: sel(map[string]string{"env": "prod"}),
			FieldSelector: field("provider", "In", "gcp")}, eu, false, "fieldSelector provider In [gcp]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := tt.aff.Matches(tt.c)
			if ok != tt.ok {
				t.Fatalf("Matches = %v (%q), want %v", ok, reason, tt.ok)
			}
			if len(reason) < len(tt.reason) || reason[:len(tt.reason)] != tt.reason || (tt.reason == "" && reason != "") {
				t.Fatalf("reason = %q, want prefix %q", reason, tt.reason)
			}
		})
	}
}
