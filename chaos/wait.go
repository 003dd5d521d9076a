package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
)

// Polls of a wait: the next one soon after a poll that failed on the
// peers' statuses alone (cheap: converged waits on them first), later
// after one that read the leaders' workloads.
const (
	pollCheap = 50 * time.Millisecond
	pollFull  = 200 * time.Millisecond
)

// wait waits for a condition of the whole mesh, as its running peers see
// it, and says how long after its start the condition was seen to hold.
func (r *runner) wait(ctx context.Context, what string, timeout time.Duration) (time.Duration, error) {
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var why string
	for {
		p := r.poll(ctx, what)
		if p.ok {
			took := p.at.Sub(began)
			r.note("%s after %s", what, took.Round(10*time.Millisecond))
			return took, nil
		}
		why = p.why
		pause := pollFull
		if p.cheap {
			pause = pollCheap
		}
		if err := sleep(ctx, pause); err != nil {
			return 0, fmt.Errorf("not %s after %s: %s", what, timeout, why)
		}
	}
}

// polled is one check of a condition: whether it held and when it was
// seen to (by the reads that decided it), or what is missing and whether
// the cheap reads alone found that.
type polled struct {
	ok    bool
	at    time.Time
	why   string
	cheap bool
}

// holds checks a condition once; the reason says what is missing.
func (r *runner) holds(ctx context.Context, what string) (bool, string) {
	p := r.poll(ctx, what)
	return p.ok, p.why
}

func (r *runner) poll(ctx context.Context, what string) polled {
	if what != "converged" {
		ok, why := r.holdsViews(ctx, what)
		return polled{ok: ok, at: time.Now(), why: why}
	}
	// Every running peer's status first: a few milliseconds, and the
	// moment the mesh holds the same objects everywhere. Readiness and
	// the split, read from the leaders' workloads after it, are checked
	// as well (in a catch-up they held long before).
	if ok, why := r.peersAgree(ctx); !ok {
		return polled{why: why, cheap: true}
	}
	at := time.Now()
	ok, why := r.holdsViews(ctx, what)
	return polled{ok: ok, at: at, why: why}
}

// holdsViews checks a condition on what every region's leader shows.
func (r *runner) holdsViews(ctx context.Context, what string) (bool, string) {
	views, reason := r.regionViews(ctx)
	if reason != "" {
		return false, reason
	}
	switch what {
	case "leaders":
		return true, ""
	case "regions":
		for region, v := range views {
			alive := 0
			for _, g := range v.status.Regions {
				if g.State == "alive" {
					alive++
				}
			}
			if want := len(views) - 1; alive != want {
				return false, fmt.Sprintf("%s sees %d other regions alive, not %d", region, alive, want)
			}
		}
		return true, ""
	case "ready", "converged":
		for region, v := range views {
			if ok, why := allReady(v.workloads); !ok {
				return false, region + ": " + why
			}
		}
		if what == "ready" {
			return true, ""
		}
		if ok, why := agreed(views); !ok {
			return false, why
		}
		return settled(views)
	}
	return false, "unknown condition " + what
}

// peersAgree reports whether every running peer holds the same objects:
// each has caught up with a leader since it started and, in a mesh of
// regions, every one shows the same digest (in a single region, each has
// applied as far as its leader had committed). A peer restarted moments
// ago still shows what it held before; the final state, read from any
// peer, must not be that.
func (r *runner) peersAgree(ctx context.Context) (bool, string) {
	type seen struct {
		cluster string
		st      api.StatusView
	}
	var all []seen
	for _, p := range r.d.Peers() {
		if !r.d.Running(p.Cluster) || r.paused(p.Cluster) {
			continue
		}
		c, err := r.d.Client(p.Cluster)
		if err != nil {
			return false, fmt.Sprintf("no client for %s: %v", p.Cluster, err)
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.Status(sctx)
		cancel()
		switch {
		case err != nil:
			return false, fmt.Sprintf("%s does not answer: %v", p.Cluster, err)
		case st.Stale:
			return false, fmt.Sprintf("%s has not caught up with a leader since it started", p.Cluster)
		}
		all = append(all, seen{p.Cluster, st})
	}
	if len(all) == 0 {
		return false, "no peer runs"
	}
	if len(r.regions()) > 1 {
		digests := map[string]string{}
		for _, s := range all {
			if s.st.Mesh == nil || s.st.Mesh.Digest == "" {
				return false, s.cluster + " shows no digest"
			}
			digests[s.cluster] = s.st.Mesh.Digest
		}
		if d := distinct(digests); d != "" {
			return false, "digests differ: " + d
		}
		return true, ""
	}
	var leader *seen
	for i := range all {
		if all[i].st.State == "Leader" {
			leader = &all[i]
		}
	}
	if leader == nil {
		return false, "no running peer leads"
	}
	for _, s := range all {
		if s.st.AppliedIndex < leader.st.CommitIndex {
			return false, fmt.Sprintf("%s applied up to %d, its leader %s had committed %d", s.cluster, s.st.AppliedIndex, leader.cluster, leader.st.CommitIndex)
		}
	}
	return true, ""
}

// regionView is one region as its leader tells it.
type regionView struct {
	cluster   string
	status    api.StatusView
	workloads []api.WorkloadView
}

// regionViews reads every region's leader (a region without one, or
// without an answering one, is the reason).
func (r *runner) regionViews(ctx context.Context) (map[string]regionView, string) {
	out := map[string]regionView{}
	for _, region := range r.regions() {
		c, cl, st, named := r.answeringLeader(ctx, region)
		if cl == nil {
			return nil, fmt.Sprintf("region %s has no answering leader (a follower names %q)", region, named)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ws, err := cl.Workloads(wctx)
		cancel()
		if err != nil {
			return nil, fmt.Sprintf("region %s's leader %s did not list its workloads: %v", region, c, err)
		}
		out[region] = regionView{cluster: c, status: st, workloads: ws}
	}
	return out, ""
}

// answeringLeader finds the running peer of region that answers that it
// leads, with its client and status (cl nil when none does); named is
// whom an answering follower names as its leader.
func (r *runner) answeringLeader(ctx context.Context, region string) (cluster string, cl *client.Client, st api.StatusView, named string) {
	for _, c := range r.clustersOf(region) {
		if !r.d.Running(c) || r.paused(c) {
			continue
		}
		cc, err := r.d.Client(c)
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := cc.Status(sctx)
		cancel()
		switch {
		case err != nil:
		case s.State == "Leader":
			return c, cc, s, ""
		default:
			named = s.Leader
		}
	}
	return "", nil, api.StatusView{}, named
}

// allReady reports whether every workload with replicas has its desired
// replicas bound and Ready, none Unknown or kept evicted.
func allReady(ws []api.WorkloadView) (bool, string) {
	for _, w := range ws {
		if w.WithoutReplicas {
			continue
		}
		key := api.ObjectKey{APIVersion: w.APIVersion, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
		if ok, _ := api.ReadyOutside(ws, key, ""); !ok {
			return false, fmt.Sprintf("%s %s/%s: %d of %d replicas Ready", w.Kind, w.Namespace, w.Name, w.ReadyReplicas, w.DesiredReplicas)
		}
	}
	return true, ""
}

// agreed reports whether every region shows every workload placed alike
// (the same replicas on the same clusters): the mesh-wide split settled.
func agreed(views map[string]regionView) (bool, string) {
	splits := map[string]map[string]string{} // workload -> region -> split
	for region, v := range views {
		for _, w := range v.workloads {
			if w.WithoutReplicas {
				continue
			}
			var parts []string
			for _, p := range w.Placements {
				if !p.Evicting && p.Replicas > 0 {
					parts = append(parts, fmt.Sprintf("%s=%d", p.Cluster, p.Replicas))
				}
			}
			sort.Strings(parts)
			key := w.Kind + " " + w.Namespace + "/" + w.Name
			if splits[key] == nil {
				splits[key] = map[string]string{}
			}
			splits[key][region] = strings.Join(parts, ",")
		}
	}
	for key, byRegion := range splits {
		if len(byRegion) != len(views) {
			return false, fmt.Sprintf("%s is not known in every region", key)
		}
		if d := distinct(byRegion); d != "" {
			return false, fmt.Sprintf("the regions split %s differently: %s", key, d)
		}
	}
	return true, ""
}

// settled reports whether no region keeps replicas a workload moved away
// from a cluster (an eviction waiting for its replacements, or one held
// for a failed cluster). Until then a cluster may still lose a copy it
// was told to release before a fault began: a scenario that starts its
// faults from a converged mesh starts them from a still one.
func settled(views map[string]regionView) (bool, string) {
	for _, region := range slices.Sorted(maps.Keys(views)) {
		for _, w := range views[region].workloads {
			for _, p := range w.Placements {
				if p.Evicting {
					return false, fmt.Sprintf("%s shows %s %s/%s kept on %s until it is released", region, w.Kind, w.Namespace, w.Name, p.Cluster)
				}
			}
		}
	}
	return true, ""
}

// distinct describes differing values ("" when all are equal).
func distinct(m map[string]string) string {
	seen := map[string]bool{}
	var keys []string
	for k, v := range m {
		seen[v] = true
		keys = append(keys, k)
	}
	if len(seen) <= 1 {
		return ""
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := m[k]
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

// converge waits for convergence after the last heal and reads the final
// state; the error says what did not converge in time.
func (r *runner) converge(ctx context.Context) (Final, error) {
	_, err := r.wait(ctx, "converged", r.s.Converge.D())
	f := Final{At: time.Now(), Objects: map[string]map[string]string{}, Digests: map[string]string{}}
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, region := range r.regions() {
		c, _, cerr := r.liveClient(region)
		if cerr != nil {
			continue
		}
		st, serr := c.Status(rctx)
		if serr == nil && st.Mesh != nil {
			f.Digests[region] = st.Mesh.Digest
		}
		objs, oerr := readKeys(rctx, c)
		if oerr != nil {
			err = fmt.Errorf("reading %s's objects: %w", region, oerr)
			continue
		}
		f.Objects[region] = objs
	}
	for _, p := range r.d.Peers() {
		c, cerr := r.d.Client(p.Cluster)
		if cerr == nil {
			f.Samples = append(f.Samples, sampleOf(rctx, p, c))
		}
	}
	return f, err
}
