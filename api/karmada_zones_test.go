package api

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The compatibility suite of clusters in several zones: Shoal matches what
// Karmada matches. The inputs and verdicts are Karmada's, read at commit
// f8fdd02d (v1.19.0-rc.0-18), each case naming the test it comes from:
// pkg/util/selector_test.go (TestClusterMatches, Test_matchZones),
// pkg/apis/cluster/validation/validation_test.go and
// pkg/apis/cluster/mutation/mutation_test.go. The code is Shoal's own.

// karmadaZonesCluster is TestClusterMatches' cluster: cluster1, label
// foo=bar, zones zone1, zone2 and zone3, region1, provider1.
var karmadaZonesCluster = ClusterFacts{
	Name:     "cluster1",
	Labels:   map[string]string{"foo": "bar"},
	Zones:    []string{"zone1", "zone2", "zone3"},
	Region:   "region1",
	Provider: "provider1",
}

func TestKarmadaClusterMatchesZones(t *testing.T) {
	c := karmadaZonesCluster
	fs := func(rs ...FieldSelectorRequirement) *FieldSelector { return &FieldSelector{MatchExpressions: rs} }
	req := func(key, op string, vals ...string) FieldSelectorRequirement {
		return FieldSelectorRequirement{Key: key, Operator: op, Values: vals}
	}
	labels := func(v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"foo": v}}
	}
	zonesIn, zonesNotIn := req(ZoneField, "In", c.Zones...), req(ZoneField, "NotIn", c.Zones...)
	names := []string{"cluster1"}
	// pkg/util/selector_test.go, TestClusterMatches, in its order.
	tests := []struct {
		name string
		aff  ClusterAffinity
		want bool
	}{
		{"test cluster excluded and names", ClusterAffinity{ExcludeClusters: names, ClusterNames: names}, false},
		{"test cluster excluded and label selector", ClusterAffinity{ExcludeClusters: names, LabelSelector: labels("bar")}, false},
		{"test cluster excluded and field selector", ClusterAffinity{ExcludeClusters: names, FieldSelector: fs(zonesIn)}, false},
		{"test cluster names", ClusterAffinity{ClusterNames: names}, true},
		{"test cluster names not matched", ClusterAffinity{ClusterNames: []string{"cluster2"}}, false},
		{"test cluster names and label selector", ClusterAffinity{LabelSelector: labels("bar"), ClusterNames: names}, true},
		{"test cluster names and label selector not matched", ClusterAffinity{LabelSelector: labels("unmatched"), ClusterNames: names}, false},
		{"test cluster names and field selector(zone & region)", ClusterAffinity{ClusterNames: names,
			FieldSelector: fs(zonesIn, req(RegionField, "In", "region1"))}, true},
		{"test cluster names and field selector(provider)", ClusterAffinity{ClusterNames: names, FieldSelector: fs(req(ProviderField, "In", "provider1"))}, true},
		{"test cluster names and field selector(region)", ClusterAffinity{ClusterNames: names, FieldSelector: fs(req(RegionField, "In", "region1"))}, true},
		{"test cluster names and field selector(zone not in)", ClusterAffinity{ClusterNames: names, FieldSelector: fs(zonesNotIn)}, false},
		{"test cluster names and field selector(provider not in)", ClusterAffinity{ClusterNames: names, FieldSelector: fs(req(ProviderField, "NotIn", "provider1"))}, false},
		{"test cluster names and field selector(region not in)", ClusterAffinity{ClusterNames: names, FieldSelector: fs(req(RegionField, "NotIn", "region1"))}, false},
		{"test label selector and field selector(zone)", ClusterAffinity{LabelSelector: labels("bar"), FieldSelector: fs(zonesIn)}, true},
		{"test label selector and field selector(provider)", ClusterAffinity{LabelSelector: labels("bar"), FieldSelector: fs(req(ProviderField, "In", "provider1"))}, true},
		{"test label selector and field selector(region)", ClusterAffinity{LabelSelector: labels("bar"), FieldSelector: fs(req(RegionField, "In", "region1"))}, true},
		{"test label selector and field selector(zone not in)", ClusterAffinity{LabelSelector: labels("bar"), FieldSelector: fs(zonesNotIn)}, false},
		{"test label selector and field selector(provider) NotIn", ClusterAffinity{LabelSelector: labels("bar"), FieldSelector: fs(req(ProviderField, "NotIn", "provider1"))}, false},
		{"test label selector and field selector(region) NotIn", ClusterAffinity{LabelSelector: labels("bar"), FieldSelector: fs(req(RegionField, "NotIn", "region1"))}, false},
		{"test label selector", ClusterAffinity{LabelSelector: labels("bar")}, true},
		{"test label selector not matched", ClusterAffinity{LabelSelector: labels("unmatched")}, false},
		{"test empty cluster affinity matched", ClusterAffinity{}, true},
		{"test label selector error", ClusterAffinity{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"": "bar"}}}, false},
		{"test field selector error", ClusterAffinity{FieldSelector: fs(FieldSelectorRequirement{})}, false},
		{"test field selector zone matched", ClusterAffinity{FieldSelector: fs(zonesIn)}, true},
		{"test field selector zone partially matched", ClusterAffinity{ClusterNames: names, FieldSelector: fs(zonesNotIn)}, false},
		// Named "not matched" in Karmada, but zone2 is one of the three.
		{"test field selector zone not matched", ClusterAffinity{ClusterNames: names, FieldSelector: fs(req(ZoneField, "In", "zone2"))}, true},
		{"test field selector region matched", ClusterAffinity{FieldSelector: fs(req(RegionField, "In", "region1"))}, true},
		{"test field selector region not matched NotIn", ClusterAffinity{ClusterNames: names, FieldSelector: fs(req(RegionField, "NotIn", "region1"))}, false},
		{"test field selector region not matched In", ClusterAffinity{ClusterNames: names, FieldSelector: fs(req(RegionField, "In", "region2"))}, false},
		{"test field selector provider matched", ClusterAffinity{FieldSelector: fs(req(ProviderField, "In", "provider1"))}, true},
		{"test field selector provider not matched NotIn", ClusterAffinity{FieldSelector: fs(req(ProviderField, "NotIn", "provider1"))}, false},
		{"test field selector provider not matched In", ClusterAffinity{FieldSelector: fs(req(ProviderField, "In", "provider2"))}, false},
		{"test field selector other key not matched", ClusterAffinity{FieldSelector: fs(req("metadata.name", "In", "cluster1"))}, false},
		{"test field selector cluster names and label selector", ClusterAffinity{FieldSelector: fs(zonesIn), LabelSelector: labels("bar"), ClusterNames: names}, true},
		{"test field selector cluster names and label selector not matched (names)", ClusterAffinity{FieldSelector: fs(zonesIn), LabelSelector: labels("bar"),
			ClusterNames: []string{"cluster2"}}, false},
		{"test field selector cluster names and label selector not matched (zone NotIn)", ClusterAffinity{FieldSelector: fs(zonesNotIn), LabelSelector: labels("bar"),
			ClusterNames: names}, false},
		{"test field selector cluster names and label selector not matched (labels)", ClusterAffinity{FieldSelector: fs(zonesIn), LabelSelector: labels("Unmatched"),
			ClusterNames: names}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, why := tt.aff.Matches(c); got != tt.want {
				t.Errorf("Matches = %v (%s), Karmada's ClusterMatches gives %v", got, why, tt.want)
			}
		})
	}
}

func TestKarmadaMatchZones(t *testing.T) {
	// pkg/util/selector_test.go, Test_matchZones, in its order.
	tests := []struct {
		name  string
		req   FieldSelectorRequirement
		zones []string
		want  bool
	}{
		{"empty zones for In operator", FieldSelectorRequirement{Key: ZoneField, Operator: "In", Values: []string{"foo"}}, nil, false},
		{"overlapping zones for In operator", FieldSelectorRequirement{Key: ZoneField, Operator: "In", Values: []string{"foo"}}, []string{"foo", "bar"}, true},
		{"all zones for In operator", FieldSelectorRequirement{Key: ZoneField, Operator: "In", Values: []string{"foo", "bar"}}, []string{"foo", "bar"}, true},
		{"empty zones for NotIn operator", FieldSelectorRequirement{Key: ZoneField, Operator: "NotIn", Values: []string{"foo"}}, nil, true},
		{"partial zones for NotIn operator", FieldSelectorRequirement{Key: ZoneField, Operator: "NotIn", Values: []string{"foo"}}, []string{"foo", "bar"}, false},
		{"empty zones for Exists operator", FieldSelectorRequirement{Key: ZoneField, Operator: "Exists"}, nil, false},
		{"empty zones for DoesNotExist operator", FieldSelectorRequirement{Key: ZoneField, Operator: "DoesNotExist"}, nil, true},
		{"unknown operator", FieldSelectorRequirement{Key: ZoneField, Operator: "Gt"}, []string{"foo"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchZones(tt.req, tt.zones); got != tt.want {
				t.Errorf("matchZones = %v, Karmada gives %v", got, tt.want)
			}
			// The same through the whole affinity, with the reason.
			aff := &ClusterAffinity{FieldSelector: &FieldSelector{MatchExpressions: []FieldSelectorRequirement{tt.req}}}
			if got, why := aff.Matches(ClusterFacts{Name: "c", Zones: tt.zones}); got != tt.want || !got && !strings.HasPrefix(why, "fieldSelector zone ") {
				t.Errorf("Matches = %v (%q), want %v", got, why, tt.want)
			}
		})
	}
}

func TestKarmadaZonesValidation(t *testing.T) {
	// pkg/apis/cluster/validation/validation_test.go, "invalid zones":
	// spec.zones ["Invalid Zone", "Zone2"] is refused for the first (not a
	// label value), the second being valid.
	err := CheckZones([]string{"Invalid Zone", "Zone2"})
	if err == nil || !strings.Contains(err.Error(), `zone "Invalid Zone"`) || strings.Contains(err.Error(), "Zone2") {
		t.Errorf("CheckZones([Invalid Zone Zone2]) = %v; want only the first refused", err)
	}
	// "invalid zone": spec.zone "Invalid Zone" alone, the same rule.
	if err := CheckZones([]string{"Invalid Zone"}); err == nil {
		t.Error(`CheckZones([Invalid Zone]) accepted`)
	}
	// Shoal's own, stricter than Karmada's IsValidLabelValue: an empty
	// zone and a repeated zone are refused.
	for _, tt := range []struct {
		zones []string
		want  string
	}{
		{[]string{""}, "empty name"},
		{[]string{"eu-1a", "eu-1b", "eu-1a"}, `zone "eu-1a" given twice`},
		{[]string{strings.Repeat("z", 64)}, "not a Kubernetes label value"},
		{[]string{"-eu"}, `zone "-eu": not a Kubernetes label value`},
	} {
		if err := CheckZones(tt.zones); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckZones(%q) = %v, want %q", tt.zones, err, tt.want)
		}
	}
	for _, ok := range [][]string{nil, {"eu-west-1a"}, {"eu-west-1a", "eu-west-1b", "Zone_2.x"}} {
		if err := CheckZones(ok); err != nil {
			t.Errorf("CheckZones(%q) = %v", ok, err)
		}
	}
}

func TestKarmadaZoneToZones(t *testing.T) {
	// pkg/apis/cluster/mutation/mutation_test.go, "test mutate cluster
	// Zone": a cluster with spec.zone zone1 and no spec.zones gets zones
	// [zone1] (migrateZoneToZones). A record or gossip metadata from a
	// peer older than zone lists carries only zone and is read the same.
	for _, tt := range []struct {
		zone  string
		zones []string
		want  []string
	}{
		{"zone1", nil, []string{"zone1"}},
		{"", nil, nil},
		// zones present: they win (what a newer peer writes: zone is
		// their first).
		{"zone1", []string{"zone1", "zone2"}, []string{"zone1", "zone2"}},
		{"", []string{"zone2"}, []string{"zone2"}},
		// From the network, repeats and empty names are dropped.
		{"a", []string{"a", "", "b", "a"}, []string{"a", "b"}},
		{"a", []string{""}, []string{"a"}},
	} {
		if got := ZonesOf(tt.zone, tt.zones); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ZonesOf(%q, %q) = %q, want %q", tt.zone, tt.zones, got, tt.want)
		}
	}
	if FirstZone(nil) != "" || FirstZone([]string{"b", "a"}) != "b" {
		t.Error("FirstZone")
	}
}
