package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
)

// inject starts a fault; with t.For it also heals it after that long.
func (r *runner) inject(ctx context.Context, kind string, t Target) error {
	switch kind {
	case "kill-leader":
		return r.killLeaderLoop(ctx, t)
	case "flap":
		return r.flap(ctx, t)
	case "forge":
		return r.forge(ctx, t)
	}
	f, err := r.start(ctx, kind, t)
	if err != nil || f == nil {
		return err
	}
	if kind == "restart" || kind == "restart-region" {
		return r.heal(ctx, f)
	}
	if t.For <= 0 {
		return nil
	}
	if err := sleep(ctx, t.For.D()); err != nil {
		return err
	}
	return r.heal(ctx, f)
}

// pick resolves a cluster reference: a name, random, random:REGION or
// leader:REGION.
func (r *runner) pick(ctx context.Context, ref string) (string, error) {
	switch {
	case ref == "random" || strings.HasPrefix(ref, "random:"):
		_, region, _ := strings.Cut(ref, ":")
		var live []string
		for _, p := range r.d.Peers() {
			if (region == "" || p.Region == region) && r.d.Running(p.Cluster) && !r.paused(p.Cluster) {
				live = append(live, p.Cluster)
			}
		}
		if len(live) == 0 {
			return "", fmt.Errorf("%s: no running peer to pick", ref)
		}
		return live[r.intn(len(live))], nil
	case strings.HasPrefix(ref, "leader:"):
		return r.leaderOf(ctx, strings.TrimPrefix(ref, "leader:"))
	}
	if _, ok := r.regionOf(ref); !ok {
		return "", fmt.Errorf("no peer for cluster %q in the mesh", ref)
	}
	return ref, nil
}

// leaderOf waits (up to 30 s) for a region's peer that says it leads.
func (r *runner) leaderOf(ctx context.Context, region string) (string, error) {
	if len(r.clustersOf(region)) == 0 {
		return "", fmt.Errorf("no region %q in the mesh", region)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, _, _, _ := r.answeringLeader(ctx, region); c != "" {
			return c, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("region %s has no leader", region)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// start injects one fault and registers how to heal it (a restart is a
// kill that inject heals at once).
func (r *runner) start(ctx context.Context, kind string, t Target) (*activeFault, error) {
	ev := Event{Kind: EventKind(kind)}
	var heal func(context.Context) error
	switch kind {
	case "kill", "stop", "restart", "not-ready", "drain", "skew":
		c, err := r.pick(ctx, t.Cluster)
		if err != nil {
			return nil, err
		}
		ev.Clusters = []string{c}
		switch kind {
		case "kill":
			if err := r.d.Kill(c); err != nil {
				return nil, err
			}
			heal = func(ctx context.Context) error {
				if err := r.d.Restart(c); err != nil {
					return err
				}
				return r.waitBack(ctx, c, false)
			}
		case "stop":
			if err := r.pause(c); err != nil {
				return nil, err
			}
			heal = func(context.Context) error { return r.resume(c) }
		case "restart":
			// Killed now, started again by the heal that inject does at
			// once: the restart is over once the peer is back and caught
			// up.
			ev.Kind = EventRestart
			if err := r.d.Kill(c); err != nil {
				return nil, err
			}
			heal = func(ctx context.Context) error {
				if err := r.d.Restart(c); err != nil {
					return err
				}
				return r.waitBack(ctx, c, true)
			}
		case "not-ready":
			if err := r.call(ctx, c, func(ctx context.Context, cl clientAPI) error { return cl.SetSimulatedReady(ctx, false) }); err != nil {
				return nil, err
			}
			heal = func(ctx context.Context) error {
				return r.call(ctx, c, func(ctx context.Context, cl clientAPI) error { return cl.SetSimulatedReady(ctx, true) })
			}
		case "drain":
			ev.Kind, ev.Detail = EventNotReady, "capacity drained to 0%"
			if err := r.call(ctx, c, func(ctx context.Context, cl clientAPI) error { return cl.SetSimulatedCapacity(ctx, 0) }); err != nil {
				return nil, err
			}
			heal = func(ctx context.Context) error {
				return r.call(ctx, c, func(ctx context.Context, cl clientAPI) error { return cl.SetSimulatedCapacity(ctx, 100) })
			}
		case "skew":
			ev.Detail = "clock moved by " + t.Offset.D().String()
			if err := r.fault(ctx, c, api.Fault{Layer: "clock", Action: "skew", Offset: t.Offset.D().String()}); err != nil {
				return nil, err
			}
			heal = func(ctx context.Context) error {
				return r.fault(ctx, c, api.Fault{Layer: "clock", Action: "heal-all"})
			}
		}
	case "apiserver-stop":
		c, err := r.pick(ctx, t.Cluster)
		if err != nil {
			return nil, err
		}
		md, _ := r.d.(interface{ Members() Members })
		if md == nil || md.Members() == nil {
			return nil, fmt.Errorf("apiserver-stop %s: the mesh's clusters are simulated; stopping an API server needs real member clusters (chaos.LocalOptions.Members)", c)
		}
		ms := md.Members()
		// To the peer, its cluster is lost (unreachable): the kind of
		// event a NotReady cluster is.
		ev.Kind, ev.Clusters, ev.Detail = EventNotReady, []string{c}, "member API server stopped"
		if err := ms.StopAPIServer(c); err != nil {
			return nil, err
		}
		heal = func(ctx context.Context) error { return ms.StartAPIServer(ctx, c) }
	case "kill-region", "restart-region":
		cs := r.clustersOf(t.Region)
		if len(cs) == 0 {
			return nil, fmt.Errorf("no region %q in the mesh", t.Region)
		}
		ev.Regions, ev.Clusters = []string{t.Region}, cs
		for _, c := range cs {
			if err := r.d.Kill(c); err != nil {
				return nil, err
			}
		}
		restart := func(ctx context.Context) error {
			var errs []error
			for _, c := range cs {
				errs = append(errs, r.d.Restart(c))
			}
			for _, c := range cs {
				errs = append(errs, r.waitBack(ctx, c, false))
			}
			return errors.Join(errs...)
		}
		ev.Kind, heal = EventKill, restart
		if kind == "restart-region" {
			ev.Kind = EventRestart // healed at once by inject
		}
	case "partition", "cut", "delay", "loss":
		cuts, err := r.linkFaults(kind, t)
		if err != nil {
			return nil, err
		}
		ev.Kind = EventKind(kind)
		if kind == "partition" {
			ev.Kind = EventCut
			ev.Detail = sidesString(t.Sides)
		}
		if t.OneWay {
			ev.Detail = strings.TrimSpace(ev.Detail + " one way")
		}
		switch kind {
		case "delay":
			ev.Detail = fmt.Sprintf("%s ± %s", t.Delay.D(), t.Jitter.D())
		case "loss":
			ev.Detail = fmt.Sprintf("%.0f%% lost", t.Loss*100)
		}
		// A fault between regions names the regions: their leaders still
		// reach their own clusters. One inside a region names the peers.
		switch {
		case len(cuts.victims) > 0: // one peer cut from every other
			ev.Clusters = cuts.victims
		case len(cuts.regions) == 0:
			ev.Clusters = cuts.clusters()
		}
		ev.Regions = cuts.regions
		if err := cuts.apply(ctx, r); err != nil {
			return nil, err
		}
		heal = cuts.heal
	case "cut-off-restart":
		cuts, err := r.cutOffFromOthers(t)
		if err != nil {
			return nil, err
		}
		ev.Kind, ev.Clusters, ev.Regions = EventCut, cuts.victims, cuts.regions
		ev.Detail = "cut off, then restarted while cut off"
		if err := cuts.apply(ctx, r); err != nil {
			return nil, err
		}
		f := r.register(kind, t.Name, ev, cuts.heal)
		// The restart is part of the fault: the peer comes back to a mesh
		// it cannot reach.
		for _, c := range cuts.victims {
			if err := r.d.Kill(c); err != nil {
				return f, err
			}
		}
		for _, c := range cuts.victims {
			if err := r.d.Restart(c); err != nil {
				return f, err
			}
		}
		for _, c := range cuts.victims {
			// Cut off, it cannot catch up: back is answering.
			if err := r.waitBack(ctx, c, false); err != nil {
				return f, err
			}
		}
		r.record(Event{Kind: EventRestart, ID: f.id, Clusters: cuts.victims, Detail: "restarted while cut off"})
		return f, nil
	default:
		return nil, fmt.Errorf("unknown fault %q", kind)
	}
	return r.register(kind, t.Name, ev, heal), nil
}

// register records a fault's event and, when it can be healed, keeps it
// in force.
func (r *runner) register(kind, name string, ev Event, heal func(context.Context) error) *activeFault {
	r.mu.Lock()
	r.nextID++
	f := &activeFault{id: r.nextID, kind: kind, name: name, heal: heal}
	if heal != nil {
		r.active = append(r.active, f)
		if name != "" {
			r.named[name] = f
		}
	}
	r.mu.Unlock()
	ev.ID = f.id
	r.record(ev)
	if heal == nil {
		return nil
	}
	return f
}

// heal ends one fault.
func (r *runner) heal(ctx context.Context, f *activeFault) error {
	r.mu.Lock()
	i := slices.Index(r.active, f)
	if i < 0 {
		r.mu.Unlock()
		return nil
	}
	r.active = slices.Delete(r.active, i, i+1)
	if f.name != "" {
		delete(r.named, f.name)
	}
	r.mu.Unlock()
	err := f.heal(ctx)
	r.record(Event{Kind: EventHeal, Heals: []int{f.id}, Detail: f.kind})
	return err
}

// healAll ends every fault in force, the latest first.
func (r *runner) healAll(ctx context.Context) error {
	var errs []error
	for {
		r.mu.Lock()
		n := len(r.active)
		var f *activeFault
		if n > 0 {
			f = r.active[n-1]
		}
		r.mu.Unlock()
		if f == nil {
			return errors.Join(errs...)
		}
		errs = append(errs, r.heal(ctx, f))
	}
}

// restore brings every peer back to health whatever the scenario left:
// continued, running, no faults, clock right, cluster Ready with all its
// capacity.
func (r *runner) restore(ctx context.Context) {
	for _, p := range r.d.Peers() {
		if r.paused(p.Cluster) {
			_ = r.resume(p.Cluster)
		}
		if !r.d.Running(p.Cluster) {
			_ = r.d.Restart(p.Cluster)
		}
	}
	for _, p := range r.d.Peers() {
		_ = r.fault(ctx, p.Cluster, api.Fault{Layer: "all", Action: "heal-all"})
		_ = r.fault(ctx, p.Cluster, api.Fault{Layer: "clock", Action: "heal-all"})
		_ = r.call(ctx, p.Cluster, func(ctx context.Context, cl clientAPI) error { return cl.SetSimulatedReady(ctx, true) })
		_ = r.call(ctx, p.Cluster, func(ctx context.Context, cl clientAPI) error { return cl.SetSimulatedCapacity(ctx, 100) })
	}
}

// waitBack waits (up to a minute) until a restarted peer answers, and with
// caughtUp until it is no longer stale (it caught up with a leader).
func (r *runner) waitBack(ctx context.Context, cluster string, caughtUp bool) error {
	cl, err := r.d.Client(cluster)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cl.Status(sctx)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case caughtUp && st.Stale:
			last = "it has not caught up with a leader"
		default:
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s is not back a minute after its restart: %s", cluster, last)
}

// clientAPI is what the faults use of a peer's client.
type clientAPI interface {
	Fault(ctx context.Context, f api.Fault) error
	SetSimulatedReady(ctx context.Context, ready bool) error
	SetSimulatedCapacity(ctx context.Context, percent int) error
}

// call runs fn against a peer's API, retrying for a while: a peer just
// restarted takes a moment to answer.
func (r *runner) call(ctx context.Context, cluster string, fn func(context.Context, clientAPI) error) error {
	cl, err := r.d.Client(cluster)
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt < 30; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		last = fn(cctx, cl)
		cancel()
		if last == nil {
			return nil
		}
		if isBadRequest(last) || !r.d.Running(cluster) || r.paused(cluster) {
			return fmt.Errorf("%s: %w", cluster, last)
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: %w", cluster, last)
}

// fault posts a fault to a peer's fault endpoint.
func (r *runner) fault(ctx context.Context, cluster string, f api.Fault) error {
	return r.call(ctx, cluster, func(ctx context.Context, cl clientAPI) error { return cl.Fault(ctx, f) })
}

func (r *runner) paused(cluster string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pausedSet[cluster]
}

func (r *runner) pause(cluster string) error {
	if err := r.d.Pause(cluster); err != nil {
		return err
	}
	r.mu.Lock()
	if r.pausedSet == nil {
		r.pausedSet = map[string]bool{}
	}
	r.pausedSet[cluster] = true
	r.mu.Unlock()
	return nil
}

func (r *runner) resume(cluster string) error {
	r.mu.Lock()
	delete(r.pausedSet, cluster)
	r.mu.Unlock()
	return r.d.Resume(cluster)
}

func sidesString(sides [][]string) string {
	var parts []string
	for _, s := range sides {
		parts = append(parts, "{"+strings.Join(s, ",")+"}")
	}
	return strings.Join(parts, " | ")
}

// isBadRequest reports whether a peer refused a request as malformed
// (retrying it cannot help).
func isBadRequest(err error) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest
}
