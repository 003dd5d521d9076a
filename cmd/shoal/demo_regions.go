package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/examples"
	"github.com/shoalmesh/shoal/node"
)

// regionsAct is the second act of `shoal demo`: a mesh of regions, one of
// them killed whole and brought back.
type regionsAct struct {
	*demo
	regions, clusters int
	victim            string
	failback          time.Duration
	dir               string
}

// globalWeb is the workload of the regions act.
var globalWeb = api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "global-web"}

func (a *regionsAct) run(ctx context.Context, binary string) error {
	d := a.demo
	d.step("A mesh of %d regions with %d clusters each: %d peer processes; the regions link over QUIC (mutual TLS)",
		a.regions, a.clusters, a.regions*a.clusters)
	d.say("  no region is in charge: every region leader computes the same split of the work over the")
	d.say("  whole mesh from what the regions tell each other, and runs its own clusters' share.")
	mesh, err := node.StartMesh(node.MeshSpec{
		Binary: binary, Regions: a.regions, Clusters: a.clusters, Dir: a.dir,
		ExtraArgs: []string{"--failback-delay", a.failback.String(), "--log-level", "warn"},
	})
	if err != nil {
		return err
	}
	defer func() {
		d.step("Stopping every peer of the mesh")
		mesh.Stop()
	}()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := mesh.WaitReady(wctx); err != nil {
		return err
	}
	var victims []string
	var watcher string
	for _, p := range mesh.Peers() {
		switch {
		case p.Region == a.victim:
			victims = append(victims, p.Cluster)
		case watcher == "":
			watcher = p.Cluster
		}
	}
	if len(victims) == 0 {
		return usageErr("--kill-region %q: no such region in the mesh", a.victim)
	}
	c, err := mesh.Client(watcher)
	if err != nil {
		return err
	}
	if err := a.waitRegions(ctx, c, a.regions-1); err != nil {
		return err
	}
	d.say("  every region knows the others, %s after start", time.Since(d.start).Round(100*time.Millisecond))

	d.step("Applying examples/regions/global-web.yaml to the peer of %s", watcher)
	d.say("  global-web: Deployment, 6 replicas, Divided evenly over every cluster of every region")
	docs, err := examples.RegionDocuments()
	if err != nil {
		return err
	}
	resp, err := c.Apply(ctx, docs)
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		d.say("  %s %s", r.Object, r.Result)
	}
	if err := a.waitPlaced(ctx, c, "global-web Ready in every region", "", a.regions); err != nil {
		return err
	}
	a.show(ctx, c)

	d.step("Killing region %s: every one of its peers (SIGKILL)", a.victim)
	d.say("  its clusters keep running what they ran; the other regions stop hearing it")
	killed := time.Now()
	for _, v := range victims {
		if err := mesh.Kill(v); err != nil {
			return err
		}
	}
	if err := a.waitPlaced(ctx, c, "the survivors run the whole workload", a.victim, 0); err != nil {
		return err
	}
	d.say("  takeover took %s: %s went unheard by every link for the region grace period,",
		time.Since(killed).Round(10*time.Millisecond), a.victim)
	d.say("  no other region heard it either, so it is dead for placement and its share runs elsewhere.")
	a.show(ctx, c)

	const changes = 20
	d.step("Writing %d ConfigMaps while %s is away", changes, a.victim)
	var b strings.Builder
	for i := range changes {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings-%d, namespace: default}\ndata: {version: \"2\"}\n", i)
	}
	if _, err := c.Apply(ctx, []byte(b.String())); err != nil {
		return err
	}

	d.step("Restarting every peer of %s from its data dir", a.victim)
	restarted := time.Now()
	for _, v := range victims {
		if err := mesh.Restart(v); err != nil {
			return err
		}
	}
	recv, bytes, err := a.waitCaughtUp(ctx, mesh, victims, changes)
	if err != nil {
		return err
	}
	ws, err := c.Workloads(ctx)
	if err != nil {
		return err
	}
	d.say("  caught up in %s: it was sent %d objects (%d bytes) — the %d changes it missed, from each",
		time.Since(restarted).Round(10*time.Millisecond), recv, bytes, changes)
	d.say("  region that had them — not a copy of all %d templates and policies (deltas from its", len(ws)+1)
	d.say("  version watermarks).")
	d.say("  its share comes back after the failback delay (%s); the replicas that stood in", a.failback)
	d.say("  for it go only once its own are Ready.")
	if err := a.waitPlaced(ctx, c, "failback", "", 0); err != nil {
		return err
	}
	d.say("  failback took %s after the restart.", time.Since(restarted).Round(10*time.Millisecond))
	a.show(ctx, c)
	return nil
}

// waitRegions waits until the peer behind c knows n other regions alive.
func (a *regionsAct) waitRegions(ctx context.Context, c *client.Client, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		st, err := c.Status(ctx)
		alive := 0
		if err == nil {
			for _, r := range st.Regions {
				if r.State == "alive" {
					alive++
				}
			}
			if alive == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d regions: %w (last: %d alive, %v)", n, ctx.Err(), alive, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitPlaced waits until global-web has all its replicas Ready outside
// region skip ("" for none) and none kept evicted, as c sees it, in
// regions regions at least (0: any number).
func (a *regionsAct) waitPlaced(ctx context.Context, c *client.Client, what, skip string, regions int) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		ws, err := c.Workloads(ctx)
		if ok, n := api.ReadyOutside(ws, globalWeb, skip); err == nil && ok && n >= regions {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitCaughtUp waits until the restarted region holds the changes it
// missed, and says how much its peers were sent.
func (a *regionsAct) waitCaughtUp(ctx context.Context, mesh *node.Mesh, victims []string, changes int) (objects, bytes uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		var got int
		objects, bytes = 0, 0
		for _, v := range victims {
			c, cerr := mesh.Client(v)
			if cerr != nil {
				return 0, 0, cerr
			}
			st, serr := c.Status(ctx)
			if serr != nil {
				err = serr
				continue
			}
			if st.Mesh != nil {
				objects += st.Mesh.ObjectsReceived
				bytes += st.Mesh.BytesReceived
			}
			if ws, werr := c.Workloads(ctx); werr == nil && v == victims[0] {
				for _, w := range ws {
					if w.Kind == "ConfigMap" && strings.HasPrefix(w.Name, "settings-") {
						got++
					}
				}
			}
		}
		if got == changes {
			return objects, bytes, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("waiting for %s to catch up: %w (%d of %d changes; last error: %v)", a.victim, ctx.Err(), got, changes, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *regionsAct) show(ctx context.Context, c *client.Client) {
	ws, err := c.Workloads(ctx)
	if err == nil {
		var only []api.WorkloadView
		for _, w := range ws {
			if w.Kind == globalWeb.Kind && w.Name == globalWeb.Name {
				only = append(only, w)
			}
		}
		fmt.Fprintln(a.env.stdout)
		printWorkloads(a.env.stdout, only, false)
	}
	cs, err := c.Clusters(ctx)
	if err == nil {
		fmt.Fprintln(a.env.stdout)
		printClusters(a.env.stdout, cs, false)
	}
}
