package region

import (
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// schedInput is what one scheduling pass reads from the state, copied out
// under the read lock so the pass itself runs without holding it.
type schedInput struct {
	rev      Revisions
	objects  []*shoalpb.Object
	policies []*shoalpb.Object
	clusters []*shoalpb.ClusterRecord
	bindings map[string]*shoalpb.Binding
	statuses map[string][]*shoalpb.WorkStatus // only for bindings with evictions
	mesh     meshInput
}

func (l *Leader) readSchedInput() schedInput {
	in := schedInput{bindings: map[string]*shoalpb.Binding{}, statuses: map[string][]*shoalpb.WorkStatus{}}
	l.fsm.Read(func(s *State) {
		in.rev = s.Revisions()
		for _, o := range s.Objects() {
			switch k := api.KeyFromProto(o.GetKey()); {
			case k.IsPropagationPolicy():
				in.policies = append(in.policies, o)
			case k.IsPolicy():
				// Override policies change what a cluster runs, not where.
			default:
				in.objects = append(in.objects, o)
			}
		}
		in.clusters = s.Clusters()
		in.mesh = meshInput{region: l.fsm.region, remotes: s.Regions()}
		for _, b := range s.Bindings() {
			k := api.KeyFromProto(b.GetWorkload())
			in.bindings[k.String()] = b
			if waitsForReplacements(b) || b.GetAppFailover() {
				in.statuses[k.String()] = s.Statuses(k)
			}
		}
	})
	return in
}

// scheduleCommands runs the scheduler over every template whose inputs
// changed (or whose time-based rules came due) and returns the commands
// that commit the changed bindings.
func (l *Leader) scheduleCommands(now time.Time) []*shoalpb.Command {
	in := l.readSchedInput()
	evicting := len(in.statuses) > 0
	// Whom the region hears decides guarded workloads (the partition
	// guard): a change of it is a change of the inputs.
	quorum := l.lastQuorum
	if v := l.view(); v != nil && in.mesh.multi() {
		seen, total, ok := v.Quorum(now)
		quorum = [3]int{seen, total, 0}
		if ok {
			quorum[2] = 1
		}
	}
	quorumMoved := quorum != l.lastQuorum
	if quorumMoved {
		l.quorumMoved = now
	}
	l.lastQuorum = quorum
	if l.lastRev != (Revisions{}) && !quorumMoved &&
		in.rev.Objects == l.lastRev.Objects && in.rev.Clusters == l.lastRev.Clusters &&
		in.rev.Bindings == l.lastRev.Bindings && in.rev.Regions == l.lastRev.Regions &&
		(!evicting || in.rev.Statuses == l.lastRev.Statuses) &&
		(l.nextDue.IsZero() || now.Before(l.nextDue)) {
		return nil
	}
	l.lastRev = in.rev
	l.nextDue = time.Time{}

	policies := l.decodePolicies(in.policies)
	multi := in.mesh.multi()
	recs := in.clusters
	l.ownPrefix = ""
	if multi {
		l.ownPrefix = in.mesh.region + "/"
		l.index(now, &in.mesh)
		recs = l.meshRecords(in.mesh, in.clusters)
	}
	infos := clusterInfos(recs)
	records := map[string]*shoalpb.ClusterRecord{}
	for _, c := range recs {
		records[c.GetName()] = c
	}
	l.wlAffinity = l.newAffinityIndex(in.objects, policies, func(k api.ObjectKey) []*shoalpb.TargetCluster {
		old := in.bindings[k.String()]
		if multi {
			return l.meshBinding(in.mesh, k, old).GetClusters()
		}
		return old.GetClusters()
	})
	live := map[string]bool{}
	next := make(map[string]*shoalpb.Binding, len(in.objects))
	for _, o := range in.objects {
		key := api.KeyFromProto(o.GetKey())
		live[key.String()] = true
		old := in.bindings[key.String()]
		// A rebalance asked for and not yet answered: this region's
		// clusters are placed afresh (another region's share stays the
		// previous placement there).
		rebalance := old.GetRebalanceRequested() > old.GetRebalanced()
		var afresh func(string) bool
		if rebalance {
			afresh = func(string) bool { return true }
			if multi {
				prefix := in.mesh.region + "/"
				afresh = func(c string) bool { return strings.HasPrefix(c, prefix) }
			}
		}
		var nb *shoalpb.Binding
		if multi {
			statuses := l.meshStatuses(in.mesh, key, o.GetGeneration(), in.statuses[key.String()])
			global := l.place(now, o, policies, l.meshBinding(in.mesh, key, old), infos, records, statuses, afresh)
			l.wlAffinity.placed(key, global.GetClusters())
			nb = localBinding(now, in.mesh.region, global, old)
			recordFailover(in.mesh, key, old, nb)
			if nb.GetGuarded() {
				nb = l.guard(now, in.mesh, key, global, nb, old)
			}
		} else {
			nb = l.place(now, o, policies, old, infos, records, in.statuses[key.String()], afresh)
			l.wlAffinity.placed(key, nb.GetClusters())
		}
		nb.RebalanceRequested, nb.Rebalanced = old.GetRebalanceRequested(), old.GetRebalanced()
		if rebalance {
			nb.Rebalanced = old.GetRebalanceRequested()
		}
		next[key.String()] = nb
	}
	l.attachDependencies(in.objects, policies, next)
	for ks := range l.deps {
		if !live[ks] {
			delete(l.deps, ks)
		}
	}
	var changed []*shoalpb.Binding
	for _, o := range in.objects {
		ks := api.KeyFromProto(o.GetKey()).String()
		if nb := next[ks]; !bindingsEqual(in.bindings[ks], nb) {
			changed = append(changed, nb)
		}
	}
	var remove []*shoalpb.ObjectKey
	for ks, b := range in.bindings {
		if !live[ks] {
			remove = append(remove, b.GetWorkload())
		}
	}
	sort.Slice(remove, func(i, j int) bool {
		return api.KeyFromProto(remove[i]).String() < api.KeyFromProto(remove[j]).String()
	})
	var cmds []*shoalpb.Command
	for len(changed) > 0 || len(remove) > 0 {
		n := min(len(changed), l.cfg.BatchSize)
		cmd := &shoalpb.SetBindings{Bindings: changed[:n], Remove: remove}
		changed, remove = changed[n:], nil
		cmds = append(cmds, &shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: cmd}})
	}
	return cmds
}

// due records that a time-based rule needs another pass at t.
func (l *Leader) due(t time.Time) {
	if l.nextDue.IsZero() || t.Before(l.nextDue) {
		l.nextDue = t
	}
}

func (l *Leader) decodePolicies(objs []*shoalpb.Object) []*api.Policy {
	seen := map[string]bool{}
	var out []*api.Policy
	for _, o := range objs {
		ks := api.KeyFromProto(o.GetKey()).String()
		seen[ks] = true
		c, ok := l.policies[ks]
		if !ok || c.gen != o.GetGeneration() {
			p, _, err := api.DecodePolicy(o.GetManifest())
			c = cachedPolicy{gen: o.GetGeneration(), p: p, err: err}
			l.policies[ks] = c
			if err != nil {
				l.cfg.Logger.Error("stored policy does not decode", "policy", ks, "err", err)
			}
		}
		if c.p != nil {
			out = append(out, c.p)
		}
	}
	for ks := range l.policies {
		if !seen[ks] {
			delete(l.policies, ks)
		}
	}
	return out
}

func (l *Leader) template(o *shoalpb.Object) (*api.Template, error) {
	ks := api.KeyFromProto(o.GetKey()).String()
	c, ok := l.templates[ks]
	if !ok || c.gen != o.GetGeneration() {
		t, err := api.ParseTemplate(o.GetManifest())
		c = cachedTemplate{gen: o.GetGeneration(), t: t, err: err}
		l.templates[ks] = c
	}
	return c.t, c.err
}

func clusterInfos(recs []*shoalpb.ClusterRecord) []ClusterInfo {
	out := make([]ClusterInfo, 0, len(recs))
	for _, c := range recs {
		ci := ClusterInfo{ClusterFacts: api.ClusterFacts{
			Name: c.GetName(), Region: c.GetRegion(), Zones: api.ZonesOf(c.GetZone(), c.GetZones()), Provider: c.GetProvider(), Labels: c.GetLabels(),
		}, Autonomy: time.Duration(c.GetAutonomyMs()) * time.Millisecond}
		for _, t := range c.GetTaints() {
			ci.Taints = append(ci.Taints, api.Taint{Key: t.GetKey(), Value: t.GetValue(), Effect: t.GetEffect(), Added: time.UnixMilli(t.GetAddedUnixMs())})
		}
		// A capacity is known once the cluster reports Ready nodes, even
		// with nothing allocatable on them (drained, cordoned): then
		// nothing fits. No nodes and nothing allocatable (a NotReady
		// cluster, or one not read yet) is unknown.
		if cp := c.GetCapacity(); cp.GetAvailable() != nil && (cp.GetNodes() > 0 || cp.GetAllocatable().GetPods() > 0) {
			av := cp.GetAvailable()
			ci.Available = &api.Resources{CPUMilli: av.GetCpuMilli(), MemoryBytes: av.GetMemoryBytes(), Pods: av.GetPods()}
		}
		out = append(out, ci)
	}
	return out
}

// usableNow reports whether a cluster can take work back now (see usable).
func (l *Leader) usableNow(c *shoalpb.ClusterRecord, now time.Time) bool {
	ok, _ := l.usable(c, now)
	return ok
}

// withAutonomy keeps an edge cluster that is unreachable, within its
// autonomy period, from being emptied: its unreachable NoExecute taint
// counts as NoSchedule (nothing new goes there, what runs there stays)
// until the period ends, unless the policy (own, as written, not the
// region's defaults) tolerates the unreachable taint itself: then the
// policy's tolerations decide. clusters is not modified.
func (l *Leader) withAutonomy(now time.Time, own api.Placement, clusters []ClusterInfo) []ClusterInfo {
	for _, t := range own.ClusterTolerations {
		if t.Key == api.TaintClusterUnreachable || t.Key == "" && t.Operator == "Exists" {
			return clusters // the policy decides
		}
	}
	var out []ClusterInfo
	for i, c := range clusters {
		if c.Autonomy <= 0 {
			continue
		}
		for j, taint := range c.Taints {
			if taint.Key != api.TaintClusterUnreachable || taint.Effect != api.TaintEffectNoExecute {
				continue
			}
			until := taint.Added.Add(c.Autonomy)
			if !now.Before(until) {
				continue
			}
			l.due(until)
			if out == nil {
				out = slices.Clone(clusters)
			}
			taints := slices.Clone(c.Taints)
			taints[j].Effect = api.TaintEffectNoSchedule
			out[i].Taints = taints
		}
	}
	if out == nil {
		return clusters
	}
	return out
}

// usable reports whether a cluster can take work back: Ready, untainted by
// failover, for at least the failback delay.
func (l *Leader) usable(c *shoalpb.ClusterRecord, now time.Time) (bool, time.Time) {
	if c == nil || EffectiveHealth(c) != shoalpb.Health_HEALTH_READY {
		return false, time.Time{}
	}
	for _, t := range c.GetTaints() {
		if t.GetEffect() == api.TaintEffectNoExecute || t.GetEffect() == api.TaintEffectNoSchedule {
			return false, time.Time{}
		}
	}
	at := time.UnixMilli(c.GetHealthSinceUnixMs()).Add(l.cfg.FailbackDelay)
	return !now.Before(at), at
}

// withDefaultTolerations adds the region's default tolerations of the
// failover taints unless the policy tolerates them itself.
func (l *Leader) withDefaultTolerations(p api.Placement) api.Placement {
	add := func(key string, d time.Duration) {
		if d <= 0 {
			return
		}
		for _, t := range p.ClusterTolerations {
			if t.Key == key || (t.Key == "" && t.Operator == "Exists") {
				return
			}
		}
		secs := int64(d / time.Second)
		p.ClusterTolerations = append(slices.Clone(p.ClusterTolerations), api.Toleration{
			Key: key, Operator: "Exists", Effect: api.TaintEffectNoExecute, TolerationSeconds: &secs,
		})
	}
	add(api.TaintClusterUnreachable, l.cfg.UnreachableToleration)
	add(api.TaintClusterNotReady, l.cfg.NotReadyToleration)
	return p
}

func targetsFromProto(ts []*shoalpb.TargetCluster) []Target {
	out := make([]Target, 0, len(ts))
	for _, t := range ts {
		out = append(out, Target{Cluster: t.GetName(), Replicas: t.GetReplicas()})
	}
	return out
}

func targetsToProto(ts []Target) []*shoalpb.TargetCluster {
	out := make([]*shoalpb.TargetCluster, 0, len(ts))
	for _, t := range ts {
		out = append(out, &shoalpb.TargetCluster{Name: t.Cluster, Replicas: t.Replicas})
	}
	return out
}

func bindingsEqual(a, b *shoalpb.Binding) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.GetGeneration() == b.GetGeneration() && a.GetPolicy() == b.GetPolicy() &&
		targetString(a.GetClusters()) == targetString(b.GetClusters()) &&
		evictionString(a.GetEvictions()) == evictionString(b.GetEvictions()) &&
		a.GetUnschedulable() == b.GetUnschedulable() && a.GetReason() == b.GetReason() &&
		a.GetAffinityTerm() == b.GetAffinityTerm() && a.GetDesiredReplicas() == b.GetDesiredReplicas() &&
		a.GetConflictResolution() == b.GetConflictResolution() &&
		targetString(a.GetPreFailover()) == targetString(b.GetPreFailover()) &&
		a.GetPreserveResourcesOnDeletion() == b.GetPreserveResourcesOnDeletion() &&
		a.GetGuarded() == b.GetGuarded() && a.GetGuardStrict() == b.GetGuardStrict() && a.GetGuardEpoch() == b.GetGuardEpoch() &&
		slices.Equal(a.GetGuardTakenFrom(), b.GetGuardTakenFrom()) &&
		targetString(a.GetMeshTargets()) == targetString(b.GetMeshTargets()) &&
		slices.Equal(a.GetRequiredBy(), b.GetRequiredBy()) && slices.Equal(a.GetMissingDependencies(), b.GetMissingDependencies()) &&
		a.GetRebalanceRequested() == b.GetRebalanceRequested() && a.GetRebalanced() == b.GetRebalanced() &&
		a.GetMeshFailedOver() == b.GetMeshFailedOver() &&
		targetString(a.GetMeshPreFailover()) == targetString(b.GetMeshPreFailover()) &&
		slices.Equal(a.GetFailedOverFrom(), b.GetFailedOverFrom()) &&
		a.GetAppFailoverNote() == b.GetAppFailoverNote() && a.GetAppFailover() == b.GetAppFailover() &&
		targetString(a.GetPreMigration()) == targetString(b.GetPreMigration()) &&
		slices.EqualFunc(a.GetMigrations(), b.GetMigrations(), func(x, y *shoalpb.Migration) bool { return proto.Equal(x, y) }) &&
		slices.EqualFunc(a.GetAppFailures(), b.GetAppFailures(), func(x, y *shoalpb.AppFailure) bool { return proto.Equal(x, y) }) &&
		slices.EqualFunc(a.GetPreserveRules(), b.GetPreserveRules(), func(x, y *shoalpb.PreserveRule) bool { return proto.Equal(x, y) })
}

// view is the mesh view given by SetMeshView, or nil.
func (l *Leader) view() MeshView {
	if p := l.meshView.Load(); p != nil {
		return *p
	}
	return nil
}
