package api

import (
	"strings"
	"testing"
)

// The compatibility suite of override policies, as karmada_validation_test.go
// is for propagation policies: inputs and verdicts from Karmada at commit
// f8fdd02d (after v1.19.0-rc.0), from pkg/util/validation/validation_test.go,
// the tests of pkg/webhook/overridepolicy and clusteroverridepolicy, the
// CRD schema (policy.karmada.io_overridepolicies.yaml) and, for what Shoal
// used to refuse, the code that has no such check. Karmada's unit tests
// leave out what its schema requires (an operator); the documents here
// have it.

func decodeOverrideWarnings(b []byte) ([]string, error) {
	_, w, err := DecodeOverridePolicy(b)
	return w, err
}

// cop is a ClusterOverridePolicy "all" with the given spec (indented by
// two).
func cop(spec string) string {
	return "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all}\nspec:\n" + spec
}

// op is an OverridePolicy of namespace ns with the given spec.
func op(ns, spec string) string {
	return "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: op, namespace: " + ns + "}\nspec:\n" + spec
}

// rule is a spec with one rule for cluster-name and the given overriders.
func rule(overriders string) string {
	return "  overrideRules: [{targetCluster: {clusterNames: [cluster-name]}, overriders: " + overriders + "}]\n"
}

func TestKarmadaValidateOverrideSpec(t *testing.T) {
	const (
		plaintext = "{plaintext: [{path: spec/image, operator: remove}]}"
		target    = "  targetCluster: {clusterNames: [cluster-name]}\n"
	)
	badKey := "{key: foo, operator: In, values: [fooCloud]}"
	badOp := "{key: provider, operator: Gt, values: [fooCloud]}"
	checkKarmadaCases(t, []karmadaCase{
		// validation_test.go TestValidateOverrideSpec.
		{"TestValidateOverrideSpec/overrideRules is set, overriders and targetCluster aren't set", cop("  overrideRules: [{targetCluster: {clusterNames: [cluster-name]}, overriders: {}}]\n"), nil, ""},
		{"TestValidateOverrideSpec/overriders and targetCluster are set, overrideRules isn't set", cop(target + "  overriders: " + plaintext + "\n"), nil, "spec.targetCluster and spec.overriders are deprecated"},
		{"TestValidateOverrideSpec/overrideRules and targetCluster can't co-exist", cop(rule("{}") + target), []string{"spec.targetCluster: cannot be set together with overrideRules"}, ""},
		{"TestValidateOverrideSpec/overrideRules and overriders can't co-exist", cop(rule("{}") + "  overriders: " + plaintext + "\n"), []string{"spec.overriders: cannot be set together with overrideRules"}, ""},
		{"TestValidateOverrideSpec/overrideRules, targetCluster and overriders can't co-exist", cop(rule("{}") + target + "  overriders: " + plaintext + "\n"),
			[]string{"spec.targetCluster: cannot be set", "spec.overriders: cannot be set"}, ""},
		{"TestValidateOverrideSpec/invalid annotation should not be allowed", cop(rule("{annotationsOverrider: [{operator: add, value: {testannotation~projectId: c-m-lfx9lk92p-v86cf}}]}")),
			[]string{`spec.overrideRules[0].overriders.annotationsOverrider[0].value: "testannotation~projectId" is not a valid annotation key`}, ""},
		{"TestValidateOverrideSpec/invalid label should not be allowed", cop(rule("{labelsOverrider: [{operator: add, value: {testannotation~projectId: c-m-lfx9lk92p-v86cf}}]}")),
			[]string{`spec.overrideRules[0].overriders.labelsOverrider[0].value: "testannotation~projectId" is not a valid label key`}, ""},
		{"TestValidateOverrideSpec/overrideSpec.targetCluster.fieldSelector has unsupported key", cop("  targetCluster: {fieldSelector: {matchExpressions: [" + badKey + "]}}\n"),
			[]string{`spec.targetCluster.fieldSelector.matchExpressions[0].key: unsupported key "foo"`}, ""},
		{"TestValidateOverrideSpec/overrideSpec.targetCluster.fieldSelector has unsupported operator", cop("  targetCluster: {fieldSelector: {matchExpressions: [" + badOp + "]}}\n"),
			[]string{`spec.targetCluster.fieldSelector.matchExpressions[0].operator: unsupported operator "Gt"`}, ""},
		{"TestValidateOverrideSpec/overrideRules.[index].targetCluster.fieldSelector has unsupported key", cop("  overrideRules: [{targetCluster: {fieldSelector: {matchExpressions: [" + badKey + "]}}, overriders: {}}]\n"),
			[]string{`spec.overrideRules[0].targetCluster.fieldSelector.matchExpressions[0].key: unsupported key "foo"`}, ""},
		{"TestValidateOverrideSpec/overrideRules.[index].targetCluster.fieldSelector has unsupported operator", cop("  overrideRules: [{targetCluster: {fieldSelector: {matchExpressions: [" + badOp + "]}}, overriders: {}}]\n"),
			[]string{`unsupported operator "Gt"`}, ""},
		{"TestValidateOverrideSpec/fieldOverrider with neither YAML nor JSON should be rejected", cop(rule("{fieldOverrider: [{fieldPath: /data/config}]}")),
			[]string{"spec.overrideRules[0].overriders.fieldOverrider[0]: neither json nor yaml is set"}, ""},
		{"TestValidateOverrideSpec/fieldOverrider with both YAML and JSON set should be rejected", cop(rule("{fieldOverrider: [{fieldPath: /data/config, json: [{subPath: /key, operator: remove}], yaml: [{subPath: /key, operator: remove}]}]}")),
			[]string{"spec.overrideRules[0].overriders.fieldOverrider[0]: json and yaml cannot both be set"}, ""},
		{"TestValidateOverrideSpec/fieldOverrider with only YAML set should be allowed", cop(rule("{fieldOverrider: [{fieldPath: /data/config, yaml: [{subPath: /key, operator: remove}]}]}")), nil, ""},
		{"TestValidateOverrideSpec/fieldOverrider with only JSON set should be allowed", cop(rule("{fieldOverrider: [{fieldPath: /data/config, json: [{subPath: /key, operator: remove}]}]}")), nil, ""},
		// validation.go emptyOverrides (TestEmptyOverrides) does not count
		// fieldOverrider: beside overrideRules it is accepted, and the
		// override manager ignores it.
		{"TestEmptyOverrides: a deprecated fieldOverrider beside overrideRules", cop(rule("{}") + "  overriders: {fieldOverrider: [{fieldPath: /data/x}]}\n"),
			nil, "spec.overriders.fieldOverrider is ignored beside spec.overrideRules"},

		// Tests of pkg/webhook/overridepolicy and clusteroverridepolicy.
		{"overridepolicy validating_test Handle_ValidationOverrideSpecFails_DeniesAdmission", op("default", "  resourceSelectors: [{apiVersion: test-apiversion, kind: test}]\n"+rule("{labelsOverrider: [{operator: add, value: {testannotation~projectId: c-m-lfx9lk92p-v86cf}}]}")),
			[]string{`"testannotation~projectId"`}, ""},
		{"overridepolicy validating_test Handle_ValidationSucceeds_AllowsAdmission", op("default", "  resourceSelectors: [{apiVersion: test-apiversion, kind: test}]\n"+rule("{plaintext: [{path: /spec/optional, operator: remove}]}")), nil, ""},
		{"overridepolicy validating_test Handle_FieldOverrider_ContainsBothYAMLAndJSON_DeniesAdmission", op("default", rule(`{fieldOverrider: [{fieldPath: /data/config, json: [{subPath: /db-config, operator: replace, value: {"db": "new"}}], yaml: [{subPath: /db-config, operator: replace, value: "db: new"}]}]}`)),
			[]string{"json and yaml cannot both be set"}, ""},
		{"overridepolicy validating_test Handle_InvalidFieldPathInYAML_DeniesAdmission", op("default", "  overrideRules: [{overriders: {fieldOverrider: [{fieldPath: invalidPath, yaml: [{subPath: /db-config, operator: replace, value: \"db: new\"}]}]}}]\n"),
			[]string{`spec.overrideRules[0].overriders.fieldOverrider[0].fieldPath: "invalidPath" is not a JSON pointer: it must be empty or start with "/"`}, ""},
		{"overridepolicy validating_test Handle_InvalidJSONSubPath_DeniesAdmission", op("default", "  overrideRules: [{overriders: {fieldOverrider: [{fieldPath: /data/config, json: [{subPath: invalidSubPath, operator: replace, value: {db: new}}]}]}}]\n"),
			[]string{`spec.overrideRules[0].overriders.fieldOverrider[0].json[0].subPath: "invalidSubPath" is not a JSON pointer`}, ""},
		{"overridepolicy validating_test Handle_InvalidYAMLSubPath_DeniesAdmission", op("default", "  overrideRules: [{overriders: {fieldOverrider: [{fieldPath: /data/config, yaml: [{subPath: invalidSubPath, operator: replace, value: \"db: new\"}]}]}}]\n"),
			[]string{`spec.overrideRules[0].overriders.fieldOverrider[0].yaml[0].subPath: "invalidSubPath" is not a JSON pointer`}, ""},
		{"overridepolicy validating_test Handle_InvalidJSONValue_DeniesAdmission_OverriderOpReplace", op("default", "  overrideRules: [{overriders: {fieldOverrider: [{fieldPath: /data/config, json: [{subPath: /db-config, operator: replace}]}]}}]\n"),
			[]string{"spec.overrideRules[0].overriders.fieldOverrider[0].json[0].value: is required for operator replace"}, ""},
		{"overridepolicy validating_test Handle_InvalidJSONValue_DeniesAdmission_OverriderOpAdd", op("default", "  overrideRules: [{overriders: {fieldOverrider: [{fieldPath: /data/config, json: [{subPath: /db-config, operator: add}]}]}}]\n"),
			[]string{"json[0].value: is required for operator add"}, ""},
		{"overridepolicy validating_test Handle_InvalidJSONValue_DeniesAdmission_OverriderOpRemove", op("default", "  overrideRules: [{overriders: {fieldOverrider: [{fieldPath: /data/config, json: [{subPath: /db-config, operator: remove, value: {db: new}}]}]}}]\n"),
			[]string{"json[0].value: is not allowed for operator remove"}, ""},
		// Karmada v1.17+ (validateResourceSelectors in ValidateOverrideSpec).
		{"overridepolicy validating_test Handle_ResourceSelectorNamespaceMismatch_DeniesAdmission", op("ns-1", "  resourceSelectors: [{apiVersion: test-apiversion, kind: test, namespace: ns-2}]\n"+rule("{}")),
			[]string{`OverridePolicy ns-1/op: spec.resourceSelectors[0].namespace: "ns-2" is not the policy's namespace "ns-1"`}, ""},
		{"overridepolicy mutating_test: an empty selector namespace is the policy's", op("ns-1", "  resourceSelectors: [{apiVersion: v1, kind: ConfigMap}, {apiVersion: v1, kind: Secret, namespace: ns-1}]\n"+rule("{}")), nil, ""},
		{"clusteroverridepolicy validating_test Handle_ValidationClusterOverrideSpecFails_DeniesAdmission", cop(rule("{labelsOverrider: [{operator: add, value: {testannotation~projectId: c-m-lfx9lk92p-v86cf}}]}")),
			[]string{`"testannotation~projectId"`}, ""},
		{"clusteroverridepolicy validating: selectors of any namespace (the policy has none)", cop("  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, namespace: ns-2}]\n" + rule("{}")), nil, ""},
	}, decodeOverrideWarnings)
}

// TestKarmadaOverrideSchema checks what the CRD schema decides
// (policy.karmada.io_overridepolicies.yaml at f8fdd02d), in overrideRules
// and in the deprecated spec.overriders alike.
func TestKarmadaOverrideSchema(t *testing.T) {
	checkKarmadaCases(t, []karmadaCase{
		{"schema: spec is required", "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all}\n", []string{"spec: is required"}, ""},
		{"schema: overrideRules[].overriders is required", cop("  overrideRules: [{targetCluster: {}}]\n"), []string{"spec.overrideRules[0].overriders: is required"}, ""},
		{"schema: component enum", cop(rule("{imageOverrider: [{component: Registery, operator: add, value: x}]}")), []string{`unknown component "Registery"`}, ""},
		{"schema: component is required", cop(rule("{imageOverrider: [{operator: add, value: x}]}")), []string{"imageOverrider[0].component: is required"}, ""},
		{"schema: image operator enum, deprecated form too", cop("  overriders: {imageOverrider: [{component: Tag, operator: append}]}\n"), []string{`spec.overriders.imageOverrider[0].operator: unknown operator "append"`}, ""},
		{"schema: commandOverrider operator enum has no replace", cop(rule("{commandOverrider: [{containerName: web, operator: replace}]}")), []string{`commandOverrider[0].operator: unknown operator "replace"; use add or remove`}, ""},
		{"schema: containerName is required", cop(rule("{argsOverrider: [{operator: add}]}")), []string{"argsOverrider[0].containerName: is required"}, ""},
		{"schema: containerName may be empty", cop(rule("{argsOverrider: [{containerName: '', operator: add}]}")), nil, ""},
		{"schema: labelsOverrider value is required, even for remove", cop("  overriders: {labelsOverrider: [{operator: remove}]}\n"), []string{"spec.overriders.labelsOverrider[0].value: is required"}, ""},
		{"schema: labelsOverrider value may be empty", cop(rule("{labelsOverrider: [{operator: remove, value: {}}]}")), nil, ""},
		{"schema: plaintext path is required", cop(rule("{plaintext: [{operator: remove}]}")), []string{"plaintext[0].path: is required"}, ""},
		{"schema: plaintext operator enum", cop(rule("{plaintext: [{path: /a, operator: move}]}")), []string{`plaintext[0].operator: unknown operator "move"`}, ""},
		{"schema: predicate path is required", cop(rule("{imageOverrider: [{predicate: {}, component: Tag, operator: remove}]}")), []string{"imageOverrider[0].predicate.path: is required"}, ""},
		{"schema: fieldPath is required", cop(rule("{fieldOverrider: [{json: [{subPath: /a, operator: remove}]}]}")), []string{"fieldOverrider[0].fieldPath: is required"}, ""},
		{"schema: subPath is required", cop(rule("{fieldOverrider: [{fieldPath: /data/a, yaml: [{operator: remove}]}]}")), []string{"fieldOverrider[0].yaml[0].subPath: is required"}, ""},
		{"API server: the name is a DNS subdomain", "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: My_OP}\nspec: {}\n", []string{`metadata.name: "My_OP" is not a valid name`}, ""},
	}, decodeOverrideWarnings)
}

// TestKarmadaAcceptsOverridesShoalRefused lists the checks of override
// policies that Shoal had and Karmada has not: each is accepted now; what
// is wrong fails when applied, as in Karmada.
func TestKarmadaAcceptsOverridesShoalRefused(t *testing.T) {
	checkKarmadaCases(t, []karmadaCase{
		{"ValidateOverrideRules: plaintext paths are not checked", cop(rule("{plaintext: [{path: spec/replicas, operator: add, value: 3}, {path: '', operator: replace, value: {}}]}")), nil, ""},
		{"jsonpointer.New: escapes are not checked", cop(rule("{imageOverrider: [{predicate: {path: /a~2}, component: Tag, operator: remove}], fieldOverrider: [{fieldPath: /data/a~, json: [{subPath: /~x, operator: remove}]}]}")), nil, ""},
		{"jsonpointer.New: empty pointers", cop(rule("{imageOverrider: [{predicate: {path: ''}, component: Tag, operator: remove}], fieldOverrider: [{fieldPath: '', json: [{subPath: '', operator: remove}]}]}")), nil, ""},
		{"ImageOverrider: a value is not required for add or replace", cop(rule("{imageOverrider: [{component: Tag, operator: replace}, {component: Registry, operator: add}]}")), nil, ""},
		{"ValidateOverrideSpec: the deprecated overriders are not checked beyond the schema", cop("  overriders:\n" +
			"    labelsOverrider: [{operator: add, value: {'bad key!': 'bad value!'}}]\n" +
			"    annotationsOverrider: [{operator: add, value: {'a~b': x}}]\n" +
			"    imageOverrider: [{predicate: {path: spec/x}, component: Tag, operator: add}]\n" +
			"    fieldOverrider: [{fieldPath: data/x}, {fieldPath: /data/y, json: [{subPath: 'no-slash', operator: add}], yaml: [{subPath: /z, operator: remove, value: 1}]}]\n"),
			nil, "spec.targetCluster and spec.overriders are deprecated"},
		{"ValidatePolicyFieldSelector: In and NotIn need no values", cop("  overrideRules: [{targetCluster: {fieldSelector: {matchExpressions: [{key: region, operator: NotIn}]}}, overriders: {}}]\n"), nil, ""},
		{"ClusterMatches: an invalid targetCluster selector is accepted and never matches", cop("  overrideRules: [{targetCluster: {labelSelector: {matchExpressions: [{key: a, operator: In}]}}, overriders: {}}]\n"),
			nil, "spec.overrideRules[0].targetCluster.labelSelector: invalid label selector"},
		{"ResourceMatches: an invalid resource selector is accepted and never matches", cop("  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, labelSelector: {matchLabels: {'bad key!': x}}}]\n"),
			nil, "spec.resourceSelectors[0].labelSelector: invalid label selector"},
		{"API server: a ClusterOverridePolicy's namespace is dropped", "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all, namespace: prod}\nspec:\n" + rule("{}"),
			nil, `ClusterOverridePolicy all: metadata.namespace "prod" ignored`},
	}, decodeOverrideWarnings)

	// The dropped namespace is gone from the policy, its key and its
	// stored manifest.
	docs, err := DecodeDocuments([]byte("apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all, namespace: prod}\nspec:\n" + rule("{}")))
	if err != nil {
		t.Fatal(err)
	}
	if d := docs[0]; d.Key.Namespace != "" || d.Override.Namespace != "" || strings.Contains(string(d.Manifest), "prod") {
		t.Errorf("namespace kept: key %v, manifest %s", d.Key, d.Manifest)
	}
}
