package region

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

func labelledDeployment(ns, name, group string) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":%q,"labels":{"app.group":%q}},"spec":{"replicas":2}}`, name, ns, group)
}

// waPolicy selects one Deployment, places it Aggregated on clusters, with
// a workload affinity rule ("affinity" or "antiAffinity") by app.group.
func waPolicy(ns, name string, clusters, rule string) string {
	return fmt.Sprintf(`{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":%q,"namespace":%q},`+
		`"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":%q}],"placement":{"clusterAffinity":{"clusterNames":[%s]},`+
		`"replicaScheduling":{"replicaSchedulingType":"Divided","replicaDivisionPreference":"Aggregated"},`+
		`"workloadAffinity":{%q:{"groupByLabelKey":"app.group"}}}}}`, name, ns, name, clusters, rule)
}

func depKey(ns, name string) api.ObjectKey {
	return api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name}
}

func polKey(ns, name string) api.ObjectKey {
	return api.ObjectKey{APIVersion: api.PolicyAPIVersion, Kind: api.KindPropagationPolicy, Namespace: ns, Name: name}
}

// Affinity: cache goes where api (its group, placed before it) runs, although
// it would go to a on its own; a workload of another group or namespace is
// free; a cluster a workload runs on is never taken from it by the rule.
func TestLeaderWorkloadAffinityCoLocatesAGroup(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c")
	h.command(applyObjects(
		obj(depKey("default", "api"), labelledDeployment("default", "api", "shop")),
		obj(polKey("default", "api"), waPolicy("default", "api", `"c"`, "affinity")),
		obj(depKey("default", "cache"), labelledDeployment("default", "cache", "shop")),
		obj(polKey("default", "cache"), waPolicy("default", "cache", `"a","b","c"`, "affinity")),
		obj(depKey("default", "dash"), labelledDeployment("default", "dash", "blog")),
		obj(polKey("default", "dash"), waPolicy("default", "dash", `"a","b","c"`, "affinity")),
		obj(depKey("other", "cache"), labelledDeployment("other", "cache", "shop")),
		obj(polKey("other", "cache"), waPolicy("other", "cache", `"a","b","c"`, "affinity")),
	))
	h.settle()
	for _, tc := range []struct {
		key  api.ObjectKey
		want string
	}{
		{depKey("default", "api"), "c=2"},
		{depKey("default", "cache"), "c=2"},
		{depKey("default", "dash"), "a=2"},
		{depKey("other", "cache"), "a=2"},
	} {
		if got := targets(h.binding(tc.key)); got != tc.want {
			t.Errorf("%s placed on %q, want %q (%s)", tc.key.Display(), got, tc.want, h.binding(tc.key).GetReason())
		}
	}
	if r := h.binding(depKey("default", "cache")).GetReason(); !strings.Contains(r, "workloadAffinity app.group=shop: not on a, b") {
		t.Errorf("cache's reason %q does not say why", r)
	}
	// api moves to b: cache keeps c, which it runs on.
	h.command(applyObjects(obj(polKey("default", "api"), waPolicy("default", "api", `"b"`, "affinity"))))
	h.settle()
	if got := targets(h.binding(depKey("default", "cache"))); got != "c=2" {
		t.Fatalf("cache after api moved: %q, want c=2 kept", got)
	}
}

// Anti-affinity: cache avoids a, where api of its group runs, although it
// would go to a on its own; with every cluster taken by the group it
// cannot be placed.
func TestLeaderWorkloadAntiAffinitySeparatesAGroup(t *testing.T) {
	h := newLeaderHarness(t, "a", "b")
	h.command(applyObjects(
		obj(depKey("default", "api"), labelledDeployment("default", "api", "shop")),
		obj(polKey("default", "api"), waPolicy("default", "api", `"a"`, "antiAffinity")),
		obj(depKey("default", "cache"), labelledDeployment("default", "cache", "shop")),
		obj(polKey("default", "cache"), waPolicy("default", "cache", `"a","b"`, "antiAffinity")),
		obj(depKey("default", "db"), labelledDeployment("default", "db", "shop")),
		obj(polKey("default", "db"), waPolicy("default", "db", `"a","b"`, "antiAffinity")),
	))
	h.settle()
	if got := targets(h.binding(depKey("default", "api"))); got != "a=2" {
		t.Fatalf("api on %q", got)
	}
	if got := targets(h.binding(depKey("default", "cache"))); got != "b=2" {
		t.Fatalf("cache on %q, want b=2 (away from api)", got)
	}
	db := h.binding(depKey("default", "db"))
	if !db.GetUnschedulable() || !strings.Contains(db.GetReason(), "workloadAntiAffinity app.group=shop: not on a, b") {
		t.Fatalf("db with both clusters taken by its group: %q, unschedulable %v, %q", targets(db), db.GetUnschedulable(), db.GetReason())
	}
}
