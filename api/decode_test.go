package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodePolicyKarmadaExamples decodes the examples of Karmada's
// documentation kept in testdata and checks what each is about.
func TestDecodePolicyKarmadaExamples(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, p *Policy)
	}{
		{"weighted-static.yaml", func(t *testing.T, p *Policy) {
			rs := p.Spec.Placement.ReplicaScheduling
			if rs.ReplicaSchedulingType != ReplicaSchedulingTypeDivided || rs.ReplicaDivisionPreference != ReplicaDivisionPreferenceWeighted {
				t.Errorf("replicaScheduling = %+v", rs)
			}
			ws := rs.WeightPreference.StaticWeightList
			if len(ws) != 2 || ws[0].Weight != 1 || ws[1].Weight != 2 || ws[1].TargetCluster.ClusterNames[0] != "member2" {
				t.Errorf("staticWeightList = %+v", ws)
			}
			if sc := p.Spec.Placement.SpreadConstraints[0]; sc.MinGroups != 2 || sc.MaxGroups != 2 {
				t.Errorf("spreadConstraints[0] = %+v", sc)
			}
		}},
		{"duplicated.yaml", func(t *testing.T, p *Policy) {
			if got := p.Spec.Placement.ReplicaScheduling.ReplicaSchedulingType; got != ReplicaSchedulingTypeDuplicated {
				t.Errorf("replicaSchedulingType = %q", got)
			}
		}},
		{"dynamic-weight.yaml", func(t *testing.T, p *Policy) {
			if got := p.Spec.Placement.ReplicaScheduling.WeightPreference.DynamicWeight; got != DynamicWeightByAvailableReplicas {
				t.Errorf("dynamicWeight = %q", got)
			}
		}},
		{"aggregated.yaml", func(t *testing.T, p *Policy) {
			if got := p.Spec.Placement.ReplicaScheduling.ReplicaDivisionPreference; got != ReplicaDivisionPreferenceAggregated {
				t.Errorf("replicaDivisionPreference = %q", got)
			}
		}},
		{"cluster-affinities.yaml", func(t *testing.T, p *Policy) {
			as := p.Spec.Placement.ClusterAffinities
			if len(as) != 2 || as[0].AffinityName != "primary-clusters" || as[1].ClusterNames[1] != "member4" {
				t.Errorf("clusterAffinities = %+v", as)
			}
			if p.Spec.ResourceSelectors[0].Name != "" {
				t.Errorf("selector should match all Deployments")
			}
		}},
		{"spread-region.yaml", func(t *testing.T, p *Policy) {
			scs := p.Spec.Placement.SpreadConstraints
			if len(scs) != 2 || scs[0].SpreadByField != SpreadByFieldRegion || scs[1].SpreadByField != SpreadByFieldCluster {
				t.Errorf("spreadConstraints = %+v", scs)
			}
		}},
		{"tolerations.yaml", func(t *testing.T, p *Policy) {
			ts := p.Spec.Placement.ClusterTolerations
			if len(ts) != 2 || ts[0].Value != "special-user" || ts[1].TolerationSeconds == nil || *ts[1].TolerationSeconds != 300 {
				t.Errorf("clusterTolerations = %+v", ts)
			}
			fs := p.Spec.Placement.ClusterAffinity.FieldSelector.MatchExpressions
			if len(fs) != 2 || fs[1].Operator != "NotIn" || fs[1].Values[0] != "us-west-1" {
				t.Errorf("fieldSelector = %+v", fs)
			}
		}},
		{"failover-cluster.yaml", func(t *testing.T, p *Policy) {
			if p.Kind != KindClusterPropagationPolicy || p.Namespace != "" || p.Ref() != "ClusterPropagationPolicy web-failover" {
				t.Errorf("identity = %s %q %s", p.Kind, p.Namespace, p.Ref())
			}
			if got := p.Spec.Failover.Cluster.PurgeMode; got != PurgeModeGracefully {
				t.Errorf("purgeMode = %q, want Gracefully", got)
			}
			if p.ExplicitPriority() != 10 || p.Spec.ConflictResolution != ConflictOverwrite {
				t.Errorf("priority %d, conflictResolution %q", p.ExplicitPriority(), p.Spec.ConflictResolution)
			}
			if ns := p.Spec.ResourceSelectors[0].Namespace; ns != "" {
				t.Errorf("a ClusterPropagationPolicy selector keeps an empty namespace, got %q", ns)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, warnings, err := DecodePolicy(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("DecodePolicy: %v", err)
			}
			if len(warnings) != 0 {
				t.Errorf("unexpected warnings: %q", warnings)
			}
			tt.check(t, p)
		})
	}
}

func TestDecodePolicyWarnsForUnimplementedFields(t *testing.T) {
	p, warnings, err := DecodePolicy(readTestdata(t, "unimplemented.yaml"))
	if err != nil {
		t.Fatalf("DecodePolicy: %v", err)
	}
	if p.Spec.Failover.Cluster.PurgeMode != PurgeModeDirectly {
		t.Errorf("purgeMode = %q", p.Spec.Failover.Cluster.PurgeMode)
	}
	for _, field := range []string{
		"spec.association", "spec.dependentOverrides", "spec.preemption: Always",
		`spec.schedulerName "my-scheduler"`, "spec.activationPreference", "spec.suspension",
		"spec.schedulePriority", "spec.failover.cluster.statePreservation",
	} {
		want := "PropagationPolicy default/web-pp: " + field
		found := false
		for _, w := range warnings {
			if strings.HasPrefix(w, want) && strings.HasSuffix(w, ": not implemented by Shoal yet; ignored") {
				found = true
			}
		}
		if !found {
			t.Errorf("no warning %q in %q", want, warnings)
		}
	}
	// propagateDeps and failover.application are implemented: no warning
	// for them, but one for the old spelling Graciously.
	if len(warnings) != 9 || !strings.HasPrefix(warnings[0], "PropagationPolicy default/web-pp: spec.failover.application.purgeMode: Graciously is deprecated") {
		t.Errorf("got %d warnings, want 9: %q", len(warnings), warnings)
	}
}

func TestDecodePolicyErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		target error
		want   []string
	}{
		{
			name:   "unknown field names its path",
			in:     string(readTestdata(t, "bad-unknown-field.yaml")),
			target: ErrInvalid,
			want:   []string{"PropagationPolicy default/web-pp: spec.placement.replicaScheduling.replicaDivisionPreferences: unknown field"},
		},
		{
			name:   "all problems of one document",
			in:     string(readTestdata(t, "bad-spread.yaml")),
			target: ErrInvalid,
			want: []string{
				"PropagationPolicy default/web-pp: spec.placement.spreadConstraints[0]: maxGroups (1) is less than minGroups (2)",
				"spec.placement.spreadConstraints: a constraint with spreadByField: cluster is required",
			},
		},
		{
			name: "field names are case-sensitive",
			in: `apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web-pp}
spec:
  ResourceSelectors: [{apiVersion: v1, kind: ConfigMap}]`,
			target: ErrInvalid,
			want:   []string{"spec.ResourceSelectors: unknown field", "spec.resourceSelectors: at least one resource selector is required"},
		},
		{
			name:   "wrong type names the field",
			in:     `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"web-pp"},"spec":{"priority":"high"}}`,
			target: ErrInvalid,
			want:   []string{"PropagationPolicy default/web-pp: spec.priority: must be a whole number, got string"},
		},
		{
			name:   "unknown metadata field",
			in:     "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: all, labelz: {}}\nspec: {resourceSelectors: [{apiVersion: v1, kind: Namespace}]}",
			target: ErrInvalid,
			want:   []string{"ClusterPropagationPolicy all: metadata.labelz: unknown field"},
		},
		{
			name:   "duplicate key",
			in:     "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: a}\nspec: {}\nspec: {}\n",
			target: ErrSyntax,
			want:   []string{`"spec" already set`},
		},
		{
			name:   "override policy",
			in:     "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: a}\nspec: {}\n",
			target: ErrUnknownKind,
			want:   []string{"OverridePolicy is not a propagation policy; decode it with DecodeOverridePolicy"},
		},
		{
			name:   "other version",
			in:     "apiVersion: policy.karmada.io/v1beta1\nkind: PropagationPolicy\nmetadata: {name: a}\n",
			target: ErrUnknownKind,
			want:   []string{`apiVersion "policy.karmada.io/v1beta1" kind "PropagationPolicy"`},
		},
		{
			name:   "not a policy",
			in:     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
			target: ErrUnknownKind,
			want:   []string{`apiVersion "v1" kind "ConfigMap"`},
		},
		{
			name:   "no name",
			in:     "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nspec: {}\n",
			target: ErrNotObject,
			want:   []string{"metadata.name is required"},
		},
		{
			name:   "empty",
			in:     "# nothing\n---\n",
			target: ErrEmpty,
		},
		{
			name:   "two documents",
			in:     string(readTestdata(t, "duplicated.yaml")) + "---\n" + string(readTestdata(t, "aggregated.yaml")),
			target: ErrInvalid,
			want:   []string{"expected one policy, got 2 documents"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, w, err := DecodePolicy([]byte(tt.in))
			if err == nil {
				t.Fatalf("no error; policy %+v", p)
			}
			if p != nil || w != nil {
				t.Errorf("on error got policy %v, warnings %q", p, w)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("error %q is not %q", err, tt.target)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestDecodeDocuments(t *testing.T) {
	deployment := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod"},"spec":{"replicas":2}}`
	tests := []struct {
		name string
		in   string
		keys []string // Display of each document's key
	}{
		{"workload and policy", string(readTestdata(t, "app.yaml")), []string{"Deployment default/nginx", "PropagationPolicy default/nginx-propagation"}},
		{"JSON object", deployment, []string{"Deployment prod/web"}},
		{"JSON stream", deployment + "\n" + deployment + "\n", []string{"Deployment prod/web", "Deployment prod/web"}},
		{"YAML with comments and empty documents", "---\n# a comment\n---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod # trailing\n---\n---\n", []string{"Namespace prod"}},
		{"JSON document inside YAML", "# first\n" + deployment + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", []string{"Deployment prod/web", "ConfigMap default/c"}},
		{"custom resource", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: a}\nspec: {anything: [1, 2]}\n", []string{"Widget a/w"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := DecodeDocuments([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeDocuments: %v", err)
			}
			var keys []string
			for i, d := range docs {
				keys = append(keys, d.Key.Display())
				if d.Index != i {
					t.Errorf("document %d has Index %d", i, d.Index)
				}
				if !json.Valid(d.Manifest) {
					t.Errorf("document %d: manifest is not JSON: %s", i, d.Manifest)
				}
				if (d.Policy != nil) != d.Key.IsPolicy() {
					t.Errorf("document %d: Policy %v for key %s", i, d.Policy, d.Key)
				}
			}
			if !reflect.DeepEqual(keys, tt.keys) {
				t.Errorf("keys = %q, want %q", keys, tt.keys)
			}
		})
	}
}

func TestDecodeDocumentsPolicyManifestIsDefaulted(t *testing.T) {
	docs, err := DecodeDocuments(readTestdata(t, "app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pd := docs[1]
	if pd.Key.String() != "policy.karmada.io/v1alpha1/PropagationPolicy/default/nginx-propagation" {
		t.Errorf("key = %s", pd.Key)
	}
	for _, want := range []string{`"namespace":"default"`, `"conflictResolution":"Abort"`, `"schedulerName":"default-scheduler"`} {
		if !strings.Contains(string(pd.Manifest), want) {
			t.Errorf("manifest lacks %s: %s", want, pd.Manifest)
		}
	}
	// The stored manifest decodes again to the same policy.
	again, _, err := DecodePolicy(pd.Manifest)
	if err != nil {
		t.Fatalf("re-decoding the defaulted manifest: %v", err)
	}
	if !reflect.DeepEqual(again, pd.Policy) {
		t.Errorf("re-decoded policy differs:\n%+v\n%+v", again, pd.Policy)
	}
	// A namespaced template without a namespace goes to "default", as
	// with kubectl, in its key and its manifest.
	if !strings.Contains(string(docs[0].Manifest), `"namespace":"default"`) || docs[0].Key.Namespace != "default" {
		t.Errorf("template namespace not defaulted: %s", docs[0].Manifest)
	}
}

func TestDecodeDocumentsErrors(t *testing.T) {
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n"
	tests := []struct {
		name   string
		in     string
		target error
		index  int
		want   string
	}{
		{"empty input", "", ErrEmpty, -1, ""},
		{"only comments", "# a\n---\n# b\n---\n", ErrEmpty, -1, ""},
		{"bad template in the middle", good + "---\n" + "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec: {replicas: -1}\n---\n" + good,
			nil, 1, "document 2 (Deployment default/web): replicas must not be negative, got -1"},
		{"bad policy in the middle", good + "---\n" + string(readTestdata(t, "bad-spread.yaml")) + "---\n" + good,
			ErrInvalid, 1, "document 2 (PropagationPolicy default/web-pp): spec.placement.spreadConstraints[0]: maxGroups (1) is less than minGroups (2)"},
		{"no identity", good + "---\n" + good + "---\nfoo: bar\n", ErrNotObject, 2, "document 3: not a Kubernetes object: apiVersion and kind are required"},
		{"no name", good + "---\napiVersion: v1\nkind: Service\nmetadata: {}\n", ErrNotObject, 1, "document 2: Service: not a Kubernetes object: metadata.name is required"},
		{"a list", "- a\n- b\n", ErrNotObject, 0, "document 1: not a Kubernetes object: a document must be a mapping"},
		{"a scalar", "hello\n", ErrNotObject, 0, "document 1: not a Kubernetes object"},
		{"name of wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: [x]}\n", ErrNotObject, 0, "document 1: not a Kubernetes object: metadata.name must be a string"},
		{"bad YAML after good ones", good + "---\n" + good + "---\nkind: [\n", ErrSyntax, 2, "document 3: malformed YAML or JSON"},
		{"not a document separator", good + "---foo\n" + good, ErrSyntax, 0, "document 1: malformed YAML or JSON"},
		{"content after the separator", good + "--- # c\n--- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n--- [\n", ErrSyntax, 2, "document 3: malformed YAML or JSON: yaml: line 1"},
		{"bad JSON stream", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}} {"kind": `, ErrSyntax, 1, "document 2: malformed YAML or JSON: JSON: unexpected EOF"},
		{"invalid override policy", good + "---\napiVersion: policy.karmada.io/v1alpha1\nkind: ClusterOverridePolicy\nmetadata: {name: o}\nspec: {overrideRules: [{overriders: {fieldOverrider: [{fieldPath: data/x, json: [{subPath: /a, operator: remove}]}]}}]}\n",
			ErrInvalid, 1, `document 2 (ClusterOverridePolicy o): spec.overrideRules[0].overriders.fieldOverrider[0].fieldPath: "data/x" is not a JSON pointer: it must be empty or start with "/"`},
		{"version in the kind", good + "---\napiVersion: policy.karmada.io\nkind: v1alpha1/PropagationPolicy\nmetadata: {name: web, namespace: default}\n",
			ErrInvalidKey, 1, `document 2: invalid object identity: apiVersion "policy.karmada.io": must be v1`},
		{"name that is no DNS subdomain", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: My_Config}\n",
			ErrInvalidKey, 0, `document 1: invalid object identity: metadata.name "My_Config": a lowercase RFC 1123 subdomain`},
		{"slash in a namespace", good + "---\n" + good + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a/b}\n",
			ErrInvalidKey, 2, `document 3: invalid object identity: metadata.namespace "a/b": must not contain '/'`},
		{"unknown policy kind", "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicies\nmetadata: {name: o}\n",
			ErrUnknownKind, 0, `document 1 (PropagationPolicies o): unknown policy kind: apiVersion "policy.karmada.io/v1alpha1" kind "PropagationPolicies"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := DecodeDocuments([]byte(tt.in))
			if err == nil {
				t.Fatalf("no error, got %d documents", len(docs))
			}
			if docs != nil {
				t.Errorf("documents returned with an error: %v", docs)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %q is not %q", err, tt.target)
			}
			var de *DocumentError
			if tt.index >= 0 {
				if !errors.As(err, &de) || de.Index != tt.index {
					t.Errorf("error %q: want a *DocumentError with Index %d", err, tt.index)
				}
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n %q\ndoes not start with\n %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeDocuments(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w"}}{}`))
	f.Add([]byte("---\n---\n# c\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := DecodeDocuments(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			if docs != nil {
				t.Fatal("documents returned with an error")
			}
			return
		}
		if len(docs) == 0 {
			t.Fatal("no documents and no error")
		}
		for i, d := range docs {
			if d.Index != i || d.Key.Kind == "" || d.Key.Name == "" || !json.Valid(d.Manifest) {
				t.Fatalf("bad document %d: %+v", i, d)
			}
			if err := ValidateKey(d.Key); err != nil {
				t.Fatalf("document %d decoded with an invalid key: %v", i, err)
			}
			if d.Policy != nil {
				// A stored policy decodes again, to the same policy.
				p, _, err := DecodePolicy(d.Manifest)
				if err != nil {
					t.Fatalf("re-decoding policy %s: %v\n%s", d.Key, err, d.Manifest)
				}
				if !reflect.DeepEqual(p, d.Policy) {
					t.Fatalf("re-decoded policy differs:\n%+v\n%+v", p, d.Policy)
				}
			}
		}
	})
}

func TestDecodePolicyPartitionGuard(t *testing.T) {
	const pp = `apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: db
  annotations: {shoal.io/partition-guard: %s}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: StatefulSet, name: db}]
`
	for _, g := range []string{PartitionGuardMajority, PartitionGuardStrict} {
		p, _, err := DecodePolicy([]byte(fmt.Sprintf(pp, g)))
		if err != nil || p.Guard != g {
			t.Fatalf("guard %q: %v, err %v", g, p, err)
		}
	}
	_, _, err := DecodePolicy([]byte(fmt.Sprintf(pp, "always")))
	if err == nil || !strings.Contains(err.Error(), `metadata.annotations[shoal.io/partition-guard]: unknown value "always"; use "majority", "strict"`) {
		t.Fatalf("an unknown guard: %v", err)
	}
}
