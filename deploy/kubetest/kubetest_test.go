package kubetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/shoalmesh/shoal/deploy/kubetest"
)

// TestControlPlane starts three member clusters, runs a Deployment in each
// until its pods are Ready, and crashes and restarts one API server.
// Without the binaries it fails (a skip would hide them missing): run
// `make k8s-tools`.
func TestControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	cp, err := kubetest.Start(ctx, kubetest.Options{Clusters: 3, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	t.Logf("3 clusters started in %s", time.Since(began).Round(100*time.Millisecond))

	var wg sync.WaitGroup
	for _, c := range cp.Clusters {
		wg.Go(func() {
			if err := createDeployment(ctx, c.Client, "web", 3); err != nil {
				t.Error(err)
				return
			}
			if err := waitReadyReplicas(ctx, c.Client, "web", 3); err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("Deployments 3/3 Ready in every cluster %s after start", time.Since(began).Round(100*time.Millisecond))
	logRSS(t, cp)

	// Crash one API server: its /readyz fails, the others stay ready.
	down := cp.Clusters[1]
	down.StopAPIServer()
	if err := down.Readyz(ctx); err == nil {
		t.Fatalf("%s: /readyz answered ok after StopAPIServer", down.Name)
	}
	for _, c := range cp.Clusters {
		if c != down {
			if err := c.Readyz(ctx); err != nil {
				t.Errorf("another cluster's API server is down: %v", err)
			}
		}
	}
	restarted := time.Now()
	if err := down.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: API server ready again in %s", down.Name, time.Since(restarted).Round(100*time.Millisecond))
	if err := waitReadyReplicas(ctx, down.Client, "web", 3); err != nil {
		t.Fatalf("%s after restart: %v", down.Name, err)
	}
}

// TestKubeconfigForToken runs a client as a ServiceAccount, the way a peer
// runs in its cluster.
func TestKubeconfigForToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, err := kubetest.Start(ctx, kubetest.Options{Clusters: 1, NodesPerCluster: 1, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	c := cp.Clusters[0]
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "peer"}}
	if _, err := c.Client.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "peer", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path, err := c.KubeconfigForToken(tr.Status.Token)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := review.Status.UserInfo.Username, "system:serviceaccount:default:peer"; got != want {
		t.Errorf("user = %q, want %q", got, want)
	}
	// RBAC applies: the ServiceAccount may not list Nodes.
	if _, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("a ServiceAccount without RBAC rules listed Nodes")
	}
}

func TestMissingBinaries(t *testing.T) {
	_, err := kubetest.Start(context.Background(), kubetest.Options{Bin: t.TempDir()})
	if !errors.Is(err, kubetest.ErrNoBinaries) || !strings.Contains(err.Error(), "make k8s-tools") {
		t.Fatalf("Start with an empty Bin = %v, want ErrNoBinaries naming make k8s-tools", err)
	}
}

// TestFailureNamesLog: when a process dies, Start's error names its log and
// quotes the log's end.
func TestFailureNamesLog(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		script := "#!/bin/sh\necho \"boom from $0\" >&2\nexit 3\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "kwok-stages.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := kubetest.Start(context.Background(), kubetest.Options{Bin: bin, Dir: dir})
	if err == nil {
		t.Fatal("Start with a failing etcd succeeded")
	}
	t.Logf("Start failed as expected: %v", err)
	for _, want := range []string{filepath.Join(dir, "etcd.log"), "boom from", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func createDeployment(ctx context.Context, client kubernetes.Interface, name string, replicas int32) error {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  name,
					Image: "registry.k8s.io/pause:3.10",
				}}},
			},
		},
	}
	_, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	return err
}

// waitReadyReplicas waits until the Deployment reports want Ready replicas
// and as many pods are Running.
func waitReadyReplicas(ctx context.Context, client kubernetes.Interface, name string, want int32) error {
	var last string
	for {
		d, err := client.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = fmt.Sprintf("%d/%d ready", d.Status.ReadyReplicas, want)
			if d.Status.ReadyReplicas == want {
				pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
				if err == nil && runningPods(pods.Items) == int(want) {
					return nil
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s: %w (last: %s)", name, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func runningPods(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

func logRSS(t *testing.T, cp *kubetest.ControlPlane) {
	rss := cp.RSS()
	keys := make([]string, 0, len(rss))
	for k := range rss {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	perCluster := map[string]int64{}
	for _, k := range keys {
		if cluster, _, ok := strings.Cut(k, "/"); ok {
			perCluster[cluster] += rss[k]
		}
		t.Logf("RSS %-40s %4d MiB", k, rss[k]>>20)
	}
	for _, c := range cp.Clusters {
		t.Logf("RSS of cluster %s (without etcd): %d MiB", c.Name, perCluster[c.Name]>>20)
	}
}
