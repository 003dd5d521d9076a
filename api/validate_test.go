package api

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		doc  []byte
		want []string // problems, each "path: message" (a prefix of the message)
	}{
		{"no resourceSelectors", ppYAML("  placement: {}\n"),
			[]string{"spec.resourceSelectors: at least one resource selector is required"}},
		{"selector without apiVersion and kind", ppYAML("  resourceSelectors: [{name: web}]\n"),
			[]string{"spec.resourceSelectors[0].apiVersion: is required", "spec.resourceSelectors[0].kind: is required"}},
		{"selector in another namespace", ppYAML("  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, namespace: other}]\n"),
			[]string{`spec.resourceSelectors[0].namespace: "other" is not the policy's namespace "default"`}},
		{"preemption needs names", ppYAML("  preemption: Always\n  resourceSelectors: [{apiVersion: v1, kind: ConfigMap}]\n"),
			[]string{"spec.resourceSelectors[0].name: is required when preemption is Always"}},
		{"unknown preemption", ppYAML(selectWeb + "  preemption: Sometimes\n"),
			[]string{`spec.preemption: unknown value "Sometimes"`}},
		{"clusterAffinity and clusterAffinities", ppYAML(selectWeb + "  placement:\n    clusterAffinity: {clusterNames: [a]}\n    clusterAffinities: [{affinityName: x, clusterNames: [b]}]\n"),
			[]string{"spec.placement: clusterAffinity and clusterAffinities cannot both be set"}},
		{"empty, duplicate and long affinityName", ppYAML(selectWeb + "  placement:\n    clusterAffinities: [{clusterNames: [a]}, {affinityName: x}, {affinityName: x}, {affinityName: 'a b'}, {affinityName: " + strings.Repeat("a", 33) + "}]\n"),
			[]string{
				"spec.placement.clusterAffinities[0].affinityName: is required",
				`spec.placement.clusterAffinities[2].affinityName: "x" is already the name of clusterAffinities[1]`,
				`spec.placement.clusterAffinities[3].affinityName: "a b" is not a valid name`,
				"spec.placement.clusterAffinities[4].affinityName: must be no more than 32 characters, got 33",
			}},
		{"fieldSelector key, operator and values", ppYAML(selectWeb + "  placement:\n    clusterAffinity:\n      fieldSelector:\n        matchExpressions:\n        - {key: country, operator: In, values: [fr]}\n        - {key: region, operator: Exists}\n        - {key: zone, operator: NotIn}\n"),
			[]string{
				`spec.placement.clusterAffinity.fieldSelector.matchExpressions[0].key: unsupported key "country"; use provider, region or zone`,
				`spec.placement.clusterAffinity.fieldSelector.matchExpressions[1].operator: unsupported operator "Exists"; use In or NotIn`,
			}},
		{"spreadByField and spreadByLabel", ppYAML(selectWeb + "  placement:\n    spreadConstraints: [{spreadByField: cluster, spreadByLabel: rack}]\n"),
			[]string{"spec.placement.spreadConstraints[0]: spreadByField and spreadByLabel cannot both be set"}},
		{"unknown spreadByField", ppYAML(selectWeb + "  placement:\n    spreadConstraints: [{spreadByField: country}, {spreadByField: cluster}]\n"),
			[]string{`spec.placement.spreadConstraints[0].spreadByField: unknown field "country"`}},
		{"zone without cluster", ppYAML(selectWeb + "  placement:\n    spreadConstraints: [{spreadByField: zone, minGroups: 2}]\n"),
			[]string{"spec.placement.spreadConstraints: a constraint with spreadByField: cluster is required"}},
		{"duplicate spreadByField", ppYAML(selectWeb + "  placement:\n    spreadConstraints: [{spreadByField: cluster}, {spreadByField: cluster}]\n"),
			[]string{"spec.placement.spreadConstraints[1].spreadByField: spreadConstraints[0] already spreads by cluster"}},
		{"maxGroups below minGroups", ppYAML(selectWeb + "  placement:\n    spreadConstraints: [{spreadByField: cluster, maxGroups: 1, minGroups: 2}]\n"),
			[]string{"spec.placement.spreadConstraints[0]: maxGroups (1) is less than minGroups (2)"}},
		{"negative groups", ppYAML(selectWeb + "  placement:\n    spreadConstraints: [{spreadByField: cluster, maxGroups: -1, minGroups: -2}]\n"),
			[]string{"spec.placement.spreadConstraints[0].minGroups: must not be negative, got -2", "spec.placement.spreadConstraints[0].maxGroups: must not be negative, got -1"}},
		{"unknown replicaSchedulingType", ppYAML(selectWeb + "  placement:\n    replicaScheduling: {replicaSchedulingType: Split}\n"),
			[]string{`spec.placement.replicaScheduling.replicaSchedulingType: unknown value "Split"; use Duplicated or Divided`}},
		{"unknown division preference", ppYAML(selectWeb + "  placement:\n    replicaScheduling: {replicaDivisionPreference: Even}\n"),
			[]string{`spec.placement.replicaScheduling.replicaDivisionPreference: unknown value "Even"`}},
		{"static weight not positive", ppYAML(selectWeb + "  placement:\n    replicaScheduling:\n      weightPreference:\n        staticWeightList: [{targetCluster: {clusterNames: [a]}, weight: 0}, {targetCluster: {fieldSelector: {matchExpressions: [{key: os, operator: In, values: [x]}]}}, weight: -3}]\n"),
			[]string{
				"spec.placement.replicaScheduling.weightPreference.staticWeightList[0].weight: must be at least 1, got 0",
				"spec.placement.replicaScheduling.weightPreference.staticWeightList[1].weight: must be at least 1, got -3",
				`spec.placement.replicaScheduling.weightPreference.staticWeightList[1].targetCluster.fieldSelector.matchExpressions[0].key: unsupported key "os"`,
			}},
		{"unknown dynamicWeight", ppYAML(selectWeb + "  placement:\n    replicaScheduling: {weightPreference: {dynamicWeight: CPU}}\n"),
			[]string{`spec.placement.replicaScheduling.weightPreference.dynamicWeight: unknown factor "CPU"`}},
		{"toleration operators Lt and Gt", ppYAML(selectWeb + "  placement:\n    clusterTolerations:\n    - {key: a, operator: Lt, value: '1'}\n    - {key: a, operator: Gt, value: '1'}\n    - {key: a, operator: Is}\n"),
			[]string{
				`spec.placement.clusterTolerations[0].operator: unsupported operator "Lt"; use Equal, Exists or leave it empty`,
				`spec.placement.clusterTolerations[1].operator: unsupported operator "Gt"`,
			}},
		{"unknown purgeMode", ppYAML(selectWeb + "  failover: {cluster: {purgeMode: Never}}\n"),
			[]string{`spec.failover.cluster.purgeMode: unknown value "Never"; use Directly or Gracefully`}},
		{"old purgeMode spelling in cluster failover", ppYAML(selectWeb + "  failover: {cluster: {purgeMode: Graciously}}\n"),
			[]string{`spec.failover.cluster.purgeMode: unknown value "Graciously"; use Directly or Gracefully`}},
		{"application failover without decisionConditions", ppYAML(selectWeb + "  propagateDeps: true\n  failover: {application: {purgeMode: Directly}}\n"),
			[]string{"spec.failover.application.decisionConditions: is required"}},
		{"application failover rules", ppYAML(selectWeb + "  failover: {application: {decisionConditions: {tolerationSeconds: -1}, purgeMode: Never, gracePeriodSeconds: 0}}\n"),
			[]string{
				"spec.propagateDeps: must be true when failover.application is set",
				"spec.failover.application.decisionConditions.tolerationSeconds: must not be negative, got -1",
				"spec.failover.application.gracePeriodSeconds: must be greater than 0, got 0",
				"spec.failover.application.gracePeriodSeconds: only applies when purgeMode is Gracefully, but it is Never",
			}},
		{"statePreservation alias label names", ppYAML(selectWeb + "  propagateDeps: true\n  failover:\n    application:\n      decisionConditions: {}\n      statePreservation: {rules: [{aliasLabelName: 'bad label', jsonPath: '{ .jobId }'}, {aliasLabelName: example.com/job-id, jsonPath: '{ .jobId }'}]}\n    cluster:\n      statePreservation: {rules: [{aliasLabelName: -x, jsonPath: '{ .a }'}]}\n"),
			[]string{
				`spec.failover.cluster.statePreservation.rules[0].aliasLabelName: "-x" is not a label name`,
				`spec.failover.application.statePreservation.rules[0].aliasLabelName: "bad label" is not a label name`,
			}},
		{"unknown conflictResolution", ppYAML(selectWeb + "  conflictResolution: Merge\n"),
			[]string{`spec.conflictResolution: unknown value "Merge"; use Abort or Overwrite`}},
		{"unknown activationPreference", ppYAML(selectWeb + "  activationPreference: Eager\n"),
			[]string{`spec.activationPreference: unknown value "Eager"`}},
		{"suspension conflict", ppYAML(selectWeb + "  suspension: {dispatching: true, dispatchingOnClusters: {clusterNames: [a]}}\n"),
			[]string{"spec.suspension: dispatching cannot be set together with dispatchingOnClusters.clusterNames"}},
		{"bad names", []byte("apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: Web_PP, namespace: Prod}\nspec:\n  resourceSelectors: [{apiVersion: v1, kind: ConfigMap}]\n"),
			[]string{`metadata.name: "Web_PP" is not a valid name`, `metadata.namespace: "Prod" is not a valid namespace`}},
		{"name too long", []byte("apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: " + strings.Repeat("a", 254) + "}\nspec:\n" + selectWeb),
			[]string{"metadata.name: " + `"` + strings.Repeat("a", 254) + `" is not a valid name: must be no more than 253 characters`}},
		{"schedulePriority source", ppYAML(selectWeb + "  schedulePriority: {priorityClassSource: FederatedPriorityClass, priorityClassName: high}\n"),
			[]string{`spec.schedulePriority.priorityClassSource: unknown value "FederatedPriorityClass"; use KubePriorityClass`}},
		{"required keys absent or null", ppYAML("  resourceSelectors: [{apiVersion: v1, kind: null, labelSelector: {matchExpressions: [{key: a}]}}]\n" +
			"  placement: {replicaScheduling: {weightPreference: {staticWeightList: [{weight: 1}]}}}\n" +
			"  schedulePriority: {priorityClassSource: KubePriorityClass}\n" +
			"  failover: {cluster: {statePreservation: {rules: [{aliasLabelName: a}]}}}\n"),
			[]string{
				"spec.resourceSelectors[0].kind: is required",
				"spec.resourceSelectors[0].labelSelector.matchExpressions[0].operator: is required",
				"spec.placement.replicaScheduling.weightPreference.staticWeightList[0].targetCluster: is required",
				"spec.failover.cluster.statePreservation.rules[0].jsonPath: is required",
				"spec.schedulePriority.priorityClassName: is required",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodePolicy(tt.doc)
			if err == nil {
				t.Fatal("no error")
			}
			var perr *PolicyError
			if !errors.As(err, &perr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q (%T) is not a *PolicyError / ErrInvalid", err, err)
			}
			if !strings.HasPrefix(perr.Ref, "PropagationPolicy ") && !strings.HasPrefix(perr.Ref, "ClusterPropagationPolicy ") {
				t.Errorf("Ref %q does not name the policy", perr.Ref)
			}
			if !strings.HasPrefix(err.Error(), perr.Ref+": ") {
				t.Errorf("message %q does not start with the policy", err)
			}
			for _, want := range tt.want {
				found := false
				for _, p := range perr.Problems {
					if strings.HasPrefix(p.String(), want) {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem %q in:\n%s", want, err)
				}
			}
			if len(perr.Problems) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(perr.Problems), len(tt.want), err)
			}
		})
	}
}

func TestPolicyErrorMessage(t *testing.T) {
	_, _, err := DecodePolicy(ppYAML("  placement:\n    spreadConstraints: [{spreadByField: cluster, maxGroups: 1, minGroups: 2}]\n"))
	want := "PropagationPolicy default/web-pp: spec.resourceSelectors: at least one resource selector is required " +
		"(an empty list does not mean everything: Karmada refuses it so that Secrets are not propagated by accident); " +
		"spec.placement.spreadConstraints[0]: maxGroups (1) is less than minGroups (2)"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}
