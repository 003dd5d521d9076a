package region

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

var (
	webKey = api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}
	cmKey  = api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cfg"}
)

// fsmHarness applies commands to an FSM as Raft would.
type fsmHarness struct {
	t     *testing.T
	fsm   *FSM
	index uint64
	now   time.Time
}

func newHarness(t *testing.T) *fsmHarness {
	return &fsmHarness{t: t, fsm: NewFSM("eu", nil), now: time.UnixMilli(1_700_000_000_000)}
}

func (h *fsmHarness) apply(cmd *shoalpb.Command) error {
	h.t.Helper()
	data, err := proto.Marshal(cmd)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	h.now = h.now.Add(time.Second)
	resp := h.fsm.Apply(&raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: h.now})
	if err, ok := resp.(error); ok {
		return err
	}
	return nil
}

func (h *fsmHarness) mustApply(cmd *shoalpb.Command) {
	h.t.Helper()
	if err := h.apply(cmd); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
}

func applyObjects(objs ...*shoalpb.Object) *shoalpb.Command {
	return &shoalpb.Command{Cmd: &shoalpb.Command_ApplyObjects{ApplyObjects: &shoalpb.ApplyObjects{Objects: objs}}}
}

func obj(k api.ObjectKey, manifest string) *shoalpb.Object {
	return &shoalpb.Object{Key: k.Proto(), Manifest: []byte(manifest)}
}

func readState(f *FSM) (out struct {
	objects  []*shoalpb.Object
	clusters []*shoalpb.ClusterRecord
	bindings []*shoalpb.Binding
}) {
	f.Read(func(s *State) {
		out.objects, out.clusters, out.bindings = s.Objects(), s.Clusters(), s.Bindings()
	})
	return out
}

func TestFSMApplyObjectsGenerations(t *testing.T) {
	h := newHarness(t)
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`), obj(cmKey, `{"b":1}`)))
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`))) // unchanged
	h.mustApply(applyObjects(obj(webKey, `{"a":2}`)))
	var web, cm *shoalpb.Object
	h.fsm.Read(func(s *State) { web, cm = s.Object(webKey), s.Object(cmKey) })
	if web.GetGeneration() != 2 || cm.GetGeneration() != 1 {
		t.Fatalf("generations web=%d cm=%d, want 2 and 1", web.GetGeneration(), cm.GetGeneration())
	}
	if string(web.GetManifest()) != `{"a":2}` {
		t.Fatalf("manifest %s", web.GetManifest())
	}
	if web.GetVersion().GetOrigin() != "eu" || web.GetVersion().GetWallMs() == 0 {
		t.Fatalf("version not stamped: %v", web.GetVersion())
	}
	if web.GetCreatedUnixMs() >= web.GetUpdatedUnixMs() {
		t.Fatalf("created %d should precede updated %d", web.GetCreatedUnixMs(), web.GetUpdatedUnixMs())
	}
}

func TestFSMApplyObjectsAllOrNothing(t *testing.T) {
	h := newHarness(t)
	bad := &shoalpb.Object{Key: &shoalpb.ObjectKey{Kind: "Deployment"}, Manifest: []byte(`{}`)}
	err := h.apply(applyObjects(obj(webKey, `{"a":1}`), bad))
	if !errors.Is(err, ErrBadCommand) {
		t.Fatalf("err = %v, want ErrBadCommand", err)
	}
	if n := len(readState(h.fsm).objects); n != 0 {
		t.Fatalf("%d objects written by a rejected command", n)
	}
}

func TestFSMDeleteLeavesTombstone(t *testing.T) {
	h := newHarness(t)
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`)))
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{Keys: []*shoalpb.ObjectKey{webKey.Proto()}}}})
	var live, tomb *shoalpb.Object
	h.fsm.Read(func(s *State) { live, tomb = s.Object(webKey), s.Tombstone(webKey) })
	if live != nil || tomb == nil || !tomb.GetDeleted() {
		t.Fatalf("live=%v tomb=%v", live, tomb)
	}
	// Re-creating continues the generation count.
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`)))
	h.fsm.Read(func(s *State) { live = s.Object(webKey) })
	if live.GetGeneration() != 2 {
		t.Fatalf("generation after re-create = %d, want 2", live.GetGeneration())
	}
}

func reportCluster(name string, health shoalpb.Health) *shoalpb.Command {
	return &shoalpb.Command{Cmd: &shoalpb.Command_ReportCluster{ReportCluster: &shoalpb.ReportCluster{Cluster: &shoalpb.ClusterRecord{
		Name: name, Region: "eu", Zone: "z1", Labels: map[string]string{"env": "prod"}, ReportedHealth: health,
		Capacity: &shoalpb.Capacity{Nodes: 3, Allocatable: &shoalpb.Resources{CpuMilli: 12000, Pods: 330}},
	}}}}
}

func TestFSMClusters(t *testing.T) {
	h := newHarness(t)
	h.mustApply(reportCluster("a", shoalpb.Health_HEALTH_READY))
	taint := &shoalpb.Taint{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute}
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_SetClusterState{SetClusterState: &shoalpb.SetClusterState{Name: "a", Reachable: false, Taints: []*shoalpb.Taint{taint}}}})
	// A later report from the peer does not clear the leader's view.
	h.mustApply(reportCluster("a", shoalpb.Health_HEALTH_READY))
	var c *shoalpb.ClusterRecord
	h.fsm.Read(func(s *State) { c = s.Cluster("a") })
	if EffectiveHealth(c) != shoalpb.Health_HEALTH_UNREACHABLE || len(c.GetTaints()) != 1 || c.GetTaints()[0].GetAddedUnixMs() == 0 {
		t.Fatalf("cluster after taint and report: %v", c)
	}
	if c.GetUnreachableSinceUnixMs() == 0 {
		t.Fatal("unreachable_since not set")
	}
	if err := h.apply(&shoalpb.Command{Cmd: &shoalpb.Command_SetClusterState{SetClusterState: &shoalpb.SetClusterState{Name: "nope"}}}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("state of unknown cluster: err = %v", err)
	}
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_RemoveCluster{RemoveCluster: &shoalpb.RemoveCluster{Name: "a"}}})
	if n := len(readState(h.fsm).clusters); n != 0 {
		t.Fatalf("%d clusters after removal", n)
	}
}

func TestFSMBindingsAndStatus(t *testing.T) {
	h := newHarness(t)
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`)))
	b := &shoalpb.Binding{Workload: webKey.Proto(), Generation: 1, DesiredReplicas: 3,
		Clusters: []*shoalpb.TargetCluster{{Name: "a", Replicas: 2}, {Name: "b", Replicas: 1}}, Reason: "test"}
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{Bindings: []*shoalpb.Binding{b}}}})
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: "a",
		Statuses: []*shoalpb.WorkStatus{{Workload: webKey.Proto(), AppliedGeneration: 1, Replicas: 2, ReadyReplicas: 2, Health: "Healthy"}}}}})
	var got *shoalpb.Binding
	var st *shoalpb.WorkStatus
	var evs []*shoalpb.Event
	h.fsm.Read(func(s *State) { got, st, evs = s.Binding(webKey), s.Status(webKey, "a"), s.Events(webKey) })
	if got.GetScheduledUnixMs() == 0 || len(got.GetClusters()) != 2 {
		t.Fatalf("binding %v", got)
	}
	if st.GetReadyReplicas() != 2 || st.GetCluster() != "a" {
		t.Fatalf("status %v", st)
	}
	if len(evs) < 2 || evs[0].GetReason() != "Scheduled" {
		t.Fatalf("events %v", evs)
	}
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: "a", Removed: []*shoalpb.ObjectKey{webKey.Proto()}}}})
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{Remove: []*shoalpb.ObjectKey{webKey.Proto()}}}})
	h.fsm.Read(func(s *State) { got, st = s.Binding(webKey), s.Status(webKey, "a") })
	if got != nil || st != nil {
		t.Fatalf("after removal binding=%v status=%v", got, st)
	}
}

func TestFSMSkipsUnknownAndRejectsGarbage(t *testing.T) {
	h := newHarness(t)
	if err := h.apply(&shoalpb.Command{}); err != nil {
		t.Fatalf("empty (unknown) command: %v", err)
	}
	h.index++
	resp := h.fsm.Apply(&raft.Log{Index: h.index, Data: []byte{0xff, 0xff, 0xff}})
	if err, _ := resp.(error); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("garbage entry: %v", resp)
	}
	if h.fsm.AppliedIndex() != h.index {
		t.Fatalf("applied index %d, want %d", h.fsm.AppliedIndex(), h.index)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSMSnapshotRestoreRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`), obj(cmKey, `{"b":1}`)))
	h.mustApply(reportCluster("a", shoalpb.Health_HEALTH_READY))
	h.mustApply(reportCluster("b", shoalpb.Health_HEALTH_NOT_READY))
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{Bindings: []*shoalpb.Binding{{
		Workload: webKey.Proto(), Clusters: []*shoalpb.TargetCluster{{Name: "a", Replicas: 3}},
		Evictions: []*shoalpb.Eviction{{Cluster: "b", Replicas: 1, Reason: "NotReady"}}}}}}})
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: "a",
		Statuses: []*shoalpb.WorkStatus{{Workload: webKey.Proto(), Replicas: 3, ReadyReplicas: 1, Health: "Progressing"}}}}})
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{Keys: []*shoalpb.ObjectKey{cmKey.Proto()}}}})

	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	restored := NewFSM("eu", nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	var before, after *shoalpb.Snapshot
	h.fsm.Read(func(s *State) { before = s.toProto() })
	restored.Read(func(s *State) { after = s.toProto() })
	if !proto.Equal(before, after) {
		t.Fatalf("round trip differs:\nbefore %v\nafter  %v", before, after)
	}
	// The restored clock keeps counting forward.
	var tomb *shoalpb.Object
	restored.Read(func(s *State) { tomb = s.Tombstone(cmKey) })
	if tomb == nil {
		t.Fatal("tombstone lost in snapshot")
	}
}

func TestFSMRestoreRejectsGarbage(t *testing.T) {
	f := NewFSM("eu", nil)
	if err := f.Restore(io.NopCloser(bytes.NewReader([]byte{0x0a, 0xff}))); err == nil {
		t.Fatal("garbage snapshot restored")
	}
	newer, _ := proto.Marshal(&shoalpb.Snapshot{Format: snapshotFormat + 1})
	if err := f.Restore(io.NopCloser(bytes.NewReader(newer))); err == nil {
		t.Fatal("snapshot from a newer format restored")
	}
}

func TestFSMSubscribeAndWaitApplied(t *testing.T) {
	h := newHarness(t)
	ch, cancel := h.fsm.Subscribe()
	defer cancel()
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`)))
	select {
	case <-ch:
	default:
		t.Fatal("no notification after a change")
	}
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`))) // no change
	select {
	case <-ch:
		t.Fatal("notified without a change")
	default:
	}
	done := make(chan struct{})
	close(done)
	if !h.fsm.WaitApplied(nil, h.index) {
		t.Fatal("WaitApplied for an applied index")
	}
	if h.fsm.WaitApplied(done, h.index+1) {
		t.Fatal("WaitApplied returned true for a future index")
	}
}

func FuzzFSMApply(f *testing.F) {
	seed, _ := proto.Marshal(applyObjects(obj(webKey, `{}`)))
	f.Add(seed)
	f.Add([]byte{})
	for _, c := range []*shoalpb.Command{
		{Cmd: &shoalpb.Command_MergeObjects{MergeObjects: &shoalpb.MergeObjects{FromRegion: "us", Full: true,
			Horizon: &shoalpb.Version{WallMs: 5}, Objects: []*shoalpb.Object{{Key: webKey.Proto(), Manifest: []byte(`{}`),
				Version: &shoalpb.Version{WallMs: 3, Origin: "us"}, Replaced: &shoalpb.Version{WallMs: 1, Origin: "eu"}}}}}},
		{Cmd: &shoalpb.Command_SetRegionSummary{SetRegionSummary: &shoalpb.SetRegionSummary{HeardUnixMs: 4,
			Summary:    &shoalpb.RegionSummary{Region: "us", Clusters: []*shoalpb.ClusterRecord{{Name: "us-1", Region: "us"}}},
			Watermarks: []*shoalpb.Watermark{{Origin: "eu", Version: &shoalpb.Version{WallMs: 2, Origin: "eu"}}}}}},
		{Cmd: &shoalpb.Command_RegionsHeard{RegionsHeard: &shoalpb.RegionsHeard{Heard: []*shoalpb.RegionHeard{{Region: "us", UnixMs: 9}}}}},
		{Cmd: &shoalpb.Command_SetRegionState{SetRegionState: &shoalpb.SetRegionState{Region: "us", Reason: "quiet"}}},
	} {
		data, _ := proto.Marshal(c)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM("eu", nil)
		_ = fsm.Apply(&raft.Log{Index: 1, Data: data, AppendedAt: time.Now()})
		if _, err := fsm.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFSMDeletePreserveMarksTombstone(t *testing.T) {
	h := newHarness(t)
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`), obj(cmKey, `{"b":1}`)))
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{
		Keys: []*shoalpb.ObjectKey{webKey.Proto(), cmKey.Proto()}, Preserve: []*shoalpb.ObjectKey{webKey.Proto()}}}})
	var tombs []*shoalpb.Object
	h.fsm.Read(func(s *State) { tombs = s.Tombstones() })
	if len(tombs) != 2 {
		t.Fatalf("%d tombstones", len(tombs))
	}
	for _, o := range tombs {
		want := api.KeyFromProto(o.GetKey()) == webKey
		if o.GetPreserveOnClusters() != want {
			t.Errorf("%s: preserve %v, want %v", api.KeyFromProto(o.GetKey()).Display(), o.GetPreserveOnClusters(), want)
		}
	}
}

// TestFSMStatusesAndEventsShareTheObjectsKey: a workload's statuses and
// events point at its object's key message rather than each keeping a
// copy of the command's, after Apply and after a snapshot is restored.
func TestFSMStatusesAndEventsShareTheObjectsKey(t *testing.T) {
	h := newHarness(t)
	h.mustApply(applyObjects(obj(webKey, `{"a":1}`)))
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{Bindings: []*shoalpb.Binding{{
		Workload: webKey.Proto(), Clusters: []*shoalpb.TargetCluster{{Name: "a", Replicas: 1}}}}}}})
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: "a",
		Statuses: []*shoalpb.WorkStatus{{Workload: webKey.Proto(), Replicas: 1, ReadyReplicas: 1, Health: "Healthy"}}}}})
	check := func(name string, f *FSM) {
		t.Helper()
		f.Read(func(s *State) {
			key := s.Object(webKey).GetKey()
			if st := s.Status(webKey, "a"); st.GetWorkload() != key {
				t.Errorf("%s: the status keeps its own key %v", name, st.GetWorkload())
			}
			evs := s.Events(webKey)
			if len(evs) < 2 {
				t.Fatalf("%s: events %v", name, evs)
			}
			for _, e := range evs {
				if e.GetWorkload() != key {
					t.Errorf("%s: event %s keeps its own key", name, e.GetReason())
				}
			}
		})
	}
	check("applied", h.fsm)
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	restored := NewFSM("eu", nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	check("restored", restored)
	if h.fsm.StateHash() != restored.StateHash() {
		t.Error("the restored state differs")
	}
}
