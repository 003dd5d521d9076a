package deploy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func deploymentKey(name string) api.ObjectKey {
	return api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: name}
}

func configMapKey(name string) api.ObjectKey {
	return api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: name}
}

// deployment returns a Deployment manifest whose pods request cpu and
// memory (Kubernetes quantities).
func deployment(name, cpu, memory string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"apps/v1","kind":"Deployment",
"metadata":{"name":%q,"namespace":"default","labels":{"app":%q}},
"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"c","image":"nginx",
"resources":{"requests":{"cpu":%q,"memory":%q}}}]}}}}`, name, name, cpu, memory)
}

func configMap(name string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default"},"data":{"k":"v"}}`, name)
}
