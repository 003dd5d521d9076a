package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// simIdentities gives what a simulated cluster holds: every object's uid,
// generation and replicas, by key.
func simIdentities(p *Peer) map[string]string {
	out := map[string]string{}
	for k, o := range p.Sim().Objects() {
		out[k.String()] = fmt.Sprintf("uid=%s gen=%d replicas=%d", o.UID, o.Generation, o.Replicas)
	}
	return out
}

// The edge promise: a peer restarted while its region is gone keeps its
// cluster exactly as it was last told — nothing deleted, nothing changed,
// the same objects with the same identities — and says it runs from stale
// state, until it has caught up with a leader. The simulated cluster
// outlives its peer, as a real cluster does.
func TestCutOffRestartDeletesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := startRegion(t, ctx)
	before := simIdentities(m.peers["eu-2"])
	if len(before) == 0 {
		t.Fatal("eu-2 holds nothing")
	}
	for _, n := range []string{"eu-1", "eu-2", "eu-3"} {
		m.kill(n)
	}
	m.restart("eu-2") // alone: no leader, no quorum
	c := m.client("eu-2")
	if got := simIdentities(m.peers["eu-2"]); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("after the restart the cluster holds\n%v\nbefore it held\n%v", got, before)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Stale || st.StaleSince == nil || !st.Held {
		t.Fatalf("status of a lone restarted peer: stale=%v since=%v held=%v; want stale, since its start, held", st.Stale, st.StaleSince, st.Held)
	}
	// Several election rounds and resyncs: nothing may change.
	watchEnd := time.Now().Add(5 * time.Second)
	for time.Now().Before(watchEnd) {
		if got := simIdentities(m.peers["eu-2"]); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Fatalf("a cut-off restarted peer changed its cluster:\n%v\nwas\n%v", got, before)
		}
		time.Sleep(100 * time.Millisecond) // observation window for a negative condition
	}
	// It reads from the state it last acted on.
	if ws, err := c.Workloads(ctx); err != nil || len(ws) != 3 {
		t.Fatalf("reads from a lone restarted peer: %d workloads, %v", len(ws), err)
	}

	m.restart("eu-1")
	m.restart("eu-3")
	eventually(t, "eu-2 caught up", func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.Stale || st.Held {
			return fmt.Errorf("stale=%v held=%v", st.Stale, st.Held)
		}
		return nil
	})
	waitPlaced(t, m, map[string]int32{"eu-1": 4, "eu-2": 2, "eu-3": 2})
	if got := simIdentities(m.peers["eu-2"]); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("after catching up the cluster holds\n%v\nbefore it held\n%v", got, before)
	}
}

// A region of one peer restarted: it is its own leader, and it comes back
// with the same objects, none deleted or re-created on the way.
func TestSinglePeerRegionRestartDeletesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := newMesh(t, "solo")
	c := m.client("solo")
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, readExamples(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web Ready on solo", func() error {
		if r := m.running(webKey)["solo"]; r != 8 {
			return fmt.Errorf("web runs %d", r)
		}
		return nil
	})
	before := simIdentities(m.peers["solo"])
	m.kill("solo")
	m.restart("solo")
	c = m.client("solo")
	eventually(t, "solo caught up", func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.Stale || st.Held || st.Leader == "" {
			return fmt.Errorf("stale=%v held=%v leader=%q", st.Stale, st.Held, st.Leader)
		}
		return nil
	})
	// Let the reconciler resync once it is no longer held.
	eventually(t, "a full resync after the hold", func() error {
		if !m.peers["solo"].reconciler.Ready() {
			return errors.New("first desired set not reconciled yet")
		}
		return nil
	})
	if got := simIdentities(m.peers["solo"]); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("after a restart the cluster holds\n%v\nbefore it held\n%v", got, before)
	}
}
