package kubee2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/chaos"
	"github.com/shoalmesh/shoal/deploy/kubetest"
)

// realMembers stops and starts the API servers of a control plane's
// clusters for the chaos harness (chaos.Members).
type realMembers struct{ cp *kubetest.ControlPlane }

func (m realMembers) cluster(name string) (*kubetest.Cluster, error) {
	for _, c := range m.cp.Clusters {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%s is not a real member cluster", name)
}

func (m realMembers) StopAPIServer(name string) error {
	c, err := m.cluster(name)
	if err != nil {
		return err
	}
	c.StopAPIServer()
	return nil
}

func (m realMembers) StartAPIServer(ctx context.Context, name string) error {
	c, err := m.cluster(name)
	if err != nil {
		return err
	}
	return c.StartAPIServer(ctx)
}

// shoalBinary is $SHOAL_BIN (the Makefile builds it) or one built here.
func shoalBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("SHOAL_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shoalmesh/shoal/cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

const apiserverStopScenario = `
name: real-apiserver-stop
description: >-
  A real member cluster's kube-apiserver is stopped (killed, as in a crash)
  for 25 s and started again, in a region whose two other peers drive
  simulated clusters.
mesh: {regions: 1, clusters: 3, args: [--failback-delay, 3s]}
steps:
  - apply: web
  - wait: converged
  - fault: apiserver-stop
    cluster: eu-1
    for: 25s
  - wait: ready
  - wait: converged
`

// The chaos harness stops a real member's API server: the region rides it
// out (web's replicas run on the simulated clusters meanwhile), every
// invariant holds, and the member keeps its Deployment throughout (the
// same uid after the outage: nothing deleted or re-created).
func TestChaosRealMemberAPIServerStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := kubetest.Start(ctx, kubetest.Options{Names: []string{"eu-1"}, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err) // ErrNoBinaries says to run `make k8s-tools`; `make test` does
	}
	t.Cleanup(cp.Stop)
	member := cp.Clusters[0]
	kubeconfig := installPeerRBAC(t, ctx, member, allow)

	s, err := chaos.Parse([]byte(apiserverStopScenario), false, "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := chaos.StartLocalWith(ctx, shoalBinary(t), t.TempDir(), s, chaos.LocalOptions{
		PeerArgs: map[string][]string{"eu-1": {"--kubeconfig", kubeconfig}},
		Members:  realMembers{cp: cp},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// The Deployment's uid on the real member, once it is there.
	uid := func() (string, error) {
		dep, err := member.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return string(dep.UID), nil
	}
	type seen struct {
		uid string
		err error
	}
	uids := make(chan seen, 1)
	go func() {
		// Watch for the first uid while the scenario runs.
		for ctx.Err() == nil {
			if u, err := uid(); err == nil {
				uids <- seen{uid: u}
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		uids <- seen{err: ctx.Err()}
	}()

	report, err := chaos.Run(ctx, s, d, chaos.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	report.WriteText(&text)
	t.Logf("chaos report:\n%s", text.String())
	if !report.Passed {
		t.Fatalf("an invariant failed:\n%s", text.String())
	}
	stopped := false
	for _, e := range report.Timeline {
		stopped = stopped || e.Detail == "member API server stopped"
	}
	if !stopped {
		t.Fatalf("the timeline shows no API server stopped:\n%s", text.String())
	}
	first := <-uids
	if first.err != nil {
		t.Fatalf("web never reached the real member: %v", first.err)
	}
	if now, err := uid(); err != nil || now != first.uid {
		t.Fatalf("web on the real member: uid %s before the outage, %s (%v) after: it was deleted and re-created", first.uid, now, err)
	}
}
