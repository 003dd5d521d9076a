package region

import (
	"context"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// The spacing of syncs beside a silent one: the first after four answer
// times (at least a tenth of the interval), each further one twice as
// late up to an interval, no more in flight than the call timeout lets
// expire in turn; a request from the region itself starts one at once.
func TestHedgeSpacingAndNudge(t *testing.T) {
	cfg := DefaultMeshConfig()
	cfg.Region, cfg.Cluster, cfg.Addr = "a", "c-a", "wan-a"
	cfg.SyncInterval, cfg.CallTimeout = time.Second, 5*time.Second
	m, err := NewMesh(cfg, NewFSM("a", nil), &directRaft{}, nil, fixedLeader("c-a"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rem := &remote{name: "b"}
	if got := m.hedgeAfter(rem); got != time.Second {
		t.Fatalf("hedgeAfter with no answer yet = %v, want the sync interval", got)
	}
	m.observeRTT(rem, 5*time.Millisecond)
	if got := m.hedgeAfter(rem); got != 100*time.Millisecond {
		t.Fatalf("hedgeAfter at a 5 ms answer time = %v, want the floor of a tenth of the interval", got)
	}
	m.observeRTT(rem, 205*time.Millisecond) // smoothed: 5 + 200/8 = 30 ms
	if rem.rtt != 30*time.Millisecond {
		t.Fatalf("smoothed answer time = %v, want 30ms", rem.rtt)
	}
	for _, tc := range []struct {
		inflight int
		silent   time.Duration
		want     bool
	}{
		{1, 110 * time.Millisecond, false}, // 4 x 30 ms = 120 ms
		{1, 130 * time.Millisecond, true},
		{2, 130 * time.Millisecond, false}, // the second waits 240 ms
		{2, 250 * time.Millisecond, true},
		{4, 900 * time.Millisecond, false}, // 960 ms
		{5, time.Second, true},             // capped at the interval
		{7, 10 * time.Second, false},       // 5 s / 1 s + 2 in flight at most
	} {
		rem.inflight, rem.lastStart = tc.inflight, now.Add(-tc.silent)
		if got := m.mayHedge(rem, now); got != tc.want {
			t.Errorf("mayHedge with %d in flight, the newest silent for %v = %v, want %v", tc.inflight, tc.silent, got, tc.want)
		}
	}

	// Heard from while its syncs are silent: another starts at once.
	rem.inflight, rem.lastStart = 3, time.Now().Add(-150*time.Millisecond)
	if m.mayHedge(rem, time.Now()) {
		t.Fatal("setup: a third hedge would start without a nudge")
	}
	m.nudge(rem)
	if !rem.nudged || !m.mayHedge(rem, time.Now()) {
		t.Fatal("a request from the region did not start a sync beside its silent ones")
	}
	select {
	case <-m.kick:
	default:
		t.Fatal("nudge did not wake the sync loop")
	}
	// Not while its syncs are answered: a sync just started is not silent.
	rem.nudged, rem.inflight, rem.lastStart = false, 1, time.Now()
	m.nudge(rem)
	if rem.nudged {
		t.Fatal("nudged while the sync in flight is not silent yet")
	}
	rem.nudged, rem.inflight = true, 7
	if m.mayHedge(rem, time.Now()) {
		t.Fatal("a nudge went over the limit of syncs in flight")
	}
}

// Syncs run side by side: an answer to an older request that comes back
// after a newer one's does not set back what this region knows the other
// holds (it would send again what the other already has).
func TestOlderAnswerDoesNotSetWatermarksBack(t *testing.T) {
	n := newMeshNet()
	a := n.add(t, testMeshConfig("a"))
	a.stop()
	rem := &remote{name: "b"}
	older, newer := rem.seq+1, rem.seq+2
	rem.seq = newer
	mark := func(ms int64) *shoalpb.SyncReply {
		return &shoalpb.SyncReply{Region: "b", Watermarks: []*shoalpb.Watermark{{Origin: "a", Version: &shoalpb.Version{WallMs: ms, Origin: "a"}}}}
	}
	ctx := context.Background()
	req := &shoalpb.SyncRequest{Region: "a"}
	a.mesh.absorb(ctx, rem, newer, req, mark(2000), time.Now())
	a.mesh.absorb(ctx, rem, older, req, mark(1000), time.Now())
	if got := rem.watermarks["a"].GetWallMs(); got != 2000 {
		t.Fatalf("b's watermark for a = %d after an older answer came back last, want 2000", got)
	}
}
