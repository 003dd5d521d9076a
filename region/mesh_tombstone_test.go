package region

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

func TestMeshRegionCutOffLongerThanTombstonesResyncsWithoutResurrecting(t *testing.T) {
	n := newMeshNet()
	ttl := WithTombstoneTTL(time.Second)
	a := n.add(t, testMeshConfig("a"), ttl)
	b := n.add(t, testMeshConfig("b", "wan-a"), ttl)
	c := n.add(t, testMeshConfig("c", "wan-a"), ttl)
	ps := []*meshPeer{a, b, c}
	a.write(t, "old", "1")
	a.write(t, "kept", "1")
	eventually(t, "every region holds both objects", converged(ps))

	n.isolate("c", "a", "b")
	a.remove(t, "old")
	// c never acknowledges the delete; after the TTL a and b forget it.
	eventually(t, "a and b forget the tombstone", func() bool { return a.held("old") == nil && b.held("old") == nil })
	// c was cut off for longer than a tombstone lives.
	time.Sleep(1200 * time.Millisecond)
	c.write(t, "new-in-c", "1")
	n.heal()
	eventually(t, "c resynchronises and every region converges", converged(ps), func() string {
		out := ""
		for _, p := range ps {
			out += p.region + ":"
			p.fsm.Read(func(s *State) {
				for _, o := range s.AllObjects() {
					out += fmt.Sprintf(" %s@%v(del %v)", o.GetKey().GetName(), o.GetVersion(), o.GetDeleted())
				}
			})
			out += fmt.Sprintf(" fullsyncs %d stale %v\n", p.mesh.Stats().FullSyncs, p.mesh.stale())
		}
		return out
	})
	for _, p := range ps {
		if o := p.held("old"); o != nil && !o.GetDeleted() {
			t.Errorf("region %s holds the deleted object again", p.region)
		}
		if p.held("kept") == nil || p.held("new-in-c") == nil {
			t.Errorf("region %s lost an object: kept=%v new-in-c=%v", p.region, p.held("kept") != nil, p.held("new-in-c") != nil)
		}
	}
	if c.mesh.Stats().FullSyncs == 0 {
		t.Error("c did not ask for a full resynchronisation")
	}
}

func TestForgetRegionOnlyWhenDeadAndItsTombstonesGo(t *testing.T) {
	p := &meshPeer{fsm: NewFSM("a", nil)}
	dr := &directRaft{fsm: p.fsm, now: time.Now}
	p.raft = dr
	apply := func(c *shoalpb.Command) error {
		data, _ := proto.Marshal(c)
		_, err := p.raft.ApplyLocal(context.Background(), data)
		return err
	}
	forget := &shoalpb.Command{Cmd: &shoalpb.Command_ForgetRegion{ForgetRegion: &shoalpb.ForgetRegion{Region: "b"}}}
	if err := apply(forget); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("forgetting an unknown region: %v", err)
	}
	// b is known but has acknowledged nothing: a's tombstone waits for it.
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionSummary{SetRegionSummary: &shoalpb.SetRegionSummary{
		Summary: &shoalpb.RegionSummary{Region: "b"}, HeardUnixMs: time.Now().UnixMilli()}}})
	p.write(t, "x", "1")
	p.remove(t, "x")
	if p.held("x") == nil {
		t.Fatal("the tombstone went before b acknowledged it")
	}
	if err := apply(forget); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("forgetting a live region: %v", err)
	}
	// c acknowledges the tombstone; b, dead, never will until forgotten.
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionSummary{SetRegionSummary: &shoalpb.SetRegionSummary{
		Summary: &shoalpb.RegionSummary{Region: "c"}, HeardUnixMs: time.Now().UnixMilli(),
		Watermarks: []*shoalpb.Watermark{{Origin: "a", Version: p.held("x").GetVersion()}}}}})
	if p.held("x") == nil {
		t.Fatal("the tombstone went before b acknowledged it")
	}
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionState{SetRegionState: &shoalpb.SetRegionState{Region: "b", Reason: "silent"}}})
	p.command(t, forget)
	var known bool
	p.fsm.Read(func(s *State) { known = s.Region("b") != nil })
	if known {
		t.Fatal("b is still known after it was forgotten")
	}
	// Acknowledged by every region left, the tombstone goes once its
	// quarantine is over.
	dr.now = func() time.Time { return time.Now().Add(TombstoneQuarantine) }
	p.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_RegionsHeard{RegionsHeard: &shoalpb.RegionsHeard{
		Heard: []*shoalpb.RegionHeard{{Region: "c", UnixMs: time.Now().UnixMilli()}}}}})
	if p.held("x") != nil {
		t.Fatalf("after forgetting b: tombstone %v", p.held("x"))
	}
}
