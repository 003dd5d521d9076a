package api

import (
	"reflect"
	"strings"
	"testing"
)

// The compatibility suite of propagation policies: Shoal accepts what
// Karmada accepts and refuses what it refuses. The inputs and verdicts are
// Karmada's, read at commit f8fdd02d (after v1.19.0-rc.0), from
// pkg/util/validation/validation_test.go, the tests of
// pkg/webhook/propagationpolicy, the CRD schema
// (charts/karmada/_crds/bases/policy/policy.karmada.io_propagationpolicies.yaml)
// and, for what Shoal used to refuse, the code that has no such check.
// Karmada's unit tests call ValidatePropagationSpec on a bare spec; here
// every policy is a whole document, so those without resource selectors
// get one (the schema requires one) and application failover gets
// propagateDeps (the webhook requires it).

// karmadaCase is one policy and Karmada's verdict: refused with problems
// containing each of errs, or accepted (errs nil), with a warning
// containing warn if warn is set.
type karmadaCase struct {
	source string
	doc    string
	errs   []string
	warn   string
}

func checkKarmadaCases(t *testing.T, tests []karmadaCase, decode func([]byte) ([]string, error)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			warnings, err := decode([]byte(tt.doc))
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("refused, Karmada accepts: %v", err)
				}
			} else if err == nil {
				t.Fatalf("accepted, Karmada refuses (want %q); warnings %q", tt.errs, warnings)
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
			if tt.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), tt.warn) {
				t.Errorf("no warning %q in %q", tt.warn, warnings)
			}
		})
	}
}

func decodePolicyWarnings(b []byte) ([]string, error) {
	_, w, err := DecodePolicy(b)
	return w, err
}

// pp is a PropagationPolicy default/web-pp selecting the Deployment web,
// with more of the spec (indented by two).
func pp(spec string) string {
	return "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: web-pp, namespace: default}\nspec:\n" + selectWeb + spec
}

// failover is pp with application failover and propagateDeps.
func failover(application string) string {
	return pp("  propagateDeps: true\n  failover:\n    application: " + application + "\n")
}

func TestKarmadaValidatePropagationSpec(t *testing.T) {
	overflow := func(rs string) string {
		return pp("  placement:\n    clusterAffinities: [{affinityName: primary, clusterNames: [member1], overflowAffinities: [{affinityName: overflow-1, clusterNames: [member2]}]}]\n" + rs)
	}
	aggregated := "    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Aggregated}\n"
	checkKarmadaCases(t, []karmadaCase{
		// validation_test.go TestValidatePropagationSpec.
		{"TestValidatePropagationSpec/valid spec", pp("  placement:\n    clusterAffinity: {fieldSelector: {matchExpressions: [{key: provider, operator: In, values: [fooCloud]}, {key: region, operator: NotIn, values: [fooCloud]}, {key: zone, operator: NotIn, values: [fooCloud]}]}}\n" +
			"    spreadConstraints: [{maxGroups: 2, minGroups: 1, spreadByField: region}, {spreadByField: cluster}]\n"), nil, ""},
		{"TestValidatePropagationSpec/clusterAffinity.fieldSelector has unsupported key", pp("  placement: {clusterAffinity: {fieldSelector: {matchExpressions: [{key: foo, operator: In, values: [fooCloud]}]}}}\n"),
			[]string{`spec.placement.clusterAffinity.fieldSelector.matchExpressions[0].key: unsupported key "foo"`}, ""},
		{"TestValidatePropagationSpec/clusterAffinity.fieldSelector has unsupported operator", pp("  placement: {clusterAffinity: {fieldSelector: {matchExpressions: [{key: provider, operator: Exists, values: [fooCloud]}]}}}\n"),
			[]string{`unsupported operator "Exists"`}, ""},
		{"TestValidatePropagationSpec/clusterAffinities cannot co-exist with clusterAffinity", pp("  placement: {clusterAffinity: {clusterNames: [m1]}, clusterAffinities: [{affinityName: group1, clusterNames: [m1]}]}\n"),
			[]string{"spec.placement: clusterAffinity and clusterAffinities cannot both be set"}, ""},
		{"TestValidatePropagationSpec/clusterAffinities different affinities have the same affinityName", pp("  placement: {clusterAffinities: [{affinityName: group1, clusterNames: [m1]}, {affinityName: group1, clusterNames: [m2]}]}\n"),
			[]string{`spec.placement.clusterAffinities[1].affinityName: "group1" is already the name of clusterAffinities[0]`}, ""},
		{"TestValidatePropagationSpec/clusterAffinities.[index].clusterAffinity.fieldSelector has unsupported key", pp("  placement: {clusterAffinities: [{affinityName: group1, fieldSelector: {matchExpressions: [{key: foo, operator: In, values: [fooCloud]}]}}]}\n"),
			[]string{`spec.placement.clusterAffinities[0].fieldSelector.matchExpressions[0].key: unsupported key "foo"`}, ""},
		{"TestValidatePropagationSpec/clusterAffinities.[index].clusterAffinity.fieldSelector has unsupported operator", pp("  placement: {clusterAffinities: [{affinityName: group1, fieldSelector: {matchExpressions: [{key: provider, operator: Exists, values: [fooCloud]}]}}]}\n"),
			[]string{`spec.placement.clusterAffinities[0].fieldSelector.matchExpressions[0].operator: unsupported operator "Exists"`}, ""},
		{"TestValidatePropagationSpec/spreadConstraint spreadByLabel co-exist with spreadByField", pp("  placement: {spreadConstraints: [{spreadByField: cluster, spreadByLabel: foo}]}\n"),
			[]string{"spec.placement.spreadConstraints[0]: spreadByField and spreadByLabel cannot both be set"}, ""},
		{"TestValidatePropagationSpec/spreadConstraint maxGroups lower than minGroups", pp("  placement: {spreadConstraints: [{maxGroups: 1, minGroups: 2}]}\n"),
			[]string{"spec.placement.spreadConstraints[0]: maxGroups (1) is less than minGroups (2)"}, ""},
		{"TestValidatePropagationSpec/spreadConstraint maxGroups lower than 0", pp("  placement: {spreadConstraints: [{maxGroups: -1, minGroups: 1}]}\n"),
			[]string{"spec.placement.spreadConstraints[0].maxGroups: must not be negative"}, ""},
		{"TestValidatePropagationSpec/spreadConstraint minGroups lower than 0", pp("  placement: {spreadConstraints: [{maxGroups: 2, minGroups: -2}]}\n"),
			[]string{"spec.placement.spreadConstraints[0].minGroups: must not be negative"}, ""},
		{"TestValidatePropagationSpec/spreadConstraint has two cluster spread constraints", pp("  placement: {spreadConstraints: [{spreadByField: cluster, maxGroups: 2, minGroups: -2}, {spreadByField: cluster, maxGroups: 5, minGroups: 3}, {spreadByLabel: grouped-by-net, maxGroups: 5, minGroups: 3}]}\n"),
			[]string{"spec.placement.spreadConstraints[1].spreadByField: spreadConstraints[0] already spreads by cluster"}, ""},
		{"TestValidatePropagationSpec/spreadConstraint has multiple region spread constraints", pp("  placement: {spreadConstraints: [{spreadByField: region, maxGroups: 1, minGroups: 3}, {spreadByField: region, maxGroups: 4, minGroups: 2}, {spreadByField: region, maxGroups: 6, minGroups: 5}, {spreadByField: cluster, maxGroups: 10, minGroups: 5}]}\n"),
			[]string{"already spreads by region"}, ""},
		{"TestValidatePropagationSpec/spreadConstraint spreadByFieldCluster must be included if using spreadByField", pp("  placement: {spreadConstraints: [{spreadByField: region}]}\n"),
			[]string{"spec.placement.spreadConstraints: a constraint with spreadByField: cluster is required"}, ""},
		{"TestValidatePropagationSpec/resourceSelector name is empty when preemption is enabled",
			"apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, namespace: default}\nspec:\n  resourceSelectors: [{apiVersion: v1, kind: Pod, namespace: default}]\n  preemption: Always\n",
			[]string{"spec.resourceSelectors[0].name: is required when preemption is Always"}, ""},
		{"TestValidatePropagationSpec/suspension dispatching cannot co-exist with dispatchingOnClusters", pp("  suspension: {dispatching: true, dispatchingOnClusters: {clusterNames: [cluster-name]}}\n"),
			[]string{"spec.suspension: dispatching cannot be set together with dispatchingOnClusters.clusterNames"}, ""},
		{"TestValidatePropagationSpec/suspension dispatching with nil dispatchingOnClusters is valid", pp("  suspension: {dispatching: true}\n"), nil, "spec.suspension: not implemented"},
		{"TestValidatePropagationSpec/suspension dispatching with empty dispatching clusters is valid", pp("  suspension: {dispatching: true, dispatchingOnClusters: {clusterNames: []}}\n"), nil, ""},
		{"TestValidatePropagationSpec/dispatchingOnClusters.clusterNames without dispatching is valid", pp("  suspension: {dispatchingOnClusters: {clusterNames: [cluster-name]}}\n"), nil, ""},
		{"TestValidatePropagationSpec/dispatchingOnClusters.clusterNames with dispatching false is valid", pp("  suspension: {dispatching: false, dispatchingOnClusters: {clusterNames: [cluster-name]}}\n"), nil, ""},
		{"TestValidatePropagationSpec/workloadAffinity affinity and antiAffinity with same groupByLabelKey", pp("  placement: {workloadAffinity: {affinity: {groupByLabelKey: app.group}, antiAffinity: {groupByLabelKey: app.group}}}\n"),
			[]string{`spec.placement.workloadAffinity: affinity and antiAffinity cannot group by the same label key "app.group"`}, ""},
		{"TestValidatePropagationSpec/workloadAffinity affinity and antiAffinity with different groupByLabelKey is valid", pp("  placement: {workloadAffinity: {affinity: {groupByLabelKey: app.group}, antiAffinity: {groupByLabelKey: app.region}}}\n"),
			nil, ""},
		{"TestValidatePropagationSpec/workloadAffinity with only affinity is valid", pp("  placement: {workloadAffinity: {affinity: {groupByLabelKey: app.group}}}\n"), nil, ""},
		{"TestValidatePropagationSpec/workloadAffinity with only antiAffinity is valid", pp("  placement: {workloadAffinity: {antiAffinity: {groupByLabelKey: app.group}}}\n"), nil, ""},
		{"TestValidatePropagationSpec/workloadAffinity affinity with invalid groupByLabelKey", pp("  placement: {workloadAffinity: {affinity: {groupByLabelKey: INVALID KEY!}}}\n"),
			[]string{"spec.placement.workloadAffinity.affinity.groupByLabelKey"}, ""},
		{"TestValidatePropagationSpec/workloadAffinity antiAffinity with invalid groupByLabelKey", pp("  placement: {workloadAffinity: {antiAffinity: {groupByLabelKey: INVALID KEY!}}}\n"),
			[]string{"spec.placement.workloadAffinity.antiAffinity.groupByLabelKey"}, ""},

		// validation_test.go TestValidatePlacement and
		// TestValidateOverflowAffinities.
		{"TestValidatePlacement/overflowAffinities rejected when replicaScheduling is nil", overflow(""),
			[]string{"spec.placement.clusterAffinities[0].overflowAffinities: can only be used with replicaScheduling Divided by dynamicWeight or Aggregated"}, ""},
		{"TestValidatePlacement/overflowAffinities rejected with static weight scheduling", overflow("    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Weighted, weightPreference: {staticWeightList: [{targetCluster: {clusterNames: [member1]}, weight: 1}]}}\n"),
			[]string{"overflowAffinities: can only be used"}, ""},
		{"TestValidatePlacement/overflowAffinities allowed with dynamic weight scheduling", overflow("    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Weighted, weightPreference: {dynamicWeight: AvailableReplicas}}\n"),
			nil, ""},
		{"TestValidatePlacement/overflowAffinities allowed with aggregated scheduling", overflow(aggregated), nil, ""},
		{"TestValidatePlacement/multiple affinities, only one has overflow rejected", pp("  placement:\n    clusterAffinities: [{affinityName: group1, clusterNames: [member1]}, {affinityName: group2, clusterNames: [member2], overflowAffinities: [{affinityName: overflow-1, clusterNames: [member3]}]}]\n"),
			[]string{"spec.placement.clusterAffinities[1].overflowAffinities: can only be used"}, ""},
		{"TestValidatePlacement/no overflow affinities with unsupported scheduling, no error", pp("  placement: {clusterAffinities: [{affinityName: primary, clusterNames: [member1]}]}\n"), nil, ""},
		{"TestValidateOverflowAffinities/valid overflow affinities", pp("  placement:\n    clusterAffinities: [{affinityName: primary, clusterNames: [member1], overflowAffinities: [{affinityName: overflow-1, clusterNames: [member2]}, {affinityName: overflow-2, clusterNames: [member3]}]}]\n" + aggregated), nil, ""},
		{"TestValidateOverflowAffinities/overflow affinities without ClusterAffinity", pp("  placement:\n    clusterAffinities: [{affinityName: primary, overflowAffinities: [{affinityName: overflow-1, clusterNames: [member2]}]}]\n" + aggregated),
			[]string{"overflowAffinities: can only be used when the term selects its own clusters"}, ""},
		{"TestValidateOverflowAffinities/duplicate overflow affinity names", pp("  placement:\n    clusterAffinities: [{affinityName: primary, clusterNames: [member1], overflowAffinities: [{affinityName: overflow-1, clusterNames: [member2]}, {affinityName: overflow-1, clusterNames: [member3]}]}]\n" + aggregated),
			[]string{`spec.placement.clusterAffinities[0].overflowAffinities[1].affinityName: "overflow-1" is already used in this term`}, ""},
		{"TestValidateOverflowAffinities/overflow affinity name duplicates primary group's affinityName", pp("  placement:\n    clusterAffinities: [{affinityName: primary, clusterNames: [member1], overflowAffinities: [{affinityName: primary, clusterNames: [member2]}]}]\n" + aggregated),
			[]string{`overflowAffinities[0].affinityName: "primary" is already used in this term`}, ""},
		{"TestValidateOverflowAffinities/multiple errors: empty ClusterAffinity and duplicate names", pp("  placement:\n    clusterAffinities: [{affinityName: primary, overflowAffinities: [{affinityName: overflow-1, clusterNames: [member2]}, {affinityName: overflow-1, clusterNames: [member3]}]}]\n" + aggregated),
			[]string{"can only be used when the term selects its own clusters", `"overflow-1" is already used in this term`}, ""},

		// validation_test.go TestValidateClusterTolerations.
		{"TestValidateClusterTolerations/toleration with Exists operator is valid", pp("  placement: {clusterTolerations: [{key: key1, operator: Exists}]}\n"), nil, ""},
		{"TestValidateClusterTolerations/toleration with Equal operator is valid", pp("  placement: {clusterTolerations: [{key: key1, operator: Equal, value: value1}]}\n"), nil, ""},
		{"TestValidateClusterTolerations/toleration with empty operator is valid (defaults to Equal)", pp("  placement: {clusterTolerations: [{key: key1, value: value1}]}\n"), nil, ""},
		{"TestValidateClusterTolerations/toleration with Lt operator is invalid", pp("  placement: {clusterTolerations: [{key: key1, operator: Lt, value: '100'}]}\n"),
			[]string{`spec.placement.clusterTolerations[0].operator: unsupported operator "Lt"`}, ""},
		{"TestValidateClusterTolerations/toleration with Gt operator is invalid", pp("  placement: {clusterTolerations: [{key: key1, operator: Gt, value: '100'}]}\n"),
			[]string{`unsupported operator "Gt"`}, ""},
		{"TestValidateClusterTolerations/mixed tolerations with one invalid Lt operator", pp("  placement: {clusterTolerations: [{key: key1, operator: Equal, value: value1}, {key: key2, operator: Lt, value: '100'}]}\n"),
			[]string{`spec.placement.clusterTolerations[1].operator: unsupported operator "Lt"`}, ""},

		// Tests of pkg/webhook/propagationpolicy.
		{"propagationpolicy validating_test Handle_ResourceSelectorNamespaceMismatch_DeniesAdmission",
			"apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, namespace: ns-1}\nspec:\n  resourceSelectors: [{apiVersion: v1, kind: Pod, namespace: ns-2}]\n",
			[]string{`spec.resourceSelectors[0].namespace: "ns-2" is not the policy's namespace "ns-1"`}, ""},
		{"clusterpropagationpolicy validating_test Handle_ValidationSucceeds_AllowsAdmission: selectors of any namespace",
			"apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: p}\nspec:\n  resourceSelectors: [{apiVersion: v1, kind: Pod, namespace: ns-2}]\n", nil, ""},
	}, decodePolicyWarnings)
}

func TestKarmadaValidateFailover(t *testing.T) {
	invalidName := "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
	rule := func(alias string) string {
		return "{decisionConditions: {tolerationSeconds: 100}, statePreservation: {rules: [{aliasLabelName: '" + alias + "', jsonPath: '{.availableReplicas}'}]}}"
	}
	checkKarmadaCases(t, []karmadaCase{
		// validation_test.go TestValidateApplicationFailover.
		{"TestValidateApplicationFailover/the tolerationSeconds is less than zero", failover("{decisionConditions: {tolerationSeconds: -100}}"),
			[]string{"spec.failover.application.decisionConditions.tolerationSeconds: must not be negative, got -100"}, ""},
		{"TestValidateApplicationFailover/the gracePeriodSeconds is declared when purgeMode is not gracefully", failover("{decisionConditions: {tolerationSeconds: 100}, purgeMode: Directly, gracePeriodSeconds: 100}"),
			[]string{"spec.failover.application.gracePeriodSeconds: only applies when purgeMode is Gracefully"}, ""},
		{"TestValidateApplicationFailover/the gracePeriodSeconds is less than 0 when purgeMode is gracefully", failover("{decisionConditions: {tolerationSeconds: 100}, purgeMode: Gracefully, gracePeriodSeconds: -100}"),
			[]string{"spec.failover.application.gracePeriodSeconds: must be greater than 0, got -100"}, ""},
		// The webhook alone refuses it; the mutating webhook first sets 600
		// s (helper.SetDefaultGracePeriodSeconds), so Karmada accepts it.
		{"TestValidateApplicationFailover/the gracePeriodSeconds is empty when purgeMode is gracefully (defaulted first)", failover("{decisionConditions: {tolerationSeconds: 100}, purgeMode: Gracefully}"), nil, ""},
		{"TestValidateApplicationFailover/application behavior is correctly declared", failover("{decisionConditions: {tolerationSeconds: 100}}"), nil, ""},
		{"TestValidateApplicationFailover/statePreservation with valid rules", failover("{decisionConditions: {tolerationSeconds: 100}, statePreservation: {rules: [{aliasLabelName: valid-label-name, jsonPath: '{.availableReplicas}'}, {aliasLabelName: example.com/state-key, jsonPath: '{.readyReplicas}'}]}}"), nil, ""},
		{"TestValidateApplicationFailover/statePreservation with invalid aliasLabelName - starts with dash", failover(rule("-invalid-label")),
			[]string{`spec.failover.application.statePreservation.rules[0].aliasLabelName: "-invalid-label" is not a label name: ` + invalidName}, ""},
		{"TestValidateApplicationFailover/statePreservation with invalid aliasLabelName - ends with dash", failover(rule("invalid-label-")), []string{invalidName}, ""},
		{"TestValidateApplicationFailover/statePreservation with invalid aliasLabelName - contains invalid characters", failover(rule("invalid@label")), []string{invalidName}, ""},
		{"TestValidateApplicationFailover/statePreservation with too long aliasLabelName", failover(rule(strings.Repeat("a", 64))), []string{"name part must be no more than 63 bytes"}, ""},
		{"TestValidateApplicationFailover/statePreservation with multiple invalid rules", failover("{decisionConditions: {tolerationSeconds: 100}, statePreservation: {rules: [{aliasLabelName: -invalid1, jsonPath: '{.availableReplicas}'}, {aliasLabelName: invalid2@, jsonPath: '{.readyReplicas}'}]}}"),
			[]string{"rules[0].aliasLabelName", "rules[1].aliasLabelName"}, ""},
		{"TestValidateApplicationFailover/statePreservation with valid prefix in aliasLabelName", failover(rule("example.com/my-state")), nil, ""},
		{"TestValidateApplicationFailover/statePreservation with invalid prefix in aliasLabelName", failover(rule("INVALID.COM/my-state")), []string{"prefix part a lowercase RFC 1123 subdomain"}, ""},
		// validation.go ValidatePropagationSpec.
		{"ValidatePropagationSpec: application failover needs propagateDeps", pp("  failover: {application: {decisionConditions: {}}}\n"),
			[]string{"spec.propagateDeps: must be true when failover.application is set"}, ""},

		// validation_test.go TestValidateClusterFailover.
		{"TestValidateClusterFailover/cluster failover with valid statePreservation", pp("  failover: {cluster: {purgeMode: Gracefully, statePreservation: {rules: [{aliasLabelName: cluster-state, jsonPath: '{.status.nodeCount}'}]}}}\n"), nil, ""},
		{"TestValidateClusterFailover/cluster failover with invalid statePreservation", pp("  failover: {cluster: {purgeMode: Directly, statePreservation: {rules: [{aliasLabelName: -invalid-cluster-label, jsonPath: '{.status.nodeCount}'}]}}}\n"),
			[]string{`spec.failover.cluster.statePreservation.rules[0].aliasLabelName: "-invalid-cluster-label" is not a label name`}, ""},
		{"TestValidateClusterFailover/cluster failover without statePreservation", pp("  failover: {cluster: {purgeMode: Gracefully}}\n"), nil, ""},
	}, decodePolicyWarnings)
}

// TestKarmadaPropagationSchema checks what the CRD schema decides
// (policy.karmada.io_propagationpolicies.yaml at f8fdd02d): enums,
// minimums, lengths and required keys.
func TestKarmadaPropagationSchema(t *testing.T) {
	head := "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, namespace: default}\nspec:\n"
	checkKarmadaCases(t, []karmadaCase{
		{"schema: spec is required", "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p}\n", []string{"spec: is required"}, ""},
		{"schema: resourceSelectors minItems 1", head + "  resourceSelectors: []\n", []string{"spec.resourceSelectors: at least one resource selector is required"}, ""},
		{"schema: resourceSelectors[].kind is required", head + "  resourceSelectors: [{apiVersion: v1}]\n", []string{"spec.resourceSelectors[0].kind: is required"}, ""},
		{"schema: resourceSelectors[].kind may be empty", head + "  resourceSelectors: [{apiVersion: v1, kind: ''}]\n", nil, ""},
		{"schema: labelSelector matchExpressions key is required", head + "  resourceSelectors: [{apiVersion: v1, kind: Pod, labelSelector: {matchExpressions: [{operator: Exists}]}}]\n",
			[]string{"spec.resourceSelectors[0].labelSelector.matchExpressions[0].key: is required"}, ""},
		{"schema: preemption enum", pp("  preemption: Sometimes\n"), []string{`spec.preemption: unknown value "Sometimes"`}, ""},
		{"schema: conflictResolution enum", pp("  conflictResolution: Merge\n"), []string{`spec.conflictResolution: unknown value "Merge"`}, ""},
		{"schema: activationPreference enum", pp("  activationPreference: Eager\n"), []string{`spec.activationPreference: unknown value "Eager"`}, ""},
		{"schema: spreadByField enum", pp("  placement: {spreadConstraints: [{spreadByField: country}, {spreadByField: cluster}]}\n"), []string{`unknown field "country"`}, ""},
		{"schema: replicaSchedulingType enum", pp("  placement: {replicaScheduling: {replicaSchedulingType: Split}}\n"), []string{`unknown value "Split"`}, ""},
		{"schema: replicaDivisionPreference enum", pp("  placement: {replicaScheduling: {replicaDivisionPreference: Even}}\n"), []string{`unknown value "Even"`}, ""},
		{"schema: dynamicWeight enum", pp("  placement: {replicaScheduling: {weightPreference: {dynamicWeight: CPU}}}\n"), []string{`unknown factor "CPU"`}, ""},
		{"schema: staticWeightList weight minimum 1", pp("  placement: {replicaScheduling: {weightPreference: {staticWeightList: [{targetCluster: {}, weight: 0}]}}}\n"), []string{"weight: must be at least 1, got 0"}, ""},
		{"schema: staticWeightList targetCluster is required", pp("  placement: {replicaScheduling: {weightPreference: {staticWeightList: [{weight: 1}]}}}\n"), []string{"staticWeightList[0].targetCluster: is required"}, ""},
		{"schema: affinityName maxLength 32", pp("  placement: {clusterAffinities: [{affinityName: " + strings.Repeat("a", 33) + "}]}\n"), []string{"must be no more than 32 characters"}, ""},
		{"schema: affinityName of 32", pp("  placement: {clusterAffinities: [{affinityName: " + strings.Repeat("a", 32) + "}]}\n"), nil, ""},
		{"schema: affinityName minLength 1", pp("  placement: {clusterAffinities: [{affinityName: ''}]}\n"), []string{"spec.placement.clusterAffinities[0].affinityName: is required"}, ""},
		{"schema: failover.cluster.purgeMode enum has no old spellings", pp("  failover: {cluster: {purgeMode: Graciously}}\n"), []string{`spec.failover.cluster.purgeMode: unknown value "Graciously"`}, ""},
		{"schema: failover.application.purgeMode Never", failover("{decisionConditions: {}, purgeMode: Never}"), nil, ""},
		{"schema: failover.application.decisionConditions is required", failover("{purgeMode: Directly}"), []string{"spec.failover.application.decisionConditions: is required"}, ""},
		{"schema: statePreservation rules[].jsonPath is required", failover("{decisionConditions: {}, statePreservation: {rules: [{aliasLabelName: a}]}}"), []string{"statePreservation.rules[0].jsonPath: is required"}, ""},
		{"schema: schedulePriority priorityClassSource enum", pp("  schedulePriority: {priorityClassSource: FederatedPriorityClass, priorityClassName: high}\n"), []string{`unknown value "FederatedPriorityClass"; use KubePriorityClass`}, ""},
		{"schema: schedulePriority priorityClassName is required", pp("  schedulePriority: {priorityClassSource: KubePriorityClass}\n"), []string{"spec.schedulePriority.priorityClassName: is required"}, ""},
		{"API server: the name is a DNS subdomain", "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: Web_PP}\nspec:\n" + selectWeb, []string{`metadata.name: "Web_PP" is not a valid name`}, ""},
	}, decodePolicyWarnings)
}

// TestKarmadaAcceptsWhatShoalRefused lists the checks Shoal had and
// Karmada has not (in validation.go, its webhooks or its schema): each
// policy is now accepted, with a warning where Shoal cannot act on it.
func TestKarmadaAcceptsWhatShoalRefused(t *testing.T) {
	checkKarmadaCases(t, []karmadaCase{
		{"no name limit of 63 (removed in Karmada v1.11, 911cc4497)", "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: " + strings.Repeat("a", 64) + "}\nspec:\n" + selectWeb, nil, ""},
		{"ResourceMatches: an invalid selector is accepted and never matches", "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p}\n" +
			"spec:\n  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, labelSelector: {matchExpressions: [{key: app, operator: in, values: [a]}]}}]\n",
			nil, "spec.resourceSelectors[0].labelSelector: invalid label selector"},
		{"ClusterMatches: an invalid cluster selector is accepted and never matches", pp("  placement: {clusterAffinities: [{affinityName: a, labelSelector: {matchLabels: {'bad key!': x}}}]}\n"),
			nil, "spec.placement.clusterAffinities[0].labelSelector: invalid label selector"},
		{"ValidatePolicyFieldSelector: In and NotIn need no values", pp("  placement: {clusterAffinity: {fieldSelector: {matchExpressions: [{key: zone, operator: NotIn}, {key: region, operator: In}]}}}\n"), nil, ""},
		{"validateClusterTolerations: only Lt and Gt are refused", pp("  placement: {clusterTolerations: [{key: a, operator: Is}, {key: a, effect: NoRun}, {key: a, operator: Exists, value: v}, {effect: NoSchedule}]}\n"), nil, ""},
		{"ValidateSpreadConstraint: spreadByLabel is not checked", pp("  placement: {spreadConstraints: [{spreadByLabel: 'bad key!'}]}\n"), nil, ""},
		{"replicaScheduling: Duplicated ignores division and weights", pp("  placement: {replicaScheduling: {replicaSchedulingType: Duplicated, replicaDivisionPreference: Weighted, weightPreference: {dynamicWeight: AvailableReplicas}}}\n"), nil, ""},
		{"replicaScheduling: Aggregated ignores weights", pp("  placement: {replicaScheduling: {replicaDivisionPreference: Aggregated, weightPreference: {dynamicWeight: AvailableReplicas}}}\n"), nil, ""},
		{"replicaScheduling: dynamicWeight wins over staticWeightList", pp("  placement: {replicaScheduling: {weightPreference: {dynamicWeight: AvailableReplicas, staticWeightList: [{targetCluster: {clusterNames: [a]}, weight: 1}]}}}\n"), nil, ""},
		// The Kubernetes API server drops the namespace of a cluster-scoped
		// object; Karmada never sees it.
		{"API server: a ClusterPropagationPolicy's namespace is dropped", "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: all, namespace: prod}\nspec:\n" + selectWeb,
			nil, `ClusterPropagationPolicy all: metadata.namespace "prod" ignored`},
		// Shoal differs on purpose: Karmada v1.18 (the current release)
		// accepts the old spellings; the schema read after v1.19.0-rc.0
		// refuses them. Shoal accepts them with a warning until v1.19.0 is
		// released, so that policies the release takes keep working.
		{"differs: application purgeMode Graciously", failover("{decisionConditions: {}, purgeMode: Graciously}"), nil, "Graciously is deprecated (Karmada v1.19 refuses it)"},
		{"differs: application purgeMode Immediately", failover("{decisionConditions: {}, purgeMode: Immediately}"), nil, "Shoal takes it as Directly"},
	}, decodePolicyWarnings)
}

// TestKarmadaMutatingDefaults follows the mutating webhook's
// TestMutatingAdmission_Handle_FullCoverage (pkg/webhook/propagationpolicy):
// selector namespaces, spread constraints, division preference, grace
// period, and propagateDeps for a ServiceImport.
func TestKarmadaMutatingDefaults(t *testing.T) {
	p, _, err := DecodePolicy([]byte("apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: test-propagation-policy, namespace: test-namespace}\nspec:\n" +
		"  placement: {spreadConstraints: [{}], replicaScheduling: {replicaSchedulingType: Divided}}\n" +
		"  resourceSelectors: [{apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport}, {apiVersion: v1, kind: ConfigMap}]\n" +
		"  failover: {application: {decisionConditions: {}, purgeMode: Gracefully}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	got := []any{s.Placement.SpreadConstraints, s.Placement.ReplicaScheduling.ReplicaDivisionPreference, s.PropagateDeps,
		s.ResourceSelectors[0].Namespace, s.ResourceSelectors[1].Namespace, *s.Failover.Application.GracePeriodSeconds}
	want := []any{[]SpreadConstraint{{SpreadByField: SpreadByFieldCluster, MinGroups: 1}}, ReplicaDivisionPreferenceWeighted, true,
		"test-namespace", "test-namespace", int32(600)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaulted to %v, want %v", got, want)
	}
}

// TestKarmadaShoalKeeps lists the refusals Shoal keeps although Karmada's
// webhooks and schema do not make them, and why.
func TestKarmadaShoalKeeps(t *testing.T) {
	checkKarmadaCases(t, []karmadaCase{
		// Without field validation the API server prunes an unknown field,
		// and Karmada never sees it; but kubectl asks for strict
		// server-side field validation by default (GA in Kubernetes 1.27),
		// and the API server then refuses it. Shoal refuses it too, so
		// that a misspelt field is not silently lost.
		{"kept: an unknown field is refused, as kubectl's default --validate=Strict makes it", pp("  placement: {spreadConstraints: [{spreadByFeild: cluster}]}\n"),
			[]string{"spec.placement.spreadConstraints[0].spreadByFeild: unknown field"}, ""},
		{"kept: a field given twice is refused, as kubectl's default --validate=Strict makes it", "{\"apiVersion\":\"policy.karmada.io/v1alpha1\",\"kind\":\"PropagationPolicy\",\"metadata\":{\"name\":\"p\"}," +
			"\"spec\":{\"priority\":1,\"priority\":2,\"resourceSelectors\":[{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}]}}",
			[]string{"spec.priority: field given twice"}, ""},
		// shoal.io/partition-guard is Shoal's own annotation, which Karmada
		// ignores. A misspelt value would silently turn the guarantee
		// "never run twice" off, so it is refused.
		{"kept: the value of Shoal's partition-guard annotation", "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, annotations: {shoal.io/partition-guard: strcit}}\nspec:\n" + selectWeb,
			[]string{`metadata.annotations[shoal.io/partition-guard]: unknown value "strcit"`}, ""},
	}, decodePolicyWarnings)
}

// TestOverflowAffinitiesAreImplemented: a valid policy with
// overflowAffinities decodes without a "not implemented" warning, its tiers
// kept in order.
func TestOverflowAffinitiesAreImplemented(t *testing.T) {
	p, warnings, err := DecodePolicy([]byte(pp("  placement:\n    clusterAffinities:\n" +
		"      - {affinityName: on-prem, labelSelector: {matchLabels: {location: on-prem}}, overflowAffinities: [{affinityName: cloud-a, clusterNames: [a]}, {affinityName: cloud-b, clusterNames: [b]}]}\n" +
		"    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Weighted, weightPreference: {dynamicWeight: AvailableReplicas}}\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if strings.Contains(w, "not implemented") {
			t.Errorf("warning %q", w)
		}
	}
	term := p.Spec.Placement.ClusterAffinities[0]
	if len(term.OverflowAffinities) != 2 || term.OverflowAffinities[0].AffinityName != "cloud-a" || term.OverflowAffinities[1].ClusterNames[0] != "b" {
		t.Errorf("overflowAffinities decoded as %+v", term.OverflowAffinities)
	}
}
