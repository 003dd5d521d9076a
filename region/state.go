package region

import (
	"sort"
	"sync"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// State is the region state. It is read through FSM.Read; the messages it
// hands out are shared and must not be modified.
type State struct {
	objects  map[string]*shoalpb.Object
	clusters map[string]*shoalpb.ClusterRecord
	bindings map[string]*shoalpb.Binding
	statuses map[string]map[string]*shoalpb.WorkStatus
	events   map[string][]*shoalpb.Event
	// Other regions as this one knows them, by name.
	regions map[string]*shoalpb.RemoteRegion
	// The newest version held from each origin region (this one too).
	watermarks map[string]*shoalpb.Version
	clock      *shoalpb.Version
	lastMs     int64
	rev        Revisions

	// digest caches Digest for rev.Objects: readers share the state under
	// the FSM's read lock, so the cache has its own.
	digestMu  sync.Mutex
	digestRev uint64
	digest    []byte
}

func newState() *State {
	return &State{
		objects:  map[string]*shoalpb.Object{},
		clusters: map[string]*shoalpb.ClusterRecord{},
		bindings: map[string]*shoalpb.Binding{},
		statuses: map[string]map[string]*shoalpb.WorkStatus{},
		events:   map[string][]*shoalpb.Event{},
		regions:  map[string]*shoalpb.RemoteRegion{},

		watermarks: map[string]*shoalpb.Version{},
	}
}

// Revisions tells which categories changed at which index.
func (s *State) Revisions() Revisions { return s.rev }

// Object returns a live object, or nil if it does not exist or was deleted.
func (s *State) Object(key api.ObjectKey) *shoalpb.Object {
	o := s.objects[key.String()]
	if o == nil || o.GetDeleted() {
		return nil
	}
	return o
}

// Objects returns the live objects sorted by key.
func (s *State) Objects() []*shoalpb.Object {
	out := make([]*shoalpb.Object, 0, len(s.objects))
	for _, k := range sortedKeys(s.objects) {
		if o := s.objects[k]; !o.GetDeleted() {
			out = append(out, o)
		}
	}
	return out
}

// ObjectCount is how many live objects the state holds (tombstones
// excluded).
func (s *State) ObjectCount() int {
	n := 0
	for _, o := range s.objects {
		if !o.GetDeleted() {
			n++
		}
	}
	return n
}

// Tombstone returns the tombstone of a deleted object, or nil.
func (s *State) Tombstone(key api.ObjectKey) *shoalpb.Object {
	o := s.objects[key.String()]
	if o == nil || !o.GetDeleted() {
		return nil
	}
	return o
}

// Tombstones returns the deleted objects still remembered, sorted by key.
func (s *State) Tombstones() []*shoalpb.Object {
	var out []*shoalpb.Object
	for _, k := range sortedKeys(s.objects) {
		if o := s.objects[k]; o.GetDeleted() {
			out = append(out, o)
		}
	}
	return out
}

// Cluster returns a cluster record, or nil.
func (s *State) Cluster(name string) *shoalpb.ClusterRecord { return s.clusters[name] }

// Clusters returns the cluster records sorted by name.
func (s *State) Clusters() []*shoalpb.ClusterRecord {
	out := make([]*shoalpb.ClusterRecord, 0, len(s.clusters))
	for _, k := range sortedKeys(s.clusters) {
		out = append(out, s.clusters[k])
	}
	return out
}

// Binding returns the binding of a workload, or nil.
func (s *State) Binding(key api.ObjectKey) *shoalpb.Binding { return s.bindings[key.String()] }

// Bindings returns every binding sorted by workload key.
func (s *State) Bindings() []*shoalpb.Binding {
	out := make([]*shoalpb.Binding, 0, len(s.bindings))
	for _, k := range sortedKeys(s.bindings) {
		out = append(out, s.bindings[k])
	}
	return out
}

// Statuses returns a workload's statuses sorted by cluster.
func (s *State) Statuses(key api.ObjectKey) []*shoalpb.WorkStatus {
	m := s.statuses[key.String()]
	out := make([]*shoalpb.WorkStatus, 0, len(m))
	for _, c := range sortedKeys(m) {
		out = append(out, m[c])
	}
	return out
}

// Status returns a workload's status on one cluster, or nil.
func (s *State) Status(key api.ObjectKey, cluster string) *shoalpb.WorkStatus {
	return s.statuses[key.String()][cluster]
}

// StatusesOn returns every status a cluster reported, by workload key.
func (s *State) StatusesOn(cluster string) map[string]*shoalpb.WorkStatus {
	out := map[string]*shoalpb.WorkStatus{}
	for w, m := range s.statuses {
		if st := m[cluster]; st != nil {
			out[w] = st
		}
	}
	return out
}

// Events returns a workload's recent events, oldest first; the zero key
// gives the cluster events.
func (s *State) Events(key api.ObjectKey) []*shoalpb.Event {
	ks := ""
	if key != (api.ObjectKey{}) {
		ks = key.String()
	}
	return append([]*shoalpb.Event(nil), s.events[ks]...)
}

// LastTime is the time (Unix ms) of the last applied entry.
func (s *State) LastTime() int64 { return s.lastMs }

func (s *State) toProto() *shoalpb.Snapshot {
	snap := &shoalpb.Snapshot{Format: snapshotFormat, Clock: s.clock, LastMs: s.lastMs}
	for _, k := range sortedKeys(s.objects) {
		snap.Objects = append(snap.Objects, s.objects[k])
	}
	for _, k := range sortedKeys(s.clusters) {
		snap.Clusters = append(snap.Clusters, s.clusters[k])
	}
	for _, k := range sortedKeys(s.bindings) {
		snap.Bindings = append(snap.Bindings, s.bindings[k])
	}
	for _, w := range sortedKeys(s.statuses) {
		m := s.statuses[w]
		for _, c := range sortedKeys(m) {
			snap.Statuses = append(snap.Statuses, m[c])
		}
	}
	for _, w := range sortedKeys(s.events) {
		snap.Events = append(snap.Events, s.events[w]...)
	}
	for _, r := range sortedKeys(s.regions) {
		snap.Regions = append(snap.Regions, s.regions[r])
	}
	snap.Watermarks = s.Watermarks()
	return snap
}

func stateFromProto(snap *shoalpb.Snapshot) *State {
	st := newState()
	st.clock = snap.GetClock()
	for _, o := range snap.GetObjects() {
		st.objects[api.KeyFromProto(o.GetKey()).String()] = o
		st.lastMs = max(st.lastMs, o.GetUpdatedUnixMs())
	}
	for _, c := range snap.GetClusters() {
		st.clusters[c.GetName()] = c
	}
	for _, b := range snap.GetBindings() {
		st.bindings[api.KeyFromProto(b.GetWorkload()).String()] = b
	}
	// As the applier does, statuses and events share their object's key.
	shared := func(ks string, k *shoalpb.ObjectKey) *shoalpb.ObjectKey {
		if o := st.objects[ks]; o != nil && o.GetKey() != nil {
			return o.GetKey()
		}
		return k
	}
	for _, ws := range snap.GetStatuses() {
		w := api.KeyFromProto(ws.GetWorkload()).String()
		ws.Workload = shared(w, ws.GetWorkload())
		if st.statuses[w] == nil {
			st.statuses[w] = map[string]*shoalpb.WorkStatus{}
		}
		st.statuses[w][ws.GetCluster()] = ws
	}
	for _, e := range snap.GetEvents() {
		w := ""
		if e.GetWorkload() != nil {
			w = api.KeyFromProto(e.GetWorkload()).String()
			e.Workload = shared(w, e.GetWorkload())
		}
		st.events[w] = append(st.events[w], e)
	}
	for _, evs := range st.events {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].GetUnixMs() < evs[j].GetUnixMs() })
	}
	for _, r := range snap.GetRegions() {
		st.regions[r.GetSummary().GetRegion()] = r
	}
	for _, w := range snap.GetWatermarks() {
		st.watermarks[w.GetOrigin()] = w.GetVersion()
	}
	if st.clock != nil {
		st.lastMs = max(st.lastMs, st.clock.GetWallMs())
	}
	// The floor of the next entry's time is part of the state: without it
	// a restored replica would stamp other versions than the rest.
	st.lastMs = max(st.lastMs, snap.GetLastMs())
	return st
}
