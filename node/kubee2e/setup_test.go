// Package kubee2e_test runs Shoal peers against real Kubernetes control
// planes (kube-apiserver, controller manager, scheduler, kwok nodes) built
// from Go modules by `make k8s-tools`.
package kubee2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/deploy/kubetest"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/node"
)

const deadline = 90 * time.Second

func logger() *slog.Logger {
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// installPeerRBAC applies what `shoal install` prints that a peer running
// outside the cluster needs (namespace, service account, cluster role and
// binding) and returns a kubeconfig with that service account's token: the
// peer then has exactly the RBAC the install gives it, not cluster-admin.
func installPeerRBAC(t *testing.T, ctx context.Context, c *kubetest.Cluster, allow []string) string {
	t.Helper()
	out, err := deploy.InstallManifests(deploy.InstallOptions{
		Region: "eu", Cluster: c.Name, Image: "shoal:test", Advertise: "127.0.0.1", Allow: allow,
	})
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	gvrs := map[string]schema.GroupVersionResource{
		"Namespace":          {Version: "v1", Resource: "namespaces"},
		"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
		"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		gvr, ok := gvrs[u.GetKind()]
		if !ok {
			continue // Secret, Service and StatefulSet run the peer in-cluster; here it runs outside
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if u.GetNamespace() != "" {
			ri = dyn.Resource(gvr).Namespace(u.GetNamespace())
		}
		if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("installing %s %s in %s: %v", u.GetKind(), u.GetName(), c.Name, err)
		}
	}
	expiry := int64(3600)
	tok, err := c.Client.CoreV1().ServiceAccounts("shoal-system").CreateToken(ctx, "shoal",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := c.KubeconfigForToken(tok.Status.Token)
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// region is three peers, each driving one real member cluster.
type region struct {
	t      *testing.T
	cp     *kubetest.ControlPlane
	peers  map[string]*node.Peer
	cfgs   map[string]node.Config
	creds  *node.DevCredentials
	client *client.Client
}

var allow = append(append([]string(nil), deploy.DefaultAllowedResources...),
	"customresourcedefinitions.apiextensions.k8s.io", "widgets.example.com")

func startRegion(t *testing.T, ctx context.Context) *region {
	cp, err := kubetest.Start(ctx, kubetest.Options{Names: []string{"eu-1", "eu-2", "eu-3"}, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err) // ErrNoBinaries says to run `make k8s-tools`; `make test` does
	}
	t.Cleanup(cp.Stop)
	r := &region{t: t, cp: cp, peers: map[string]*node.Peer{}, cfgs: map[string]node.Config{}}
	dir := t.TempDir()
	// The peers run as in production: TLS, tokens, a gossip key.
	r.creds, err = node.DevCredentialsIn(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	var join []string
	for i, c := range cp.Clusters {
		cfg := node.DefaultConfig()
		cfg.Region, cfg.Cluster, cfg.Zones = "eu", c.Name, []string{fmt.Sprintf("eu-%c", 'a'+i)}
		cfg.Labels = map[string]string{"env": "prod"}
		cfg.DataDir = filepath.Join(dir, c.Name)
		cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort, cfg.WANPort = 0, 0, 0, 0
		cfg.Gossip = gossip.ProfileLocal
		cfg.BootstrapExpect = 3
		cfg.Join = join
		cfg.FailbackDelay = 10 * time.Second // the default: long enough for a queued delete to fire first, were there one
		cfg.Kubeconfig = installPeerRBAC(t, ctx, c, allow)
		cfg.Logger = logger().With("peer", c.Name)
		if err := r.creds.Configure(&cfg); err != nil {
			t.Fatal(err)
		}
		p, err := node.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if join == nil {
			join = []string{p.GossipAddr()}
		}
		// A restart reuses the ports the peer got, as a real restart would.
		cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort, cfg.WANPort = portOf(p.HTTPAddr()), portOf(p.GossipAddr()), portOf(p.Raft().Addr()), portOf(p.WANAddr())
		r.peers[c.Name], r.cfgs[c.Name] = p, cfg
	}
	t.Cleanup(func() {
		for _, p := range r.peers {
			_ = p.Shutdown()
		}
	})
	r.client, err = r.clientOf("eu-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	r.eventually("three Ready clusters", func() error {
		cs, err := r.client.Clusters(ctx)
		if err != nil {
			return err
		}
		ready := 0
		for _, c := range cs {
			if c.Health == "Ready" && c.Capacity.Nodes == 2 {
				ready++
			}
		}
		if ready != 3 {
			return fmt.Errorf("%d of %d clusters Ready with 2 nodes: %+v", ready, len(cs), cs)
		}
		return nil
	})
	return r
}

func (r *region) cluster(name string) *kubetest.Cluster {
	for _, c := range r.cp.Clusters {
		if c.Name == name {
			return c
		}
	}
	r.t.Fatalf("no cluster %s", name)
	return nil
}

func (r *region) eventually(what string, cond func() error) {
	r.t.Helper()
	end := time.Now().Add(deadline)
	var err error
	for time.Now().Before(end) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.t.Fatalf("%s: not within %s: %v", what, deadline, err)
}

func (r *region) apply(ctx context.Context, yamlDoc string) {
	r.t.Helper()
	if _, err := r.client.Apply(ctx, []byte(yamlDoc)); err != nil {
		r.t.Fatalf("apply: %v", err)
	}
}

func portOf(addr string) int {
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}

// clientOf returns a client of the peer of cluster, with every scope.
func (r *region) clientOf(cluster string) (*client.Client, error) {
	return client.NewWith(r.peers[cluster].URL(), r.creds.ClientOptions())
}

// kill stops a peer without leaving; its cluster outlives it.
func (r *region) kill(cluster string) {
	r.t.Helper()
	if err := r.peers[cluster].Shutdown(); err != nil {
		r.t.Logf("shutdown %s: %v", cluster, err)
	}
	delete(r.peers, cluster)
}

// restart starts a killed peer again with its data dir and ports.
func (r *region) restart(cluster string) {
	r.t.Helper()
	p, err := node.Start(r.cfgs[cluster])
	if err != nil {
		r.t.Fatalf("restart %s: %v", cluster, err)
	}
	r.peers[cluster] = p
}
