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

// shoal migrate moves a workload from one cluster of the region to another
// with no downtime: the share the scheduler gives the source goes to the
// target instead, on every placement from then on (until migrated back),
// and the source keeps what it ran (an eviction, reason "migration")
// until the workload is Ready at its full count, as in graceful failover.
//
// Interrupted, it never leaves the workload running nowhere: the state is
// in the log, so a new leader carries on; a source whose peer dies keeps
// its copy (its cluster outlives its peer; the eviction is released only
// once the target is Ready, and the peer deletes it when it is back); a
// target that fails (not Ready, unreachable) rolls the move back - its
// share returns to the source, which still has it - and the move resumes
// when the target is usable again.
//
// The scheduler starts from the placement before the migrations
// (Binding.PreMigration), so that a target the policy does not select is
// no reason to place the workload anew.

const reasonMigration = "migration"

// migrate records a Migrate on the workload's binding.
func (a *applier) migrate(c *shoalpb.Migrate) error {
	if err := validKey(c.GetWorkload()); err != nil {
		return err
	}
	key := api.KeyFromProto(c.GetWorkload())
	from, to := c.GetFrom(), c.GetTo()
	switch {
	case from == "" || to == "":
		return fmt.Errorf("%w: migrate needs from and to", ErrBadCommand)
	case from == to:
		return fmt.Errorf("%w: migrate from %s to itself", ErrBadCommand, from)
	}
	b := a.st.bindings[key.String()]
	if o := a.st.objects[key.String()]; o == nil || o.GetDeleted() || b == nil || b.GetPolicy() == "" {
		return fmt.Errorf("%w: %s is not placed in this region: nothing to migrate", ErrBadCommand, key.Display())
	}
	if a.st.clusters[to] == nil {
		return fmt.Errorf("%w: cluster %s is not in this region", ErrBadCommand, to)
	}
	n := proto.Clone(b).(*shoalpb.Binding)
	n.Migrations = nextMigrations(b.GetMigrations(), from, to, a.now)
	a.st.bindings[key.String()] = n
	a.event(n.GetWorkload(), "", "Normal", "MigrationRequested", fmt.Sprintf("from %s to %s (shoal migrate)", from, to))
	a.st.rev.Bindings = a.index
	a.changed = true
	return nil
}

// nextMigrations adds from -> to to ms: a migration back cancels the one
// it reverses, and one that continues a migration (A to B, then B to C)
// becomes A to C.
func nextMigrations(ms []*shoalpb.Migration, from, to string, now int64) []*shoalpb.Migration {
	out := make([]*shoalpb.Migration, 0, len(ms)+1)
	origin := from
	for _, m := range ms {
		if m.GetTo() == from {
			origin = m.GetFrom() // continued (or reversed, if origin == to)
			continue
		}
		if m.GetFrom() == from {
			continue // replaced
		}
		out = append(out, m)
	}
	if origin != to {
		out = append(out, &shoalpb.Migration{From: origin, To: to, RequestedUnixMs: now})
	}
	return out
}

// applyMigrations moves each migrated share onto its target when the
// target is usable (Ready, untainted); otherwise the share stays on the
// source (a rolled back move, resumed once the target is usable).
func applyMigrations(ms []*shoalpb.Migration, targets []Target, records map[string]*shoalpb.ClusterRecord, prefix string) []Target {
	if len(ms) == 0 {
		return targets
	}
	out := slices.Clone(targets)
	for _, m := range ms {
		from, to := prefix+m.GetFrom(), prefix+m.GetTo()
		rec := records[to]
		if rec == nil || EffectiveHealth(rec) != shoalpb.Health_HEALTH_READY || blockedByTaint(rec) {
			continue
		}
		i := slices.IndexFunc(out, func(t Target) bool { return t.Cluster == from })
		if i < 0 {
			continue
		}
		moved := out[i].Replicas
		out = slices.Delete(out, i, i+1)
		if j := slices.IndexFunc(out, func(t Target) bool { return t.Cluster == to }); j >= 0 {
			out[j].Replicas += moved
		} else {
			out = append(out, Target{Cluster: to, Replicas: moved})
		}
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.Cluster, b.Cluster) })
	return out
}

func blockedByTaint(rec *shoalpb.ClusterRecord) bool {
	for _, t := range rec.GetTaints() {
		if t.GetEffect() == api.TaintEffectNoExecute || t.GetEffect() == api.TaintEffectNoSchedule {
			return true
		}
	}
	return false
}

// migrationEvictions keeps, on each cluster that lost replicas to a
// migration in this pass, what it ran until the workload is Ready again:
// the source of a move, the target of a move cancelled or rolled back.
func migrationEvictions(now time.Time, prev, targets []Target, evictions []*shoalpb.Eviction) []*shoalpb.Eviction {
	for _, p := range prev {
		if p.Replicas <= replicasOn(targets, p.Cluster) || slices.ContainsFunc(evictions, func(e *shoalpb.Eviction) bool { return e.GetCluster() == p.Cluster }) {
			continue
		}
		evictions = append(evictions, &shoalpb.Eviction{Cluster: p.Cluster, Replicas: p.Replicas, Reason: reasonMigration, CreatedUnixMs: now.UnixMilli()})
	}
	slices.SortFunc(evictions, func(a, b *shoalpb.Eviction) int { return strings.Compare(a.GetCluster(), b.GetCluster()) })
	return evictions
}

// sameTargets reports whether two placements are the same.
func sameTargets(a, b []Target) bool {
	return slices.Equal(nonZeroTargets(slices.Clone(a)), nonZeroTargets(slices.Clone(b)))
}

func replicasOn(ts []Target, cluster string) int32 {
	for _, t := range ts {
		if t.Cluster == cluster {
			return t.Replicas
		}
	}
	return 0
}

// RoomFor is how many more replicas of size per fit in a cluster's
// available capacity (unknown if the cluster reports none, or the replica
// requests nothing): what shoal migrate checks before anything moves.
func RoomFor(rec *shoalpb.ClusterRecord, per api.Resources) (n int64, unknown bool) {
	a := rec.GetCapacity().GetAvailable()
	if a == nil {
		return estimateReplicas(nil, per)
	}
	return estimateReplicas(&api.Resources{CPUMilli: a.GetCpuMilli(), MemoryBytes: a.GetMemoryBytes(), Pods: a.GetPods()}, per)
}
