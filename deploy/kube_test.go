package deploy

import (
	"testing"

	"k8s.io/client-go/rest"
)

func TestKubeConfig(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cfg          KubeConfig
		ok           bool
		qps          float32
		burst        int
		fieldManager string
	}{
		{"defaults", DefaultKubeConfig("c"), true, 200, 400, "shoal"},
		{"zero but named", KubeConfig{ClusterName: "c"}, true, 200, 400, "shoal"},
		{"QPS only: burst twice as large", KubeConfig{ClusterName: "c", QPS: 50}, true, 50, 100, "shoal"},
		{"both", KubeConfig{ClusterName: "c", QPS: 5, Burst: 7, FieldManager: "m"}, true, 5, 7, "m"},
		{"no name", KubeConfig{}, false, 0, 0, ""},
		{"negative QPS", KubeConfig{ClusterName: "c", QPS: -1}, false, 0, 0, ""},
		{"negative burst", KubeConfig{ClusterName: "c", Burst: -1}, false, 0, 0, ""},
		{"negative resync", KubeConfig{ClusterName: "c", Resync: -1}, false, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if _, err := NewKubeCluster(tc.cfg, &rest.Config{Host: "https://127.0.0.1:1"}); (err == nil) != tc.ok {
				t.Fatalf("NewKubeCluster() = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			d := tc.cfg.withDefaults()
			if d.QPS != tc.qps || d.Burst != tc.burst || d.FieldManager != tc.fieldManager || d.Logger == nil {
				t.Fatalf("with defaults: QPS %g, burst %d, field manager %q, logger %v", d.QPS, d.Burst, d.FieldManager, d.Logger)
			}
		})
	}
}
