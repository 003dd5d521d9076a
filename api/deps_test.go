package api

import (
	"slices"
	"strings"
	"testing"
)

func TestDependenciesOfAPodTemplate(t *testing.T) {
	const podSpec = `{"serviceAccountName":"runner","imagePullSecrets":[{"name":"regcred"}],
	"containers":[{"name":"a","env":[{"name":"X","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"x"}}},
		{"name":"Y","valueFrom":{"secretKeyRef":{"name":"db","key":"pw"}}},{"name":"Z","value":"plain"}],
		"envFrom":[{"configMapRef":{"name":"env-cm"}},{"secretRef":{"name":"env-secret"}}]}],
	"initContainers":[{"name":"i","envFrom":[{"configMapRef":{"name":"init-cm"}}]}],
	"volumes":[{"name":"v1","configMap":{"name":"cfg"}},{"name":"v2","secret":{"secretName":"tls"}},
		{"name":"v3","persistentVolumeClaim":{"claimName":"data"}},
		{"name":"v4","projected":{"sources":[{"configMap":{"name":"proj-cm"}},{"secret":{"name":"proj-secret"}},{"serviceAccountToken":{"path":"t"}}]}},
		{"name":"v5","emptyDir":{}}]}`
	want := []string{
		"v1/ConfigMap/shop/cfg", "v1/ConfigMap/shop/env-cm", "v1/ConfigMap/shop/init-cm", "v1/ConfigMap/shop/proj-cm",
		"v1/PersistentVolumeClaim/shop/data",
		"v1/Secret/shop/db", "v1/Secret/shop/env-secret", "v1/Secret/shop/proj-secret", "v1/Secret/shop/regcred", "v1/Secret/shop/tls",
		"v1/ServiceAccount/shop/runner",
	}
	for _, m := range []string{
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w","namespace":"shop"},"spec":{"template":{"spec":` + podSpec + `}}}`,
		`{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"w","namespace":"shop"},"spec":{"template":{"spec":` + podSpec + `}}}`,
		`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"w","namespace":"shop"},"spec":{"jobTemplate":{"spec":{"template":{"spec":` + podSpec + `}}}}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w","namespace":"shop"},"spec":` + podSpec + `}`,
	} {
		deps, err := Dependencies([]byte(m))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range deps {
			got = append(got, d.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", m[:60], got, want)
		}
	}
	// The default service account is no dependency (every namespace has
	// it), nor is anything of a kind without a pod template.
	deps, err := Dependencies([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w","namespace":"shop"},"spec":{"template":{"spec":{"serviceAccountName":"default"}}}}`))
	if err != nil || len(deps) != 0 {
		t.Errorf("default service account: %v, %v", deps, err)
	}
	deps, err = Dependencies([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"shop"},"data":{"volumes":"x"}}`))
	if err != nil || len(deps) != 0 {
		t.Errorf("a ConfigMap: %v, %v", deps, err)
	}
	if _, err := Dependencies([]byte(`{not json`)); err == nil || !strings.Contains(err.Error(), "not a Kubernetes object") {
		t.Errorf("bad manifest: %v", err)
	}
}
