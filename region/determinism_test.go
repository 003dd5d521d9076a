package region

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// genCommand draws one region command of any kind over a small set of
// names, so that commands collide on the same objects and clusters.
func genCommand(t *rapid.T) *shoalpb.Command {
	key := func(label string) api.ObjectKey {
		return api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default",
			Name: rapid.SampledFrom([]string{"web", "api", "db"}).Draw(t, label)}
	}
	cluster := func(label string) string { return rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, label) }
	switch rapid.IntRange(0, 7).Draw(t, "kind") {
	case 0:
		var objs []*shoalpb.Object
		for i := range rapid.IntRange(1, 3).Draw(t, "n") {
			k := key(fmt.Sprint("key", i))
			if i > 0 && api.KeyFromProto(objs[0].GetKey()) == k {
				continue
			}
			objs = append(objs, obj(k, fmt.Sprintf(`{"v":%d}`, rapid.IntRange(0, 3).Draw(t, "v"))))
		}
		return applyObjects(objs...)
	case 1:
		return &shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{
			Keys: []*shoalpb.ObjectKey{key("del").Proto()}}}}
	case 2:
		h := rapid.SampledFrom([]shoalpb.Health{shoalpb.Health_HEALTH_READY, shoalpb.Health_HEALTH_NOT_READY}).Draw(t, "health")
		return reportCluster(cluster("report"), h)
	case 3:
		var taints []*shoalpb.Taint
		if rapid.Bool().Draw(t, "tainted") {
			taints = append(taints, &shoalpb.Taint{Key: api.TaintClusterUnreachable, Effect: api.TaintEffectNoExecute})
		}
		return &shoalpb.Command{Cmd: &shoalpb.Command_SetClusterState{SetClusterState: &shoalpb.SetClusterState{
			Name: cluster("state"), Reachable: rapid.Bool().Draw(t, "reachable"), Taints: taints}}}
	case 4:
		return &shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{Bindings: []*shoalpb.Binding{{
			Workload: key("bind").Proto(), Generation: int64(rapid.IntRange(1, 3).Draw(t, "gen")),
			Clusters: []*shoalpb.TargetCluster{{Name: cluster("target"), Replicas: int32(rapid.IntRange(0, 4).Draw(t, "r"))}},
		}}}}}
	case 5:
		return &shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: cluster("st"),
			Statuses: []*shoalpb.WorkStatus{{Workload: key("status").Proto(), Replicas: 2,
				ReadyReplicas: int32(rapid.IntRange(0, 2).Draw(t, "ready")), Health: "Healthy"}}}}}
	case 6:
		return &shoalpb.Command{Cmd: &shoalpb.Command_RemoveCluster{RemoveCluster: &shoalpb.RemoveCluster{Name: cluster("rm")}}}
	default:
		return &shoalpb.Command{Cmd: &shoalpb.Command_LeaveRegion{LeaveRegion: &shoalpb.LeaveRegion{Cluster: cluster("leave")}}}
	}
}

// snapshotRestore moves f's state into a new FSM through a snapshot, as a
// restart from a snapshot or a follower installing one does.
func snapshotRestore(t testing.TB, f *FSM) *FSM {
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM("eu", nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	return g
}

// Every replica computes byte-identical state from the same log, whatever
// snapshots it took and restored on the way. Leaders' clocks differ, so
// entries' times go back as well as forward.
func TestReplicasComputeTheSameStateAcrossSnapshots(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 60).Draw(rt, "entries")
		var log []*raft.Log
		now := time.UnixMilli(1_700_000_000_000)
		for i := range n {
			cmd := genCommand(rt)
			data, err := proto.Marshal(cmd)
			if err != nil {
				rt.Fatal(err)
			}
			// A new leader's clock may be behind the last one's.
			now = now.Add(time.Duration(rapid.IntRange(-3000, 3000).Draw(rt, "dt")) * time.Millisecond)
			log = append(log, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: now})
		}
		reference := NewFSM("eu", nil)
		for _, l := range log {
			reference.Apply(l)
		}
		want := reference.StateHash()
		for r := range 3 {
			f := NewFSM("eu", nil)
			for _, l := range log {
				f.Apply(l)
				if rapid.IntRange(0, 9).Draw(rt, fmt.Sprint("snapshot", r)) == 0 {
					f = snapshotRestore(t, f)
					if f.AppliedIndex() != l.Index {
						rt.Fatalf("restored at index %d, the snapshot was taken at %d", f.AppliedIndex(), l.Index)
					}
				}
			}
			if got := f.StateHash(); got != want {
				var a, b *shoalpb.Snapshot
				reference.Read(func(s *State) { a = s.toProto() })
				f.Read(func(s *State) { b = s.toProto() })
				rt.Fatalf("replica %d differs from the reference:\nreference %v\nreplica   %v", r, a, b)
			}
		}
	})
}

// The state machine answers ApplyObjects and DeleteObjects with what they
// did, so a writer learns its own result even if later commands changed
// the object before it reads.
func TestFSMAnswersWithObjectResults(t *testing.T) {
	f := NewFSM("eu", nil)
	results := func(index uint64, cmd *shoalpb.Command) []string {
		data, _ := proto.Marshal(cmd)
		resp := f.Apply(&raft.Log{Index: index, Data: data, AppendedAt: time.UnixMilli(int64(index))})
		b, ok := resp.([]byte)
		if !ok {
			t.Fatalf("answer %T %v, want bytes", resp, resp)
		}
		var rs shoalpb.ObjectResults
		if err := proto.Unmarshal(b, &rs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs.GetResults() {
			out = append(out, fmt.Sprintf("%s %s %d", api.KeyFromProto(r.GetKey()).Name, r.GetResult(), r.GetGeneration()))
		}
		return out
	}
	del := &shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{Keys: []*shoalpb.ObjectKey{webKey.Proto(), cmKey.Proto()}}}}
	for i, step := range []struct {
		cmd  *shoalpb.Command
		want string
	}{
		{applyObjects(obj(webKey, `{"a":1}`)), "[web created 1]"},
		{applyObjects(obj(webKey, `{"a":1}`), obj(cmKey, `{}`)), "[web unchanged 1 cfg created 1]"},
		{applyObjects(obj(webKey, `{"a":2}`)), "[web configured 2]"},
		{del, "[web deleted 2 cfg deleted 1]"},
		{del, "[web not found 2 cfg not found 1]"},
		{applyObjects(obj(webKey, `{"a":2}`)), "[web created 3]"},
	} {
		if got := fmt.Sprint(results(uint64(i+1), step.cmd)); got != step.want {
			t.Fatalf("step %d: %s, want %s", i+1, got, step.want)
		}
	}
}

func TestAuthorizeForward(t *testing.T) {
	enc := func(c *shoalpb.Command) []byte { b, _ := proto.Marshal(c); return b }
	reportA := enc(reportCluster("a", shoalpb.Health_HEALTH_READY))
	statusA := enc(&shoalpb.Command{Cmd: &shoalpb.Command_ReportStatus{ReportStatus: &shoalpb.ReportStatus{Cluster: "a"}}})
	leaveA := enc(&shoalpb.Command{Cmd: &shoalpb.Command_LeaveRegion{LeaveRegion: &shoalpb.LeaveRegion{Cluster: "a"}}})
	bindings := enc(&shoalpb.Command{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{}}})
	state := enc(&shoalpb.Command{Cmd: &shoalpb.Command_SetClusterState{SetClusterState: &shoalpb.SetClusterState{Name: "b"}}})
	remove := enc(&shoalpb.Command{Cmd: &shoalpb.Command_RemoveCluster{RemoveCluster: &shoalpb.RemoveCluster{Name: "b"}}})
	events := enc(&shoalpb.Command{Cmd: &shoalpb.Command_RecordEvents{RecordEvents: &shoalpb.RecordEvents{}}})
	write := enc(applyObjects(obj(webKey, `{}`)))
	tests := []struct {
		name     string
		from     string
		verified bool
		cmd      []byte
		ok       bool
	}{
		{"own report", "a", true, reportA, true},
		{"report for another", "b", true, reportA, false},
		{"status for another", "b", true, statusA, false},
		{"leave for another", "b", true, leaveA, false},
		{"own leave", "a", true, leaveA, true},
		{"insecure report for another", "b", false, reportA, true},
		{"bindings", "a", true, bindings, false},
		{"insecure bindings", "a", false, bindings, false},
		{"cluster state", "b", true, state, false},
		{"cluster removal", "b", true, remove, false},
		{"events", "a", true, events, false},
		{"user write", "b", true, write, true},
		{"garbage", "a", true, []byte{0xff}, false},
		{"empty", "a", true, nil, false},
	}
	for _, tt := range tests {
		err := AuthorizeForward(tt.from, tt.verified, tt.cmd)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// Whatever a peer forwards, deciding whether to accept it never panics.
func FuzzAuthorizeForward(f *testing.F) {
	for _, c := range []*shoalpb.Command{
		reportCluster("a", shoalpb.Health_HEALTH_READY),
		{Cmd: &shoalpb.Command_SetBindings{SetBindings: &shoalpb.SetBindings{}}},
		{Cmd: &shoalpb.Command_LeaveRegion{LeaveRegion: &shoalpb.LeaveRegion{Cluster: "a"}}},
	} {
		b, _ := proto.Marshal(c)
		f.Add(b, "a", true)
	}
	f.Add([]byte{0xff}, "", false)
	f.Fuzz(func(t *testing.T, cmd []byte, from string, verified bool) {
		_ = AuthorizeForward(from, verified, cmd)
	})
}
