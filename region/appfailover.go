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

// Application failover (a policy's failover.application, as Karmada's):
// a workload whose copy on a cluster has been Unhealthy for
// decisionConditions.tolerationSeconds (default 300 s) is moved off that
// cluster, while the cluster stays in use for every other workload.
//
//   - Unhealthy is the health the cluster's peer reads from the live object
//     (deploy's interpreter: a Deployment with ReplicaFailure or past its
//     progress deadline, a failed Job, replicas Pending for want of room,
//     ...). The time it has been so is kept by the state machine from its
//     log time (WorkStatus.UnhealthySinceUnixMs), so a new leader carries on
//     counting where the old one stopped. A status of another generation
//     than the template's does not count.
//   - Only a copy on a cluster that is itself usable fails over this way; a
//     failed cluster is cluster failover's business.
//   - A workload is never moved off a cluster when no other cluster can take
//     its replicas (Karmada evicts anyway and leaves it unscheduled): it
//     stays, and Binding.AppFailoverNote says why.
//   - purgeMode Directly removes the old copy at once; Gracefully keeps it
//     until the replacements are Ready or gracePeriodSeconds (default 600 s)
//     have passed, whichever is first; Never keeps it for as long as the
//     cluster is barred (the operator removes it: shoal rebalance, or a new
//     generation of the template).
//   - statePreservation: each rule's jsonPath is read from the old copy's
//     status by its peer (Binding.PreserveRules -> WorkStatus.Preserved);
//     the values become labels (aliasLabelName) on the copies of clusters
//     the workload did not run on before the failover. As in Karmada, the
//     failover waits while a rule cannot be read: a job restarted without
//     its checkpoint would redo its work. Karmada injects only with purgeMode
//     Directly and for a workload on one cluster; Shoal injects with every
//     purge mode and for any number of clusters (the labels always come
//     from the one copy that failed).
//
// Back to a failed cluster: the workload does not return to a cluster it
// failed over from until its copy there could be healthy again, which
// Shoal takes to be when something changed that the failure depended on:
// the template has a new generation (a fix), or the cluster failed and
// recovered (its record's StatusEpoch moved: repaired or restarted), or
// the operator asked (shoal rebalance). Until then the cluster is barred to
// this workload and `describe` lists it under "Application failover".

// Health values the state machine and the leader read (deploy's names).
const (
	healthHealthy   = "Healthy"
	healthUnhealthy = "Unhealthy"
)

// reasonAppFailover marks the eviction that keeps an unhealthy copy while
// its replacements start (purgeMode Gracefully or Never).
const reasonAppFailover = "application failover"

// appFailover is the application-failover part of one placement.
type appFailover struct {
	behavior *api.ApplicationFailoverBehavior
	// kept are earlier failures that still bar their clusters; fresh are
	// those decided in this pass.
	kept, fresh []*shoalpb.AppFailure
	note        string
}

// barred reports whether the workload may not be placed on cluster.
func (af *appFailover) barred(cluster string) bool {
	for _, f := range af.kept {
		if f.GetCluster() == cluster {
			return true
		}
	}
	for _, f := range af.fresh {
		if f.GetCluster() == cluster {
			return true
		}
	}
	return false
}

func (af *appFailover) all() []*shoalpb.AppFailure { return append(slices.Clone(af.kept), af.fresh...) }

// planAppFailover carries forward the failures of old that still bar
// their clusters and decides new ones from the statuses. own reports
// whether this region decides for a cluster (in the global split, only a
// cluster's own region fails a workload over from it; the others learn it
// from its summary).
func (l *Leader) planAppFailover(now time.Time, pol *api.Policy, generation int64, old *shoalpb.Binding, prev []Target,
	records map[string]*shoalpb.ClusterRecord, statuses []*shoalpb.WorkStatus, afresh func(string) bool, own func(string) bool) *appFailover {
	af := &appFailover{}
	if f := pol.Spec.Failover; f != nil {
		af.behavior = f.Application
	}
	if af.behavior == nil {
		return af
	}
	for _, f := range old.GetAppFailures() {
		rec := records[f.GetCluster()]
		switch {
		case rec == nil, f.GetGeneration() != generation, rec.GetStatusEpoch() != f.GetClusterEpoch():
			continue
		case afresh != nil && afresh(f.GetCluster()):
			continue
		}
		af.kept = append(af.kept, f)
	}
	byCluster := map[string]*shoalpb.WorkStatus{}
	for _, s := range statuses {
		byCluster[s.GetCluster()] = s
	}
	toleration := time.Duration(api.DefaultApplicationTolerationSeconds) * time.Second
	if t := af.behavior.DecisionConditions.TolerationSeconds; t != nil {
		toleration = time.Duration(*t) * time.Second
	}
	var before []string
	for _, t := range prev {
		before = append(before, t.Cluster)
	}
	var waiting []string
	for _, t := range prev {
		c := t.Cluster
		s := byCluster[c]
		if af.barred(c) || !own(c) || s.GetHealth() != healthUnhealthy || s.GetUnhealthySinceUnixMs() == 0 ||
			s.GetAppliedGeneration() != generation || EffectiveHealth(records[c]) != shoalpb.Health_HEALTH_READY {
			continue
		}
		since := time.UnixMilli(s.GetUnhealthySinceUnixMs())
		if at := since.Add(toleration); now.Before(at) {
			l.due(at)
			continue
		}
		labels, err := preservedLabels(af.behavior.StatePreservation, s)
		if err != nil {
			waiting = append(waiting, fmt.Sprintf("unhealthy on %s since %s, but %v", c, since.UTC().Format(time.RFC3339), err))
			continue
		}
		af.fresh = append(af.fresh, &shoalpb.AppFailure{
			Cluster: c, UnixMs: now.UnixMilli(), Generation: generation, ClusterEpoch: records[c].GetStatusEpoch(),
			PreservedLabels: labels, ClustersBefore: before, PurgeMode: string(purgeModeOf(af.behavior)),
			Reason: fmt.Sprintf("Unhealthy for %s: %s", now.Sub(since).Round(time.Second), s.GetReason()),
		})
	}
	af.note = strings.Join(waiting, "; ")
	return af
}

// purgeModeOf gives the behavior's purge mode by its current name.
func purgeModeOf(b *api.ApplicationFailoverBehavior) api.PurgeMode {
	switch b.PurgeMode {
	case api.PurgeModeImmediately, api.PurgeModeDirectly:
		return api.PurgeModeDirectly
	case api.PurgeModeNever:
		return api.PurgeModeNever
	}
	return api.PurgeModeGracefully
}

// preservedLabels gives the labels the statePreservation rules read from
// a copy's status, or why they cannot be read yet.
func preservedLabels(sp *api.StatePreservation, s *shoalpb.WorkStatus) (map[string]string, error) {
	if sp == nil || len(sp.Rules) == 0 {
		return nil, nil
	}
	if e := s.GetPreserveError(); e != "" {
		return nil, fmt.Errorf("its state cannot be read: %s", e)
	}
	out := make(map[string]string, len(sp.Rules))
	for _, r := range sp.Rules {
		v, ok := s.GetPreserved()[r.AliasLabelName]
		if !ok {
			return nil, fmt.Errorf("its state (%s) has not been reported yet", r.AliasLabelName)
		}
		out[r.AliasLabelName] = v
	}
	return out, nil
}

// preserveRules gives a policy's statePreservation rules for the peers.
func preserveRules(pol *api.Policy) []*shoalpb.PreserveRule {
	f := pol.Spec.Failover
	if f == nil || f.Application == nil || f.Application.StatePreservation == nil {
		return nil
	}
	var out []*shoalpb.PreserveRule
	for _, r := range f.Application.StatePreservation.Rules {
		out = append(out, &shoalpb.PreserveRule{AliasLabelName: r.AliasLabelName, JsonPath: r.JSONPath})
	}
	return out
}

// appEvictions adds, for each cluster failed over from in this pass, the
// eviction that keeps its copy while the replacements start (Gracefully,
// Never); with Directly the copy goes at once.
func appEvictions(now time.Time, af *appFailover, prev []Target, evictions []*shoalpb.Eviction) []*shoalpb.Eviction {
	for _, f := range af.fresh {
		if f.GetPurgeMode() == string(api.PurgeModeDirectly) {
			evictions = slices.DeleteFunc(evictions, func(e *shoalpb.Eviction) bool { return e.GetCluster() == f.GetCluster() })
			continue
		}
		if slices.ContainsFunc(evictions, func(e *shoalpb.Eviction) bool { return e.GetCluster() == f.GetCluster() }) {
			continue
		}
		for _, t := range prev {
			if t.Cluster == f.GetCluster() {
				evictions = append(evictions, &shoalpb.Eviction{Cluster: t.Cluster, Replicas: t.Replicas,
					Reason: reasonAppFailover, CreatedUnixMs: now.UnixMilli()})
			}
		}
	}
	slices.SortFunc(evictions, func(a, b *shoalpb.Eviction) int { return strings.Compare(a.GetCluster(), b.GetCluster()) })
	return evictions
}

// appFailureOf gives b's application failure of cluster, or nil.
func appFailureOf(b *shoalpb.Binding, cluster string) *shoalpb.AppFailure {
	for _, f := range b.GetAppFailures() {
		if f.GetCluster() == cluster {
			return f
		}
	}
	return nil
}

// appEvictionKept reports whether an application-failover eviction stays
// although the replacements are Ready: purgeMode Never, while the cluster
// is barred.
func appEvictionKept(b *shoalpb.Binding, e *shoalpb.Eviction) bool {
	if e.GetReason() != reasonAppFailover {
		return false
	}
	f := appFailureOf(b, e.GetCluster())
	return f != nil && f.GetPurgeMode() == string(api.PurgeModeNever)
}

// expireAppEvictions drops the application-failover evictions (purgeMode
// Gracefully) whose grace period is over, Ready replacements or not.
func (l *Leader) expireAppEvictions(now time.Time, pol *api.Policy, b *shoalpb.Binding) {
	f := pol.Spec.Failover
	if f == nil || f.Application == nil || f.Application.GracePeriodSeconds == nil {
		return
	}
	grace := time.Duration(*f.Application.GracePeriodSeconds) * time.Second
	b.Evictions = slices.DeleteFunc(b.Evictions, func(e *shoalpb.Eviction) bool {
		if e.GetReason() != reasonAppFailover || appEvictionKept(b, e) {
			return false
		}
		end := time.UnixMilli(e.GetCreatedUnixMs()).Add(grace)
		if now.Before(end) {
			l.due(end)
			return false
		}
		return true
	})
}

// InjectedLabels gives the labels application failover's statePreservation
// puts on the copy of b on cluster: those of each failure of another
// cluster that the workload did not run on before it, later failures
// winning.
func InjectedLabels(b *shoalpb.Binding, cluster string) map[string]string {
	var out map[string]string
	for _, f := range b.GetAppFailures() {
		if f.GetCluster() == cluster || slices.Contains(f.GetClustersBefore(), cluster) || len(f.GetPreservedLabels()) == 0 {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		for k, v := range f.GetPreservedLabels() {
			out[k] = v
		}
	}
	return out
}

// qualifyAppFailures names a region's own failures mesh-wide.
func qualifyAppFailures(region string, fs []*shoalpb.AppFailure) []*shoalpb.AppFailure {
	var out []*shoalpb.AppFailure
	for _, f := range fs {
		if strings.Contains(f.GetCluster(), "/") {
			continue // another region's, as this region last saw it
		}
		q := proto.Clone(f).(*shoalpb.AppFailure)
		q.Cluster = QualifiedName(region, f.GetCluster())
		for i, c := range q.ClustersBefore {
			if !strings.Contains(c, "/") {
				q.ClustersBefore[i] = QualifiedName(region, c)
			}
		}
		out = append(out, q)
	}
	return out
}

// localAppFailures names the region's own failures by their cluster names
// and keeps the others' qualified (their labels may go to this region's
// clusters).
func localAppFailures(region string, fs []*shoalpb.AppFailure) []*shoalpb.AppFailure {
	prefix := region + "/"
	out := make([]*shoalpb.AppFailure, 0, len(fs))
	for _, f := range fs {
		q := proto.Clone(f).(*shoalpb.AppFailure)
		q.Cluster = strings.TrimPrefix(q.Cluster, prefix)
		for i, c := range q.ClustersBefore {
			q.ClustersBefore[i] = strings.TrimPrefix(c, prefix)
		}
		out = append(out, q)
	}
	return out
}
