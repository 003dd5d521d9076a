package region

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// place computes a workload's next binding from its previous one: the
// scheduler's answer, plus graceful evictions on clusters it was moved away
// from by failover, plus failback once those clusters are stable again.
//
// A cluster the workload failed over from keeps what it ran (a held
// eviction) for as long as it is failed or recovering: its objects are
// never deleted for being unreachable or NotReady, so when it returns it
// still has them, with the same identities, and failback scales them
// instead of re-creating them. Failback starts from what the workload ran
// before its first failover (Binding.PreFailover), so that only the
// replicas that left the failed cluster move back.
//
// afresh, when set, is a rebalance (shoal rebalance): the previous
// replicas on the clusters it says are forgotten, so the workload is
// placed there as if for the first time, and the replicas that move stay
// until their replacements are Ready.
func (l *Leader) place(now time.Time, o *shoalpb.Object, policies []*api.Policy, old *shoalpb.Binding,
	clusters []ClusterInfo, records map[string]*shoalpb.ClusterRecord, statuses []*shoalpb.WorkStatus, afresh func(cluster string) bool) *shoalpb.Binding {
	key := api.KeyFromProto(o.GetKey())
	nb := &shoalpb.Binding{Workload: key.Proto(), Generation: o.GetGeneration()}
	t, err := l.template(o)
	if err != nil {
		nb.Unschedulable = true
		nb.Reason = "template cannot be read: " + err.Error()
		return nb
	}
	if t.HasReplicas {
		nb.DesiredReplicas = t.Replicas
	}
	pol := api.SelectPolicy(policies, t)
	if pol == nil {
		nb.Reason = "no PropagationPolicy or ClusterPropagationPolicy selects it"
		return nb
	}
	nb.Policy = pol.Ref()
	nb.Guarded = pol.Guard == api.PartitionGuardMajority || pol.Guard == api.PartitionGuardStrict
	nb.GuardStrict = pol.Guard == api.PartitionGuardStrict
	nb.ConflictResolution = string(pol.Spec.ConflictResolution)
	if p := pol.Spec.PreserveResourcesOnDeletion; p != nil && *p {
		nb.PreserveResourcesOnDeletion = true
	}

	// Failback: the clusters it failed over from that are stable again are
	// offered to the scheduler again; those still recovering are kept out.
	var waiting []string
	fresh := false
	recovering := map[string]bool{}
	for _, name := range old.GetFailedOverFrom() {
		rec := records[name]
		if rec == nil {
			continue // removed from the region: nothing to fail back to
		}
		ok, at := l.usable(rec, now)
		if ok {
			fresh = true
			continue
		}
		waiting = append(waiting, name)
		recovering[name] = true
		if !at.IsZero() {
			l.due(at)
		}
	}
	candidates := clusters
	if len(recovering) > 0 {
		candidates = make([]ClusterInfo, 0, len(clusters))
		for _, c := range clusters {
			if !recovering[c.Name] {
				candidates = append(candidates, c)
			}
		}
	}
	placement := pol.Spec.Placement
	if nb.Guarded {
		// A guarded workload must not run twice: a failed cluster of the
		// region may still run its copy (unreachable, or NotReady with
		// its pods up), so it is not moved away inside the region; it
		// moves with region failover, where the partition guard fences.
		placement = tolerateForever(placement, api.TaintClusterUnreachable, api.TaintClusterNotReady)
	}
	placement = l.withDefaultTolerations(placement)
	candidates = l.withAutonomy(now, pol.Spec.Placement, candidates)
	candidates, affinityNote := l.wlAffinity.filter(key, candidates)

	w := Workload{
		Key: key, UID: WorkloadUID(key), HasReplicas: t.HasReplicas, Replicas: t.Replicas, PerReplica: t.PerReplica,
		Placement:            placement,
		PreviousAffinityTerm: old.GetAffinityTerm(),
	}
	prev := targetsFromProto(old.GetClusters())
	w.Previous = prev
	if len(old.GetPreMigration()) > 0 {
		w.Previous = targetsFromProto(old.GetPreMigration())
	}
	if fresh {
		// Back to what ran before the failure, where the clusters are
		// still there: an unchanged workload gets exactly that again.
		w.Previous = nil
		for _, t := range targetsFromProto(old.GetPreFailover()) {
			if records[t.Cluster] != nil && !recovering[t.Cluster] {
				w.Previous = append(w.Previous, t)
			}
		}
	}
	if afresh != nil {
		w.Previous = slices.DeleteFunc(slices.Clone(w.Previous), func(t Target) bool { return afresh(t.Cluster) })
	}
	l.noteTolerationDeadlines(w.Placement, clusters)
	af := l.planAppFailover(now, pol, o.GetGeneration(), old, prev, records, statuses, afresh, l.decides)
	nb.PreserveRules, nb.AppFailover = preserveRules(pol), af.behavior != nil
	res := Schedule(w, withoutBarred(candidates, af), now)
	if len(af.fresh) > 0 && (res.Unschedulable || (t.HasReplicas && t.Replicas > 0 && len(res.Targets) == 0)) {
		// Nowhere else to go: the copies stay where they are.
		var names []string
		for _, f := range af.fresh {
			names = append(names, f.GetCluster())
		}
		af.note = strings.TrimPrefix(af.note+"; unhealthy on "+strings.Join(names, ", ")+", but no other cluster can take its replicas", "; ")
		af.fresh = nil
		res = Schedule(w, withoutBarred(candidates, af), now)
	}
	nb.AffinityTerm = res.AffinityTerm
	nb.Reason = res.Reason
	if affinityNote != "" {
		nb.Reason += "; " + affinityNote
	}
	targets := res.Targets
	if res.Unschedulable {
		// As Karmada does, a workload that cannot be placed keeps the
		// placement it had rather than being torn down.
		nb.Unschedulable = true
		targets = prev
		if len(old.GetPreMigration()) > 0 {
			targets = targetsFromProto(old.GetPreMigration())
		}
		nb.AffinityTerm = old.GetAffinityTerm()
	}
	sched := targets
	if migs := old.GetMigrations(); len(migs) > 0 {
		nb.Migrations, nb.PreMigration = migs, targetsToProto(targets)
		targets = applyMigrations(migs, targets, records, l.ownPrefix)
	}
	nb.Clusters = targetsToProto(targets)

	nb.Evictions = appEvictions(now, af, prev, l.evictions(now, pol, old, prev, targets, records, fresh || afresh != nil))
	oldSched := prev
	if len(old.GetPreMigration()) > 0 {
		oldSched = targetsFromProto(old.GetPreMigration())
	}
	if sameTargets(sched, oldSched) {
		// The scheduler's answer stands: whatever moved, a migration moved
		// (started, continued, cancelled, rolled back or resumed).
		nb.Evictions = migrationEvictions(now, prev, targets, nb.Evictions)
	}
	nb.AppFailures, nb.AppFailoverNote = af.all(), af.note
	failed := map[string]bool{}
	for _, n := range waiting {
		failed[n] = true
	}
	for _, e := range nb.Evictions {
		if e.GetReason() == reasonFailover && !l.usableNow(records[e.GetCluster()], now) {
			failed[e.GetCluster()] = true
		}
	}
	if !fresh {
		for _, n := range old.GetFailedOverFrom() {
			if records[n] != nil {
				failed[n] = true
			}
		}
	}
	for _, tc := range targets {
		delete(failed, tc.Cluster) // it runs there again
	}
	for n := range failed {
		nb.FailedOverFrom = append(nb.FailedOverFrom, n)
	}
	sort.Strings(nb.FailedOverFrom)
	switch {
	case len(nb.FailedOverFrom) == 0:
	case len(old.GetFailedOverFrom()) > 0 && len(old.GetPreFailover()) > 0:
		nb.PreFailover = old.GetPreFailover()
	default:
		nb.PreFailover = targetsToProto(prev)
	}
	if replacementsReady(nb, statuses) {
		nb.Evictions = l.keptEvictions(now, nb)
	}
	l.expireAppEvictions(now, pol, nb)
	return nb
}

// withoutBarred leaves out the clusters application failover bars.
func withoutBarred(clusters []ClusterInfo, af *appFailover) []ClusterInfo {
	if len(af.kept) == 0 && len(af.fresh) == 0 {
		return clusters
	}
	out := make([]ClusterInfo, 0, len(clusters))
	for _, c := range clusters {
		if !af.barred(c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// decides reports whether this region decides application failover for a
// cluster: its own clusters (all of them outside the global split).
func (l *Leader) decides(cluster string) bool {
	return l.ownPrefix == "" || strings.HasPrefix(cluster, l.ownPrefix)
}

// keptEvictions are the evictions of b that stay although its replacements
// are Ready: the held ones (heldEvictions), and those of replicas another
// region takes back (reasonRegionFailback) for the failback delay after
// the move. The global split can change back within moments (a summary
// that arrives late, a cluster failing over in another region); when it
// does, the replicas still run there and are kept, not deleted and
// created again.
func (l *Leader) keptEvictions(now time.Time, b *shoalpb.Binding) []*shoalpb.Eviction {
	out := heldEvictions(b)
	for _, e := range b.GetEvictions() {
		if appEvictionKept(b, e) {
			out = append(out, e)
			continue
		}
		if e.GetReason() != reasonRegionFailback {
			continue
		}
		if until := time.UnixMilli(e.GetCreatedUnixMs()).Add(l.cfg.FailbackDelay); now.Before(until) {
			l.due(until)
			out = append(out, e)
		}
	}
	return out
}

// heldEvictions keeps, of a binding's evictions, those of clusters it
// failed over from that are still failed or recovering: they keep what
// they ran until failback decides, whatever the replacements do.
func heldEvictions(b *shoalpb.Binding) []*shoalpb.Eviction {
	var out []*shoalpb.Eviction
	for _, e := range b.GetEvictions() {
		if IsHeld(b, e) {
			out = append(out, e)
		}
	}
	return out
}

// IsHeld reports whether an eviction of b is held: its cluster is one the
// workload failed over from and is still failed or recovering, so it keeps
// what it ran until failback decides.
func IsHeld(b *shoalpb.Binding, e *shoalpb.Eviction) bool {
	return e.GetReason() == reasonFailover && slices.Contains(b.GetFailedOverFrom(), e.GetCluster())
}

// waitsForReplacements reports whether a binding has an eviction released
// only when the replacements are Ready (its statuses then matter).
func waitsForReplacements(b *shoalpb.Binding) bool {
	for _, e := range b.GetEvictions() {
		if !IsHeld(b, e) {
			return true
		}
	}
	return false
}

// Eviction reasons.
const (
	reasonFailover = "cluster failover"
	reasonFailback = "failback"
	// reasonRegionFailback keeps replicas that another region takes back
	// until the workload is Ready mesh-wide.
	reasonRegionFailback = "region failback"
)

// evictions keeps old replicas running where a workload was moved away by
// failover or failback, until the replacements are Ready.
func (l *Leader) evictions(now time.Time, pol *api.Policy, old *shoalpb.Binding, prev, targets []Target,
	records map[string]*shoalpb.ClusterRecord, fresh bool) []*shoalpb.Eviction {
	newReplicas := map[string]int32{}
	present := map[string]bool{}
	for _, t := range targets {
		newReplicas[t.Cluster] = t.Replicas
		present[t.Cluster] = true
	}
	direct := false
	if f := pol.Spec.Failover; f != nil && f.Cluster != nil &&
		(f.Cluster.PurgeMode == api.PurgeModeDirectly || f.Cluster.PurgeMode == api.PurgeModeImmediately) {
		direct = true
	}
	// An eviction lasts until its replacements are Ready, however long
	// that takes: old replicas are never removed before (only purgeMode
	// Directly skips the wait).
	byCluster := map[string]*shoalpb.Eviction{}
	for _, e := range old.GetEvictions() {
		if records[e.GetCluster()] == nil {
			continue
		}
		byCluster[e.GetCluster()] = e
	}
	for _, p := range prev {
		if present[p.Cluster] && newReplicas[p.Cluster] >= p.Replicas {
			continue
		}
		reason := ""
		switch {
		case EffectiveHealth(records[p.Cluster]) != shoalpb.Health_HEALTH_READY:
			if !direct {
				reason = reasonFailover
			}
		case fresh:
			reason = reasonFailback
		}
		if reason == "" || byCluster[p.Cluster] != nil {
			continue
		}
		byCluster[p.Cluster] = &shoalpb.Eviction{Cluster: p.Cluster, Replicas: p.Replicas, Reason: reason, CreatedUnixMs: now.UnixMilli()}
	}
	var out []*shoalpb.Eviction
	for name, e := range byCluster {
		if present[name] && newReplicas[name] >= e.GetReplicas() {
			continue // it runs at least as many there again
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetCluster() < out[j].GetCluster() })
	return out
}

// replacementsReady reports whether the clusters a workload is bound to
// run it Ready at its current generation, so evicted replicas may go.
func replacementsReady(b *shoalpb.Binding, statuses []*shoalpb.WorkStatus) bool {
	if len(b.GetEvictions()) == 0 {
		return false
	}
	byCluster := map[string]*shoalpb.WorkStatus{}
	for _, s := range statuses {
		byCluster[s.GetCluster()] = s
	}
	var ready int32
	for _, t := range b.GetClusters() {
		s := byCluster[t.GetName()]
		if s == nil || s.GetAppliedGeneration() != b.GetGeneration() {
			if b.GetDesiredReplicas() == 0 {
				return false
			}
			continue
		}
		if b.GetDesiredReplicas() == 0 && s.GetHealth() != "Healthy" {
			return false
		}
		if s.GetReplicas() < t.GetReplicas() {
			continue // its share is not applied yet: what is Ready there is not the replacement
		}
		ready += min(s.GetReadyReplicas(), t.GetReplicas())
	}
	return ready >= b.GetDesiredReplicas() && len(b.GetClusters()) > 0
}

// noteTolerationDeadlines schedules a pass when a NoExecute taint stops
// being tolerated.
func (l *Leader) noteTolerationDeadlines(p api.Placement, clusters []ClusterInfo) {
	for _, c := range clusters {
		for _, taint := range c.Taints {
			if taint.Effect != api.TaintEffectNoExecute {
				continue
			}
			for _, tol := range p.ClusterTolerations {
				if tol.TolerationSeconds != nil && tol.ToleratesTaint(taint) {
					l.due(taint.Added.Add(time.Duration(*tol.TolerationSeconds) * time.Second))
				}
			}
		}
	}
}

// tolerateForever adds tolerations of the failover taints that never run
// out, unless the policy tolerates them itself.
func tolerateForever(p api.Placement, keys ...string) api.Placement {
	for _, key := range keys {
		own := false
		for _, t := range p.ClusterTolerations {
			own = own || t.Key == key || (t.Key == "" && t.Operator == "Exists")
		}
		if !own {
			p.ClusterTolerations = append(slices.Clone(p.ClusterTolerations), api.Toleration{
				Key: key, Operator: "Exists", Effect: api.TaintEffectNoExecute})
		}
	}
	return p
}
