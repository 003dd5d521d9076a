package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// webView is cluster's view of Deployment default/web (3 replicas: 2 on
// eu-1, 1 on us-1) with ready of them Ready, and a ConfigMap.
func webView(sec float64, region, cluster string, ready int32) Sample {
	return withWorkloads(peer(sec, region, cluster),
		deploymentWorkload("web", 3, place("eu-1", "eu-west", 2, min(ready, 2)), place("us-1", "us-east", 1, max(ready-2, 0))),
		configMapWorkload("default", "k"))
}

// recoveries compares the recoveries after heal with want (whose Phase
// it sets); takeovers are checked by phase(t, c, PhaseTakeover, ...).
func recoveries(t *testing.T, c RecoveryChecker, want ...Recovery) {
	t.Helper()
	for i := range want {
		want[i].Phase = PhaseHeal
	}
	phase(t, c, PhaseHeal, want...)
}

func phase(t *testing.T, c RecoveryChecker, p string, want ...Recovery) {
	t.Helper()
	var got []Recovery
	for _, r := range c.Recoveries() {
		if r.Phase == p {
			got = append(got, r)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("recoveries %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("recovery %d is %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestRecoveryMeasuredFromHeal(t *testing.T) {
	history := []any{
		webView(1, "us-east", "us-1", 3), fault(10, EventCut, 1, "eu-1"),
		webView(12, "eu-west", "eu-1", 3), // a Ready view while the cut is open does not count
		webView(13, "eu-west", "eu-2", 2), heal(20, 1),
		webView(21, "eu-west", "eu-2", 2), webView(25, "us-east", "us-1", 3),
	}
	t.Run("in time", func(t *testing.T) {
		c := NewRecovery(10 * time.Second)
		wantNone(t, run(t, c, final(30), history...))
		recoveries(t, c, Recovery{FaultID: 1, Kind: EventCut, From: at(20), Took: 5 * time.Second, Recovered: true})
	})
	t.Run("too slow", func(t *testing.T) {
		vs := run(t, NewRecovery(3*time.Second), final(30), history...)
		want(t, vs, 1, "fault 1 (cut eu-1", "took 5s", "more than 3s")
	})
}

func TestRecoveryOfAFaultNeverHealed(t *testing.T) {
	// eu-1 is killed and stays dead: its replicas move to eu-2, and the
	// kill is measured from its start.
	moved := func(sec float64, cluster string, ready int32) Sample {
		return withWorkloads(peer(sec, "eu-west", cluster), deploymentWorkload("web", 2,
			api.PlacementView{Cluster: "eu-1", Region: "eu-west", Replicas: 2, Health: "Unknown", Evicting: true, Held: true},
			place("eu-2", "eu-west", 2, ready)))
	}
	c := NewRecovery(10 * time.Second)
	wantNone(t, run(t, c, final(40),
		fault(10, EventKill, 1, "eu-1"), down(11, "eu-west", "eu-1"), moved(12, "eu-2", 0), moved(18, "eu-2", 2)))
	recoveries(t, c, Recovery{FaultID: 1, Kind: EventKill, From: at(10), Took: 8 * time.Second, Recovered: true})
}

func TestRecoveryMeasuresTheTakeoverOfALostCluster(t *testing.T) {
	// eu-1 (2 of web's 3 replicas) is killed at 10: its replicas run on
	// eu-2 from 16 (Ready on eu-2 at 18); it is restarted at 30. A view
	// that still shows eu-1's replicas Ready does not count as the
	// takeover, nor does one with no workloads.
	view := func(sec float64, onEU2 int32) Sample {
		return withWorkloads(peer(sec, "us-east", "us-2"), deploymentWorkload("web", 3,
			place("eu-1", "eu-west", 2, 2), place("eu-2", "eu-west", onEU2, onEU2), place("us-1", "us-east", 1, 1)))
	}
	c := NewRecovery(time.Minute)
	wantNone(t, run(t, c, final(60),
		view(1, 0), fault(10, EventKill, 1, "eu-1"), view(11, 0), peer(12, "us-east", "us-2"), view(16, 1), view(18, 2),
		heal(30, 1), view(33, 0)))
	phase(t, c, PhaseTakeover, Recovery{FaultID: 1, Kind: EventKill, Phase: PhaseTakeover, From: at(10), Took: 8 * time.Second, Recovered: true})
	recoveries(t, c, Recovery{FaultID: 1, Kind: EventKill, From: at(30), Took: 3 * time.Second, Recovered: true})

	// A guarded workload on the lost cluster stays there (the partition
	// guard keeps it where it may still run): the takeover of the others
	// does not wait for it, but an unguarded one on it does.
	withLedger := func(sec float64, onEU2 int32) Sample {
		s := view(sec, onEU2)
		s.Workloads = append(s.Workloads, deploymentWorkload("ledger", 1, place("eu-1", "eu-west", 1, 1)))
		return s
	}
	c = NewRecovery(time.Minute, "Deployment default/ledger")
	wantNone(t, run(t, c, final(60), withLedger(1, 0), fault(10, EventKill, 1, "eu-1"), withLedger(18, 2), heal(30, 1), withLedger(33, 0)))
	phase(t, c, PhaseTakeover, Recovery{FaultID: 1, Kind: EventKill, Phase: PhaseTakeover, From: at(10), Took: 8 * time.Second, Recovered: true})
	c = NewRecovery(time.Minute)
	wantNone(t, run(t, c, final(60), withLedger(1, 0), fault(10, EventKill, 1, "eu-1"), withLedger(18, 2), heal(30, 1), withLedger(33, 0)))
	phase(t, c, PhaseTakeover, Recovery{FaultID: 1, Kind: EventKill, Phase: PhaseTakeover, From: at(10), Recovered: false})

	// A cut is not a fault the mesh rides out by moving replicas: no
	// takeover is measured.
	c = NewRecovery(time.Minute)
	wantNone(t, run(t, c, final(60), view(1, 0), fault(10, EventCut, 1, "eu-1"), view(18, 2), heal(30, 1), view(33, 0)))
	phase(t, c, PhaseTakeover)
}

func TestRecoveryOfOverlappingFaults(t *testing.T) {
	// A cut (healed at 30) and a kill (healed at 40) overlap: a Ready view
	// while either is open does not count, and both recover at the first
	// Ready view after the last heal, each measured from its own heal.
	c := NewRecovery(time.Minute)
	wantNone(t, run(t, c, final(60),
		fault(10, EventCut, 1, "us-1"), fault(15, EventKill, 2, "eu-2"),
		webView(20, "eu-west", "eu-1", 3), heal(30, 1), webView(35, "eu-west", "eu-1", 3),
		heal(40, 2), webView(42, "eu-west", "eu-1", 2), webView(45, "us-east", "us-2", 3)))
	recoveries(t, c,
		Recovery{FaultID: 1, Kind: EventCut, From: at(30), Took: 15 * time.Second, Recovered: true},
		Recovery{FaultID: 2, Kind: EventKill, From: at(40), Took: 5 * time.Second, Recovered: true})
}

func TestRecoveryNeverRecovered(t *testing.T) {
	stale := webView(30, "us-east", "us-2", 3)
	stale.Status.Stale = true
	unknown := withWorkloads(peer(32, "eu-west", "eu-1"), deploymentWorkload("web", 3,
		place("eu-1", "eu-west", 2, 2), api.PlacementView{Cluster: "us-1", Region: "us-east", Replicas: 1, ReadyReplicas: 1, Health: "Unknown"}))
	empty := peer(34, "us-east", "us-1") // shows no workload at all
	c := NewRecovery(10 * time.Second)
	vs := run(t, c, final(40),
		webView(1, "eu-west", "eu-1", 3), fault(10, EventNotReady, 4, "eu-2"), fault(11, EventStop, 5, "us-1"), heal(20, 5),
		webView(25, "eu-west", "eu-2", 3), // the NotReady cluster's own view does not count
		stale, unknown, empty)
	want(t, vs, 2, "fault 4 (not-ready eu-2", "never recovered")
	want(t, vs, 2, "fault 5 (stop us-1", "never recovered")
	if ev := vs[0].Evidence; ev == "" || !strings.Contains(ev, "no workload with replicas shown") {
		t.Errorf("evidence %q does not say why the last view was not recovered", ev)
	}
	recoveries(t, c,
		Recovery{FaultID: 4, Kind: EventNotReady, From: at(10)},
		Recovery{FaultID: 5, Kind: EventStop, From: at(20)})
}

func TestRecoveryInTheFinalSamples(t *testing.T) {
	c := NewRecovery(30 * time.Second)
	f := final(40)
	f.Samples = []Sample{webView(0, "us-east", "us-1", 3)}
	f.Samples[0].At = time.Time{} // dated f.At
	wantNone(t, run(t, c, f, fault(10, EventDelay, 1, "eu-1", "us-1"), heal(20, 1), webView(25, "eu-west", "eu-2", 1)))
	recoveries(t, c, Recovery{FaultID: 1, Kind: EventDelay, From: at(20), Took: 20 * time.Second, Recovered: true})
}

func TestRecoveryIgnoresWhatIsNoFault(t *testing.T) {
	c := NewRecovery(time.Second)
	wantNone(t, run(t, c, final(10), Event{At: at(1), Kind: EventForge, ID: 1}, write(2, "default/k", "v", "eu-1"),
		Event{At: at(3), Kind: EventNote, Detail: "step 2"}, heal(4, 1)))
	recoveries(t, c)
}
