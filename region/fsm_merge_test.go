package region

import (
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// heldObject is the state's record of k (a tombstone too), nil when none.
func heldObject(f *FSM, k string) *shoalpb.Object {
	var o *shoalpb.Object
	f.Read(func(s *State) { o = s.objects[k] })
	return o
}

// Found by the chaos harness (cut-off-restart): a region deletes an
// object while another region, cut off, writes it again; the other
// region merges the delete and says so (its watermark passes the
// tombstone) before its own older write, sent before it merged the
// delete, arrives here. Had the tombstone been collected as soon as
// every region acknowledged it, the late write would find no tombstone
// and bring the object back in every region.
func TestTombstoneOutlivesWritesStillInFlightWhenAcknowledged(t *testing.T) {
	h := newHarness(t)
	ms := func(d time.Duration) int64 { return h.now.Add(d).UnixMilli() }
	// us wrote cm (version u1); eu has it.
	u1 := &shoalpb.Version{WallMs: ms(0), Origin: "us"}
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_MergeObjects{MergeObjects: &shoalpb.MergeObjects{FromRegion: "us",
		Objects: []*shoalpb.Object{{Key: cmKey.Proto(), Manifest: []byte(`{"data":{"v":"1"}}`), Version: u1}}}}})
	// us, cut off, writes cm again (u2, not yet here); eu deletes it.
	u2 := &shoalpb.Version{WallMs: ms(500 * time.Millisecond), Origin: "us"}
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: &shoalpb.DeleteObjects{Keys: []*shoalpb.ObjectKey{cmKey.Proto()}}}})
	tomb := heldObject(h.fsm, cmKey.String())
	if tomb == nil || !tomb.GetDeleted() || CompareVersions(tomb.GetVersion(), u2) <= 0 {
		t.Fatalf("the delete left %v, want a tombstone newer than us's concurrent write", tomb)
	}
	// us merges the delete and acknowledges it.
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_SetRegionSummary{SetRegionSummary: &shoalpb.SetRegionSummary{
		HeardUnixMs: ms(0), Summary: &shoalpb.RegionSummary{Region: "us"},
		Watermarks: []*shoalpb.Watermark{{Origin: "eu", Version: tomb.GetVersion()}, {Origin: "us", Version: u2}}}}})
	// us's write u2, sent before it merged the delete, arrives.
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_MergeObjects{MergeObjects: &shoalpb.MergeObjects{FromRegion: "us",
		Objects: []*shoalpb.Object{{Key: cmKey.Proto(), Manifest: []byte(`{"data":{"v":"2"}}`), Version: u2, Replaced: u1}}}}})
	if o := heldObject(h.fsm, cmKey.String()); o == nil || !o.GetDeleted() {
		t.Fatalf("a write older than the delete brought the object back: %v", o)
	}
	// Past the quarantine, the acknowledged tombstone goes.
	h.now = h.now.Add(TombstoneQuarantine)
	h.mustApply(&shoalpb.Command{Cmd: &shoalpb.Command_RegionsHeard{RegionsHeard: &shoalpb.RegionsHeard{
		Heard: []*shoalpb.RegionHeard{{Region: "us", UnixMs: ms(0)}}}}})
	if o := heldObject(h.fsm, cmKey.String()); o != nil {
		t.Fatalf("the acknowledged tombstone outlived its quarantine: %v", o)
	}
}
