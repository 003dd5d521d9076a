package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/node"
)

const attachedScenario = `
name: attached
description: endpoint faults against a mesh the harness did not start
mesh: {regions: 1, clusters: 3}
steps:
  - apply: web
  - wait: converged
  - writes: {rate: 5, keys: 10, deletes: 0.2}
  - fault: cut
    cluster: eu-2
    for: 4s
  - wait: ready
  - fault: not-ready
    cluster: eu-3
    for: 4s
  - wait: ready
  - fault: skew
    cluster: eu-1
    offset: 2s
    for: 3s
  - wait: converged
`

// shoal chaos run --peers runs a scenario against a mesh it did not start
// (here one started as `shoal dev` starts it), reached with the CLI's
// credentials: the endpoint faults act and every invariant is checked,
// and a fault on a process is refused with a reason, leaving the peers
// alone.
func TestCLIChaosRunAgainstARunningMesh(t *testing.T) {
	dir := t.TempDir()
	m, err := node.StartMesh(node.MeshSpec{Binary: shoalBinary(t), Regions: 1, Clusters: 3, Dir: filepath.Join(dir, "mesh"),
		ExtraArgs: []string{"--failback-delay", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	o := m.ClientOptions()
	creds := []string{"--ca-cert", o.CACert, "--token", o.Token}
	peers := filepath.Join(dir, "mesh", "peers.json")

	scenario := filepath.Join(dir, "attached.yaml")
	if err := os.WriteFile(scenario, []byte(attachedScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := shoal(append(creds, "chaos", "run", scenario, "--peers", peers)...)
	if code != 0 {
		t.Fatalf("chaos run --peers: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	wantIn(t, "chaos run --peers", out, "against the 3 peers of", "cut #1", "not-ready #2", "skew #3", "10 of 10 invariants held")

	kill := filepath.Join(dir, "kill.yaml")
	if err := os.WriteFile(kill, []byte("name: kill\nmesh: {regions: 1, clusters: 3}\nsteps:\n  - {fault: kill, cluster: eu-1, for: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = shoal(append(creds, "chaos", "run", kill, "--peers", peers)...)
	if code != 1 || !strings.Contains(errOut, "did not start this mesh's peers") {
		t.Fatalf("a kill against an attached mesh: exit %d, stderr %q", code, errOut)
	}
	for _, p := range m.Peers() {
		if !m.Running(p.Cluster) {
			t.Errorf("peer %s is no longer running", p.Cluster)
		}
	}
	code, _, errOut = shoal(append(creds, "chaos", "run", scenario, "--peers", filepath.Join(dir, "none.json"))...)
	if code != 1 || !strings.Contains(errOut, "none.json") {
		t.Fatalf("a missing peer list: exit %d, stderr %q", code, errOut)
	}
}
