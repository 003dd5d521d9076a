package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/examples"
	"github.com/shoalmesh/shoal/node"
)

// demo is the script of `shoal demo`.
type demo struct {
	env    *cliEnv
	mesh   *node.Mesh
	client *client.Client
	start  time.Time
}

func runDemo(env *cliEnv, args []string) error {
	fset := newFlagSet(env, "demo", "demo [--clusters N] [--kill CLUSTER] [--regions N] [--kill-region REGION] [--failback-delay D]")
	clusters := fset.Int("clusters", 3, "clusters (peers) in the region")
	victim := fset.String("kill", "eu-3", "cluster whose peer is killed")
	failback := fset.Duration("failback-delay", 5*time.Second, "how long the killed cluster must be Ready again before work moves back")
	regions := fset.Int("regions", 3, "regions of the second act, a mesh of regions (0 skips it)")
	regionClusters := fset.Int("region-clusters", 2, "clusters (peers) per region in the second act")
	victimRegion := fset.String("kill-region", "ap-south", "region whose every peer is killed in the second act")
	keep := fset.Bool("keep", false, "keep the data dirs and logs (printed at the end)")
	if rest, err := parseFlags(fset, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "shoal-demo-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	if *regions == 1 || *regions < 0 {
		return usageErr("--regions %d: a mesh of regions needs at least 2 (0 skips the act)", *regions)
	}
	d := &demo{env: env, start: time.Now()}
	d.say("Shoal demo, act 1: one region, %d clusters, each with its own peer. No hub: the peers", *clusters)
	d.say("gossip, elect a leader among themselves with Raft, and the leader places replicas.")
	d.step("Starting %d peer processes on loopback (each drives a simulated cluster)", *clusters)
	defer func() {
		if *keep {
			d.say("data dirs and logs kept in %s", dir)
		}
		d.say("done in %s.", time.Since(d.start).Round(100*time.Millisecond))
	}()
	if err := d.regionAct(ctx, self, filepath.Join(dir, "region"), *clusters, *victim, *failback); err != nil {
		return err
	}
	if *regions == 0 {
		return nil
	}
	act := &regionsAct{demo: d, regions: *regions, clusters: *regionClusters, victim: *victimRegion,
		failback: *failback, dir: filepath.Join(dir, "mesh")}
	return act.run(ctx, self)
}

// regionAct is the first act: one region, a cluster's peer killed and
// brought back.
func (d *demo) regionAct(ctx context.Context, self, dir string, clusters int, victimName string, failbackDelay time.Duration) error {
	victim, failback := &victimName, &failbackDelay
	var err error
	onprem := demoOnPrem(clusters)
	d.mesh, err = node.StartMesh(node.MeshSpec{
		Binary: self, Regions: 1, Clusters: clusters, Dir: dir,
		ExtraArgs: []string{"--failback-delay", failback.String(), "--log-level", "warn"},
		PeerArgs:  demoOnPremArgs(onprem),
	})
	if err != nil {
		return err
	}
	defer func() {
		d.step("Stopping every peer of the region")
		d.mesh.Stop()
	}()
	if _, err := d.mesh.Peer(*victim); err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := d.mesh.WaitReady(wctx); err != nil {
		return err
	}
	// Talk to a peer that survives the kill.
	for _, p := range d.mesh.Peers() {
		if p.Cluster != *victim {
			if d.client, err = d.mesh.Client(p.Cluster); err != nil {
				return err
			}
			break
		}
	}
	st, err := d.client.Status(ctx)
	if err != nil {
		return err
	}
	for _, p := range d.mesh.Peers() {
		d.say("  %-8s %-5s zone %-9s %-6s labels %-37s %s", p.Region, p.Cluster, p.Zone, p.Provider, sortedLabels(p.Labels), p.HTTP)
	}
	d.say("  region leader: %s (Raft term %d), elected %s after start", st.Leader, st.Term, time.Since(d.start).Round(100*time.Millisecond))

	d.step("Applying the examples (a Karmada PropagationPolicy each, unchanged)")
	d.say("  web:       Deployment, 8 replicas, Divided by static weight eu-1:eu-2:eu-3 = 2:1:1")
	d.say("  log-agent: Deployment (2 replicas) + ConfigMap, Duplicated to every cluster")
	data, err := examples.Documents()
	if err != nil {
		return err
	}
	resp, err := d.client.Apply(ctx, data)
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		d.say("  %s %s", r.Object, r.Result)
	}
	if err := d.waitFor(ctx, "every replica Ready", func(ws []api.WorkloadView) bool { return api.WorkloadsReady(ws, "") }); err != nil {
		return err
	}
	d.show(ctx)

	p, _ := d.mesh.Peer(*victim)
	victimClient, err := d.mesh.Client(*victim)
	if err != nil {
		return err
	}
	held, err := victimClient.Simulation(ctx)
	if err != nil {
		return err
	}
	d.step("Killing the peer of %s (pid %d, SIGKILL)", *victim, p.PID)
	d.say("  its cluster outlives it, as a real one would: it keeps running what it was told")
	if st.Leader == *victim {
		d.say("  it is the region leader: the others elect a new one first")
	}
	killed := time.Now()
	if err := d.mesh.Kill(*victim); err != nil {
		return err
	}
	if err := d.waitFor(ctx, "replacement replicas Ready elsewhere", func(ws []api.WorkloadView) bool { return api.WorkloadsReady(ws, *victim) }); err != nil {
		return err
	}
	d.say("  failover took %s: %s marked Unreachable by gossip, tainted %s:NoExecute,",
		time.Since(killed).Round(10*time.Millisecond), *victim, api.TaintClusterUnreachable)
	d.say("  its replicas rescheduled and Ready on the other clusters; %s keeps what it ran", *victim)
	d.say("  (held): nothing is deleted from a cluster for being unreachable.")
	d.show(ctx)

	d.step("Restarting the peer of %s with the same data dir", *victim)
	restarted := time.Now()
	if err := d.mesh.Restart(*victim); err != nil {
		return err
	}
	d.say("  it rejoins gossip and Raft and catches up from the log; work moves back only")
	d.say("  after the cluster has been Ready for the failback delay (%s), and the replicas", failback)
	d.say("  that stood in for it are removed only once its own are Ready.")
	if err := d.waitFor(ctx, "failback", func(ws []api.WorkloadView) bool { return api.WorkloadsReady(ws, "") && api.RunsOn(ws, *victim) }); err != nil {
		return err
	}
	d.say("  failback took %s after the restart.", time.Since(restarted).Round(10*time.Millisecond))
	d.show(ctx)
	if victimClient, err = d.mesh.Client(*victim); err != nil {
		return err
	}
	after, err := victimClient.Simulation(ctx)
	if err != nil {
		return err
	}
	d.say("")
	d.say("  what %s holds, before the kill and after failback (same uids: scaled, never re-created):", *victim)
	uids := map[string]string{}
	for _, o := range held.Objects {
		uids[o.Kind+" "+o.Namespace+"/"+o.Name] = o.UID
	}
	for _, o := range after.Objects {
		name := o.Kind + " " + o.Namespace + "/" + o.Name
		same := "NEW"
		if uids[name] == o.UID {
			same = "same"
		}
		d.say("    %-32s uid %s  %s", name, o.UID, same)
	}
	if len(onprem) == 0 {
		d.say("")
		d.say("  (no on-premises cluster among %d: the bursting step needs 3 clusters)", clusters)
		return nil
	}
	return d.burstStep(ctx, onprem)
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.env.stdout, format+"\n", args...)
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.env.stdout, "\n[%5.1fs] ==> %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) show(ctx context.Context) {
	ws, err := d.client.Workloads(ctx)
	if err == nil {
		fmt.Fprintln(d.env.stdout)
		printWorkloads(d.env.stdout, ws, false)
	}
	cs, err := d.client.Clusters(ctx)
	if err == nil {
		fmt.Fprintln(d.env.stdout)
		printClusters(d.env.stdout, cs, false)
	}
}

func (d *demo) waitFor(ctx context.Context, what string, cond func([]api.WorkloadView) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		ws, err := d.client.Workloads(ctx)
		if err == nil && cond(ws) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
