package api

import (
	"reflect"
	"strings"
	"testing"
)

// ppYAML builds a PropagationPolicy default/web-pp around a spec given as
// YAML lines indented by two spaces.
func ppYAML(spec string) []byte {
	return []byte("apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: web-pp\nspec:\n" + spec)
}

const selectWeb = "  resourceSelectors:\n  - {apiVersion: apps/v1, kind: Deployment, name: web}\n"

func ptr[T any](v T) *T { return &v }

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want func(s *PropagationSpec) any // extracts the defaulted part
		is   any
	}{
		{"policy namespace", "", func(s *PropagationSpec) any { return s.ResourceSelectors[0].Namespace }, "default"},
		{"priority 0", "", func(s *PropagationSpec) any { return s.Priority }, ptr(int32(0))},
		{"preemption Never", "", func(s *PropagationSpec) any { return s.Preemption }, PreemptNever},
		{"conflictResolution Abort", "", func(s *PropagationSpec) any { return s.ConflictResolution }, ConflictAbort},
		{"schedulerName", "", func(s *PropagationSpec) any { return s.SchedulerName }, "default-scheduler"},
		{"no replicaScheduling is Duplicated", "",
			func(s *PropagationSpec) any { return *s.Placement.ReplicaScheduling },
			ReplicaSchedulingStrategy{ReplicaSchedulingType: ReplicaSchedulingTypeDuplicated}},
		{"empty replicaScheduling is Divided, Weighted", "  placement: {replicaScheduling: {}}\n",
			func(s *PropagationSpec) any { return *s.Placement.ReplicaScheduling },
			ReplicaSchedulingStrategy{ReplicaSchedulingType: ReplicaSchedulingTypeDivided, ReplicaDivisionPreference: ReplicaDivisionPreferenceWeighted}},
		{"Divided without preference is Weighted", "  placement: {replicaScheduling: {replicaSchedulingType: Divided}}\n",
			func(s *PropagationSpec) any { return s.Placement.ReplicaScheduling.ReplicaDivisionPreference },
			ReplicaDivisionPreferenceWeighted},
		{"Aggregated is kept", "  placement: {replicaScheduling: {replicaDivisionPreference: Aggregated}}\n",
			func(s *PropagationSpec) any { return *s.Placement.ReplicaScheduling },
			ReplicaSchedulingStrategy{ReplicaSchedulingType: ReplicaSchedulingTypeDivided, ReplicaDivisionPreference: ReplicaDivisionPreferenceAggregated}},
		{"spread constraint without field spreads by cluster, minGroups 1", "  placement: {spreadConstraints: [{maxGroups: 3}]}\n",
			func(s *PropagationSpec) any { return s.Placement.SpreadConstraints },
			[]SpreadConstraint{{SpreadByField: SpreadByFieldCluster, MaxGroups: 3, MinGroups: 1}}},
		{"spreadByLabel keeps no field, minGroups 1", "  placement: {spreadConstraints: [{spreadByLabel: rack}]}\n",
			func(s *PropagationSpec) any { return s.Placement.SpreadConstraints },
			[]SpreadConstraint{{SpreadByLabel: "rack", MinGroups: 1}}},
		{"cluster purgeMode Gracefully", "  failover: {cluster: {}}\n",
			func(s *PropagationSpec) any { return s.Failover.Cluster.PurgeMode }, PurgeModeGracefully},
		{"application failover", "  propagateDeps: true\n  failover: {application: {decisionConditions: {}}}\n",
			func(s *PropagationSpec) any { return *s.Failover.Application },
			ApplicationFailoverBehavior{DecisionConditions: DecisionConditions{TolerationSeconds: ptr(int32(300))}, PurgeMode: PurgeModeGracefully, GracePeriodSeconds: ptr(int32(600))}},
		{"application purgeMode Immediately is Directly", "  propagateDeps: true\n  failover: {application: {decisionConditions: {}, purgeMode: Immediately}}\n",
			func(s *PropagationSpec) any { return s.Failover.Application.PurgeMode }, PurgeModeDirectly},
		{"application purgeMode Graciously is Gracefully", "  propagateDeps: true\n  failover: {application: {decisionConditions: {}, purgeMode: Graciously}}\n",
			func(s *PropagationSpec) any { return s.Failover.Application.PurgeMode }, PurgeModeGracefully},
		{"application failover Never has no grace period", "  propagateDeps: true\n  failover: {application: {decisionConditions: {}, purgeMode: Never}}\n",
			func(s *PropagationSpec) any { return s.Failover.Application.GracePeriodSeconds }, (*int32)(nil)},
		{"explicit values are kept", "  priority: 5\n  preemption: Never\n  conflictResolution: Overwrite\n",
			func(s *PropagationSpec) any { return []any{*s.Priority, s.ConflictResolution} }, []any{int32(5), ConflictOverwrite}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := DecodePolicy(ppYAML(selectWeb + tt.spec))
			if err != nil {
				t.Fatalf("DecodePolicy: %v", err)
			}
			if got := tt.want(&p.Spec); !reflect.DeepEqual(got, tt.is) {
				t.Errorf("got %#v, want %#v", got, tt.is)
			}
		})
	}
}

// Karmada's PropagationPolicy and ClusterPropagationPolicy webhooks set
// propagateDeps for a policy that selects a ServiceImport, so that its
// application failover (which needs propagateDeps) is valid without it.
func TestDefaultsServiceImportPropagatesDeps(t *testing.T) {
	p, _, err := DecodePolicy(ppYAML("  resourceSelectors: [{apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport, name: web}]\n" +
		"  failover: {application: {decisionConditions: {}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Spec.PropagateDeps {
		t.Error("propagateDeps not set")
	}
}

func TestDefaultsClusterPolicySelectorNamespace(t *testing.T) {
	p, _, err := DecodePolicy([]byte("apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: all}\nspec:\n" + selectWeb))
	if err != nil {
		t.Fatal(err)
	}
	if p.Namespace != "" || p.Spec.ResourceSelectors[0].Namespace != "" {
		t.Errorf("a ClusterPropagationPolicy got a namespace: %q / %q", p.Namespace, p.Spec.ResourceSelectors[0].Namespace)
	}
}

// The stored manifest of a policy is the defaulted one; decoding it again
// must give the same policy, so defaulting twice changes nothing.
func TestDefaultsAreIdempotent(t *testing.T) {
	for _, spec := range []string{
		"", "  placement: {replicaScheduling: {}, spreadConstraints: [{}]}\n",
		"  propagateDeps: true\n  failover: {application: {decisionConditions: {}, purgeMode: Graciously}, cluster: {purgeMode: Directly}}\n",
	} {
		docs, err := DecodeDocuments(ppYAML(selectWeb + spec))
		if err != nil {
			t.Fatal(err)
		}
		again, _, err := DecodePolicy(docs[0].Manifest)
		if err != nil {
			t.Fatalf("spec %q: %v", strings.TrimSpace(spec), err)
		}
		if !reflect.DeepEqual(again, docs[0].Policy) {
			t.Errorf("spec %q: decoding the defaulted manifest changed the policy:\n%+v\n%+v", strings.TrimSpace(spec), again, docs[0].Policy)
		}
	}
}
