package node

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/region"
)

// desiredLoop turns the local copy of the region state into the desired set
// of this cluster whenever objects, bindings or cluster records change.
//
// Before the reconciler may act on a state, the peer records its index as
// the restart point (consensus.Node.SetRestartPoint): a restart then
// replays the log that far before anything else. While the node is stale
// (restarted, and Raft has not applied up to that point from a leader) the
// reconciler is held: it keeps the cluster exactly as it is. It is also
// held while the restart point cannot be written.
func (p *Peer) desiredLoop(ctx context.Context) {
	changes, unsubscribe := p.fsm.Subscribe()
	defer unsubscribe()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	r := p.rendered
	var last region.Revisions
	var epoch uint64
	first, held := true, p.reconciler.Held()
	for {
		stale, _ := p.raft.Stale()
		var rev region.Revisions
		var e uint64
		p.fsm.Read(func(s *region.State) { rev, e = s.Revisions(), s.Cluster(p.cfg.Cluster).GetStatusEpoch() })
		if e != epoch {
			// The region forgot what this cluster reported (it failed):
			// report everything again once the cluster can be read.
			if !first {
				p.reconciler.ResendStatuses()
			}
			epoch = e
		}
		caughtUp := held && !stale
		if first || caughtUp || rev.Objects != last.Objects || rev.Bindings != last.Bindings || rev.Clusters != last.Clusters ||
			rev.Statuses != last.Statuses && r.releasing {
			first = false
			last = rev
			works := r.desired(p.fsm)
			blocked := false
			if err := p.raft.SetRestartPoint(p.fsm.AppliedIndex()); err != nil {
				p.logger.Error("cannot record the restart point; holding the cluster as it is", "err", err)
				blocked = true
				first = true // try again on the next tick
			}
			p.reconciler.SetDesired(works)
			stale = stale || blocked
		}
		if stale != held {
			if !stale {
				p.logger.Info("caught up with the region: the cluster is reconciled again")
			}
			p.reconciler.SetHold(stale)
			held = stale
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

func newRenderer(cluster string) *renderer {
	return &renderer{cluster: cluster, works: map[string]renderedWork{}, overrides: map[string]cachedOverride{}}
}

// renderer computes this cluster's desired works, rendering each template
// with the override policies that select it, and caches the result until
// one of its inputs changes.
type renderer struct {
	cluster string
	// Only the desired loop touches these.
	works     map[string]renderedWork
	overrides map[string]cachedOverride
	// releasing is true while some released object still has a status
	// here, so status changes may end a release.
	releasing bool

	mu      sync.Mutex
	applied map[string][]string // workload key → override policies applied
}

type renderedWork struct {
	sig     string
	work    deploy.Work
	applied []string
}

type cachedOverride struct {
	gen int64
	op  *api.OverridePolicy
}

// appliedOverrides gives the override policies applied to a workload's
// copy here, for its status reports.
func (r *renderer) appliedOverrides(ks string) []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[ks]
}

func (r *renderer) decodeOverrides(s *region.State) []*api.OverridePolicy {
	seen := map[string]bool{}
	var ops []*api.OverridePolicy
	for _, o := range s.Objects() {
		k := api.KeyFromProto(o.GetKey())
		if !k.IsOverridePolicy() {
			continue
		}
		ks := k.String()
		seen[ks] = true
		c, ok := r.overrides[ks]
		if !ok || c.gen != o.GetGeneration() {
			op, _, err := api.DecodeOverridePolicy(o.GetManifest())
			if err != nil {
				op = nil // validated when applied; a stored one that no longer decodes is ignored
			}
			c = cachedOverride{gen: o.GetGeneration(), op: op}
			r.overrides[ks] = c
		}
		if c.op != nil {
			ops = append(ops, c.op)
		}
	}
	for ks := range r.overrides {
		if !seen[ks] {
			delete(r.overrides, ks)
		}
	}
	return ops
}

// desired lists what this cluster must hold: its share in every binding
// and, where the workload was moved away gracefully, the replicas it keeps
// until their replacements are Ready; plus objects whose template was
// deleted under preserveResourcesOnDeletion, to be released.
func (r *renderer) desired(fsm *region.FSM) []deploy.Work {
	var works []deploy.Work
	seen := map[string]bool{}
	applied := map[string][]string{}
	r.releasing = false
	fsm.Read(func(s *region.State) {
		ops := r.decodeOverrides(s)
		rec := s.Cluster(r.cluster)
		facts := api.ClusterFacts{Name: r.cluster, Region: rec.GetRegion(), Zone: rec.GetZone(), Provider: rec.GetProvider(), Labels: rec.GetLabels()}
		factsSig := fmt.Sprint(facts)
		for _, b := range s.Bindings() {
			replicas, bound := shareOf(b, r.cluster)
			if !bound {
				continue
			}
			key := api.KeyFromProto(b.GetWorkload())
			o := s.Object(key)
			if o == nil {
				continue
			}
			ks := key.String()
			seen[ks] = true
			rw := r.render(o, b, replicas, ops, facts, factsSig)
			works = append(works, rw.work)
			applied[ks] = rw.applied
		}
		held := s.StatusesOn(r.cluster)
		for _, o := range s.Tombstones() {
			ks := api.KeyFromProto(o.GetKey()).String()
			if o.GetPreserveOnClusters() && held[ks] != nil {
				works = append(works, deploy.Work{Key: api.KeyFromProto(o.GetKey()), Release: true})
				r.releasing = true
			}
		}
	})
	for ks := range r.works {
		if !seen[ks] {
			delete(r.works, ks)
		}
	}
	r.mu.Lock()
	r.applied = applied
	r.mu.Unlock()
	return works
}

// shareOf gives the replicas a binding asks of a cluster: its target share
// or, while it is kept by a graceful eviction, what it ran before.
func shareOf(b *shoalpb.Binding, cluster string) (replicas int32, bound bool) {
	for _, t := range b.GetClusters() {
		if t.GetName() == cluster {
			replicas, bound = t.GetReplicas(), true
		}
	}
	for _, e := range b.GetEvictions() {
		if e.GetCluster() == cluster {
			replicas, bound = max(replicas, e.GetReplicas()), true
		}
	}
	return replicas, bound
}

// render gives the work for one bound template, from the cache when
// nothing it depends on changed.
func (r *renderer) render(o *shoalpb.Object, b *shoalpb.Binding, replicas int32, ops []*api.OverridePolicy,
	facts api.ClusterFacts, factsSig string) renderedWork {
	key := api.KeyFromProto(o.GetKey())
	ks := key.String()
	t, terr := api.ParseTemplate(o.GetManifest())
	var selected []*api.OverridePolicy
	if terr == nil {
		selected = api.SelectOverrides(ops, t)
	}
	var sig strings.Builder
	fmt.Fprintf(&sig, "%d|%d|%s|%s", o.GetGeneration(), replicas, b.GetConflictResolution(), factsSig)
	for _, op := range selected {
		fmt.Fprintf(&sig, "|%s@%d", op.Ref(), r.overrides[op.Key().String()].gen)
	}
	if c, ok := r.works[ks]; ok && c.sig == sig.String() {
		return c
	}
	w := deploy.Work{
		Key: key, Manifest: o.GetManifest(), Generation: o.GetGeneration(),
		HasReplicas: terr == nil && t.HasReplicas, Replicas: replicas,
		ConflictResolution: b.GetConflictResolution(),
	}
	var names []string
	if len(selected) > 0 {
		out, appliedOps, err := deploy.Render(o.GetManifest(), selected, facts)
		if err != nil {
			w.RenderError = err.Error()
		} else {
			w.Manifest = out
			for _, a := range appliedOps {
				names = append(names, a.Policy)
			}
			sort.Strings(names)
		}
	}
	rw := renderedWork{sig: sig.String(), work: w, applied: names}
	r.works[ks] = rw
	return rw
}
