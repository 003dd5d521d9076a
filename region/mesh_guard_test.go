package region

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// The partition guard of the global split (Leader.guard).

const guardedPolicy = `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"web","namespace":"default",` +
	`"annotations":{"shoal.io/partition-guard":"majority"}},"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}],` +
	`"placement":{"replicaScheduling":{"replicaSchedulingType":"Divided"}}}}`

// watchRunning samples, until stop is closed, the replicas every region
// runs of web, and reports the first moment more than limit ran at once.
func watchRunning(rs []*splitRegion, limit int32, stop <-chan struct{}) <-chan string {
	out := make(chan string, 1)
	go func() {
		defer close(out)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var total int32
			for _, r := range rs {
				total += r.running(webKey)
			}
			if total > limit {
				out <- shares(rs, true)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return out
}

func TestMeshPartitionGuardNeverRunsAWorkloadTwice(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	c := addSplitRegion(t, n, "c", "wan-a")
	rs := []*splitRegion{a, b, c}
	eventually(t, "every region knows the others", func() bool {
		for _, r := range rs {
			var k int
			r.fsm.Read(func(s *State) { k = len(s.Regions()) })
			if k != 2 {
				return false
			}
		}
		return true
	})
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 1)), obj(ppKey, guardedPolicy)))
	var home *splitRegion
	eventually(t, "one region runs the single replica", func() bool {
		home = nil
		var total int32
		for _, r := range rs {
			total += r.running(webKey)
			if r.running(webKey) == 1 {
				home = r
			}
		}
		return total == 1 && home != nil
	})
	// Every region knows where it runs before the fault.
	eventually(t, "every region's summaries show where it runs", func() bool {
		for _, r := range rs {
			var ok bool
			r.fsm.Read(func(s *State) {
				if r == home {
					ok = true
					return
				}
				ok = runningIn(s.Region(home.region).GetSummary(), bindingOf(s.Region(home.region).GetSummary(), webKey), webKey) == 1
			})
			if !ok {
				return false
			}
		}
		return true
	})
	stop := make(chan struct{})
	twice := watchRunning(rs, 1, stop)
	var others []string
	for _, r := range rs {
		if r != home {
			others = append(others, r.region)
		}
	}
	// The region that runs it is cut off: it hears 1 of 3 and stops it;
	// the other two, a majority, take it over once it is dead.
	n.isolate(home.region, others...)
	eventually(t, "another region takes the replica over", func() bool {
		return home.running(webKey) == 0 && a.running(webKey)+b.running(webKey)+c.running(webKey) == 1
	})
	var fenced string
	home.fsm.Read(func(s *State) { fenced = s.Binding(webKey).GetReason() })
	if !strings.Contains(fenced, "fenced") {
		t.Errorf("the cut-off region's binding says %q, want it fenced", fenced)
	}
	n.heal()
	eventually(t, "after the heal one replica runs, under one epoch everywhere", func() bool {
		var total int32
		epochs := map[int64]bool{}
		for _, r := range rs {
			total += r.running(webKey)
			r.fsm.Read(func(s *State) { epochs[s.Binding(webKey).GetGuardEpoch()] = true })
		}
		// The region that took it over raised the epoch.
		return total == 1 && len(epochs) == 1 && !epochs[0]
	}, func() string {
		out := shares(rs, true)
		for _, r := range rs {
			r.fsm.Read(func(s *State) {
				b := s.Binding(webKey)
				out += fmt.Sprintf("\n%s: epoch %d from %v mesh %s: %s", r.region, b.GetGuardEpoch(), b.GetGuardTakenFrom(), targetString(b.GetMeshTargets()), b.GetReason())
			})
		}
		return out
	})
	close(stop)
	if got := <-twice; got != "" {
		t.Fatalf("the guarded workload ran twice: %s", got)
	}
}

func TestMeshPartitionGuardStopsOnBothHalvesOfAnEvenSplit(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	rs := []*splitRegion{a, b}
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, guardedPolicy)))
	eventually(t, "the two regions run one each", func() bool { return shares(rs, true) == "a=1 b=1 " })
	stop := make(chan struct{})
	twice := watchRunning(rs, 2, stop)
	// Neither half of a two-region mesh has a majority: both stop.
	n.isolate("a", "b")
	eventually(t, "both halves stop", func() bool { return shares(rs, true) == "a=0 b=0 " })
	n.heal()
	eventually(t, "both run again", func() bool { return shares(rs, true) == "a=1 b=1 " })
	close(stop)
	if got := <-twice; got != "" {
		t.Fatalf("more than 2 replicas ran: %s", got)
	}
}

func bindingOf(sum *shoalpb.RegionSummary, k api.ObjectKey) *shoalpb.Binding {
	for _, b := range sum.GetBindings() {
		if api.KeyFromProto(b.GetWorkload()) == k {
			return b
		}
	}
	return nil
}

const strictPolicy = `{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy","metadata":{"name":"web","namespace":"default",` +
	`"annotations":{"shoal.io/partition-guard":"strict"}},"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}],` +
	`"placement":{"replicaScheduling":{"replicaSchedulingType":"Divided"}}}}`

// A region whose peers are all dead while its clusters run looks, from the
// other regions, exactly like a region cut off from them: a strict guard
// takes nothing over from it until it is forgotten.
func TestMeshStrictGuardTakesNothingOverFromASilentRegionUntilItIsForgotten(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	c := addSplitRegion(t, n, "c", "wan-a")
	rs := []*splitRegion{a, b, c}
	// One replica at equal weights goes to c: names break the tie
	// descending for default/web (see TestLeaderBreaksTiesByTheWorkloadUID).
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 1)), obj(ppKey, strictPolicy)))
	eventually(t, "c runs the single replica and every region's summaries show it", func() bool {
		if shares(rs, true) != "a=0 b=0 c=1 " {
			return false
		}
		for _, r := range []*splitRegion{a, b} {
			var n int32
			r.fsm.Read(func(s *State) {
				n = runningIn(s.Region("c").GetSummary(), bindingOf(s.Region("c").GetSummary(), webKey), webKey)
			})
			if n != 1 {
				return false
			}
		}
		return true
	})
	stop := make(chan struct{})
	twice := watchRunning(rs, 1, stop)
	n.isolate("c", "a", "b")
	eventually(t, "a and b find c dead", func() bool {
		dead := 0
		for _, r := range []*splitRegion{a, b} {
			r.fsm.Read(func(s *State) {
				if s.Region("c").GetDead() {
					dead++
				}
			})
		}
		return dead == 2
	})
	// Well past the verdict (grace 1 s): nobody took it over, c (which
	// cannot tell either) did not fence itself, and b says why it waits.
	time.Sleep(2 * time.Second)
	if got := shares(rs, true); got != "a=0 b=0 c=1 " {
		t.Fatalf("a silent region's strict guarded workload moved: running %s", got)
	}
	var why string
	b.fsm.Read(func(s *State) { why = s.Binding(webKey).GetReason() })
	if !strings.Contains(why, "c (1) went silent") || !strings.Contains(why, "shoal region forget") {
		t.Errorf("b's binding says %q; want it to name the silent region and the way out", why)
	}
	close(stop)
	if got := <-twice; got != "" {
		t.Fatalf("the guarded workload ran twice: %s", got)
	}
	// The operator says c is gone: a and b forget it and one of them
	// takes the replica over.
	for _, r := range []*splitRegion{a, b} {
		r.command(t, &shoalpb.Command{Cmd: &shoalpb.Command_ForgetRegion{ForgetRegion: &shoalpb.ForgetRegion{Region: "c"}}})
	}
	eventually(t, "a or b runs the replica once c is forgotten", func() bool { return a.running(webKey)+b.running(webKey) == 1 },
		func() string { return shares(rs, true) })
}

func TestMeshStrictGuardDoesNotFenceACutOffRegion(t *testing.T) {
	n := newMeshNet()
	a := addSplitRegion(t, n, "a")
	b := addSplitRegion(t, n, "b", "wan-a")
	rs := []*splitRegion{a, b}
	a.command(t, applyObjects(obj(webKey, fmt.Sprintf(deployment, 2)), obj(ppKey, strictPolicy)))
	eventually(t, "the two regions run one each", func() bool { return shares(rs, true) == "a=1 b=1 " })
	stop := make(chan struct{})
	twice := watchRunning(rs, 2, stop)
	// Unlike the majority guard (both halves of an even split stop), a
	// strict guard keeps each half running what it ran, and neither
	// takes over the other's.
	n.isolate("a", "b")
	time.Sleep(2500 * time.Millisecond)
	if got := shares(rs, true); got != "a=1 b=1 " {
		var why string
		a.fsm.Read(func(s *State) {
			b := s.Binding(webKey)
			why = fmt.Sprintf("%s strict=%v ev=%s", b.GetReason(), b.GetGuardStrict(), evictionString(b.GetEvictions()))
		})
		t.Fatalf("cut off, the halves run %s; want each to keep its one (a: %s)", got, why)
	}
	n.heal()
	time.Sleep(time.Second)
	close(stop)
	if got := <-twice; got != "" {
		t.Fatalf("more than 2 replicas ran: %s", got)
	}
	if got := shares(rs, true); got != "a=1 b=1 " {
		t.Fatalf("after the heal the halves run %s", got)
	}
}
