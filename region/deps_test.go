package region

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

var (
	cfgKey    = api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "web-config"}
	secretKey = api.ObjectKey{APIVersion: "v1", Kind: "Secret", Namespace: "default", Name: "web-tls"}
	sharedKey = api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "shared"}
	ownPPKey  = api.ObjectKey{APIVersion: api.PolicyAPIVersion, Kind: api.KindPropagationPolicy, Namespace: "default", Name: "shared"}
)

// webWithDeps is web naming web-config (a volume), web-tls (envFrom),
// shared (env) and absent (a volume with no template in Shoal).
const webWithDeps = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":%d,` +
	`"template":{"spec":{"containers":[{"name":"w","envFrom":[{"secretRef":{"name":"web-tls"}}],` +
	`"env":[{"name":"S","valueFrom":{"configMapKeyRef":{"name":"shared","key":"s"}}}]}],` +
	`"volumes":[{"name":"c","configMap":{"name":"web-config"}},{"name":"a","configMap":{"name":"absent"}}]}}}}`

func depsPolicy(placement string) string {
	return `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"web","namespace":"default"},` +
		`"spec":{"propagateDeps":true,"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}],"placement":` + placement + `}}`
}

func cm(name string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default"},"data":{"k":"v"}}`, name)
}

// Dependencies go where the workload goes, follow it through failover and
// failback, leave a cluster once no workload there needs them, and run
// on the union with their own policy's clusters; a missing one is
// reported on the workload.
func TestLeaderDependenciesFollowTheWorkload(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c")
	h.command(applyObjects(
		obj(webKey, fmt.Sprintf(webWithDeps, 2)),
		obj(ppKey, depsPolicy(`{"clusterAffinity":{"clusterNames":["a","b"]},"replicaScheduling":{"replicaSchedulingType":"Divided"}}`)),
		obj(cfgKey, cm("web-config")),
		obj(secretKey, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"web-tls","namespace":"default"},"data":{"k":"dg=="}}`),
		obj(sharedKey, cm("shared")),
		// shared has its own policy too, to c.
		obj(ownPPKey, `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"shared","namespace":"default"},`+
			`"spec":{"resourceSelectors":[{"apiVersion":"v1","kind":"ConfigMap","name":"shared"}],"placement":{"clusterAffinity":{"clusterNames":["c"]}}}}`),
	))
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=1, b=1" {
		t.Fatalf("web placed on %q", got)
	}
	for _, k := range []api.ObjectKey{cfgKey, secretKey} {
		b := h.binding(k)
		if got := targets(b); got != "a=0, b=0" {
			t.Errorf("%s placed on %q, want where web runs", k.Display(), got)
		}
		if fmt.Sprint(b.GetRequiredBy()) != "[Deployment default/web]" || !strings.Contains(b.GetReason(), "required by Deployment default/web") {
			t.Errorf("%s: required by %v, reason %q", k.Display(), b.GetRequiredBy(), b.GetReason())
		}
	}
	if got := targets(h.binding(sharedKey)); got != "a=0, b=0, c=0" {
		t.Errorf("shared (own policy to c, and web's) on %q, want the union", got)
	}
	if got := h.binding(webKey).GetMissingDependencies(); fmt.Sprint(got) != "[ConfigMap default/absent]" {
		t.Errorf("missing dependencies %v", got)
	}

	// b fails: web moves to a (and c is not in its affinity); b keeps its
	// old replica as an eviction, so its dependencies stay on b too.
	for _, c := range []string{"a", "b"} {
		h.report(c, webKey, 1, 1)
	}
	h.members.set("b", false)
	h.advance(time.Second)
	h.settle()
	if b := h.binding(webKey); targets(b) != "a=2" || evictionString(b.GetEvictions()) != "b=1" {
		t.Fatalf("after b failed: %q evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
	if got := targets(h.binding(cfgKey)); got != "a=0, b=0" {
		t.Errorf("web-config while b keeps web's old replica: %q", got)
	}
	// Failback: the pre-failover assignment again, and the dependencies
	// with it.
	h.members.set("b", true)
	h.advance(time.Second)
	h.settle()
	h.advance(11 * time.Second)
	h.settle()
	h.report("a", webKey, 1, 1)
	h.report("b", webKey, 1, 1)
	h.settle()
	if b := h.binding(webKey); targets(b) != "a=1, b=1" || len(b.GetEvictions()) != 0 {
		t.Fatalf("after failback: %q evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
	if got := targets(h.binding(cfgKey)); got != "a=0, b=0" {
		t.Errorf("web-config after failback: %q", got)
	}

	// web narrowed to a: its dependencies leave b (the peer deletes them
	// there); shared stays on its own policy's c as well.
	h.command(applyObjects(obj(ppKey, depsPolicy(`{"clusterAffinity":{"clusterNames":["a"]},"replicaScheduling":{"replicaSchedulingType":"Divided"}}`))))
	h.settle()
	h.report("a", webKey, 2, 2)
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=2" {
		t.Fatalf("web narrowed to a: %q", got)
	}
	if got := targets(h.binding(cfgKey)); got != "a=0" {
		t.Errorf("web-config once no workload on b needs it: %q", got)
	}
	if got := targets(h.binding(sharedKey)); got != "a=0, c=0" {
		t.Errorf("shared: %q", got)
	}

	// web gone: a dependency with no policy of its own is no longer
	// propagated anywhere; shared keeps its own policy's c.
	h.command(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{Keys: []*shoalpb.ObjectKey{webKey.Proto()}}}})
	h.settle()
	if b := h.binding(cfgKey); targets(b) != "" || len(b.GetRequiredBy()) != 0 {
		t.Errorf("web-config after web was deleted: %q required by %v", targets(b), b.GetRequiredBy())
	}
	if got := targets(h.binding(sharedKey)); got != "c=0" {
		t.Errorf("shared after web was deleted: %q", got)
	}
}

// Without propagateDeps, what a workload names is not carried along.
func TestLeaderDependenciesOnlyWithPropagateDeps(t *testing.T) {
	h := newLeaderHarness(t, "a")
	h.command(applyObjects(obj(webKey, fmt.Sprintf(webWithDeps, 1)), obj(ppKey, policy(divided)), obj(cfgKey, cm("web-config"))))
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=1" {
		t.Fatalf("web on %q", got)
	}
	if b := h.binding(cfgKey); targets(b) != "" || len(h.binding(webKey).GetMissingDependencies()) != 0 {
		t.Errorf("without propagateDeps: web-config on %q, missing %v", targets(b), h.binding(webKey).GetMissingDependencies())
	}
}
