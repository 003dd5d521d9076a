package deploy

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func installDocs(t *testing.T, opts InstallOptions) map[string]map[string]any {
	t.Helper()
	out, err := InstallManifests(opts)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	for _, d := range strings.Split(string(out), "\n---\n") {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(d), &v); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, d)
		}
		docs[v["kind"].(string)+"/"+v["metadata"].(map[string]any)["name"].(string)] = v
	}
	return docs
}

// container returns the peer container of the rendered StatefulSet.
func container(docs map[string]map[string]any) map[string]any {
	spec := docs["StatefulSet/shoal"]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	return spec["containers"].([]any)[0].(map[string]any)
}

func argsOf(docs map[string]map[string]any) string {
	joined := ""
	for _, a := range container(docs)["args"].([]any) {
		joined += a.(string) + " "
	}
	return joined
}

func TestInstallManifests(t *testing.T) {
	docs := installDocs(t, InstallOptions{
		Region: "eu-west", Cluster: "eu-1", Zones: []string{"eu-west-1a", "eu-west-1b"}, Labels: []string{"env=prod"},
		Image: "registry.example/shoal:v1", Advertise: "203.0.113.10", Join: "203.0.113.11:7481",
		JoinWAN: "198.51.100.7:7483", BootstrapExpect: 3, Allow: []string{"deployments.apps", "configmaps", "widgets.example.com"},
	})
	for _, kind := range []string{"Namespace/shoal-system", "ServiceAccount/shoal", "ClusterRole/shoal-peer", "ClusterRoleBinding/shoal-peer",
		"Secret/shoal-gossip", "Service/shoal", "StatefulSet/shoal"} {
		if docs[kind] == nil {
			t.Errorf("no %s rendered", kind)
		}
	}
	rules := docs["ClusterRole/shoal-peer"]["rules"].([]any)
	var managed []string
	for _, r := range rules {
		rule := r.(map[string]any)
		for _, g := range rule["apiGroups"].([]any) {
			for _, res := range rule["resources"].([]any) {
				managed = append(managed, g.(string)+"/"+res.(string))
			}
		}
	}
	want := "/nodes /pods /namespaces /configmaps apps/deployments example.com/widgets"
	if got := strings.Join(managed, " "); got != want {
		t.Errorf("RBAC resources %q, want %q (nothing more)", got, want)
	}
	sts := docs["StatefulSet/shoal"]
	joined := argsOf(docs)
	for _, want := range []string{"--in-cluster", "--region=eu-west", "--cluster=eu-1", "--zone=eu-west-1a", "--zone=eu-west-1b", "--label=env=prod",
		"--advertise=203.0.113.10", "--join=203.0.113.11:7481", "--bootstrap-expect=3", "--data-dir=/var/lib/shoal",
		"--wan-port=7483", "--join-wan=198.51.100.7:7483"} {
		if !strings.Contains(joined, want+" ") {
			t.Errorf("peer args lack %s: %s", want, joined)
		}
	}
	// Other regions reach the peer's QUIC links through its Service.
	wan := false
	for _, p := range docs["Service/shoal"]["spec"].(map[string]any)["ports"].([]any) {
		pm := p.(map[string]any)
		wan = wan || pm["name"] == "wan" && pm["protocol"] == "UDP" && fmt.Sprint(pm["port"]) == "7483"
	}
	if !wan {
		t.Errorf("the Service does not expose the WAN port 7483/UDP: %v", docs["Service/shoal"]["spec"])
	}
	if sts["spec"].(map[string]any)["volumeClaimTemplates"] == nil {
		t.Error("the data dir is not on a persistent volume")
	}
}

func TestInstallManifestsTLS(t *testing.T) {
	base := InstallOptions{Region: "eu", Cluster: "eu-1", Image: "shoal:v1", Advertise: "198.51.100.1"}
	probe := func(docs map[string]map[string]any) map[string]any {
		return container(docs)["readinessProbe"].(map[string]any)["httpGet"].(map[string]any)
	}

	plain := installDocs(t, base)
	if plain["Secret/shoal-tls"] != nil || strings.Contains(argsOf(plain), "--tls") {
		t.Error("without TLS material the peer still gets a TLS Secret or --tls flags")
	}
	// A peer refuses to start without TLS unless told --insecure.
	if !strings.Contains(argsOf(plain), "--insecure ") {
		t.Errorf("a peer installed without TLS lacks --insecure: %s", argsOf(plain))
	}
	if s := probe(plain)["scheme"]; s != nil {
		t.Errorf("plain peer probed with scheme %v", s)
	}

	withTLS := base
	withTLS.TLS = &InstallTLS{CACert: []byte("ca-pem"), Cert: []byte("cert-pem"), Key: []byte("key-pem")}
	docs := installDocs(t, withTLS)
	sec := docs["Secret/shoal-tls"]
	if sec == nil || sec["type"] != "kubernetes.io/tls" {
		t.Fatalf("no kubernetes.io/tls Secret shoal-tls: %v", sec)
	}
	data := sec["data"].(map[string]any)
	for key, want := range map[string]string{"tls.crt": "cert-pem", "tls.key": "key-pem", "ca.crt": "ca-pem"} {
		got, err := base64.StdEncoding.DecodeString(data[key].(string))
		if err != nil || string(got) != want {
			t.Errorf("Secret %s = %q (%v), want %q", key, got, err, want)
		}
	}
	args := argsOf(docs)
	if strings.Contains(args, "--insecure") {
		t.Errorf("a peer installed with TLS runs --insecure: %s", args)
	}
	for _, want := range []string{"--tls-ca=" + TLSMountPath + "/ca.crt", "--tls-cert=" + TLSMountPath + "/tls.crt", "--tls-key=" + TLSMountPath + "/tls.key"} {
		if !strings.Contains(args, want+" ") {
			t.Errorf("peer args lack %s: %s", want, args)
		}
	}
	mounted := false
	for _, m := range container(docs)["volumeMounts"].([]any) {
		m := m.(map[string]any)
		if m["name"] == "tls" && m["mountPath"] == TLSMountPath && m["readOnly"] == true {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("the TLS Secret is not mounted read-only at %s", TLSMountPath)
	}
	if s := probe(docs)["scheme"]; s != "HTTPS" {
		t.Errorf("TLS peer probed with scheme %v, want HTTPS", s)
	}

	missing := base
	missing.TLS = &InstallTLS{CACert: []byte("ca-pem")}
	if _, err := InstallManifests(missing); err == nil || !strings.Contains(err.Error(), "--tls-dir") {
		t.Errorf("incomplete TLS material: %v", err)
	}
}

func TestInstallManifestsRejectsBadOptions(t *testing.T) {
	good := InstallOptions{Region: "eu", Cluster: "eu-1", Image: "shoal:v1", Advertise: "198.51.100.1"}
	if _, err := InstallManifests(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*InstallOptions)
		want string
	}{
		{"region", func(o *InstallOptions) { o.Region = "EU West" }, "--region"},
		{"no image", func(o *InstallOptions) { o.Image = "" }, "--image"},
		{"no advertise", func(o *InstallOptions) { o.Advertise = "" }, "--advertise is required"},
		{"injection", func(o *InstallOptions) { o.Zones = []string{"a\n  evil: true"} }, "--zone"},
		{"zone twice", func(o *InstallOptions) { o.Zones = []string{"eu-1a", "eu-1a"} }, `--zone: zone "eu-1a" given twice`},
		{"empty zone", func(o *InstallOptions) { o.Zones = []string{""} }, "--zone: zone: empty name"},
		{"allow", func(o *InstallOptions) { o.Allow = []string{"Deployments.apps"} }, "--allow"},
		{"gossip key", func(o *InstallOptions) { o.GossipKey = "c2hvcnQ=" }, "--gossip-key"},
		{"expect", func(o *InstallOptions) { o.BootstrapExpect = 9 }, "--bootstrap-expect"},
		{"storage", func(o *InstallOptions) { o.StorageSize = "lots" }, "--storage-size"},
		{"label", func(o *InstallOptions) { o.Labels = []string{"novalue"} }, "--label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.mod(&o)
			_, err := InstallManifests(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
