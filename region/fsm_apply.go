package region

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// EffectiveHealth is a cluster's health as placement sees it: Unreachable
// while the leader has its peer dead, otherwise what the peer reports.
func EffectiveHealth(c *shoalpb.ClusterRecord) shoalpb.Health {
	if c == nil {
		return shoalpb.Health_HEALTH_UNKNOWN
	}
	if !c.GetReachable() {
		return shoalpb.Health_HEALTH_UNREACHABLE
	}
	return c.GetReportedHealth()
}

// HealthName gives a health as the API shows it: Ready, NotReady,
// Unreachable or Unknown.
func HealthName(h shoalpb.Health) string {
	switch h {
	case shoalpb.Health_HEALTH_READY:
		return "Ready"
	case shoalpb.Health_HEALTH_NOT_READY:
		return "NotReady"
	case shoalpb.Health_HEALTH_UNREACHABLE:
		return "Unreachable"
	}
	return "Unknown"
}

func (a *applier) reportCluster(c *shoalpb.ReportCluster) error {
	r := c.GetCluster()
	if r.GetName() == "" {
		return fmt.Errorf("%w: cluster report without a name", ErrBadCommand)
	}
	old := a.st.clusters[r.GetName()]
	n := proto.Clone(r).(*shoalpb.ClusterRecord)
	n.LastReportUnixMs = a.now
	if old == nil {
		n.Reachable = true
		n.JoinedUnixMs = a.now
		n.HealthSinceUnixMs = a.now
		n.Taints = nil
		n.UnreachableSinceUnixMs = 0
		a.event(nil, n.GetName(), "Normal", "ClusterJoined",
			fmt.Sprintf("cluster %s joined region %s (%s, provider %q)", n.GetName(), n.GetRegion(), joinedZones(n), n.GetProvider()))
	} else {
		// The leader owns reachability and taints; a report never overrides them.
		n.Reachable = old.GetReachable()
		n.Taints = old.GetTaints()
		n.JoinedUnixMs = old.GetJoinedUnixMs()
		n.UnreachableSinceUnixMs = old.GetUnreachableSinceUnixMs()
		n.HealthSinceUnixMs = old.GetHealthSinceUnixMs()
		n.StatusEpoch = old.GetStatusEpoch()
		if old.GetReportedHealth() == shoalpb.Health_HEALTH_READY && n.GetReportedHealth() != shoalpb.Health_HEALTH_READY {
			// Its replicas may stop while it is NotReady: what it
			// reported before no longer says what runs.
			a.forgetReadiness(n)
		}
		if EffectiveHealth(n) != EffectiveHealth(old) {
			n.HealthSinceUnixMs = a.now
			a.event(nil, n.GetName(), healthEventType(EffectiveHealth(n)), "ClusterHealth",
				fmt.Sprintf("cluster %s is %s: %s", n.GetName(), HealthName(EffectiveHealth(n)), n.GetHealthReason()))
		}
	}
	a.st.clusters[n.GetName()] = n
	if old == nil || !sameClusterFacts(old, n) {
		a.st.rev.Clusters = a.index
	}
	a.changed = true
	return nil
}

func healthEventType(h shoalpb.Health) string {
	if h == shoalpb.Health_HEALTH_READY {
		return "Normal"
	}
	return "Warning"
}

// joinedZones says where a joining cluster sits for its event: `zone "a"`
// as peers before zone lists wrote it (so that they and newer peers applying
// the same command record the same event), or `zones "a,b"`.
func joinedZones(r *shoalpb.ClusterRecord) string {
	zs := api.ZonesOf(r.GetZone(), r.GetZones())
	if len(zs) > 1 {
		return fmt.Sprintf("zones %q", strings.Join(zs, ","))
	}
	return fmt.Sprintf("zone %q", api.FirstZone(zs))
}

// sameClusterFacts reports whether two records agree on everything placement
// depends on (not on report times).
func sameClusterFacts(a, b *shoalpb.ClusterRecord) bool {
	x := proto.Clone(a).(*shoalpb.ClusterRecord)
	y := proto.Clone(b).(*shoalpb.ClusterRecord)
	x.LastReportUnixMs, y.LastReportUnixMs = 0, 0
	return proto.Equal(x, y)
}

func (a *applier) setClusterState(c *shoalpb.SetClusterState) error {
	old := a.st.clusters[c.GetName()]
	if old == nil {
		return fmt.Errorf("%w: no cluster %q in the region", ErrBadCommand, c.GetName())
	}
	n := proto.Clone(old).(*shoalpb.ClusterRecord)
	n.Reachable = c.GetReachable()
	n.Taints = nil
	for _, t := range c.GetTaints() {
		t = proto.Clone(t).(*shoalpb.Taint)
		if t.GetAddedUnixMs() == 0 {
			t.AddedUnixMs = a.now
		}
		n.Taints = append(n.Taints, t)
	}
	switch {
	case !n.Reachable && old.GetReachable():
		n.UnreachableSinceUnixMs = a.now
		a.forgetReadiness(n)
	case n.Reachable:
		n.UnreachableSinceUnixMs = 0
	}
	if EffectiveHealth(n) != EffectiveHealth(old) {
		n.HealthSinceUnixMs = a.now
		a.event(nil, n.GetName(), healthEventType(EffectiveHealth(n)), "ClusterHealth",
			fmt.Sprintf("cluster %s is %s", n.GetName(), HealthName(EffectiveHealth(n))))
	}
	if taintString(old.GetTaints()) != taintString(n.GetTaints()) {
		a.event(nil, n.GetName(), "Normal", "ClusterTaints",
			fmt.Sprintf("cluster %s taints: %s", n.GetName(), orNone(taintString(n.GetTaints()))))
	}
	if sameClusterFacts(old, n) {
		return nil
	}
	a.st.clusters[n.GetName()] = n
	a.st.rev.Clusters = a.index
	a.changed = true
	return nil
}

// forgetReadiness marks what a cluster last reported as unknown once its
// peer is unreachable or the cluster NotReady: its replicas may or may not
// still run, and a stale "Ready" must not count as a replacement being
// Ready. The record's StatusEpoch moves, so that its peer reports every
// status again once it can (the record c is the new one, being stored).
func (a *applier) forgetReadiness(c *shoalpb.ClusterRecord) {
	c.StatusEpoch++
	cluster := c.GetName()
	for _, m := range a.st.statuses {
		old := m[cluster]
		if old == nil {
			continue
		}
		n := proto.Clone(old).(*shoalpb.WorkStatus)
		n.ReadyReplicas = 0
		n.Health = "Unknown"
		n.Reason = "cluster failed; last report " + time.UnixMilli(old.GetObservedUnixMs()).UTC().Format(time.RFC3339)
		m[cluster] = n
		a.st.rev.Statuses = a.index
	}
}

func taintString(ts []*shoalpb.Taint) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		s := t.GetKey()
		if t.GetValue() != "" {
			s += "=" + t.GetValue()
		}
		parts = append(parts, s+":"+t.GetEffect())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (a *applier) removeCluster(c *shoalpb.RemoveCluster) error {
	return a.dropCluster(c.GetName(), "ClusterRemoved", "removed from the region")
}

// leaveRegion is a peer's own leave (shoal leave): its cluster goes at
// once, its workloads move.
func (a *applier) leaveRegion(c *shoalpb.LeaveRegion) error {
	if c.GetCluster() == "" {
		return fmt.Errorf("%w: leave without a cluster", ErrBadCommand)
	}
	return a.dropCluster(c.GetCluster(), "ClusterLeft", "left the region")
}

func (a *applier) dropCluster(name, reason, what string) error {
	if _, ok := a.st.clusters[name]; !ok {
		return nil
	}
	delete(a.st.clusters, name)
	for w, m := range a.st.statuses {
		delete(m, name)
		if len(m) == 0 {
			delete(a.st.statuses, w)
		}
	}
	a.event(nil, name, "Normal", reason, fmt.Sprintf("cluster %s %s", name, what))
	a.st.rev.Clusters = a.index
	a.st.rev.Statuses = a.index
	return nil
}

func (a *applier) setBindings(c *shoalpb.SetBindings) error {
	for _, b := range c.GetBindings() {
		if err := validKey(b.GetWorkload()); err != nil {
			return err
		}
	}
	for _, k := range c.GetRemove() {
		ks := api.KeyFromProto(k).String()
		if _, ok := a.st.bindings[ks]; ok {
			delete(a.st.bindings, ks)
			a.st.rev.Bindings = a.index
			a.changed = true
		}
	}
	for _, b := range c.GetBindings() {
		ks := api.KeyFromProto(b.GetWorkload()).String()
		old := a.st.bindings[ks]
		n := proto.Clone(b).(*shoalpb.Binding)
		n.ScheduledUnixMs = old.GetScheduledUnixMs()
		if old == nil || targetString(old.GetClusters()) != targetString(n.GetClusters()) || old.GetUnschedulable() != n.GetUnschedulable() {
			n.ScheduledUnixMs = a.now
			if n.GetUnschedulable() {
				a.event(b.GetWorkload(), "", "Warning", "Unschedulable", n.GetReason())
			} else {
				a.event(b.GetWorkload(), "", "Normal", "Scheduled", fmt.Sprintf("%s (%s)", orNone(targetString(n.GetClusters())), n.GetReason()))
			}
		}
		oldEv, newEv := evictionString(old.GetEvictions()), evictionString(n.GetEvictions())
		if oldEv != newEv {
			if newEv == "" {
				a.event(b.GetWorkload(), "", "Normal", "EvictionDone", "replacements are Ready; old replicas released on "+oldEv)
			} else {
				a.event(b.GetWorkload(), "", "Normal", "GracefulEviction", "keeping old replicas until replacements are Ready: "+newEv)
			}
		}
		for _, f := range n.GetAppFailures() {
			if appFailureOf(old, f.GetCluster()) == nil {
				a.event(b.GetWorkload(), f.GetCluster(), "Warning", "ApplicationFailover",
					fmt.Sprintf("moved off %s: %s (purgeMode %s)", f.GetCluster(), f.GetReason(), f.GetPurgeMode()))
			}
		}
		if note := n.GetAppFailoverNote(); note != "" && note != old.GetAppFailoverNote() {
			a.event(b.GetWorkload(), "", "Warning", "ApplicationFailoverWaiting", note)
		}
		// Migrations are the Migrate command's alone.
		n.Migrations = old.GetMigrations()
		// A Rebalance committed after the leader read the binding is not
		// lost to the leader's write.
		n.RebalanceRequested = max(n.GetRebalanceRequested(), old.GetRebalanceRequested())
		if n.GetRebalanced() > old.GetRebalanced() {
			a.event(b.GetWorkload(), "", "Normal", "Rebalanced", "placed afresh (shoal rebalance): "+orNone(targetString(n.GetClusters())))
		}
		if old != nil && proto.Equal(old, n) {
			continue
		}
		a.st.bindings[ks] = n
		a.st.rev.Bindings = a.index
		a.changed = true
	}
	return nil
}

func targetString(ts []*shoalpb.TargetCluster) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s=%d", t.GetName(), t.GetReplicas()))
	}
	return strings.Join(parts, ", ")
}

func evictionString(es []*shoalpb.Eviction) string {
	parts := make([]string, 0, len(es))
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%s=%d", e.GetCluster(), e.GetReplicas()))
	}
	return strings.Join(parts, ", ")
}

func (a *applier) reportStatus(c *shoalpb.ReportStatus) error {
	cluster := c.GetCluster()
	if cluster == "" {
		return fmt.Errorf("%w: status report without a cluster", ErrBadCommand)
	}
	for _, s := range c.GetStatuses() {
		if err := validKey(s.GetWorkload()); err != nil {
			return err
		}
	}
	for _, k := range c.GetRemoved() {
		ks := api.KeyFromProto(k).String()
		if m := a.st.statuses[ks]; m != nil {
			if _, ok := m[cluster]; ok {
				delete(m, cluster)
				if len(m) == 0 {
					delete(a.st.statuses, ks)
				}
				if _, live := a.st.objects[ks]; live {
					a.event(k, cluster, "Normal", "Removed", "removed from cluster "+cluster)
				}
				a.st.rev.Statuses = a.index
				a.changed = true
			}
		}
	}
	for _, s := range c.GetStatuses() {
		ks := api.KeyFromProto(s.GetWorkload()).String()
		m := a.st.statuses[ks]
		if m == nil {
			m = map[string]*shoalpb.WorkStatus{}
			a.st.statuses[ks] = m
		}
		old := m[cluster]
		n := proto.Clone(s).(*shoalpb.WorkStatus)
		n.Workload = a.sharedKey(ks, n.GetWorkload())
		n.Cluster = cluster
		n.ObservedUnixMs = a.now
		n.UnhealthySinceUnixMs = 0
		if n.GetHealth() == healthUnhealthy {
			n.UnhealthySinceUnixMs = a.now
			if old.GetHealth() == healthUnhealthy && old.GetUnhealthySinceUnixMs() > 0 {
				n.UnhealthySinceUnixMs = old.GetUnhealthySinceUnixMs()
			}
		}
		if old.GetHealth() != n.GetHealth() || old.GetError() != n.GetError() {
			typ := "Normal"
			msg := fmt.Sprintf("%d/%d replicas ready on %s", n.GetReadyReplicas(), n.GetReplicas(), cluster)
			if n.GetError() != "" {
				typ, msg = "Warning", fmt.Sprintf("on %s: %s", cluster, n.GetError())
			} else if n.GetReason() != "" && n.GetHealth() != "Healthy" {
				msg += ": " + n.GetReason()
			}
			a.event(s.GetWorkload(), cluster, typ, n.GetHealth(), msg)
		}
		m[cluster] = n
		a.st.rev.Statuses = a.index
		a.changed = true
	}
	return nil
}

// rebalance marks workloads for a fresh placement (shoal rebalance). Every
// one must be a template the region holds and places; otherwise nothing
// is marked.
func (a *applier) rebalance(c *shoalpb.Rebalance) error {
	if len(c.GetWorkloads()) == 0 {
		return fmt.Errorf("%w: rebalance names no workload", ErrBadCommand)
	}
	var marked []*shoalpb.Binding
	for _, k := range c.GetWorkloads() {
		if err := validKey(k); err != nil {
			return err
		}
		key := api.KeyFromProto(k)
		if o := a.st.objects[key.String()]; o == nil || o.GetDeleted() {
			return fmt.Errorf("%w: no template %s to rebalance", ErrBadCommand, key.Display())
		}
		b := a.st.bindings[key.String()]
		if b == nil {
			continue // not placed yet: its first placement is a fresh one
		}
		if b.GetPolicy() == "" {
			return fmt.Errorf("%w: %s is not placed (no policy selects it): nothing to rebalance", ErrBadCommand, key.Display())
		}
		n := proto.Clone(b).(*shoalpb.Binding)
		n.RebalanceRequested = int64(a.index)
		marked = append(marked, n)
	}
	for _, n := range marked {
		a.st.bindings[api.KeyFromProto(n.GetWorkload()).String()] = n
		a.event(n.GetWorkload(), "", "Normal", "RebalanceRequested", "a fresh placement was asked for (shoal rebalance)")
	}
	a.st.rev.Bindings = a.index
	a.changed = true
	return nil
}
