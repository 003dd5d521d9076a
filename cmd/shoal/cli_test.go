package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/node"
)

const deadline = 60 * time.Second

// startPeer starts a one-peer region (cluster eu-1, labelled env=prod, so
// the examples place on it) and waits until it leads and has registered its
// cluster.
func startPeer(t *testing.T) *node.Peer {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Region, cfg.Cluster, cfg.Zones, cfg.Provider = "eu", "eu-1", []string{"eu-a", "eu-b"}, "aws"
	cfg.Labels = map[string]string{"env": "prod"}
	cfg.DataDir = filepath.Join(t.TempDir(), "eu-1")
	cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort, cfg.WANPort = 0, 0, 0, 0
	cfg.Gossip = gossip.ProfileLocal
	cfg.BootstrapExpect = 1
	cfg.Sim.ReadyDelay = 50 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Insecure = true // the dev tests run TLS end to end
	p, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	c, err := client.New(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "the cluster registered", func() error {
		cs, err := c.Clusters(ctx)
		if err == nil && len(cs) != 1 {
			err = fmt.Errorf("%d clusters", len(cs))
		}
		return err
	})
	return p
}

// poll retries cond until it returns nil or the deadline passes.
func poll(t testing.TB, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	var err error
	for time.Now().Before(end) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, deadline, err)
}

// shoal runs the CLI in-process and returns its exit code and output.
func shoal(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustShoal runs the CLI against the peer and fails unless it exits 0.
func mustShoal(t *testing.T, p *node.Peer, args ...string) string {
	t.Helper()
	code, out, errOut := shoal(append([]string{"--server", p.URL()}, args...)...)
	if code != 0 {
		t.Fatalf("shoal %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func wantIn(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, text)
		}
	}
}

func TestCLIAgainstAPeer(t *testing.T) {
	p := startPeer(t)

	out := mustShoal(t, p, "apply", "-f", "../../examples")
	wantIn(t, "apply output", out, "Deployment default/web created", "PropagationPolicy default/web created",
		"Deployment default/log-agent created", "ConfigMap default/log-agent created")
	out = mustShoal(t, p, "apply", "-f", "../../examples")
	wantIn(t, "second apply output", out, "Deployment default/web unchanged")

	// get workloads -o json: the documented fields, and every workload
	// Ready on eu-1.
	type placement struct {
		Cluster       *string `json:"cluster"`
		Region        *string `json:"region"`
		Replicas      *int32  `json:"replicas"`
		ReadyReplicas *int32  `json:"readyReplicas"`
	}
	type workload struct {
		APIVersion      *string     `json:"apiVersion"`
		Kind            *string     `json:"kind"`
		Namespace       *string     `json:"namespace"`
		Name            *string     `json:"name"`
		DesiredReplicas *int32      `json:"desiredReplicas"`
		Placements      []placement `json:"placements"`
	}
	var ws []workload
	poll(t, "every workload Ready on eu-1", func() error {
		ws = nil
		if err := json.Unmarshal([]byte(mustShoal(t, p, "get", "workloads", "-o", "json")), &ws); err != nil {
			return err
		}
		if len(ws) != 4 { // web, log-agent, its ConfigMap, bursting
			return fmt.Errorf("%d workloads", len(ws))
		}
		for _, w := range ws {
			if w.APIVersion == nil || w.Kind == nil || w.Namespace == nil || w.Name == nil || w.DesiredReplicas == nil {
				return fmt.Errorf("a workload lacks a field: %+v", w)
			}
			if len(w.Placements) != 1 {
				return fmt.Errorf("%s: placements %+v", *w.Name, w.Placements)
			}
			pl := w.Placements[0]
			if pl.Cluster == nil || pl.Region == nil || pl.Replicas == nil || pl.ReadyReplicas == nil {
				return fmt.Errorf("%s: a placement lacks a field: %+v", *w.Name, pl)
			}
			if *pl.Cluster != "eu-1" || *pl.Region != "eu" || *pl.ReadyReplicas != *pl.Replicas {
				return fmt.Errorf("%s: on %s/%s %d/%d ready", *w.Name, *pl.Region, *pl.Cluster, *pl.ReadyReplicas, *pl.Replicas)
			}
		}
		return nil
	})
	for _, w := range ws {
		if *w.Name == "web" && (*w.DesiredReplicas != 8 || *w.Placements[0].Replicas != 8 || *w.APIVersion != "apps/v1" || *w.Namespace != "default") {
			t.Errorf("web: %+v %+v", w, w.Placements[0])
		}
	}

	out = mustShoal(t, p, "get", "workloads")
	wantIn(t, "get workloads", out, "NAMESPACE", "READY", "web", "8/8", "eu-1=8/8", "log-agent", "eu-1=2/2",
		"ConfigMap", "1/1 clusters", "eu-1=applied")

	var cs []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(mustShoal(t, p, "get", "clusters", "-o", "json")), &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("%d clusters", len(cs))
	}
	for _, f := range []string{"name", "region", "zone", "zones", "provider", "labels", "taints", "health", "capacity"} {
		if _, ok := cs[0][f]; !ok {
			t.Errorf("get clusters -o json: no field %q in %v", f, cs[0])
		}
	}
	var cv api.ClusterView
	raw, _ := json.Marshal(cs[0])
	if err := json.Unmarshal(raw, &cv); err != nil {
		t.Fatal(err)
	}
	if cv.Name != "eu-1" || cv.Region != "eu" || cv.Zone != "eu-a" || !slices.Equal(cv.Zones, []string{"eu-a", "eu-b"}) || cv.Provider != "aws" || cv.Labels["env"] != "prod" ||
		cv.Health != "Ready" || len(cv.Taints) != 0 || cv.Capacity.Nodes == 0 || cv.Capacity.Allocatable.CPUMilli == 0 {
		t.Errorf("cluster: %+v", cv)
	}
	out = mustShoal(t, p, "get", "clusters", "-o", "wide")
	wantIn(t, "get clusters -o wide", out, "PROVIDER", "LABELS", "CPU(avail/alloc)", "eu-1", "eu-a,eu-b", "aws", "Ready", "env=prod")

	var ps []api.PolicyView
	if err := yaml.Unmarshal([]byte(mustShoal(t, p, "get", "policies", "-o", "yaml")), &ps); err != nil {
		t.Fatal(err)
	}
	selects := map[string]string{}
	for _, pv := range ps {
		selects[pv.Name] = strings.Join(pv.Selects, ",")
	}
	if selects["web"] != "Deployment default/web" || selects["log-agent"] != "ConfigMap default/log-agent,Deployment default/log-agent" {
		t.Errorf("get policies -o yaml: selects %v", selects)
	}

	out = mustShoal(t, p, "describe", "workload", "default/web")
	wantIn(t, "describe", out, "Name:          web", "Policy:        PropagationPolicy default/web", "Placement:",
		"CLUSTER", "eu-1", "Healthy", "Events:")
	if strings.Contains(out, "Events:\n  <none>") {
		t.Errorf("describe shows no events:\n%s", out)
	}
	out = mustShoal(t, p, "describe", "workload", "Deployment/default/web")
	wantIn(t, "describe with kind", out, "Kind:          Deployment (apps/v1)")

	out = mustShoal(t, p, "status")
	wantIn(t, "status", out, "Region:   eu", "Leader:   eu-1", "alive", "Mesh:     ", "object(s), digest ")

	// What the simulated cluster holds, with the identities a real cluster
	// would give its objects.
	out = mustShoal(t, p, "simulate", "objects")
	wantIn(t, "simulate objects", out, "Simulated cluster eu-1: Ready, 4 object(s)", "UID", "Deployment", "web", "8/8")
	var sim api.SimulationView
	if err := json.Unmarshal([]byte(mustShoal(t, p, "simulate", "objects", "-o", "json")), &sim); err != nil {
		t.Fatal(err)
	}
	simUIDs := map[string]string{}
	for _, o := range sim.Objects {
		simUIDs[o.Kind+"/"+o.Name] = o.UID
	}
	for k, o := range p.Sim().Objects() {
		if simUIDs[k.Kind+"/"+k.Name] != o.UID || o.UID == "" {
			t.Errorf("simulate objects -o json: %s uid %q, the cluster holds %q", k.Display(), simUIDs[k.Kind+"/"+k.Name], o.UID)
		}
	}

	// The simulated cluster's capacity, drained and refilled.
	out = mustShoal(t, p, "simulate", "capacity", "40")
	wantIn(t, "simulate capacity", out, "now offers 40% of its nodes' allocatable")
	out = mustShoal(t, p, "simulate", "objects")
	wantIn(t, "simulate objects at 40%", out, "its nodes offer 40% of their allocatable")
	mustShoal(t, p, "simulate", "capacity", "100%")
	if got := p.Sim().CapacityPercent(); got != 100 {
		t.Errorf("simulate capacity 100%%: the cluster offers %d%%", got)
	}

	out = mustShoal(t, p, "delete", "Deployment", "default/web")
	wantIn(t, "delete", out, "Deployment default/web deleted")
	out = mustShoal(t, p, "get", "workloads")
	if strings.Contains(out, " web ") {
		t.Errorf("web still listed after delete:\n%s", out)
	}
	webKey := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}
	poll(t, "the cluster drops web", func() error {
		if _, ok := p.Sim().Objects()[webKey]; ok {
			return fmt.Errorf("web still in the simulated cluster")
		}
		return nil
	})
	code, _, errOut := shoal("--server", p.URL(), "delete", "Deployment", "default/web")
	if code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("second delete: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = shoal("--server", p.URL(), "describe", "workload", "default/web")
	if code != 1 || !strings.Contains(errOut, "no workload default/web") {
		t.Errorf("describe a deleted workload: exit %d, stderr %q", code, errOut)
	}
}

func TestCLIChaosListsAndShowsTheBuiltins(t *testing.T) {
	code, out, errOut := shoal("chaos", "list")
	if code != 0 || !strings.Contains(out, "kill-region") || !strings.Contains(out, "edge-flap") || strings.Count(out, "\n") != 10 {
		t.Fatalf("chaos list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = shoal("chaos", "show", "partition-and-heal")
	if code != 0 || !strings.Contains(out, "fault: partition") {
		t.Fatalf("chaos show: exit %d, stdout %q", code, out)
	}
	// A bad scenario file is refused before any mesh starts.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\nsteps:\n  - {fault: kill}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = shoal("chaos", "run", bad)
	if code != 1 || !strings.Contains(errOut, "fault kill needs a cluster") {
		t.Fatalf("chaos run of a bad file: exit %d, stderr %q", code, errOut)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	// None of these needs a server: a usage error is found before any
	// request, so point at one that cannot answer.
	server := "http://" + deadAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{}, "Usage:"},
		{[]string{"get"}, "get what?"},
		{[]string{"get", "pods"}, `unknown resource "pods"`},
		{[]string{"get", "workloads", "-o", "bogus"}, `-o "bogus"`},
		{[]string{"get", "workloads", "extra"}, "get what?"},
		{[]string{"apply"}, "-f FILE is required"},
		{[]string{"delete", "Deployment"}, "give either -f FILE or KIND NAMESPACE/NAME"},
		{[]string{"describe", "web"}, "describe workload"},
		{[]string{"status", "now"}, "unexpected arguments"},
		{[]string{"get", "--nope"}, "flag provided but not defined"},
		{[]string{"simulate", "capacity"}, "shoal simulate capacity PERCENT"},
		{[]string{"simulate", "capacity", "101"}, `capacity "101": want a percent from 0`},
		{[]string{"simulate", "capacity", "half"}, `capacity "half"`},
		{[]string{"simulate", "ready", "now"}, "simulate ready|not-ready|capacity PERCENT|objects"},
		{[]string{"chaos"}, "shoal chaos list"},
		{[]string{"chaos", "melt"}, `unknown chaos command "melt"`},
		{[]string{"chaos", "show", "nosuch"}, `"nosuch" is not a built-in scenario`},
		{[]string{"chaos", "run"}, "one scenario"},
		{[]string{"chaos", "inject", "--action", "loss"}, "--action loss needs --loss P"},
	} {
		code, _, errOut := shoal(append([]string{"--server", server}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("shoal %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCLIServerDown(t *testing.T) {
	server := "http://" + deadAddr(t)
	for _, args := range [][]string{
		{"status"}, {"get", "workloads"}, {"get", "clusters", "-o", "json"}, {"apply", "-f", "../../examples"},
		{"delete", "Deployment", "default/web"}, {"describe", "workload", "default/web"},
	} {
		code, out, errOut := shoal(append([]string{"--server", server}, args...)...)
		if code != 1 || !strings.Contains(errOut, "cannot reach") || !strings.Contains(errOut, server) {
			t.Errorf("shoal %s against a dead server: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
		}
		if out != "" {
			t.Errorf("shoal %s against a dead server printed %q", strings.Join(args, " "), out)
		}
	}
	// The server may come from the environment too.
	t.Setenv("SHOAL_SERVER", server)
	if code, _, errOut := shoal("status"); code != 1 || !strings.Contains(errOut, "cannot reach "+server) {
		t.Errorf("shoal status with SHOAL_SERVER: exit %d, stderr %q", code, errOut)
	}
}
