package region

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// The global split. Once the region knows other regions, every region
// leader schedules each workload over the clusters of the whole mesh (its
// own and those the other regions' summaries list), named REGION/CLUSTER
// so that every region computes the same answer from the same inputs, and
// commits only its own clusters' share. The previous placement it starts
// from is its own binding plus the bindings the other regions report, so
// scheduling stays sticky mesh-wide.
//
// A region dead for placement (Mesh verdicts) is left out: its clusters
// are no candidates and its previous share is not counted, so the others
// take it over. A region that came back (or joined) is left out for the
// failback delay, as a recovering cluster is. When a region's own share
// shrinks because another region takes replicas back, its replicas stay
// (a failback eviction) until the workload's replicas are Ready mesh-wide,
// so that the new replicas are Ready before the old ones go.

// QualifiedName names a cluster mesh-wide: REGION/CLUSTER.
func QualifiedName(region, cluster string) string { return region + "/" + cluster }

// meshInput is what the global split reads besides the region's own state.
type meshInput struct {
	region  string
	remotes []*shoalpb.RemoteRegion
	// Made once per scheduling pass by index: which remote regions take
	// part in placement now, and each workload's share in every remote
	// region by key and region (a pass would otherwise scan every
	// summary once per workload).
	included map[string]bool
	shares   map[string]map[string]*remoteShare
	// settled: every remote region takes part in placement (none is dead
	// or within its failback delay). See settledShare.
	settled bool
}

// remoteShare is what one remote region's summary says of one workload.
type remoteShare struct {
	binding  *shoalpb.Binding
	statuses []*shoalpb.WorkStatus
}

func (m meshInput) multi() bool { return len(m.remotes) > 0 }

// index fills included and shares for a pass at now.
func (l *Leader) index(now time.Time, mi *meshInput) {
	mi.included = make(map[string]bool, len(mi.remotes))
	mi.shares = map[string]map[string]*remoteShare{}
	share := func(ks, region string) *remoteShare {
		byRegion := mi.shares[ks]
		if byRegion == nil {
			byRegion = map[string]*remoteShare{}
			mi.shares[ks] = byRegion
		}
		sh := byRegion[region]
		if sh == nil {
			sh = &remoteShare{}
			byRegion[region] = sh
		}
		return sh
	}
	mi.settled = true
	for _, r := range mi.remotes {
		name := r.GetSummary().GetRegion()
		mi.included[name] = l.included(r, now)
		mi.settled = mi.settled && mi.included[name]
		for _, b := range r.GetSummary().GetBindings() {
			share(api.KeyFromProto(b.GetWorkload()).String(), name).binding = b
		}
		for _, st := range r.GetSummary().GetStatuses() {
			sh := share(api.KeyFromProto(st.GetWorkload()).String(), name)
			sh.statuses = append(sh.statuses, st)
		}
	}
}

// included reports whether a remote region's clusters take part in
// placement now: not while dead, nor for the failback delay after it came
// back (a region that joins takes part at once).
func (l *Leader) included(r *shoalpb.RemoteRegion, now time.Time) bool {
	if r.GetDead() {
		return false
	}
	if r.GetReturnedUnixMs() == 0 {
		return true // never dead: a region that joins takes part at once
	}
	at := time.UnixMilli(r.GetReturnedUnixMs()).Add(l.cfg.FailbackDelay)
	if now.Before(at) {
		l.due(at)
		return false
	}
	return true
}

// meshRecords are the cluster records placement sees mesh-wide, by
// qualified name: this region's and those of the included remote regions.
func (l *Leader) meshRecords(mi meshInput, own []*shoalpb.ClusterRecord) []*shoalpb.ClusterRecord {
	out := make([]*shoalpb.ClusterRecord, 0, len(own))
	for _, c := range own {
		q := proto.Clone(c).(*shoalpb.ClusterRecord)
		q.Name = QualifiedName(mi.region, c.GetName())
		q.Region = mi.region
		out = append(out, q)
	}
	for _, r := range mi.remotes {
		name := r.GetSummary().GetRegion()
		if !mi.included[name] {
			continue
		}
		for _, c := range r.GetSummary().GetClusters() {
			q := proto.Clone(c).(*shoalpb.ClusterRecord)
			q.Name = QualifiedName(name, c.GetName())
			q.Region = name
			out = append(out, q)
		}
	}
	return out
}

func qualifyTargets(region string, ts []*shoalpb.TargetCluster) []*shoalpb.TargetCluster {
	out := make([]*shoalpb.TargetCluster, 0, len(ts))
	for _, t := range ts {
		out = append(out, &shoalpb.TargetCluster{Name: QualifiedName(region, t.GetName()), Replicas: t.GetReplicas()})
	}
	return out
}

// meshBinding is the previous placement mesh-wide: this region's binding
// with qualified names, plus the shares the included remote regions run.
// While a region is left out, each region's share is what it runs now;
// once every region takes part again, it is its settled share (what it
// ran before it first left a region out).
func (l *Leader) meshBinding(mi meshInput, key api.ObjectKey, old *shoalpb.Binding) *shoalpb.Binding {
	var b *shoalpb.Binding
	// pre is the scheduler's previous placement where a region migrated
	// (shoal migrate): its placement before the migrations moved it.
	var pre []*shoalpb.TargetCluster
	migrated := false
	if old != nil {
		b = proto.Clone(old).(*shoalpb.Binding)
		b.Clusters = qualifyTargets(mi.region, old.GetClusters())
		if mi.settled {
			b.Clusters = settledShare(mi.region, old)
		}
		pre = b.Clusters
		if len(old.GetPreMigration()) > 0 {
			pre, migrated = qualifyTargets(mi.region, old.GetPreMigration()), true
		}
		b.PreFailover = qualifyTargets(mi.region, old.GetPreFailover())
		for _, e := range b.Evictions {
			e.Cluster = QualifiedName(mi.region, e.GetCluster())
		}
		for i, n := range b.FailedOverFrom {
			b.FailedOverFrom[i] = QualifiedName(mi.region, n)
		}
		b.AppFailures = qualifyAppFailures(mi.region, old.GetAppFailures())
	}
	shares := mi.shares[key.String()]
	for _, r := range mi.remotes {
		name := r.GetSummary().GetRegion()
		rb := shares[name].bindingOrNil()
		if !mi.included[name] || rb == nil {
			continue
		}
		if b == nil {
			b = &shoalpb.Binding{Workload: key.Proto()}
		}
		b.AppFailures = append(b.AppFailures, qualifyAppFailures(name, rb.GetAppFailures())...)
		share := qualifyTargets(name, rb.GetClusters())
		if mi.settled {
			share = settledShare(name, rb)
		}
		b.Clusters = append(b.Clusters, share...)
		if len(rb.GetPreMigration()) > 0 {
			share, migrated = qualifyTargets(name, rb.GetPreMigration()), true
		}
		pre = append(pre, share...)
	}
	if b != nil {
		b.PreMigration = nil
		if migrated {
			b.PreMigration = pre
		}
	}
	return b
}

// Region failover and failback of the global split. A region that leaves
// another region out of the split (dead, or back for less than the
// failback delay) records in its binding the mesh-wide placement from
// before (Binding.MeshPreFailover) and keeps it while it leaves any region
// out. Once every region takes part again, every region counts each
// region's settled share as the previous placement: the recorded one for a
// region that still holds a record, what it runs for the others. So the
// surplus a region took over (both sides of a partition take the other's
// share) does not count as where the workload ran: with more clusters than
// replicas it would otherwise win the tie-breaks and take replicas from a
// region the failure never touched (which deletes them there). Every
// region reads the same records from the summaries, so they agree.

// settledShare is region's settled share by its binding b, with qualified
// names: its part of the recorded pre-failover placement while b holds
// one, else its clusters.
func settledShare(region string, b *shoalpb.Binding) []*shoalpb.TargetCluster {
	if !b.GetMeshFailedOver() {
		return qualifyTargets(region, b.GetClusters())
	}
	prefix := region + "/"
	var out []*shoalpb.TargetCluster
	for _, t := range b.GetMeshPreFailover() {
		if strings.HasPrefix(t.GetName(), prefix) {
			out = append(out, proto.Clone(t).(*shoalpb.TargetCluster))
		}
	}
	return out
}

// recordFailover keeps nb's record of the placement from before a region
// was left out: while one is, the record old holds or, at the first such
// pass, the settled shares of every region, left out or not (a dead
// region's is what its last summary showed). Once every region takes part
// again, the record goes.
func recordFailover(mi meshInput, key api.ObjectKey, old, nb *shoalpb.Binding) {
	nb.MeshPreFailover, nb.MeshFailedOver = nil, false
	switch {
	case mi.settled:
	case old.GetMeshFailedOver():
		nb.MeshPreFailover, nb.MeshFailedOver = old.GetMeshPreFailover(), true
	case old.GetGuarded() && len(old.GetMeshTargets()) > 0:
		// A guarded workload's last mesh answer: every live region
		// agreed to it before starting replicas, so it shows what a
		// region runs even before its summary does.
		nb.MeshPreFailover, nb.MeshFailedOver = old.GetMeshTargets(), true
	default:
		pre := settledShare(mi.region, old)
		shares := mi.shares[key.String()]
		for _, r := range mi.remotes {
			name := r.GetSummary().GetRegion()
			pre = append(pre, settledShare(name, shares[name].bindingOrNil())...)
		}
		nb.MeshPreFailover, nb.MeshFailedOver = pre, true
	}
}

// meshStatuses are a workload's statuses mesh-wide with qualified cluster
// names. Generations count per region, so a remote status counts as
// current (it gets generation) when it is current for its own region's
// binding, and as stale otherwise.
func (l *Leader) meshStatuses(mi meshInput, key api.ObjectKey, generation int64, own []*shoalpb.WorkStatus) []*shoalpb.WorkStatus {
	out := make([]*shoalpb.WorkStatus, 0, len(own))
	for _, s := range own {
		q := proto.Clone(s).(*shoalpb.WorkStatus)
		q.Cluster = QualifiedName(mi.region, s.GetCluster())
		out = append(out, q)
	}
	shares := mi.shares[key.String()]
	for _, r := range mi.remotes {
		name := r.GetSummary().GetRegion()
		sh := shares[name]
		if !mi.included[name] || sh == nil {
			continue
		}
		var theirs int64 = -1
		if sh.binding != nil {
			theirs = sh.binding.GetGeneration()
		}
		for _, s := range sh.statuses {
			q := proto.Clone(s).(*shoalpb.WorkStatus)
			q.Cluster = QualifiedName(name, s.GetCluster())
			q.AppliedGeneration = 0
			if s.GetAppliedGeneration() == theirs {
				q.AppliedGeneration = generation
			}
			out = append(out, q)
		}
	}
	return out
}

// localBinding turns a mesh-wide binding into this region's: only its own
// clusters, with their own names. When the region's share shrinks while
// the workload itself is unchanged (its replicas move to another region),
// the replicas that leave stay until the workload is Ready mesh-wide.
func localBinding(now time.Time, region string, nb, old *shoalpb.Binding) *shoalpb.Binding {
	prefix := region + "/"
	local := func(name string) (string, bool) { return strings.CutPrefix(name, prefix) }
	out := proto.Clone(nb).(*shoalpb.Binding)
	out.Clusters = nil
	for _, t := range nb.GetClusters() {
		if n, ok := local(t.GetName()); ok {
			out.Clusters = append(out.Clusters, &shoalpb.TargetCluster{Name: n, Replicas: t.GetReplicas()})
		}
	}
	out.PreFailover = nil
	for _, t := range nb.GetPreFailover() {
		if n, ok := local(t.GetName()); ok {
			out.PreFailover = append(out.PreFailover, &shoalpb.TargetCluster{Name: n, Replicas: t.GetReplicas()})
		}
	}
	out.FailedOverFrom = nil
	for _, f := range nb.GetFailedOverFrom() {
		if n, ok := local(f); ok {
			out.FailedOverFrom = append(out.FailedOverFrom, n)
		}
	}
	out.AppFailures = localAppFailures(region, nb.GetAppFailures())
	out.PreMigration = nil
	if len(nb.GetMigrations()) > 0 {
		for _, t := range nb.GetPreMigration() {
			if n, ok := local(t.GetName()); ok {
				out.PreMigration = append(out.PreMigration, &shoalpb.TargetCluster{Name: n, Replicas: t.GetReplicas()})
			}
		}
	}
	out.Evictions = nil
	evicted := map[string]bool{}
	for _, f := range out.AppFailures {
		evicted[f.GetCluster()] = true // application failover purges it its own way
	}
	for _, e := range nb.GetEvictions() {
		if n, ok := local(e.GetCluster()); ok {
			c := proto.Clone(e).(*shoalpb.Eviction)
			c.Cluster = n
			out.Evictions = append(out.Evictions, c)
			evicted[n] = true
		}
	}
	if old == nil || old.GetGeneration() != nb.GetGeneration() || old.GetDesiredReplicas() != nb.GetDesiredReplicas() {
		return out
	}
	share := map[string]int32{}
	for _, t := range out.GetClusters() {
		share[t.GetName()] = t.GetReplicas()
	}
	for _, t := range old.GetClusters() {
		if share[t.GetName()] < t.GetReplicas() && !evicted[t.GetName()] {
			out.Evictions = append(out.Evictions, &shoalpb.Eviction{Cluster: t.GetName(), Replicas: t.GetReplicas(),
				Reason: reasonRegionFailback, CreatedUnixMs: now.UnixMilli()})
		}
	}
	return out
}

// guard applies a policy's partition guard (shoal.io/partition-guard:
// majority or strict) to this region's binding nb of a workload that must not run
// twice; global is the mesh-wide answer nb was cut from.
//
//   - Fence: a region that does not hear a majority of the mesh's regions
//     runs none of it (the side with a majority may take it over).
//   - Epoch: the region that takes the workload over from a dead region
//     raises its epoch; a region that finds another region's epoch newer
//     than its own stops its replicas before it may run any again.
//   - Stop before start: a region runs at most what the global answer
//     binds minus what the other regions may still run (a dead region
//     runs nothing: it has fenced itself), and keeps nothing for failback.
//
// A strict guard (Binding.GuardStrict) has no fence and no takeover: a
// dead region may be one whose peers are all dead while its clusters run,
// so what it ran when it went silent counts as running until it is back
// (and says otherwise) or forgotten.
func (l *Leader) guard(now time.Time, mi meshInput, key api.ObjectKey, global, nb, old *shoalpb.Binding) *shoalpb.Binding {
	ks := key.String()
	strict := nb.GetGuardStrict()
	epoch := old.GetGuardEpoch()
	others := int32(0)
	var takenFrom, silent []string
	superseded := false
	agreed := true
	var waitFor []string
	shares := mi.shares[ks]
	for _, r := range mi.remotes {
		sh := shares[r.GetSummary().GetRegion()]
		rb := sh.bindingOrNil()
		if !r.GetDead() && (targetString(rb.GetMeshTargets()) != targetString(global.GetClusters()) || !l.freshSummary(r)) {
			agreed = false
			waitFor = append(waitFor, r.GetSummary().GetRegion())
		}
		if rb.GetGuardEpoch() > old.GetGuardEpoch() && slices.Contains(rb.GetGuardTakenFrom(), mi.region) {
			superseded = true
		}
		epoch = max(epoch, rb.GetGuardEpoch())
		running := runningOf(rb, sh.statusesOrNil())
		if r.GetDead() && strict {
			// Its summary may not show yet what it started; the
			// placement recorded when it was first left out (the mesh
			// answer every region agreed to before starting) does.
			running = max(running, sumTargets(settledShare(r.GetSummary().GetRegion(), nb)))
			if running > 0 {
				silent = append(silent, fmt.Sprintf("%s (%d)", r.GetSummary().GetRegion(), running))
			}
			others += running
			continue
		}
		if r.GetDead() {
			if running > 0 {
				takenFrom = append(takenFrom, r.GetSummary().GetRegion())
			}
			continue
		}
		others += running
	}
	out := proto.Clone(nb).(*shoalpb.Binding)
	out.MeshTargets = global.GetClusters()
	out.GuardEpoch = epoch
	if epoch != old.GetGuardEpoch() {
		out.GuardTakenFrom = nil
	} else {
		out.GuardTakenFrom = old.GetGuardTakenFrom()
	}
	// No failback holds: the replicas that leave go first.
	var kept []*shoalpb.Eviction
	for _, e := range out.GetEvictions() {
		if e.GetReason() != reasonRegionFailback {
			kept = append(kept, e)
		}
	}
	out.Evictions = kept
	stop := func(reason string) *shoalpb.Binding {
		out.Clusters, out.Evictions, out.Reason = nil, nil, reason
		return out
	}
	if v := l.view(); v != nil {
		seen, total, ok := v.Quorum(now)
		switch {
		case !ok:
			// Not yet known whom this region hears: change nothing.
			if old == nil {
				return stop("partition guard: waiting to know which regions this one hears")
			}
			// A copy: the caller sets fields on what it gets, and old is
			// the state's own, which the sync loop reads meanwhile.
			return proto.Clone(old).(*shoalpb.Binding)
		case 2*seen <= total && !strict:
			return stop(fmt.Sprintf("fenced by the partition guard: this region hears %d of %d regions, no majority", seen, total))
		}
	}
	if superseded && sumTargets(old.GetClusters()) > 0 {
		return stop(fmt.Sprintf("partition guard: another region took it over from this one (epoch %d, this region's %d); its replicas here stop first", epoch, old.GetGuardEpoch()))
	}
	allowed := sumTargets(global.GetClusters()) - others
	if own := sumTargets(out.GetClusters()); own > allowed {
		out.Clusters = capTargets(out.GetClusters(), max(allowed, 0))
		out.Reason = fmt.Sprintf("partition guard: %d of its replicas still run in other regions; this region starts only what they have stopped", others)
		if len(silent) > 0 {
			out.Reason = fmt.Sprintf("partition guard (strict): %s went silent while running it and may still run it there; "+
				"this region starts it only once they are back and stopped it, or forgotten (shoal region forget)", strings.Join(silent, ", "))
		}
	}
	if had := sumTargets(old.GetClusters()); !agreed && sumTargets(out.GetClusters()) > had {
		// Regions that see the mesh differently could each start the
		// same replicas: add none until every live region computed the
		// same placement.
		out.Clusters = capToPrevious(out.GetClusters(), old.GetClusters())
		out.Reason = fmt.Sprintf("partition guard: waiting for %s to agree on where it runs before starting replicas", strings.Join(waitFor, ", "))
	}
	if len(takenFrom) > 0 && sumTargets(out.GetClusters()) > sumTargets(old.GetClusters()) {
		out.GuardEpoch, out.GuardTakenFrom = epoch+1, takenFrom
	}
	return out
}

// runningIn is what a region may run of a workload by its summary: its
// bound and kept replicas, or what its clusters report, whichever is more.
func runningIn(sum *shoalpb.RegionSummary, b *shoalpb.Binding, key api.ObjectKey) int32 {
	var statuses []*shoalpb.WorkStatus
	for _, s := range sum.GetStatuses() {
		if api.KeyFromProto(s.GetWorkload()) == key {
			statuses = append(statuses, s)
		}
	}
	return runningOf(b, statuses)
}

// runningOf is runningIn over a region's binding and statuses of the
// workload.
func runningOf(b *shoalpb.Binding, statuses []*shoalpb.WorkStatus) int32 {
	bound := sumTargets(b.GetClusters())
	for _, e := range b.GetEvictions() {
		bound += e.GetReplicas()
	}
	var reported int32
	for _, s := range statuses {
		reported += s.GetReplicas()
	}
	return max(bound, reported)
}

func (sh *remoteShare) bindingOrNil() *shoalpb.Binding {
	if sh == nil {
		return nil
	}
	return sh.binding
}

func (sh *remoteShare) statusesOrNil() []*shoalpb.WorkStatus {
	if sh == nil {
		return nil
	}
	return sh.statuses
}

func sumTargets(ts []*shoalpb.TargetCluster) int32 {
	var n int32
	for _, t := range ts {
		n += t.GetReplicas()
	}
	return n
}

// capTargets keeps at most n replicas, taking from the last clusters.
func capTargets(ts []*shoalpb.TargetCluster, n int32) []*shoalpb.TargetCluster {
	var out []*shoalpb.TargetCluster
	for _, t := range ts {
		r := min(t.GetReplicas(), n)
		n -= r
		if r > 0 {
			out = append(out, &shoalpb.TargetCluster{Name: t.GetName(), Replicas: r})
		}
	}
	return out
}

// capToPrevious keeps each cluster's share at most what it had before.
func capToPrevious(ts, prev []*shoalpb.TargetCluster) []*shoalpb.TargetCluster {
	had := map[string]int32{}
	for _, t := range prev {
		had[t.GetName()] = t.GetReplicas()
	}
	var out []*shoalpb.TargetCluster
	for _, t := range ts {
		if r := min(t.GetReplicas(), had[t.GetName()]); r > 0 {
			out = append(out, &shoalpb.TargetCluster{Name: t.GetName(), Replicas: r})
		}
	}
	return out
}

// freshSummary reports whether region r's latest summary arrived after
// this region's view of whom it hears last changed: a summary from before
// (a partition, a change of leader) may show a placement that no longer
// holds, and agreeing with it could start a replica twice.
func (l *Leader) freshSummary(r *shoalpb.RemoteRegion) bool {
	v := l.view()
	if v == nil {
		return true
	}
	return v.SummaryAt(r.GetSummary().GetRegion()).After(l.quorumMoved)
}
