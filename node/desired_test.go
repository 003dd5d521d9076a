package node

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/region"
)

// stateScript drives a region state machine with commands, as Raft would.
type stateScript struct {
	t     *testing.T
	fsm   *region.FSM
	index uint64
}

func newStateScript(t *testing.T) *stateScript {
	return &stateScript{t: t, fsm: region.NewFSM("eu-west", nil)}
}

func (s *stateScript) apply(cmd *shoalpb.Command) {
	s.t.Helper()
	data, err := proto.Marshal(cmd)
	if err != nil {
		s.t.Fatal(err)
	}
	s.index++
	if resp := s.fsm.Apply(&raft.Log{Index: s.index, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}); resp != nil {
		if err, ok := resp.(error); ok {
			s.t.Fatalf("command %d: %v", s.index, err)
		}
	}
}

func (s *stateScript) cluster(name, zone string, labels map[string]string) {
	s.apply(&shoalpb.Command{Cmd: &shoalpb.Command_ReportCluster{ReportCluster: &shoalpb.ReportCluster{Cluster: &shoalpb.ClusterRecord{
		Name: name, Region: "eu-west", Zone: zone, Provider: "aws", Labels: labels, ReportedHealth: shoalpb.Health_HEALTH_READY,
	}}}})
}

// objects applies manifests (JSON) under the keys they name.
func (s *stateScript) objects(manifests ...string) {
	s.t.Helper()
	var objs []*shoalpb.Object
	for _, m := range manifests {
		d, err := api.DecodeDocuments([]byte(m))
		if err != nil || len(d) != 1 {
			s.t.Fatalf("%s: %v", m, err)
		}
		objs = append(objs, &shoalpb.Object{Key: d[0].Key.Proto(), Manifest: d[0].Manifest})
	}
	s.apply(&shoalpb.Command{Cmd: &shoalpb.Command_ApplyObjects{ApplyObjects: &shoalpb.ApplyObjects{Objects: objs}}})
}

func (s *stateScript) bind(bs ...*shoalpb.Binding) {
	s.apply(&shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{Bindings: bs}}})
}

func binding(k api.ObjectKey, conflict string, targets ...any) *shoalpb.Binding {
	b := &shoalpb.Binding{Workload: k.Proto(), ConflictResolution: conflict}
	for i := 0; i+1 < len(targets); i += 2 {
		b.Clusters = append(b.Clusters, &shoalpb.TargetCluster{Name: targets[i].(string), Replicas: int32(targets[i+1].(int))})
	}
	return b
}

func deployment(name string, replicas int, labels string) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":"default","labels":{%s}},`+
		`"spec":{"replicas":%d,"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}}}`, name, labels, replicas)
}

func deploymentKey(name string) api.ObjectKey {
	return api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: name}
}

// referenceDesired is what the renderer must compute, the naive way: every
// template parsed, selected and rendered, on every call.
func referenceDesired(fsm *region.FSM, cluster string) ([]deploy.Work, map[string][]string) {
	var works []deploy.Work
	applied := map[string][]string{}
	fsm.Read(func(s *region.State) {
		var ops []*api.OverridePolicy
		for _, o := range s.Objects() {
			if api.KeyFromProto(o.GetKey()).IsOverridePolicy() {
				if op, _, err := api.DecodeOverridePolicy(o.GetManifest()); err == nil {
					ops = append(ops, op)
				}
			}
		}
		rec := s.Cluster(cluster)
		facts := api.ClusterFacts{Name: cluster, Region: rec.GetRegion(), Zones: api.ZonesOf(rec.GetZone(), rec.GetZones()), Provider: rec.GetProvider(), Labels: rec.GetLabels()}
		for _, b := range s.Bindings() {
			replicas, bound := shareOf(b, cluster)
			o := s.Object(api.KeyFromProto(b.GetWorkload()))
			if !bound || o == nil {
				continue
			}
			t, err := api.ParseTemplate(o.GetManifest())
			var selected []*api.OverridePolicy
			if err == nil {
				selected = api.SelectOverrides(ops, t)
			}
			w := deploy.Work{Key: api.KeyFromProto(o.GetKey()), Manifest: o.GetManifest(), Generation: o.GetGeneration(),
				HasReplicas: err == nil && t.HasReplicas, Replicas: replicas, ConflictResolution: b.GetConflictResolution()}
			var names []string
			if len(selected) > 0 {
				out, as, err := deploy.Render(o.GetManifest(), selected, facts)
				if err != nil {
					w.RenderError = err.Error()
				} else {
					w.Manifest = out
					for _, a := range as {
						names = append(names, a.Policy)
					}
					sort.Strings(names)
				}
			}
			works = append(works, w)
			applied[w.Key.String()] = names
		}
		for _, o := range s.Tombstones() {
			if k := api.KeyFromProto(o.GetKey()); o.GetPreserveOnClusters() && s.Status(k, cluster) != nil {
				works = append(works, deploy.Work{Key: k, Release: true})
			}
		}
	})
	return works, applied
}

// checkAgainstReference compares the renderer's answer with the naive one.
func checkAgainstReference(t *testing.T, step string, r *renderer, fsm *region.FSM) []deploy.Work {
	t.Helper()
	got := r.desired(fsm)
	want, wantApplied := referenceDesired(fsm, r.cluster)
	if len(got) != len(want) || len(got) > 0 && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: desired\n%+v\nwant\n%+v", step, got, want)
	}
	for ks, names := range wantApplied {
		if g := r.appliedOverrides(ks); !reflect.DeepEqual(g, names) {
			t.Errorf("%s: %s: applied overrides %v, want %v", step, ks, g, names)
		}
	}
	return got
}

// TestRendererMatchesReference: through templates, bindings, override
// policies, the cluster's facts and released objects changing, the cached
// renderer answers what parsing and rendering everything again would.
func TestRendererMatchesReference(t *testing.T) {
	s := newStateScript(t)
	r := newRenderer("eu-1")
	s.cluster("eu-1", "eu-west-a", map[string]string{"tier": "gold"})
	s.cluster("eu-2", "eu-west-b", map[string]string{"tier": "silver"})
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"default"},"data":{"a":"1"}}`
	cmKey := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg"}
	s.objects(deployment("web-0", 3, `"app":"web"`), deployment("web-1", 2, `"app":"web","team":"a"`),
		deployment("api-0", 1, `"app":"api"`), cm)
	s.bind(binding(deploymentKey("web-0"), "", "eu-1", 2, "eu-2", 1),
		binding(deploymentKey("web-1"), "Overwrite", "eu-1", 2),
		binding(deploymentKey("api-0"), "", "eu-2", 1), // not bound here
		binding(cmKey, "", "eu-1", 0, "eu-2", 0))
	checkAgainstReference(t, "first pass", r, s.fsm)
	checkAgainstReference(t, "nothing changed", r, s.fsm)

	// A ClusterOverridePolicy for every web Deployment on gold clusters.
	labels := func(gen string) string {
		return `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"ClusterOverridePolicy","metadata":{"name":"web-labels"},` +
			`"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","labelSelector":{"matchLabels":{"app":"web"}}}],` +
			`"overrideRules":[{"targetCluster":{"labelSelector":{"matchLabels":{"tier":"gold"}}},` +
			`"overriders":{"labelsOverrider":[{"operator":"add","value":{"gen":"` + gen + `"}}]}}]}}`
	}
	s.objects(labels("1"))
	checkAgainstReference(t, "override policy added", r, s.fsm)
	// A namespaced policy by name, last word on web-1, and one that
	// cannot apply to the ConfigMap (no such path).
	s.objects(`{"apiVersion":"policy.karmada.io/v1alpha1","kind":"OverridePolicy","metadata":{"name":"web-1-image","namespace":"default"},`+
		`"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web-1"}],`+
		`"overrideRules":[{"overriders":{"imageOverrider":[{"component":"Registry","operator":"replace","value":"registry.example"}]}}]}}`,
		`{"apiVersion":"policy.karmada.io/v1alpha1","kind":"OverridePolicy","metadata":{"name":"cfg-broken","namespace":"default"},`+
			`"spec":{"resourceSelectors":[{"apiVersion":"v1","kind":"ConfigMap"}],`+
			`"overrideRules":[{"overriders":{"plaintext":[{"path":"/data/missing/deep","operator":"replace","value":"x"}]}}]}}`)
	works := checkAgainstReference(t, "more override policies", r, s.fsm)
	for _, w := range works {
		if w.Key == cmKey && w.RenderError == "" {
			t.Errorf("the ConfigMap rendered without the error its broken policy must give: %+v", w)
		}
	}
	s.objects(labels("2"))
	checkAgainstReference(t, "override policy changed", r, s.fsm)

	s.cluster("eu-1", "eu-west-a", map[string]string{"tier": "silver"})
	checkAgainstReference(t, "cluster facts changed: the gold policy no longer applies", r, s.fsm)
	s.cluster("eu-1", "eu-west-c", map[string]string{"tier": "gold"})
	checkAgainstReference(t, "gold again, another zone", r, s.fsm)

	s.objects(deployment("web-0", 4, `"app":"web"`), deployment("api-0", 1, `"app":"web"`))
	s.bind(binding(deploymentKey("web-1"), "Abort", "eu-1", 5),
		binding(deploymentKey("api-0"), "", "eu-1", 1))
	checkAgainstReference(t, "new generations, replicas, conflict resolution and a new binding here", r, s.fsm)

	// The ConfigMap is deleted with preserveResourcesOnDeletion while this
	// cluster holds it: it is released here.
	s.apply(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: "eu-1",
		Statuses: []*shoalpb.WorkStatus{{Workload: cmKey.Proto(), AppliedGeneration: 1, Health: "Healthy"}}}}})
	s.apply(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{
		Keys: []*shoalpb.ObjectKey{cmKey.Proto()}, Preserve: []*shoalpb.ObjectKey{cmKey.Proto()}}}})
	checkAgainstReference(t, "template deleted, objects preserved", r, s.fsm)
	if !r.releasing {
		t.Error("releasing is false while a released object still has a status here")
	}

	s.apply(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{Keys: []*shoalpb.ObjectKey{
		{ApiVersion: api.PolicyAPIVersion, Kind: api.KindClusterOverridePolicy, Name: "web-labels"},
		{ApiVersion: api.PolicyAPIVersion, Kind: api.KindOverridePolicy, Namespace: "default", Name: "web-1-image"},
	}}}})
	checkAgainstReference(t, "override policies deleted", r, s.fsm)
	s.bind(binding(deploymentKey("web-0"), "", "eu-2", 3))
	checkAgainstReference(t, "web-0 moved away", r, s.fsm)
	if _, ok := r.works[deploymentKey("web-0").String()]; ok {
		t.Error("the cache still holds web-0, no longer bound here")
	}
}

// TestRendererParsesOnlyChangedTemplates: a pass parses only the templates
// whose generation changed and renders only the works whose inputs
// changed; the rest come from the cache.
func TestRendererParsesOnlyChangedTemplates(t *testing.T) {
	s := newStateScript(t)
	r := newRenderer("eu-1")
	s.cluster("eu-1", "eu-west-a", map[string]string{"tier": "gold"})
	const n = 20
	var docs []string
	var bs []*shoalpb.Binding
	for i := range n {
		name := fmt.Sprintf("web-%d", i)
		docs = append(docs, deployment(name, 2, `"app":"`+name+`"`))
		bs = append(bs, binding(deploymentKey(name), "", "eu-1", 2))
	}
	s.objects(docs...)
	s.bind(bs...)
	check := func(step string, parsed, rendered int) {
		t.Helper()
		if got := r.desired(s.fsm); len(got) != n {
			t.Fatalf("%s: %d works, want %d", step, len(got), n)
		}
		if r.parsed != parsed || r.rendered != rendered {
			t.Errorf("%s: %d templates parsed and %d works built in all, want %d and %d", step, r.parsed, r.rendered, parsed, rendered)
		}
	}
	check("first pass", n, n)
	check("nothing changed", n, n)
	s.cluster("eu-2", "eu-west-b", nil)
	s.bind(binding(deploymentKey("elsewhere"), "", "eu-2", 1))
	check("another cluster joined and got a binding", n, n)

	s.objects(deployment("web-3", 5, `"app":"web-3"`))
	check("a new generation of web-3", n+1, n+1)
	s.bind(binding(deploymentKey("web-4"), "", "eu-1", 7))
	check("web-4's replicas here changed", n+1, n+2)
	s.bind(binding(deploymentKey("web-5"), "Overwrite", "eu-1", 2))
	check("web-5's conflict resolution changed", n+1, n+3)

	for ks, c := range r.works {
		if c.tmpl != nil {
			t.Errorf("%s: a parsed template is kept while no override policy exists", ks)
		}
	}

	policy := func(value string) string {
		return `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"OverridePolicy","metadata":{"name":"web-6","namespace":"default"},` +
			`"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web-6"}],` +
			`"overrideRules":[{"overriders":{"labelsOverrider":[{"operator":"add","value":{"x":"` + value + `"}}]}}]}}`
	}
	s.objects(policy("y"))
	check("the first override policy: every template parsed once to select with, web-6 built again", 2*n+1, n+4)
	if got := r.appliedOverrides(deploymentKey("web-6").String()); len(got) != 1 {
		t.Errorf("web-6: applied overrides %v, want the new policy", got)
	}
	s.objects(policy("z"))
	check("the policy's next generation: web-6 built again, nothing parsed", 2*n+1, n+5)
	s.cluster("eu-1", "eu-west-a", map[string]string{"tier": "silver"})
	check("the cluster's facts changed: every work is built again, nothing parsed", 2*n+1, 2*n+5)
}
