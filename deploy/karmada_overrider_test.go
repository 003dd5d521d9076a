package deploy_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

// The compatibility suite of overriders: inputs and expected outputs are
// Karmada's, read at commit f8fdd02d (after v1.19.0-rc.0). Each case names
// its source: a test of pkg/util/overridemanager or pkg/util/imageparser, or
// the code itself (imageoverride.go, parser.go) for edge cases Karmada's
// tests leave out. A case where Shoal differs on purpose says so and why.

const (
	karmadaDigest  = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
	karmadaDigest2 = "sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c"
)

// workload gives a manifest of kind with one container per image, named
// c0, c1, …, where Karmada's fixtures put them (generateJobYaml and its
// siblings in imageoverride_test.go).
func workload(kind string, images ...string) string {
	var cs []string
	for i, im := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, im))
	}
	containers := `{"containers":[` + strings.Join(cs, ",") + `]}`
	apiVersion, spec := "apps/v1", `{"template":{"spec":`+containers+`}}`
	switch kind {
	case "Pod":
		apiVersion, spec = "v1", containers
	case "Job":
		apiVersion = "batch/v1"
	case "CronJob":
		apiVersion, spec = "batch/v1", `{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":`+containers+`}}}}`
	}
	return fmt.Sprintf(`{"apiVersion":%q,"kind":%q,"metadata":{"name":"w","namespace":"default"},"spec":%s}`, apiVersion, kind, spec)
}

// images reads back the container images of a rendered workload.
func images(t *testing.T, kind string, doc []byte) []string {
	t.Helper()
	var obj struct {
		Spec struct {
			Containers []struct{ Image string } `json:"containers"`
			Template   struct {
				Spec struct {
					Containers []struct{ Image string } `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct{ Image string } `json:"containers"`
						} `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(doc, &obj); err != nil {
		t.Fatal(err)
	}
	cs := obj.Spec.Template.Spec.Containers
	switch kind {
	case "Pod":
		cs = obj.Spec.Containers
	case "CronJob":
		cs = obj.Spec.JobTemplate.Spec.Template.Spec.Containers
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Image
	}
	return out
}

// TestKarmadaImageOverrider renders one imageOverrider (given as the YAML
// flow mapping of a rule's overriders) over a workload and compares the
// images with Karmada's. Decoding the policy also checks that Shoal
// accepts it, as Karmada's webhook does.
func TestKarmadaImageOverrider(t *testing.T) {
	const img = "fictional.registry.example/imagename:v1.0.0"
	tests := []struct {
		source string
		kind   string
		in     []string
		ov     string // the imageOverrider list
		want   []string
	}{
		// TestParseJSONPatchesByImageOverrider (imageoverride_test.go).
		{"TestParseJSONPatchesByImageOverrider: Job, Registry add", "Job", []string{"perl:5.34.0"},
			"[{component: Registry, operator: add, value: registry.k8s.io}]", []string{"registry.k8s.io/perl:5.34.0"}},
		{"TestParseJSONPatchesByImageOverrider: Job, predicate, Registry add", "Job", []string{"perl:5.34.0"},
			"[{predicate: {path: /spec/template/spec/containers/0/image}, component: Registry, operator: add, value: registry.k8s.io}]", []string{"registry.k8s.io/perl:5.34.0"}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Registry add", "Deployment", []string{img},
			"[{component: Registry, operator: add, value: .test}]", []string{"fictional.registry.example.test/imagename:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Registry replace", "Deployment", []string{img},
			"[{component: Registry, operator: replace, value: fictional.registry.us}]", []string{"fictional.registry.us/imagename:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Registry remove (value ignored)", "Deployment", []string{img},
			"[{component: Registry, operator: remove, value: fictional.registry.us}]", []string{"imagename:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Repository add", "Deployment", []string{img},
			"[{component: Repository, operator: add, value: /nginx}]", []string{"fictional.registry.example/imagename/nginx:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Repository replace", "Deployment", []string{img},
			"[{component: Repository, operator: replace, value: nginx}]", []string{"fictional.registry.example/nginx:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Repository remove leaves registry/:tag", "Deployment", []string{img},
			"[{component: Repository, operator: remove, value: nginx}]", []string{"fictional.registry.example/:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Tag add of a digest is neither tag nor digest: unchanged", "Deployment", []string{img},
			"[{component: Tag, operator: add, value: '" + karmadaDigest + "'}]", []string{img}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Tag replace by a digest", "Deployment", []string{img},
			"[{component: Tag, operator: replace, value: '" + karmadaDigest + "'}]", []string{"fictional.registry.example/imagename@" + karmadaDigest}},
		{"TestParseJSONPatchesByImageOverrider: Deployment, Tag remove (value ignored)", "Deployment", []string{img},
			"[{component: Tag, operator: remove, value: '" + karmadaDigest + "'}]", []string{"fictional.registry.example/imagename"}},
		{"TestParseJSONPatchesByImageOverrider: Pod", "Pod", []string{img},
			"[{component: Repository, operator: replace, value: nginx}]", []string{"fictional.registry.example/nginx:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: StatefulSet", "StatefulSet", []string{img},
			"[{component: Repository, operator: replace, value: nginx}]", []string{"fictional.registry.example/nginx:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: ReplicaSet", "ReplicaSet", []string{img},
			"[{component: Repository, operator: replace, value: nginx}]", []string{"fictional.registry.example/nginx:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: DaemonSet", "DaemonSet", []string{img},
			"[{component: Repository, operator: replace, value: nginx}]", []string{"fictional.registry.example/nginx:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: more than one container", "Deployment", []string{img, "registry.k8s.io/nginx-slim:0.8"},
			"[{component: Repository, operator: replace, value: nginx}]", []string{"fictional.registry.example/nginx:v1.0.0", "registry.k8s.io/nginx:0.8"}},
		{"TestParseJSONPatchesByImageOverrider: predicate, one container", "Deployment", []string{img},
			"[{predicate: {path: /spec/template/spec/containers/0/image}, component: Repository, operator: replace, value: nginx}]", []string{"fictional.registry.example/nginx:v1.0.0"}},
		{"TestParseJSONPatchesByImageOverrider: predicate, more than one container", "Deployment", []string{img, "registry.k8s.io/nginx-slim:0.8"},
			"[{predicate: {path: /spec/template/spec/containers/1/image}, component: Repository, operator: replace, value: nginx}]", []string{img, "registry.k8s.io/nginx:0.8"}},

		// Examples of pkg/util/imageparser/parser_test.go, run as overriders.
		{"ExampleComponents_SetHostname: add a registry", "Deployment", []string{"imagename:v1.0.0"},
			"[{component: Registry, operator: replace, value: fictional.registry.example}]", []string{"fictional.registry.example/imagename:v1.0.0"}},
		{"ExampleComponents_SetHostname: remove it", "Deployment", []string{"gcr.io/imagename:v1.0.0"},
			"[{component: Registry, operator: remove}]", []string{"imagename:v1.0.0"}},
		{"ExampleComponents_SetRepository", "Deployment", []string{"gcr.io/kube-apiserver:v1.19.0"},
			"[{component: Repository, operator: replace, value: kube-controller-manager}]", []string{"gcr.io/kube-controller-manager:v1.19.0"}},
		{"ExampleComponents_SetTagOrDigest: set a tag", "Deployment", []string{"gcr.io/kube-apiserver"},
			"[{component: Tag, operator: replace, value: v1.19.0}]", []string{"gcr.io/kube-apiserver:v1.19.0"}},
		{"ExampleComponents_SetTagOrDigest: remove a digest", "Deployment", []string{"gcr.io/kube-apiserver@" + karmadaDigest2},
			"[{component: Tag, operator: remove}]", []string{"gcr.io/kube-apiserver"}},
		{"TestParse: hostname with port", "Deployment", []string{"fictional.registry.example:10443/subpath/imagename:v1.0.0"},
			"[{component: Registry, operator: replace, value: 'mirror.example:5000'}]", []string{"mirror.example:5000/subpath/imagename:v1.0.0"}},
		{"TestSplitHostname: hostname with IP", "Deployment", []string{"10.10.10.10:10443/subpath/imagename"},
			"[{component: Registry, operator: remove}]", []string{"subpath/imagename"}},

		// Edge cases, from the code (imageoverride.go overrideImage and
		// parser.go Components).
		{"imageoverride.go: Registry remove on an image without one", "Deployment", []string{"nginx:1.25"},
			"[{component: Registry, operator: remove}]", []string{"nginx:1.25"}},
		{"imageoverride.go: Registry add on an image without one", "Deployment", []string{"myapp:1.0.0"},
			"[{component: Registry, operator: add, value: test-repo}]", []string{"test-repo/myapp:1.0.0"}},
		{"imageoverride.go: Registry add after a port is not checked", "Deployment", []string{"localhost:5000/myapp"},
			"[{component: Registry, operator: add, value: -mirror}]", []string{"localhost:5000-mirror/myapp"}},
		{"parser.go SplitHostname: localhost is a registry", "Deployment", []string{"localhost/a"},
			"[{component: Registry, operator: remove}]", []string{"a"}},
		{"parser.go SplitHostname: docker.io is not normalised", "Deployment", []string{"docker.io/library/nginx"},
			"[{component: Registry, operator: replace, value: mirror.example}]", []string{"mirror.example/library/nginx"}},
		{"imageoverride.go: Repository remove without a registry", "Deployment", []string{"myapp:1.0.0"},
			"[{component: Repository, operator: remove}]", []string{":1.0.0"}},
		{"parser.go Parse: a tag and a digest keep the tag only, whatever the overrider", "Deployment", []string{"nginx:1.25@" + karmadaDigest2},
			"[{component: Registry, operator: replace, value: mirror.example}]", []string{"mirror.example/nginx:1.25"}},
		{"parser.go Parse: a tag and a digest, Tag remove", "Deployment", []string{"nginx:1.25@" + karmadaDigest2},
			"[{component: Tag, operator: remove}]", []string{"nginx"}},
		{"parser.go Parse: a tag and a digest, Tag replace by a digest", "Deployment", []string{"nginx:1.25@" + karmadaDigest2},
			"[{component: Tag, operator: replace, value: '" + karmadaDigest + "'}]", []string{"nginx@" + karmadaDigest}},
		{"parser.go SetTagOrDigest: a value that is neither changes nothing", "Deployment", []string{"myapp:1.0.0"},
			"[{component: Tag, operator: replace, value: -bad}]", []string{"myapp:1.0.0"}},
		{"parser.go SetTagOrDigest: replace with an empty value changes nothing", "Deployment", []string{"myapp:1.0.0"},
			"[{component: Tag, operator: replace}]", []string{"myapp:1.0.0"}},
		{"parser.go TagOrDigest: Tag add without a tag", "Deployment", []string{"nginx"},
			"[{component: Tag, operator: add, value: v1}]", []string{"nginx:v1"}},
		{"parser.go TagOrDigest: Tag add to a digest gives neither", "Deployment", []string{"nginx@" + karmadaDigest},
			"[{component: Tag, operator: add, value: -x}]", []string{"nginx@" + karmadaDigest}},
		{"imageoverride.go: Registry replace with an empty value removes it", "Deployment", []string{img},
			"[{component: Registry, operator: replace}]", []string{"imagename:v1.0.0"}},
		{"imageoverride.go: overriders apply in order", "Deployment", []string{img},
			"[{component: Registry, operator: remove}, {component: Tag, operator: replace, value: v2}]", []string{"imagename:v2"}},

		// Shoal differs on purpose: a CronJob's images are found without a
		// predicate (Karmada's buildPatchesWithEmptyPredicate knows Pod,
		// ReplicaSet, Deployment, DaemonSet, StatefulSet and Job only, and
		// leaves a CronJob unchanged). A CronJob is a workload like a Job;
		// leaving it out surprises more than it helps.
		{"differs: CronJob images are overridden", "CronJob", []string{"perl:5.34.0"},
			"[{component: Registry, operator: add, value: registry.k8s.io}]", []string{"registry.k8s.io/perl:5.34.0"}},
		// Kinds without containers Karmada knows are left alone.
		{"imageoverride.go: other kinds are left alone", "Foo", []string{"perl:5.34.0"},
			"[{component: Registry, operator: add, value: registry.k8s.io}]", []string{"perl:5.34.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			o := rules(t, "  - overriders: {imageOverrider: "+tt.ov+"}\n")
			out, _, err := deploy.Render([]byte(workload(tt.kind, tt.in...)), []*api.OverridePolicy{o}, api.ClusterFacts{Name: "member1"})
			if err != nil {
				t.Fatal(err)
			}
			if got := images(t, tt.kind, out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("images %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKarmadaImageOverriderErrors: an image that does not parse fails the
// override, as Karmada's overrideImage fails ("failed to parse image
// value"); so does a predicate path to a field that is not a string.
func TestKarmadaImageOverriderErrors(t *testing.T) {
	for name, tt := range map[string]struct{ manifest, ov string }{
		"imageoverride.go overrideImage: upper case":          {workload("Deployment", "My/App"), "[{component: Tag, operator: replace, value: v2}]"},
		"imageoverride.go overrideImage: empty image":         {workload("Deployment", ""), "[{component: Tag, operator: replace, value: v2}]"},
		"imageoverride.go obtainImageValue: not a string":     {workload("Deployment", "nginx"), "[{predicate: {path: /spec/template}, component: Tag, operator: replace, value: v2}]"},
		"imageoverride.go acquireOverrideOption: no slash":    {workload("Deployment", "nginx"), "[{predicate: {path: spec/template/spec/containers/0/image}, component: Tag, operator: replace, value: v2}]"},
		"imageoverride.go obtainImageValue: empty predicate":  {workload("Deployment", "nginx"), "[{predicate: {path: ''}, component: Tag, operator: replace, value: v2}]"},
		"imageoverride.go obtainImageValue: missing the path": {workload("Deployment", "nginx"), "[{predicate: {path: /spec/template/spec/initContainers/0/image}, component: Tag, operator: replace, value: v2}]"},
	} {
		t.Run(name, func(t *testing.T) {
			// The deprecated form: Karmada's webhook does not check its
			// predicate path, so a bad one fails when applied.
			o := overridePolicy(t, "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all}\nspec:\n  overriders: {imageOverrider: "+tt.ov+"}\n")
			out, _, err := deploy.Render([]byte(tt.manifest), []*api.OverridePolicy{o}, api.ClusterFacts{Name: "member1"})
			if err == nil {
				t.Fatalf("no error; rendered %s", out)
			}
		})
	}
}

// renderOne renders manifest through the policies, in the order
// api.SelectOverrides gives, for cluster.
func renderOne(t *testing.T, manifest string, cluster string, ops ...*api.OverridePolicy) map[string]any {
	t.Helper()
	tmpl, err := api.ParseTemplate([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := deploy.Render([]byte(manifest), api.SelectOverrides(ops, tmpl), api.ClusterFacts{Name: cluster})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(out, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// at reads a value of obj by keys and list indexes.
func at(obj any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := obj.(map[string]any)
			obj = m[k]
		case int:
			l, _ := obj.([]any)
			if k >= len(l) {
				return nil
			}
			obj = l[k]
		}
	}
	return obj
}

const karmadaLabelled = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"test","namespace":"default",` +
	`"labels":{"foo":"foo","bar":"bar"},"annotations":{"foo":"foo","bar":"bar"}},` +
	`"spec":{"template":{"spec":{"containers":[` +
	`{"name":"nginx","image":"nginx","command":["nginx","-v","-t"],"args":["nginx","-v","-t"]},` +
	`{"name":"nginx1","image":"nginx","command":["nginx","-v","-t"]}]}}}}`

// TestKarmadaOverriders covers the other overriders with the cases of
// Karmada's labelannotationoverrider_test.go, commandargsoverride_test.go
// and overridemanager_test.go, and json-patch's reading of plaintext paths.
func TestKarmadaOverriders(t *testing.T) {
	noMeta := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"test","namespace":"default"},"spec":{}}`
	cm := func(k, v string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"test1","namespace":"default"},"data":{%q:%q}}`, k, v)
	}
	tests := []struct {
		source   string
		manifest string
		spec     string // the policy's spec, YAML indented by two
		path     []any
		want     any
	}{
		{"Test_applyLabelsOverriders: test empty labels", noMeta, "  overrideRules: [{overriders: {labelsOverrider: [{operator: add, value: {test2: test2}}]}}]\n",
			[]any{"metadata", "labels"}, map[string]any{"test2": "test2"}},
		{"Test_applyLabelsOverriders: test labels replace", karmadaLabelled, "  overrideRules: [{overriders: {labelsOverrider: [{operator: replace, value: {foo: exist, non-exist: non-exist}}]}}]\n",
			[]any{"metadata", "labels"}, map[string]any{"foo": "exist", "bar": "bar"}},
		{"Test_applyLabelsOverriders: test labels add", karmadaLabelled, "  overrideRules: [{overriders: {labelsOverrider: [{operator: add, value: {test: test}}]}}]\n",
			[]any{"metadata", "labels"}, map[string]any{"test": "test", "foo": "foo", "bar": "bar"}},
		{"Test_applyLabelsOverriders: test labels remove", karmadaLabelled, "  overrideRules: [{overriders: {labelsOverrider: [{operator: remove, value: {foo: foo, non-exist: non-exist}}]}}]\n",
			[]any{"metadata", "labels"}, map[string]any{"bar": "bar"}},
		{"Test_applyAnnotationsOverriders: test empty annotations", noMeta, "  overrideRules: [{overriders: {annotationsOverrider: [{operator: add, value: {test2: test2}}]}}]\n",
			[]any{"metadata", "annotations"}, map[string]any{"test2": "test2"}},
		{"Test_applyAnnotationsOverriders: remain the same (remove nothing)", karmadaLabelled, "  overrideRules: [{overriders: {annotationsOverrider: [{operator: remove, value: {}}]}}]\n",
			[]any{"metadata", "annotations"}, map[string]any{"foo": "foo", "bar": "bar"}},
		{"Test_applyAnnotationsOverriders: remain the same (replace absent)", karmadaLabelled, "  overrideRules: [{overriders: {annotationsOverrider: [{operator: replace, value: {test: test}}]}}]\n",
			[]any{"metadata", "annotations"}, map[string]any{"foo": "foo", "bar": "bar"}},
		{"Test_applyAnnotationsOverriders: test add composed annotation", karmadaLabelled, "  overrideRules: [{overriders: {annotationsOverrider: [{operator: add, value: {testannotation/projectId: 'c-m-lfx9lk92:p-v86cf'}}]}}]\n",
			[]any{"metadata", "annotations"}, map[string]any{"foo": "foo", "bar": "bar", "testannotation/projectId": "c-m-lfx9lk92:p-v86cf"}},
		{"TestParseJSONPatchesByCommandOverrider: add", karmadaLabelled, "  overrideRules: [{overriders: {commandOverrider: [{containerName: nginx, operator: add, value: [\"&& echo 'hello karmada'\"]}]}}]\n",
			[]any{"spec", "template", "spec", "containers", 0, "command"}, []any{"nginx", "-v", "-t", "&& echo 'hello karmada'"}},
		{"TestParseJSONPatchesByCommandOverrider: remove", karmadaLabelled, "  overrideRules: [{overriders: {commandOverrider: [{containerName: nginx, operator: remove, value: [-t]}]}}]\n",
			[]any{"spec", "template", "spec", "containers", 0, "command"}, []any{"nginx", "-v"}},
		{"TestParseJSONPatchesByCommandOverrider: remove value is empty", karmadaLabelled, "  overrideRules: [{overriders: {commandOverrider: [{containerName: nginx, operator: remove, value: []}]}}]\n",
			[]any{"spec", "template", "spec", "containers", 0, "command"}, []any{"nginx", "-v", "-t"}},
		{"TestParseJSONPatchesByCommandOverrider: more than one container", karmadaLabelled, "  overrideRules: [{overriders: {commandOverrider: [{containerName: nginx, operator: add, value: [\"echo 'hello karmada'\"]}]}}]\n",
			[]any{"spec", "template", "spec", "containers", 1, "command"}, []any{"nginx", "-v", "-t"}},
		{"TestParseJSONPatchesByArgsOverrider: remove", karmadaLabelled, "  overrideRules: [{overriders: {argsOverrider: [{containerName: nginx, operator: remove, value: [-t]}]}}]\n",
			[]any{"spec", "template", "spec", "containers", 0, "args"}, []any{"nginx", "-v"}},
		{"TestParseJSONPatchesByArgsOverrider: add to absent args", karmadaLabelled, "  overrideRules: [{overriders: {argsOverrider: [{containerName: nginx1, operator: add, value: [-t]}]}}]\n",
			[]any{"spec", "template", "spec", "containers", 1, "args"}, []any{"-t"}},
		// Shoal differs on purpose: Karmada's buildCommandArgsPatchesWithPath
		// adds "args: []" to a container without args when the result is
		// empty (a remove, or an add of nothing); the API server stores an
		// empty list as absent, so the copy is the same, and Shoal leaves
		// the field out rather than keep a difference with the live object.
		{"differs: remove from absent args adds nothing", karmadaLabelled, "  overrideRules: [{overriders: {argsOverrider: [{containerName: nginx1, operator: remove, value: [-t]}]}}]\n",
			[]any{"spec", "template", "spec", "containers", 1, "args"}, nil},
		{"Test_overrideManagerImpl_ApplyFieldOverriderPolicies_YAML", cm("test.yaml", "\nkey: \n  key1: value\n"),
			"  overrideRules: [{targetCluster: {clusterNames: [test1]}, overriders: {fieldOverrider: [{fieldPath: /data/test.yaml, yaml: [{subPath: /key/key1, operator: replace, value: updated_value}]}]}}]\n",
			[]any{"data", "test.yaml"}, "key:\n  key1: updated_value\n"},
		{"Test_overrideManagerImpl_ApplyJSONOverridePolicies_JSON", cm("test.json", `{"key":{"key1":"value"}}`),
			"  overrideRules: [{targetCluster: {clusterNames: [test1]}, overriders: {fieldOverrider: [{fieldPath: /data/test.json, json: [{subPath: /key/key1, operator: replace, value: updated_value}]}]}}]\n",
			[]any{"data", "test.json"}, `{"key":{"key1":"updated_value"}}`},
		// overridemanager.go applyFieldOverriders: with neither yaml nor
		// json (possible in the deprecated form only, which the webhook
		// does not check) the field is written back empty.
		{"applyFieldOverriders: neither yaml nor json empties the field", cm("test.json", `{"key":1}`),
			"  overriders: {fieldOverrider: [{fieldPath: /data/test.json}]}\n", []any{"data", "test.json"}, ""},
		// validation_test.go TestValidateOverrideSpec accepts the plaintext
		// path "spec/image"; json-patch (evanphx/json-patch v5, as in
		// Karmada) reads such a path from its second token on.
		{"TestValidateOverrideSpec + json-patch: a path without its leading slash", noMeta,
			"  overriders: {plaintext: [{path: spec/replicas, operator: add, value: 3}]}\n", []any{"replicas"}, float64(3)},
		{"json-patch: ~1 is a slash in a key", karmadaLabelled,
			"  overrideRules: [{overriders: {plaintext: [{path: /metadata/annotations/a~1b, operator: add, value: x}]}}]\n", []any{"metadata", "annotations", "a/b"}, "x"},
		{"json-patch: another ~ is itself", karmadaLabelled,
			"  overrideRules: [{overriders: {plaintext: [{path: /metadata/annotations/a~2b, operator: add, value: x}]}}]\n", []any{"metadata", "annotations", "a~2b"}, "x"},
		{"overridemanager.go parseJSONPatchesByPlaintext: add without a value adds null", karmadaLabelled,
			"  overrideRules: [{overriders: {plaintext: [{path: /spec/paused, operator: add}]}}]\n", []any{"spec", "paused"}, nil},
		{"overridemanager.go parseJSONPatchesByPlaintext: remove ignores a value", karmadaLabelled,
			"  overrideRules: [{overriders: {plaintext: [{path: /metadata/labels/foo, operator: remove, value: 1}]}}]\n", []any{"metadata", "labels"}, map[string]any{"bar": "bar"}},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			o := overridePolicy(t, "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: all}\nspec:\n"+tt.spec)
			obj := renderOne(t, tt.manifest, "test1", o)
			if got := at(obj, tt.path...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%v = %#v, want %#v", tt.path, got, tt.want)
			}
		})
	}
}

// TestKarmadaOverrideOrder follows TestGetMatchingOverridePolicies
// (overridemanager_test.go): policies apply from the least to the most
// precise selector, each policy's matching rules in order, and the
// deprecated targetCluster/overriders pair acts as one rule (the names are
// lower-cased: Karmada's unit test bypasses the API server, which refuses
// overridePolicy1). Each
// overrider replaces the annotations, so the last applied one shows.
func TestKarmadaOverrideOrder(t *testing.T) {
	const head = "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {namespace: default, name: "
	ann := func(v string) string {
		return "{plaintext: [{path: /metadata/annotations, operator: add, value: '" + v + "'}]}"
	}
	p1 := overridePolicy(t, head+"override-policy-1}\nspec:\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: test}]\n"+
		"  overrideRules:\n  - {targetCluster: {clusterNames: [cluster1, cluster2]}, overriders: "+ann("foo: bar")+"}\n"+
		"  - {targetCluster: {clusterNames: [cluster2]}, overriders: "+ann("aaa: bbb")+"}\n")
	p2 := overridePolicy(t, head+"override-policy-2}\nspec:\n  overrideRules:\n  - {targetCluster: {clusterNames: [cluster1, cluster2]}, overriders: "+ann("hello: world")+"}\n")
	old := overridePolicy(t, "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {namespace: default, name: old-override-policy}\n"+
		"spec:\n  targetCluster: {clusterNames: [cluster1]}\n  overriders: "+ann("hello: world")+"\n")
	for _, tt := range []struct {
		name, cluster string
		ops           []*api.OverridePolicy
		want          any
	}{
		{"OverrideRules test 1", "cluster1", []*api.OverridePolicy{p1, p2}, "foo: bar"},
		{"OverrideRules test 2", "cluster2", []*api.OverridePolicy{p1, p2}, "aaa: bbb"},
		{"TargetCluster and Overriders test", "cluster1", []*api.OverridePolicy{old}, "hello: world"},
		{"TargetCluster and Overriders test, another cluster", "cluster2", []*api.OverridePolicy{old}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			obj := renderOne(t, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"test","namespace":"default"},"spec":{}}`, tt.cluster, tt.ops...)
			if got := at(obj, "metadata", "annotations"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("annotations = %#v, want %#v", got, tt.want)
			}
		})
	}
}
