package region

import (
	"testing"
	"time"
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
