package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

// jsonOf converts YAML to JSON for test inputs.
func jsonOf(t testing.TB, y string) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// overridePolicy decodes an override policy from YAML.
func overridePolicy(t testing.TB, y string) *api.OverridePolicy {
	t.Helper()
	o, _, err := api.DecodeOverridePolicy([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// rules gives a ClusterOverridePolicy "all" with the given overrideRules.
func rules(t testing.TB, overrideRules string) *api.OverridePolicy {
	t.Helper()
	return overridePolicy(t, "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all}\nspec:\n  overrideRules:\n"+overrideRules)
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return reflect.DeepEqual(x, y)
}

const myapp = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: myapp
  namespace: default
  labels: {foo: foo, baz: baz}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - image: myapp:1.0.0
          name: myapp
          command: [./myapp, --parameter1=foo, --parameter2=bar]
        - image: registry.example/sidecar/proxy@sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c
          name: proxy
`

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "api", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRenderKarmadaExamples renders the examples of Karmada's documentation
// (api/testdata) and checks the results the documentation gives.
func TestRenderKarmadaExamples(t *testing.T) {
	configMap := `
apiVersion: v1
kind: ConfigMap
metadata: {name: example-configmap, namespace: default}
data:
  config.yaml: |
    app:
      database:
        port: 5432
        ip: 127.0.0.1
  deploy.json: '{"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}}}'
`
	myconfigmap := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: myconfigmap}\ndata: {example: '1'}\n"
	tests := []struct {
		name, policy, manifest, cluster string
		labels                          map[string]string
		region                          string
		want                            string // YAML
		rules                           []int
	}{
		{"image: add registry", "override-image.yaml", myapp, "member1", nil, "", strings.NewReplacer(
			"image: myapp:1.0.0", "image: test-repo/myapp:1.0.0",
			// add appends to the registry: a suffix, as in Karmada.
			"image: registry.example/sidecar", "image: registry.exampletest-repo/sidecar",
		).Replace(myapp), []int{0}},
		{"image: replace repository, then the predicate's registry", "override-image.yaml", myapp, "member2", nil, "", strings.NewReplacer(
			"image: myapp:1.0.0", "image: fictional.registry.us/myapp2:1.0.0",
			"registry.example/sidecar/proxy@", "registry.example/myapp2@",
		).Replace(myapp), []int{1, 3}},
		{"image: remove tag", "override-image.yaml", myapp, "member3", nil, "", strings.NewReplacer(
			"image: myapp:1.0.0", "image: fictional.registry.us/myapp",
			// Without a tag, remove takes the digest.
			"registry.example/sidecar/proxy@sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c", "registry.example/sidecar/proxy",
		).Replace(myapp), []int{2, 3}},
		{"command and args", "override-command-args.yaml", myapp, "member1", nil, "", strings.Replace(myapp,
			"command: [./myapp, --parameter1=foo, --parameter2=bar]",
			"command: [./myapp, --parameter2=bar, --cluster=member1]\n          args: [--verbose]", 1), []int{0}},
		{"command: other cluster", "override-command-args.yaml", myapp, "member2", nil, "", "", nil},
		{"labels and annotations", "override-labels-annotations.yaml", myapp, "any", nil, "", strings.Replace(myapp,
			"labels: {foo: foo, baz: baz}", "labels: {foo: exist, bar: bar}\n  annotations: {example.io/owner: team-a}", 1), []int{0}},
		{"field: YAML", "override-field.yaml", configMap, "member1", nil, "", strings.Replace(configMap,
			"        port: 5432\n        ip: 127.0.0.1\n", "        ip: 127.0.0.1\n        port: \"3306\"\n", 1), []int{0}},
		{"field: JSON", "override-field.yaml", configMap, "member2", nil, "", strings.Replace(configMap,
			`'{"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}}}'`,
			`'{"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"nginx"},{"image":"nginx:1.19.1","name":"nginx-helper"}]}}}}'`, 1), []int{1}},
		{"plaintext by cluster label", "override-plaintext.yaml", myconfigmap, "m", map[string]string{"cluster": "member1"}, "",
			strings.Replace(myconfigmap, "'1'", "2", 1), []int{0}},
		{"plaintext by region", "override-plaintext.yaml", myconfigmap, "m", nil, "cn-north-1",
			strings.Replace(myconfigmap, "metadata: {name: myconfigmap}", "metadata: {name: myconfigmap, annotations: {region: cn-north-1}}", 1), []int{1}},
		{"deprecated form", "override-deprecated.yaml", myapp, "member1", nil, "", strings.Replace(myapp, "replicas: 2", "replicas: 1", 1), []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := overridePolicy(t, readTestdata(t, tt.policy))
			in := jsonOf(t, tt.manifest)
			got, applied, err := deploy.Render(in, []*api.OverridePolicy{o}, api.ClusterFacts{Name: tt.cluster, Labels: tt.labels, Region: tt.region})
			if err != nil {
				t.Fatal(err)
			}
			want := in
			if tt.want != "" {
				want = jsonOf(t, tt.want)
			}
			if !sameJSON(t, got, want) {
				t.Errorf("rendered\n%s\nwant\n%s", got, want)
			}
			var wantApplied []deploy.AppliedOverride
			if tt.rules != nil {
				wantApplied = []deploy.AppliedOverride{{Policy: o.Ref(), Rules: tt.rules}}
			}
			if !reflect.DeepEqual(applied, wantApplied) {
				t.Errorf("applied = %+v, want %+v", applied, wantApplied)
			}
		})
	}
}

// TestRenderOrder checks that policies apply in the order given (Karmada's
// order comes from api.SelectOverrides) and rules in their order, so the
// last one has the last word.
func TestRenderOrder(t *testing.T) {
	cop := rules(t, "  - overriders: {plaintext: [{path: /spec/replicas, operator: replace, value: 5}]}\n"+
		"  - targetCluster: {clusterNames: [member1]}\n    overriders: {plaintext: [{path: /spec/replicas, operator: replace, value: 6}]}\n")
	op := overridePolicy(t, "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: mine, namespace: default}\n"+
		"spec:\n  overrideRules:\n  - targetCluster: {exclude: [member1]}\n    overriders: {plaintext: [{path: /spec/replicas, operator: replace, value: 7}]}\n")
	tpl, err := api.ParseTemplate(jsonOf(t, myapp))
	if err != nil {
		t.Fatal(err)
	}
	ordered := api.SelectOverrides([]*api.OverridePolicy{op, cop}, tpl)
	for cluster, want := range map[string]float64{"member1": 6, "member2": 7} {
		out, applied, err := deploy.Render(jsonOf(t, myapp), ordered, api.ClusterFacts{Name: cluster})
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			Spec struct{ Replicas float64 }
		}
		if err := json.Unmarshal(out, &obj); err != nil || obj.Spec.Replicas != want {
			t.Errorf("%s: replicas %v (%v), want %v", cluster, obj.Spec.Replicas, err, want)
		}
		if len(applied) == 0 || applied[0].Policy != "ClusterOverridePolicy all" {
			t.Errorf("%s: applied = %+v", cluster, applied)
		}
	}
}

// TestRenderErrors checks the exact error for every overrider that cannot
// apply, and that nothing is rendered then.
func TestRenderErrors(t *testing.T) {
	configMap := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '{\"x\": 1}', z: 'k: [1'}\n"
	const op = "ClusterOverridePolicy all: overrideRules[0].overriders."
	tests := []struct {
		name, manifest, overriders, want string
	}{
		{"plaintext: replace a missing field", myapp, "{plaintext: [{path: /spec/replicas, operator: replace, value: 1}, {path: /spec/foo, operator: replace, value: 1}]}",
			op + "plaintext[1]: path /spec/foo: not found"},
		{"plaintext: remove a missing field", myapp, "{plaintext: [{path: /metadata/annotations/a, operator: remove}]}",
			op + "plaintext[0]: path /metadata/annotations/a: /metadata/annotations not found"},
		{"plaintext: add under a missing parent", myapp, "{plaintext: [{path: /spec/foo/bar, operator: add, value: 1}]}",
			op + "plaintext[0]: path /spec/foo/bar: /spec/foo not found"},
		{"plaintext: into a number", myapp, "{plaintext: [{path: /spec/replicas/x, operator: add, value: 1}]}",
			op + "plaintext[0]: path /spec/replicas/x: /spec/replicas is a number, not an object or a list"},
		{"plaintext: list index out of range", myapp, "{plaintext: [{path: /spec/template/spec/containers/5, operator: add, value: {}}]}",
			op + "plaintext[0]: path /spec/template/spec/containers/5: index 5 is out of range (the list has 2 items)"},
		{"plaintext: not an index", myapp, "{plaintext: [{path: /spec/template/spec/containers/first/name, operator: replace, value: x}]}",
			op + `plaintext[0]: path /spec/template/spec/containers/first/name: /spec/template/spec/containers/first "first" is not a list index`},
		{"image: not an image", strings.Replace(myapp, "myapp:1.0.0", "My App", 1), "{imageOverrider: [{component: Tag, operator: replace, value: v2}]}",
			op + `imageOverrider[0]: path /spec/template/spec/containers/0/image: image "My App": invalid reference format`},
		{"image: predicate path missing", myapp, "{imageOverrider: [{predicate: {path: /spec/template/spec/initContainers/0/image}, component: Tag, operator: replace, value: v2}]}",
			op + "imageOverrider[0]: path /spec/template/spec/initContainers/0/image: /spec/template/spec/initContainers not found"},
		{"image: predicate path of wrong type", myapp, "{imageOverrider: [{predicate: {path: /spec/replicas}, component: Tag, operator: replace, value: v2}]}",
			op + "imageOverrider[0]: path /spec/replicas: is a number, not a string"},
		{"image: containers of wrong type", strings.Replace(myapp, "containers:", "containers: {}\n      x:", 1), "{imageOverrider: [{component: Tag, operator: replace, value: v2}]}",
			op + "imageOverrider[0]: path /spec/template/spec/containers: is an object, not a list"},
		{"command: not a list", strings.Replace(myapp, "command: [./myapp, --parameter1=foo, --parameter2=bar]", "command: ./myapp", 1),
			"{commandOverrider: [{containerName: myapp, operator: add, value: [-v]}]}",
			op + "commandOverrider[0]: path /spec/template/spec/containers/0/command: is a string, not a list"},
		{"args: item not a string", strings.Replace(myapp, "name: proxy", "name: proxy\n          args: [1]", 1),
			"{argsOverrider: [{containerName: proxy, operator: remove, value: ['1']}]}",
			op + "argsOverrider[0]: path /spec/template/spec/containers/1/args/0: is a number, not a string"},
		{"labels: not an object", strings.Replace(myapp, "labels: {foo: foo, baz: baz}", "labels: [foo]", 1), "{labelsOverrider: [{operator: add, value: {a: b}}]}",
			op + "labelsOverrider[0]: path /metadata/labels: is a list, not an object"},
		{"annotations: metadata not an object", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "{annotationsOverrider: [{operator: add, value: {a: b}}]}", ""},
		{"field: missing", configMap, "{fieldOverrider: [{fieldPath: /data/b, json: [{subPath: /x, operator: remove}]}]}",
			op + "fieldOverrider[0]: fieldPath /data/b: not found"},
		{"field: not a string", configMap, "{fieldOverrider: [{fieldPath: /metadata, json: [{subPath: /x, operator: remove}]}]}",
			op + "fieldOverrider[0]: fieldPath /metadata: is an object, not a string holding JSON or YAML"},
		{"field: not JSON", configMap, "{fieldOverrider: [{fieldPath: /data/z, json: [{subPath: /x, operator: remove}]}]}",
			op + "fieldOverrider[0]: fieldPath /data/z: the field does not hold JSON"},
		{"field: not YAML", configMap, "{fieldOverrider: [{fieldPath: /data/z, yaml: [{subPath: /x, operator: remove}]}]}",
			op + "fieldOverrider[0]: fieldPath /data/z: the field does not hold YAML: yaml: line 1: did not find expected ',' or ']'"},
		{"field: sub-path missing", configMap, "{fieldOverrider: [{fieldPath: /data/a, json: [{subPath: /x, operator: remove}, {subPath: /y/z, operator: replace, value: 2}]}]}",
			op + "fieldOverrider[0].json[1]: subPath /y/z: /y not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := jsonOf(t, tt.manifest)
			o := rules(t, "  - overriders: "+tt.overriders+"\n")
			out, applied, err := deploy.Render(in, []*api.OverridePolicy{o}, api.ClusterFacts{Name: "member1"})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; rendered %s", out)
			}
			if out != nil || applied != nil {
				t.Errorf("rendered %s, applied %v with an error", out, applied)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
			var oe *deploy.OverrideError
			if !errors.Is(err, deploy.ErrOverride) || !errors.As(err, &oe) || oe.Policy != "ClusterOverridePolicy all" {
				t.Errorf("error %#v is not an *OverrideError for the policy", err)
			}
		})
	}
}

// TestRenderDoesNotModifyInput checks that neither the manifest nor the
// policies change, and that the output does not share memory with them.
func TestRenderDoesNotModifyInput(t *testing.T) {
	in := jsonOf(t, myapp)
	orig := bytes.Clone(in)
	all := []*api.OverridePolicy{}
	for _, f := range []string{"override-image.yaml", "override-command-args.yaml", "override-labels-annotations.yaml", "override-deprecated.yaml"} {
		all = append(all, overridePolicy(t, readTestdata(t, f)))
	}
	policyCopies := make([]*api.OverridePolicy, len(all))
	for i, o := range all {
		policyCopies[i] = overridePolicy(t, readTestdata(t, []string{"override-image.yaml", "override-command-args.yaml", "override-labels-annotations.yaml", "override-deprecated.yaml"}[i]))
		if !reflect.DeepEqual(o, policyCopies[i]) {
			t.Fatal("decoding is not deterministic")
		}
	}
	out, applied, err := deploy.Render(in, all, api.ClusterFacts{Name: "member1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 4 || sameJSON(t, out, in) {
		t.Fatalf("overrides did not apply: %+v", applied)
	}
	if !bytes.Equal(in, orig) {
		t.Errorf("manifest modified:\n%s\nwas\n%s", in, orig)
	}
	for i := range all {
		if !reflect.DeepEqual(all[i], policyCopies[i]) {
			t.Errorf("policy %s modified", all[i].Ref())
		}
	}
	for i := range out {
		out[i] = 'x'
	}
	if !bytes.Equal(in, orig) {
		t.Errorf("output shares memory with the manifest")
	}

	// With nothing to apply, the output is a copy of the input.
	out, applied, err = deploy.Render(in, nil, api.ClusterFacts{Name: "member1"})
	if err != nil || applied != nil || !bytes.Equal(out, in) || &out[0] == &in[0] {
		t.Errorf("no overrides: out %s, applied %v, err %v", out, applied, err)
	}
}

func TestRenderRejectsNonObjects(t *testing.T) {
	for _, in := range []string{"", "[]", "1", "{", `"x"`} {
		if _, _, err := deploy.Render([]byte(in), nil, api.ClusterFacts{}); !errors.Is(err, deploy.ErrOverride) {
			t.Errorf("Render(%q) = %v", in, err)
		}
	}
}

// FuzzRender applies random overriders of every kind to random manifests:
// Render must never panic, must give valid JSON when it succeeds, and must
// leave the manifest alone.
func FuzzRender(f *testing.F) {
	f.Add([]byte(`{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"a","image":"nginx:1"}]}}}}`),
		"add", "/spec/replicas", []byte(`3`), "Tag", "replace", "v2", "/data/a", "/x")
	f.Add([]byte(`{"kind":"Pod","spec":{"containers":[{"name":"a","image":"a@sha256:0123456789abcdef0123456789abcdef"}]}}`),
		"remove", "/spec/containers/0", []byte(``), "Registry", "add", "r.io", "/spec", "")
	f.Add([]byte(`{"kind":"ConfigMap","data":{"a":"x: [1, 2]"}}`),
		"replace", "/data/a", []byte(`"y"`), "Repository", "remove", "", "/data/a", "/x/0")
	f.Add([]byte(`{"metadata":{"labels":{"a":"b"}}}`), "add", "/-", []byte(`{`), "Tag", "add", "-x", "/metadata/labels/a", "/~1")
	f.Fuzz(func(t *testing.T, manifest []byte, op, path string, value []byte, component, imageOp, imageValue, fieldPath, subPath string) {
		o := &api.OverridePolicy{Kind: api.KindClusterOverridePolicy, Name: "fuzz", Spec: api.OverrideSpec{OverrideRules: []api.RuleWithCluster{{
			Overriders: api.Overriders{
				ImageOverrider:       []api.ImageOverrider{{Component: api.ImageComponent(component), Operator: api.OverriderOperator(imageOp), Value: imageValue}},
				CommandOverrider:     []api.CommandArgsOverrider{{ContainerName: "a", Operator: api.OverriderOperator(imageOp), Value: []string{imageValue}}},
				LabelsOverrider:      []api.LabelAnnotationOverrider{{Operator: api.OverriderOperator(op), Value: map[string]string{path: imageValue}}},
				AnnotationsOverrider: []api.LabelAnnotationOverrider{{Operator: api.OverriderOperator(imageOp), Value: map[string]string{imageValue: path}}},
				FieldOverrider: []api.FieldOverrider{
					{FieldPath: fieldPath, YAML: []api.YAMLPatchOperation{{SubPath: subPath, Operator: api.OverriderOperator(op), Value: value}}},
					{FieldPath: fieldPath, JSON: []api.JSONPatchOperation{{SubPath: subPath, Operator: api.OverriderOperator(op), Value: value}}},
				},
				Plaintext: []api.PlaintextOverrider{{Path: path, Operator: api.OverriderOperator(op), Value: value}},
			},
		}}}}
		// Each overrider alone, then all together.
		ov := o.Spec.OverrideRules[0].Overriders
		singles := []api.Overriders{
			{ImageOverrider: ov.ImageOverrider}, {CommandOverrider: ov.CommandOverrider}, {LabelsOverrider: ov.LabelsOverrider},
			{AnnotationsOverrider: ov.AnnotationsOverrider}, {FieldOverrider: ov.FieldOverrider[:1]}, {FieldOverrider: ov.FieldOverrider[1:]},
			{Plaintext: ov.Plaintext}, ov,
		}
		orig := bytes.Clone(manifest)
		for _, s := range singles {
			p := *o
			p.Spec.OverrideRules = []api.RuleWithCluster{{Overriders: s}}
			out, _, err := deploy.Render(manifest, []*api.OverridePolicy{&p}, api.ClusterFacts{Name: "c"})
			if err == nil && !json.Valid(out) {
				t.Fatalf("rendered invalid JSON %q", out)
			}
			if !bytes.Equal(manifest, orig) {
				t.Fatal("manifest modified")
			}
		}
	})
}
