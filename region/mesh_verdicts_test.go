package region

import (
	"testing"
	"time"
)

func regionDead(p *meshPeer, name string) bool {
	var dead bool
	p.fsm.Read(func(s *State) { dead = s.Region(name).GetDead() })
	return dead
}

func TestMeshOneBrokenLinkFailsNoRegionOver(t *testing.T) {
	n := newMeshNet()
	a := n.add(t, testMeshConfig("a"))
	b := n.add(t, testMeshConfig("b", "wan-a"))
	c := n.add(t, testMeshConfig("c", "wan-a"))
	eventually(t, "every region knows the others", func() bool {
		for _, p := range []*meshPeer{a, b, c} {
			var k int
			p.fsm.Read(func(s *State) { k = len(s.Regions()) })
			if k != 2 {
				return false
			}
		}
		return true
	})
	n.setCut("a", "c", true)
	// Three grace periods: long enough for a wrong verdict to show.
	deadline := time.Now().Add(3 * testMeshConfig("a").GracePeriod)
	for time.Now().Before(deadline) {
		if regionDead(a, "c") || regionDead(c, "a") {
			t.Fatal("a single broken link failed a healthy region over")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Cut off completely, c is dead for a and b.
	n.isolate("c", "a", "b")
	eventually(t, "a and b find c dead", func() bool { return regionDead(a, "c") && regionDead(b, "c") })
	n.heal()
	eventually(t, "c is alive again", func() bool { return !regionDead(a, "c") && !regionDead(b, "c") })
}

// Found by the chaos harness (edge-flap, 10 minutes): an edge region
// whose uplink went down and up judged the other region by the LAN grace
// period — its own link being the one that failed — found it dead, took
// its share and scaled every edge cluster up, then back. An edge region
// gives every region the edge grace period, as they give it.
func TestMeshEdgeRegionJudgesOthersByTheEdgeGrace(t *testing.T) {
	n := newMeshNet()
	cfgA := testMeshConfig("a")
	cfgA.EdgeGracePeriod = 5 * time.Second
	cfgE := testMeshConfig("edge", "wan-a")
	cfgE.Edge, cfgE.EdgeGracePeriod = true, 5*time.Second
	a := n.add(t, cfgA)
	e := n.add(t, cfgE)
	eventually(t, "the regions know each other", func() bool {
		var ka, ke int
		a.fsm.Read(func(s *State) { ka = len(s.Regions()) })
		e.fsm.Read(func(s *State) { ke = len(s.Regions()) })
		return ka == 1 && ke == 1
	})
	n.setCut("a", "edge", true)
	// Three LAN grace periods, well inside the edge one: nobody is dead.
	deadline := time.Now().Add(3 * cfgA.GracePeriod)
	for time.Now().Before(deadline) {
		if regionDead(a, "edge") || regionDead(e, "a") {
			t.Fatalf("a cut shorter than the edge grace made a region dead: a finds edge dead %v, edge finds a dead %v",
				regionDead(a, "edge"), regionDead(e, "a"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.heal()
}
