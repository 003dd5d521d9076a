package api

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDecodeOverrideKarmadaExamples decodes the examples of Karmada's
// documentation kept in testdata, one file per overrider.
func TestDecodeOverrideKarmadaExamples(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, o *OverridePolicy)
	}{
		{"override-image.yaml", func(t *testing.T, o *OverridePolicy) {
			rs := o.Spec.OverrideRules
			if len(rs) != 4 {
				t.Fatalf("%d rules", len(rs))
			}
			im := rs[0].Overriders.ImageOverrider[0]
			if im.Component != ImageComponentRegistry || im.Operator != OverriderOpAdd || im.Value != "test-repo" {
				t.Errorf("rule 0 = %+v", im)
			}
			if im := rs[2].Overriders.ImageOverrider[0]; im.Component != ImageComponentTag || im.Operator != OverriderOpRemove || im.Value != "" {
				t.Errorf("rule 2 = %+v", im)
			}
			if p := rs[3].Overriders.ImageOverrider[0].Predicate; p == nil || p.Path != "/spec/template/spec/containers/0/image" {
				t.Errorf("rule 3 predicate = %+v", p)
			}
			if ex := rs[3].TargetCluster.ExcludeClusters; !reflect.DeepEqual(ex, []string{"member1"}) {
				t.Errorf("exclude = %v", ex)
			}
		}},
		{"override-command-args.yaml", func(t *testing.T, o *OverridePolicy) {
			ov := o.Spec.OverrideRules[0].Overriders
			if len(ov.CommandOverrider) != 2 || ov.CommandOverrider[1].Operator != OverriderOpRemove ||
				ov.CommandOverrider[1].Value[0] != "--parameter1=foo" || ov.ArgsOverrider[0].ContainerName != "myapp" {
				t.Errorf("overriders = %+v", ov)
			}
		}},
		{"override-labels-annotations.yaml", func(t *testing.T, o *OverridePolicy) {
			ov := o.Spec.OverrideRules[0].Overriders
			if len(ov.LabelsOverrider) != 3 || ov.LabelsOverrider[1].Value["foo"] != "exist" ||
				ov.AnnotationsOverrider[0].Value["example.io/owner"] != "team-a" {
				t.Errorf("overriders = %+v", ov)
			}
			if o.Spec.OverrideRules[0].TargetCluster != nil {
				t.Errorf("no targetCluster means every cluster")
			}
		}},
		{"override-field.yaml", func(t *testing.T, o *OverridePolicy) {
			f := o.Spec.OverrideRules[0].Overriders.FieldOverrider[0]
			if f.FieldPath != "/data/config.yaml" || f.YAML[0].SubPath != "/app/database/port" || string(f.YAML[0].Value) != `"3306"` {
				t.Errorf("yaml field overrider = %+v", f)
			}
			js := o.Spec.OverrideRules[1].Overriders.FieldOverrider[0].JSON
			if len(js) != 3 || string(js[0].Value) != "5" || !strings.Contains(string(js[1].Value), "nginx-helper") || js[2].Value != nil {
				t.Errorf("json field overrider = %+v", js)
			}
		}},
		{"override-plaintext.yaml", func(t *testing.T, o *OverridePolicy) {
			p := o.Spec.OverrideRules[0].Overriders.Plaintext[0]
			if p.Path != "/data/example" || p.Operator != OverriderOpReplace || string(p.Value) != "2" {
				t.Errorf("plaintext = %+v", p)
			}
			if o.Namespace != "" || o.Spec.ResourceSelectors[0].Namespace != "" {
				t.Errorf("a ClusterOverridePolicy has no namespace and its selectors match any: %+v", o)
			}
			fs := o.Spec.OverrideRules[1].TargetCluster.FieldSelector.MatchExpressions[0]
			if fs.Key != RegionField || fs.Values[0] != "cn-north-1" {
				t.Errorf("fieldSelector = %+v", fs)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			o, warnings, err := DecodeOverridePolicy(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if o.Kind == KindOverridePolicy && (o.Namespace != DefaultNamespace || o.Spec.ResourceSelectors[0].Namespace != DefaultNamespace) {
				t.Errorf("namespace %q, selector namespace %q: want both defaulted to %q", o.Namespace, o.Spec.ResourceSelectors[0].Namespace, DefaultNamespace)
			}
			tt.check(t, o)
		})
	}
}

func TestDecodeOverrideDeprecatedForm(t *testing.T) {
	o, warnings, err := DecodeOverridePolicy(readTestdata(t, "override-deprecated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "ClusterOverridePolicy legacy: spec.targetCluster and spec.overriders are deprecated") ||
		!strings.Contains(warnings[0], "spec.overrideRules[0]") {
		t.Errorf("warnings = %q", warnings)
	}
	if o.Spec.TargetCluster != nil || !o.Spec.Overriders.IsZero() || len(o.Spec.OverrideRules) != 1 {
		t.Fatalf("not converted: %+v", o.Spec)
	}
	r := o.Spec.OverrideRules[0]
	if r.TargetCluster.ClusterNames[0] != "member1" || r.Overriders.Plaintext[0].Path != "/spec/replicas" {
		t.Errorf("rule = %+v", r)
	}

	// The stored (converted) manifest decodes to the same policy, without a
	// warning.
	docs, err := DecodeDocuments(readTestdata(t, "override-deprecated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(docs[0].Manifest), `"overriders":{"plaintext"`) && !strings.Contains(string(docs[0].Manifest), "overrideRules") {
		t.Errorf("stored manifest not converted: %s", docs[0].Manifest)
	}
	again, w2, err := DecodeOverridePolicy(docs[0].Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(w2) != 0 || !reflect.DeepEqual(again, o) {
		t.Errorf("stored manifest decodes to %+v (warnings %q), want %+v", again, w2, o)
	}
}

// TestDecodeDocumentsOverride checks the hook in DecodeDocuments: override
// policies come out decoded and defaulted beside templates and propagation
// policies.
func TestDecodeDocumentsOverride(t *testing.T) {
	in := string(readTestdata(t, "app.yaml")) + "\n---\n" + string(readTestdata(t, "override-image.yaml")) +
		"---\n" + string(readTestdata(t, "override-plaintext.yaml"))
	docs, err := DecodeDocuments([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 4 {
		t.Fatalf("%d documents", len(docs))
	}
	op, cop := docs[2], docs[3]
	if op.Override == nil || op.Policy != nil || op.Key.Display() != "OverridePolicy default/example" || !op.Key.IsOverridePolicy() {
		t.Errorf("document 3 = %+v", op)
	}
	if !strings.Contains(string(op.Manifest), `"namespace":"default"`) {
		t.Errorf("stored manifest not defaulted: %s", op.Manifest)
	}
	if cop.Override == nil || cop.Override.Ref() != "ClusterOverridePolicy example" || cop.Key.Namespace != "" {
		t.Errorf("document 4 = %+v", cop)
	}
	again, _, err := DecodeOverridePolicy(op.Manifest)
	if err != nil || !reflect.DeepEqual(again, op.Override) {
		t.Errorf("stored manifest decodes to %+v, %v; want %+v", again, err, op.Override)
	}
}

func TestDecodeOverrideErrors(t *testing.T) {
	const head = "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all}\n"
	rule := func(overriders string) string {
		return head + "spec:\n  overrideRules:\n  - overriders: " + overriders + "\n"
	}
	tests := []struct {
		name   string
		in     string
		target error
		want   []string
	}{
		{"every problem of one policy", string(readTestdata(t, "override-bad.yaml")), ErrInvalid, []string{
			"OverridePolicy web/bad: ",
			"spec.resourceSelectors[0].apiVersion: is required",
			"spec.overrideRules[0].targetCluster.fieldSelector.matchExpressions[0].operator: unsupported operator \"Exists\"; use In or NotIn",
			`spec.overrideRules[0].overriders.imageOverrider[0].component: unknown component "Registery"; use Registry, Repository or Tag`,
			"spec.overrideRules[0].overriders.imageOverrider[1].component: is required: Registry, Repository or Tag",
			`spec.overrideRules[0].overriders.imageOverrider[2].operator: unknown operator "append"; use add, remove or replace`,
			`spec.overrideRules[0].overriders.imageOverrider[3].predicate.path: "spec/containers/0/image" is not a JSON pointer: it must be empty or start with "/"`,
			`spec.overrideRules[0].overriders.commandOverrider[0].operator: unknown operator "replace"; use add or remove`,
			`spec.overrideRules[0].overriders.labelsOverrider[0].operator: unknown operator "upsert"`,
			`spec.overrideRules[0].overriders.labelsOverrider[1].value: "bad key!" is not a valid label key`,
			"spec.overrideRules[0].overriders.fieldOverrider[0]: neither json nor yaml is set",
			`spec.overrideRules[0].overriders.fieldOverrider[1].fieldPath: "data/a" is not a JSON pointer: it must be empty or start with "/"`,
			"spec.overrideRules[0].overriders.fieldOverrider[1].json[0].value: is required for operator add",
			"spec.overrideRules[0].overriders.fieldOverrider[1].json[1].value: is not allowed for operator remove",
			`spec.overrideRules[0].overriders.plaintext[0].operator: unknown operator "move"; use add, remove or replace`,
		}},
		{"unknown field names its path", rule("{plaintext: [{path: /a, operator: add, valeu: 1}]}"), ErrInvalid,
			[]string{"ClusterOverridePolicy all: spec.overrideRules[0].overriders.plaintext[0].valeu: unknown field"}},
		{"wrong type", rule("{imageOverrider: {component: Tag}}"), ErrInvalid,
			[]string{"ClusterOverridePolicy all: spec.overrideRules.overriders.imageOverrider: must be a list"}},
		{"both json and yaml", rule("{fieldOverrider: [{fieldPath: /data/x, json: [{subPath: /a, operator: remove}], yaml: [{subPath: /a, operator: remove}]}]}"), ErrInvalid,
			[]string{"spec.overrideRules[0].overriders.fieldOverrider[0]: json and yaml cannot both be set"}},
		{"plaintext without a path", rule("{plaintext: [{operator: remove}]}"), ErrInvalid,
			[]string{"spec.overrideRules[0].overriders.plaintext[0].path: is required"}},
		{"annotations operator", rule("{annotationsOverrider: [{operator: set, value: {a: b}}]}"), ErrInvalid,
			[]string{`spec.overrideRules[0].overriders.annotationsOverrider[0].operator: unknown operator "set"`}},
		{"deprecated and new form together", head + "spec:\n  targetCluster: {clusterNames: [a]}\n  overriders: {plaintext: [{path: /a, operator: remove}]}\n  overrideRules: []\n", ErrInvalid,
			[]string{"spec.targetCluster: cannot be set together with overrideRules", "spec.overriders: cannot be set together with overrideRules"}},
		{"deprecated form named where written", head + "spec:\n  overriders: {imageOverrider: [{component: Tag, operator: append}]}\n", ErrInvalid,
			[]string{`spec.overriders.imageOverrider[0].operator: unknown operator "append"`}},
		{"selector in another namespace", "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: x, namespace: web}\n" +
			"spec:\n  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, namespace: other}]\n", ErrInvalid,
			[]string{`OverridePolicy web/x: spec.resourceSelectors[0].namespace: "other" is not the policy's namespace "web"; an OverridePolicy only applies to templates in its own namespace`}},
		{"no spec", "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: x}\n", ErrInvalid,
			[]string{"OverridePolicy default/x: spec: is required"}},
		{"a propagation policy", "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: x}\nspec: {}\n", ErrUnknownKind,
			[]string{"PropagationPolicy"}},
		{"two documents", rule("{}") + "---\n" + rule("{}"), ErrInvalid, []string{"expected one override policy, got 2 documents"}},
		{"empty", "# nothing\n", ErrEmpty, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, w, err := DecodeOverridePolicy([]byte(tt.in))
			if err == nil {
				t.Fatalf("no error; policy %+v", o)
			}
			if o != nil || w != nil {
				t.Errorf("on error got policy %v, warnings %q", o, w)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("error %q is not %q", err, tt.target)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

func TestDecodeOverrideWarnings(t *testing.T) {
	in := "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: x, namespace: web}\n" +
		"spec:\n  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, labelSelector: {matchExpressions: [{key: a, operator: In}]}}]\n" +
		"  targetCluster: {labelSelector: {matchLabels: {'bad key!': x}}}\n"
	o, w, err := DecodeOverridePolicy([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "" || o.Ref() != "ClusterOverridePolicy x" {
		t.Errorf("the namespace of a cluster-scoped policy is dropped: %+v", o)
	}
	want := []string{
		`ClusterOverridePolicy x: metadata.namespace "web" ignored: the policy is cluster-scoped`,
		"ClusterOverridePolicy x: spec.targetCluster and spec.overriders are deprecated in Karmada",
		"ClusterOverridePolicy x: spec.resourceSelectors[0].labelSelector: invalid label selector (",
		"ClusterOverridePolicy x: spec.overrideRules[0].targetCluster.labelSelector: invalid label selector (",
	}
	if len(w) != len(want) {
		t.Fatalf("warnings = %q", w)
	}
	for i := range want {
		if !strings.HasPrefix(w[i], want[i]) {
			t.Errorf("warning %d = %q, want prefix %q", i, w[i], want[i])
		}
	}
}

func TestJSONValueNullIsNoValue(t *testing.T) {
	in := "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: a}\n" +
		"spec:\n  overrideRules:\n  - overriders:\n      plaintext: [{path: /a, operator: replace, value: null}, {path: /b, operator: add, value: {x: [1, 2]}}]\n"
	o, _, err := DecodeOverridePolicy([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	pt := o.Spec.OverrideRules[0].Overriders.Plaintext
	if pt[0].Value != nil || string(pt[1].Value) != `{"x":[1,2]}` {
		t.Errorf("values = %q, %q", pt[0].Value, pt[1].Value)
	}
}

func FuzzDecodeOverridePolicy(f *testing.F) {
	for _, name := range []string{"override-image.yaml", "override-field.yaml", "override-plaintext.yaml", "override-deprecated.yaml", "override-bad.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		o, _, err := DecodeOverridePolicy(in)
		if (o == nil) == (err == nil) {
			t.Fatalf("policy %v with error %v", o, err)
		}
	})
}
