package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
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
	// Closed when the node catches up: the hold is lifted then, not at
	// the next change or tick.
	caughtUp := p.raft.CaughtUp()
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
		justCaughtUp := held && !stale
		if first || justCaughtUp || rev.Objects != last.Objects || rev.Bindings != last.Bindings || rev.Clusters != last.Clusters ||
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
		case <-caughtUp:
			caughtUp = nil
		}
	}
}

func newRenderer(cluster string) *renderer {
	return &renderer{cluster: cluster, works: map[string]renderedWork{}, overrides: map[string]cachedOverride{}}
}

// renderer computes this cluster's desired works, rendering each template
// with the override policies that select it, and caches the result until
// one of its inputs changes. desired copies what it needs of the region
// state under the state machine's read lock (the stored messages, which are
// never modified) and parses and renders outside it, and only the templates
// whose inputs changed: their generation, their replicas here, their
// conflict resolution, the cluster's facts, or the override policies that
// select them (which policies, at which generation).
type renderer struct {
	cluster string
	// Only the desired loop touches these.
	works     map[string]renderedWork
	overrides map[string]cachedOverride
	// opsVersion counts changes to the set of override policies (one
	// added, removed or at a new generation); a cached selection made at
	// another version is made again.
	opsVersion uint64
	// facts is the cluster's facts at the last pass, factsSig their
	// printed form, factsVersion counts their changes.
	facts        api.ClusterFacts
	factsSig     string
	factsVersion uint64
	// releasing is true while some released object still has a status
	// here, so status changes may end a release.
	releasing bool
	// parsed and rendered count templates parsed and works built since
	// the renderer was made (tests read them).
	parsed, rendered int

	mu      sync.Mutex
	applied map[string][]string // workload key → override policies applied
}

// renderedWork is the cached outcome for one bound template: the parsed
// template of one generation, the override policies that select it at one
// version of the policy set, and the work built from those inputs.
type renderedWork struct {
	gen         int64
	parses      bool // the manifest of gen parses as a template
	hasReplicas bool
	// tmpl is the parsed template while override policies exist (to
	// select them with); with none there is nothing to select, and it is
	// not kept: parsed again, once, when the first policy comes.
	tmpl     *api.Template
	selected []*api.OverridePolicy
	selAt    uint64 // the opsVersion selected was made at
	haveSel  bool
	selSig   string // the selected policies as "ref@generation|..."

	inputs  renderInputs
	work    deploy.Work
	applied []string
}

// renderInputs is everything a work is built from besides the manifest of
// its generation.
type renderInputs struct {
	gen          int64
	replicas     int32
	conflict     string
	factsVersion uint64
	selSig       string
	extraSig     string // boundTemplate.signature
}

type cachedOverride struct {
	gen int64
	op  *api.OverridePolicy
}

// regionView is what desired reads of the region state under the state
// machine's lock: stored messages, which are never modified once stored,
// so they are kept without copying their bytes.
type regionView struct {
	overrides []*shoalpb.Object // live override policies, by key
	bound     []boundTemplate   // templates bound here, by key
	facts     api.ClusterFacts
	release   []api.ObjectKey // deleted templates whose objects are released here
}

// boundTemplate is a live template and what its binding asks of this
// cluster.
type boundTemplate struct {
	obj      *shoalpb.Object
	replicas int32
	conflict string
	// labels are application failover's preserved state for this copy;
	// preserve the rules this copy's state is read by.
	labels   map[string]string
	preserve []deploy.PreserveRule
}

// signature is a comparable digest of labels and preserve rules.
func (bt boundTemplate) signature() string {
	if len(bt.labels) == 0 && len(bt.preserve) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(bt.labels))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%q=%q,", k, bt.labels[k])
	}
	for _, p := range bt.preserve {
		fmt.Fprintf(&b, "|%q:%q", p.Label, p.JSONPath)
	}
	return b.String()
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

// read takes what desired needs from the region state, under its lock.
func (r *renderer) read(fsm *region.FSM) regionView {
	var v regionView
	fsm.Read(func(s *region.State) {
		for _, o := range s.Objects() {
			if api.KeyFromProto(o.GetKey()).IsOverridePolicy() {
				v.overrides = append(v.overrides, o)
			}
		}
		rec := s.Cluster(r.cluster)
		v.facts = api.ClusterFacts{Name: r.cluster, Region: rec.GetRegion(), Zones: api.ZonesOf(rec.GetZone(), rec.GetZones()), Provider: rec.GetProvider(), Labels: rec.GetLabels()}
		for _, b := range s.Bindings() {
			replicas, bound := shareOf(b, r.cluster)
			if !bound {
				continue
			}
			o := s.Object(api.KeyFromProto(b.GetWorkload()))
			if o == nil {
				continue
			}
			bt := boundTemplate{obj: o, replicas: replicas, conflict: b.GetConflictResolution(),
				labels: region.InjectedLabels(b, r.cluster)}
			for _, pr := range b.GetPreserveRules() {
				bt.preserve = append(bt.preserve, deploy.PreserveRule{Label: pr.GetAliasLabelName(), JSONPath: pr.GetJsonPath()})
			}
			v.bound = append(v.bound, bt)
		}
		for _, o := range s.Tombstones() {
			key := api.KeyFromProto(o.GetKey())
			if o.GetPreserveOnClusters() && s.Status(key, r.cluster) != nil {
				v.release = append(v.release, key)
			}
		}
	})
	return v
}

// decodeOverrides decodes the override policies whose generation changed
// and returns every policy that decodes, in key order.
func (r *renderer) decodeOverrides(objs []*shoalpb.Object) []*api.OverridePolicy {
	seen := make(map[string]bool, len(objs))
	var ops []*api.OverridePolicy
	for _, o := range objs {
		ks := api.KeyFromProto(o.GetKey()).String()
		seen[ks] = true
		c, ok := r.overrides[ks]
		if !ok || c.gen != o.GetGeneration() {
			op, _, err := api.DecodeOverridePolicy(o.GetManifest())
			if err != nil {
				op = nil // validated when applied; a stored one that no longer decodes is ignored
			}
			c = cachedOverride{gen: o.GetGeneration(), op: op}
			r.overrides[ks] = c
			r.opsVersion++
		}
		if c.op != nil {
			ops = append(ops, c.op)
		}
	}
	for ks := range r.overrides {
		if !seen[ks] {
			delete(r.overrides, ks)
			r.opsVersion++
		}
	}
	return ops
}

// desired lists what this cluster must hold: its share in every binding
// and, where the workload was moved away gracefully, the replicas it keeps
// until their replacements are Ready; plus objects whose template was
// deleted under preserveResourcesOnDeletion, to be released.
func (r *renderer) desired(fsm *region.FSM) []deploy.Work {
	v := r.read(fsm)
	ops := r.decodeOverrides(v.overrides)
	if sig := fmt.Sprint(v.facts); sig != r.factsSig || r.factsVersion == 0 {
		r.facts, r.factsSig = v.facts, sig
		r.factsVersion++
	}
	works := make([]deploy.Work, 0, len(v.bound)+len(v.release))
	seen := make(map[string]bool, len(v.bound))
	applied := make(map[string][]string, len(v.bound))
	for _, bt := range v.bound {
		ks := api.KeyFromProto(bt.obj.GetKey()).String()
		seen[ks] = true
		rw := r.render(ks, bt, ops)
		works = append(works, rw.work)
		applied[ks] = rw.applied
	}
	for _, k := range v.release {
		works = append(works, deploy.Work{Key: k, Release: true})
	}
	r.releasing = len(v.release) > 0
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
// nothing it depends on changed. It parses the template only when its
// generation changed (or, once, when override policies appear while none
// existed), selects the override policies again only when the template or
// the policies changed, and renders only when an input did.
func (r *renderer) render(ks string, bt boundTemplate, ops []*api.OverridePolicy) renderedWork {
	o := bt.obj
	c, cached := r.works[ks]
	if !cached || c.gen != o.GetGeneration() {
		t, err := api.ParseTemplate(o.GetManifest())
		r.parsed++
		c = renderedWork{gen: o.GetGeneration(), parses: err == nil, hasReplicas: err == nil && t.HasReplicas}
		if err == nil && len(ops) > 0 {
			c.tmpl = t
		}
	}
	if !c.haveSel || c.selAt != r.opsVersion {
		c.selected, c.selAt, c.haveSel = nil, r.opsVersion, true
		switch {
		case len(ops) == 0:
			c.tmpl = nil
		case c.parses && c.tmpl == nil:
			c.tmpl, _ = api.ParseTemplate(o.GetManifest())
			r.parsed++
		}
		if c.tmpl != nil {
			c.selected = api.SelectOverrides(ops, c.tmpl)
		}
		var sig strings.Builder
		for _, op := range c.selected {
			fmt.Fprintf(&sig, "|%s@%d", op.Ref(), r.overrides[op.Key().String()].gen)
		}
		c.selSig = sig.String()
	}
	in := renderInputs{gen: o.GetGeneration(), replicas: bt.replicas, conflict: bt.conflict,
		factsVersion: r.factsVersion, selSig: c.selSig, extraSig: bt.signature()}
	if cached && c.inputs == in {
		r.works[ks] = c
		return c
	}
	key := api.KeyFromProto(o.GetKey())
	w := deploy.Work{
		Key: key, Manifest: o.GetManifest(), Generation: o.GetGeneration(),
		HasReplicas: c.hasReplicas, Replicas: bt.replicas,
		ConflictResolution: bt.conflict, Preserve: bt.preserve,
	}
	var names []string
	if len(c.selected) > 0 {
		out, appliedOps, err := deploy.Render(o.GetManifest(), c.selected, r.facts)
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
	if len(bt.labels) > 0 && w.RenderError == "" {
		out, err := deploy.AddLabels(w.Manifest, bt.labels)
		if err != nil {
			w.RenderError = "preserved state labels: " + err.Error()
		} else {
			w.Manifest = out
		}
	}
	r.rendered++
	c.inputs, c.work, c.applied = in, w, names
	r.works[ks] = c
	return c
}
