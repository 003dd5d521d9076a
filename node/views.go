package node

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/region"
)

func msTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func (p *Peer) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.StatusView())
}

// StatusView is the region as this peer sees it.
func (p *Peer) StatusView() api.StatusView {
	st := p.raft.Status()
	v := api.StatusView{
		Region: p.cfg.Region, Cluster: p.cfg.Cluster, State: st.State, Leader: st.Leader,
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Version: Version,
		Held: p.reconciler.Held(), WithheldChanges: int(p.reconciler.WithheldChanges()),
	}
	if stale, since := p.raft.Stale(); stale {
		v.Stale, v.StaleSince = true, &since
	}
	if off := p.clock.Offset(); off != 0 {
		v.ClockOffset = off.String()
	}
	servers := map[string]struct {
		suffrage string
		leader   bool
	}{}
	for _, s := range st.Servers {
		servers[s.ID] = struct {
			suffrage string
			leader   bool
		}{s.Suffrage, s.Leader}
	}
	health := map[string]string{}
	p.fsm.Read(func(s *region.State) {
		for _, c := range s.Clusters() {
			health[c.GetName()] = region.HealthName(region.EffectiveHealth(c))
		}
	})
	seen := map[string]bool{}
	for _, m := range p.pool.Members() {
		pv := api.PeerView{Cluster: m.Name, Gossip: m.State.String(), Health: health[m.Name]}
		if m.Meta != nil {
			pv.RaftAddr, pv.HTTPAddr = m.Meta.GetRaftAddr(), m.Meta.GetHttpAddr()
		}
		if s, ok := servers[m.Name]; ok {
			pv.Suffrage, pv.Leader = s.suffrage, s.leader
		}
		if m.Name == st.Leader {
			v.LeaderHTTP = pv.HTTPAddr
		}
		seen[m.Name] = true
		v.Peers = append(v.Peers, pv)
	}
	for _, s := range st.Servers {
		if !seen[s.ID] {
			v.Peers = append(v.Peers, api.PeerView{Cluster: s.ID, Gossip: "unknown", RaftAddr: s.Addr, Suffrage: s.Suffrage, Leader: s.Leader, Health: health[s.ID]})
		}
	}
	sort.Slice(v.Peers, func(i, j int) bool { return v.Peers[i].Cluster < v.Peers[j].Cluster })
	v.WANAddr = p.wan.Addr()
	now := p.clock.Now()
	p.fsm.Read(func(s *region.State) {
		for _, r := range s.Regions() {
			rv := api.RegionView{Name: r.GetSummary().GetRegion(), State: "alive", Since: msTime(r.GetStateSinceUnixMs()),
				Reason: r.GetReason(), LastHeard: msTime(r.GetHeardUnixMs()), Leader: r.GetSummary().GetLeader(),
				Clusters: len(r.GetSummary().GetClusters()), Edge: r.GetSummary().GetEdge()}
			if r.GetDead() {
				rv.State = "dead"
			}
			if r.GetHeardUnixMs() > 0 {
				rv.Age = now.Sub(time.UnixMilli(r.GetHeardUnixMs())).Round(time.Millisecond).String()
			}
			v.Regions = append(v.Regions, rv)
		}
	})
	ms := p.mesh.Stats()
	v.Mesh = &api.MeshView{ObjectsSent: ms.ObjectsSent, BytesSent: ms.BytesSent, ObjectsMerged: ms.ObjectsMerged,
		Syncs: ms.Syncs, FullSyncs: ms.FullSyncs, QuickRetries: ms.QuickRetries, Hedged: ms.Hedged, Refused: ms.Refused, ObjectsReceived: ms.ObjectsReceived, BytesReceived: ms.BytesReceived}
	p.fsm.Read(func(s *region.State) {
		v.Mesh.Digest, v.Mesh.Objects = hex.EncodeToString(s.Digest()), s.ObjectCount()
	})
	for who := range p.mesh.Skewed() {
		v.Mesh.Skewed = append(v.Mesh.Skewed, who)
	}
	sort.Strings(v.Mesh.Skewed)
	return v
}

// remoteFreshness says how old a remote region's word is and whether it
// is past the status bound (or the region is dead): then nothing it said
// shows as Ready.
func (p *Peer) remoteFreshness(r *shoalpb.RemoteRegion, now time.Time) (age time.Duration, stale bool, why string) {
	age = now.Sub(time.UnixMilli(r.GetHeardUnixMs()))
	name := r.GetSummary().GetRegion()
	switch {
	case r.GetDead():
		return age, true, fmt.Sprintf("region %s is dead for placement (last heard %s ago)", name, age.Round(time.Second))
	case age > p.cfg.StatusBound:
		return age, true, fmt.Sprintf("region %s last heard %s ago (bound %s)", name, age.Round(time.Second), p.cfg.StatusBound)
	}
	return age, false, ""
}

func clusterView(c *shoalpb.ClusterRecord, workloads int) api.ClusterView {
	zones := api.ZonesOf(c.GetZone(), c.GetZones())
	v := api.ClusterView{
		Name: c.GetName(), Region: c.GetRegion(), Zone: api.FirstZone(zones), Zones: zones, Provider: c.GetProvider(), Labels: c.GetLabels(),
		Taints: []api.TaintView{}, Health: region.HealthName(region.EffectiveHealth(c)), HealthReason: c.GetHealthReason(),
		HealthSince: msTime(c.GetHealthSinceUnixMs()), Edge: c.GetEdge(), LastReport: msTime(c.GetLastReportUnixMs()),
		Workloads: workloads, Address: c.GetHttpAddr(),
	}
	if !c.GetReachable() {
		v.HealthReason = "peer unreachable (gossip marks it dead)"
	}
	for _, t := range c.GetTaints() {
		v.Taints = append(v.Taints, api.TaintView{Key: t.GetKey(), Value: t.GetValue(), Effect: t.GetEffect(), TimeAdded: msTime(t.GetAddedUnixMs())})
	}
	if cp := c.GetCapacity(); cp != nil {
		v.Capacity.Nodes = cp.GetNodes()
		v.Capacity.Allocatable = api.Resources{CPUMilli: cp.GetAllocatable().GetCpuMilli(), MemoryBytes: cp.GetAllocatable().GetMemoryBytes(), Pods: cp.GetAllocatable().GetPods()}
		v.Capacity.Available = api.Resources{CPUMilli: cp.GetAvailable().GetCpuMilli(), MemoryBytes: cp.GetAvailable().GetMemoryBytes(), Pods: cp.GetAvailable().GetPods()}
	}
	return v
}

func (p *Peer) handleClusters(w http.ResponseWriter, r *http.Request) {
	out := []api.ClusterView{}
	p.fsm.Read(func(s *region.State) {
		counts := map[string]int{}
		for _, b := range s.Bindings() {
			for _, t := range b.GetClusters() {
				counts[t.GetName()]++
			}
		}
		for _, c := range s.Clusters() {
			out = append(out, clusterView(c, counts[c.GetName()]))
		}
		now := p.clock.Now()
		for _, r := range s.Regions() {
			age, stale, why := p.remoteFreshness(r, now)
			rc := map[string]int{}
			for _, b := range r.GetSummary().GetBindings() {
				for _, t := range b.GetClusters() {
					rc[t.GetName()]++
				}
			}
			for _, c := range r.GetSummary().GetClusters() {
				cv := clusterView(c, rc[c.GetName()])
				cv.Age = age.Round(time.Millisecond).String()
				if stale {
					cv.Health, cv.HealthReason = "Unknown", why
				}
				out = append(out, cv)
			}
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// workloadView builds a workload's view from the state.
func workloadView(s *region.State, o *shoalpb.Object) api.WorkloadView {
	k := api.KeyFromProto(o.GetKey())
	v := api.WorkloadView{APIVersion: k.APIVersion, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name,
		Generation: o.GetGeneration(), Placements: []api.PlacementView{}}
	if t, err := api.ParseTemplate(o.GetManifest()); err == nil {
		v.WithoutReplicas = !t.HasReplicas
		v.DesiredReplicas = t.Replicas // 0 without replicas
	}
	b := s.Binding(k)
	if b == nil {
		v.Reason = "not scheduled yet"
		return v
	}
	v.Policy, v.Unschedulable, v.Reason, v.FailedOverFrom = b.GetPolicy(), b.GetUnschedulable(), b.GetReason(), b.GetFailedOverFrom()
	v.RequiredBy, v.MissingDependencies = b.GetRequiredBy(), b.GetMissingDependencies()
	v.ApplicationFailoverNote = b.GetAppFailoverNote()
	for _, m := range b.GetMigrations() {
		v.Migrations = append(v.Migrations, m.GetFrom()+" -> "+m.GetTo())
	}
	for _, f := range b.GetAppFailures() {
		v.ApplicationFailover = append(v.ApplicationFailover, api.AppFailoverView{
			Cluster: f.GetCluster(), Time: time.UnixMilli(f.GetUnixMs()).UTC().Format(time.RFC3339),
			Reason: f.GetReason(), PurgeMode: f.GetPurgeMode(), PreservedLabels: f.GetPreservedLabels(),
			Until: fmt.Sprintf("a new generation of the template (now %d), the cluster recovering from a failure, or shoal rebalance", f.GetGeneration()),
		})
	}
	place := func(cluster string, replicas int32, evicting, held bool) {
		pv := api.PlacementView{Cluster: cluster, Replicas: replicas, Health: "Pending", Evicting: evicting, Held: held}
		if c := s.Cluster(cluster); c != nil {
			pv.Region = c.GetRegion()
		}
		if st := s.Status(k, cluster); st != nil {
			pv.ReadyReplicas, pv.Health, pv.Reason, pv.Error, pv.AppliedGeneration, pv.Overrides =
				st.GetReadyReplicas(), st.GetHealth(), st.GetReason(), st.GetError(), st.GetAppliedGeneration(), st.GetAppliedOverrides()
			if !evicting && st.GetAppliedGeneration() == o.GetGeneration() {
				v.ReadyReplicas += min(st.GetReadyReplicas(), replicas)
				if st.GetHealth() == deploy.HealthHealthy {
					v.ReadyClusters++
				}
			}
		}
		v.Placements = append(v.Placements, pv)
	}
	v.BoundClusters = len(b.GetClusters())
	for _, t := range b.GetClusters() {
		v.BoundReplicas += t.GetReplicas()
		place(t.GetName(), t.GetReplicas(), false, false)
	}
	for _, e := range b.GetEvictions() {
		place(e.GetCluster(), e.GetReplicas(), true, region.IsHeld(b, e))
	}
	return v
}

// isTemplate is true for objects that are workloads, not policies.
func isTemplate(o *shoalpb.Object) bool { return !api.KeyFromProto(o.GetKey()).IsPolicy() }

// meshWorkloadView is a workload's view with its placements in every
// region: this region's from its own state, the others' from their
// summaries (Unknown, with no Ready replicas, past the status bound).
func (p *Peer) meshWorkloadView(s *region.State, o *shoalpb.Object, ri *remoteIndex) api.WorkloadView {
	v := workloadView(s, o)
	for _, rs := range ri.shares[api.KeyFromProto(o.GetKey()).String()] {
		rr, b := rs.region, rs.binding
		if v.Reason == "not scheduled yet" {
			v.Reason = ""
		}
		if !rr.stale {
			// A region past the bound (or dead) may no longer run
			// what it last said: its share is not counted as bound.
			v.BoundClusters += len(b.GetClusters())
		}
		for _, t := range b.GetClusters() {
			if !rr.stale {
				v.BoundReplicas += t.GetReplicas()
			}
			pv := api.PlacementView{Cluster: t.GetName(), Region: rr.name, Replicas: t.GetReplicas(), Health: "Pending",
				Age: rr.age.Round(time.Millisecond).String()}
			if st := rs.statuses[t.GetName()]; st != nil {
				pv.ReadyReplicas, pv.Health, pv.Reason, pv.Error, pv.AppliedGeneration, pv.Overrides =
					st.GetReadyReplicas(), st.GetHealth(), st.GetReason(), st.GetError(), st.GetAppliedGeneration(), st.GetAppliedOverrides()
				if !rr.stale && st.GetAppliedGeneration() == b.GetGeneration() {
					v.ReadyReplicas += min(st.GetReadyReplicas(), t.GetReplicas())
					if st.GetHealth() == deploy.HealthHealthy {
						v.ReadyClusters++
					}
				}
			}
			if rr.stale {
				pv.Health, pv.ReadyReplicas, pv.Reason = "Unknown", 0, rr.why
			}
			v.Placements = append(v.Placements, pv)
		}
	}
	return v
}

// remoteIndex is what the other regions' summaries say, indexed once per
// request: each region's freshness, and each workload's share by key.
type remoteIndex struct {
	shares map[string][]remoteShare
}

type remoteRegionView struct {
	name  string
	age   time.Duration
	stale bool
	why   string
}

// remoteShare is one region's binding of a workload and its statuses by
// cluster.
type remoteShare struct {
	region   *remoteRegionView
	binding  *shoalpb.Binding
	statuses map[string]*shoalpb.WorkStatus
}

func (p *Peer) indexRemotes(s *region.State, now time.Time) *remoteIndex {
	ri := &remoteIndex{shares: map[string][]remoteShare{}}
	for _, r := range s.Regions() {
		rr := &remoteRegionView{name: r.GetSummary().GetRegion()}
		rr.age, rr.stale, rr.why = p.remoteFreshness(r, now)
		statuses := map[string]map[string]*shoalpb.WorkStatus{}
		for _, st := range r.GetSummary().GetStatuses() {
			ks := api.KeyFromProto(st.GetWorkload()).String()
			if statuses[ks] == nil {
				statuses[ks] = map[string]*shoalpb.WorkStatus{}
			}
			statuses[ks][st.GetCluster()] = st
		}
		for _, b := range r.GetSummary().GetBindings() {
			ks := api.KeyFromProto(b.GetWorkload()).String()
			ri.shares[ks] = append(ri.shares[ks], remoteShare{region: rr, binding: b, statuses: statuses[ks]})
		}
	}
	return ri
}

func (p *Peer) handleWorkloads(w http.ResponseWriter, r *http.Request) {
	out := []api.WorkloadView{}
	now := p.clock.Now()
	p.fsm.Read(func(s *region.State) {
		ri := p.indexRemotes(s, now)
		for _, o := range s.Objects() {
			if isTemplate(o) {
				out = append(out, p.meshWorkloadView(s, o, ri))
			}
		}
	})
	writeJSON(w, http.StatusOK, out)
}

func eventViews(evs []*shoalpb.Event) []api.EventView {
	out := make([]api.EventView, 0, len(evs))
	for _, e := range evs {
		ev := api.EventView{Time: msTime(e.GetUnixMs()), Type: e.GetType(), Reason: e.GetReason(), Cluster: e.GetCluster(), Message: e.GetMessage()}
		if e.GetWorkload() != nil {
			ev.Object = api.KeyFromProto(e.GetWorkload()).Display()
		}
		out = append(out, ev)
	}
	return out
}

// handleDescribe finds workloads by namespace and name (and kind and
// apiVersion when given) and returns each in detail.
func (p *Peer) handleDescribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, errors.New("name is a required query parameter"))
		return
	}
	out := []api.WorkloadDetail{}
	p.fsm.Read(func(s *region.State) {
		for _, o := range s.Objects() {
			k := api.KeyFromProto(o.GetKey())
			if !isTemplate(o) || k.Name != name || k.Namespace != q.Get("namespace") ||
				(q.Get("kind") != "" && !strings.EqualFold(q.Get("kind"), k.Kind)) ||
				(q.Get("apiVersion") != "" && q.Get("apiVersion") != k.APIVersion) {
				continue
			}
			d := api.WorkloadDetail{WorkloadView: p.meshWorkloadView(s, o, p.indexRemotes(s, p.clock.Now())), Events: eventViews(withConflicts(s, k))}
			if b := s.Binding(k); b != nil {
				d.AffinityTerm, d.Scheduled = b.GetAffinityTerm(), msTime(b.GetScheduledUnixMs())
			}
			var m any
			if json.Unmarshal(o.GetManifest(), &m) == nil {
				d.Manifest = m
			}
			out = append(out, d)
		}
	})
	if len(out) == 0 {
		writeError(w, http.StatusNotFound, fmt.Errorf("no workload %s", joinNS(q.Get("namespace"), name)))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Peer) handlePolicies(w http.ResponseWriter, r *http.Request) {
	out := []api.PolicyView{}
	p.fsm.Read(func(s *region.State) {
		var templates []*api.Template
		var props []*api.Policy
		var views []api.PolicyView
		props2view := map[*api.Policy]int{}
		var overrides []*api.OverridePolicy
		over2view := map[*api.OverridePolicy]int{}
		for _, o := range s.Objects() {
			k := api.KeyFromProto(o.GetKey())
			switch {
			case k.IsPropagationPolicy():
				pol, warns, err := api.DecodePolicy(o.GetManifest())
				if err != nil {
					continue
				}
				pv := api.PolicyView{Kind: pol.Kind, Namespace: pol.Namespace, Name: pol.Name, Generation: o.GetGeneration(), Warnings: warns, Spec: pol.Spec}
				if pol.Spec.Priority != nil {
					pv.Priority = *pol.Spec.Priority
				}
				props2view[pol] = len(views)
				props = append(props, pol)
				views = append(views, pv)
			case k.IsOverridePolicy():
				op, warns, err := api.DecodeOverridePolicy(o.GetManifest())
				if err != nil {
					continue
				}
				over2view[op] = len(views)
				overrides = append(overrides, op)
				views = append(views, api.PolicyView{Kind: op.Kind, Namespace: op.Namespace, Name: op.Name, Generation: o.GetGeneration(), Warnings: warns, Spec: op.Spec})
			case !k.IsPolicy():
				if t, err := api.ParseTemplate(o.GetManifest()); err == nil {
					templates = append(templates, t)
				}
			}
		}
		// A propagation policy selects what it wins; an override policy
		// every template it applies to.
		for _, t := range templates {
			if pol := api.SelectPolicy(props, t); pol != nil {
				i := props2view[pol]
				views[i].Selects = append(views[i].Selects, t.Key.Display())
			}
			for _, op := range api.SelectOverrides(overrides, t) {
				i := over2view[op]
				views[i].Selects = append(views[i].Selects, t.Key.Display())
			}
		}
		for _, v := range views {
			if v.Selects == nil {
				v.Selects = []string{}
			}
			sort.Strings(v.Selects)
			out = append(out, v)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

func (p *Peer) handleEvents(w http.ResponseWriter, r *http.Request) {
	var out []api.EventView
	p.fsm.Read(func(s *region.State) { out = eventViews(s.Events(api.ObjectKey{})) })
	writeJSON(w, http.StatusOK, out)
}

func (p *Peer) handleSimulationView(w http.ResponseWriter, r *http.Request) {
	if p.sim == nil {
		writeError(w, http.StatusConflict, errors.New("this peer drives a real cluster through client-go; it has no simulated cluster"))
		return
	}
	health, _, _ := p.sim.Health(r.Context())
	v := api.SimulationView{Cluster: p.cfg.Cluster, Ready: health == shoalpb.Health_HEALTH_READY,
		CapacityPercent: p.sim.CapacityPercent(), Objects: []api.SimObjectView{}}
	for _, o := range p.sim.Objects() {
		ov := api.SimObjectView{APIVersion: o.Key.APIVersion, Kind: o.Key.Kind, Namespace: o.Key.Namespace, Name: o.Key.Name,
			UID: o.UID, Created: o.Created, Generation: o.Generation}
		if o.HasReplicas {
			ov.Replicas, ov.Ready, ov.Pending = &o.Replicas, &o.Ready, &o.Pending
		}
		v.Objects = append(v.Objects, ov)
	}
	slices.SortFunc(v.Objects, func(a, b api.SimObjectView) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.APIVersion, b.APIVersion))
	})
	writeJSON(w, http.StatusOK, v)
}

// withConflicts is a workload's events plus the conflicts other regions
// report for it (a region that never saw the losing write still shows
// the conflict), each once, oldest first.
func withConflicts(s *region.State, k api.ObjectKey) []*shoalpb.Event {
	evs := s.Events(k)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.GetReason()+e.GetMessage()] = true
	}
	for _, e := range s.Conflicts(k) {
		if !seen[e.GetReason()+e.GetMessage()] {
			evs = append(evs, e)
		}
	}
	slices.SortStableFunc(evs, func(a, b *shoalpb.Event) int { return cmp.Compare(a.GetUnixMs(), b.GetUnixMs()) })
	return evs
}
