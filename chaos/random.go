package chaos

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// random runs a seeded random schedule: one fault at a time, drawn from
// rnd.Faults (every kind that fits the mesh when empty), held for a time
// drawn from rnd.Hold, healed, then — once the mesh is Ready again or the
// scenario's recover time is up — a gap. The same seed on the same mesh
// draws the same schedule.
func (r *runner) random(ctx context.Context, rnd Random) error {
	kinds := rnd.Faults
	if len(kinds) == 0 {
		kinds = randomKinds
	}
	regions := r.regions()
	if !ownsProcesses(r.d) {
		// An attached mesh: only the faults through the peers' endpoints.
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return slices.Contains(processKinds, k) })
	}
	// Faults between regions need two of them.
	if len(regions) < 2 {
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(k string) bool {
			return k == "kill-region" || k == "delay" || k == "loss"
		})
	}
	if len(kinds) == 0 {
		return fmt.Errorf("random: none of the faults %v works on this mesh", rnd.Faults)
	}
	lo, hi := 3*time.Second, 15*time.Second
	if len(rnd.Hold) == 2 {
		lo, hi = rnd.Hold[0].D(), rnd.Hold[1].D()
	}
	gap := rnd.Gap.D()
	if gap <= 0 {
		gap = 3 * time.Second
	}
	end := time.Now().Add(rnd.For.D())
	for n := 1; time.Now().Before(end); n++ {
		kind := kinds[r.intn(len(kinds))]
		hold := lo + time.Duration(r.float()*float64(hi-lo))
		t := r.randomTarget(kind, regions, hold)
		if kind == "partition" && len(t.Sides) == 0 {
			kind = "cut"
		}
		r.note("random fault %d: %s for %s", n, kind, hold.Round(100*time.Millisecond))
		if err := r.inject(ctx, kind, t); err != nil {
			return fmt.Errorf("random fault %d (%s): %w", n, kind, err)
		}
		// Each fault is measured on its own: wait for the mesh to be Ready
		// again (the checker judges how long that took).
		if _, err := r.wait(ctx, "ready", r.s.Recover.D()); err != nil {
			r.note("%v", err)
		}
		if err := sleep(ctx, min(gap, max(time.Until(end), 0))); err != nil {
			return err
		}
	}
	return nil
}

// randomTarget draws what a fault acts on.
func (r *runner) randomTarget(kind string, regions []string, hold time.Duration) Target {
	region := regions[r.intn(len(regions))]
	t := Target{For: Duration(hold), Cluster: "random"}
	switch kind {
	case "kill-leader":
		t = Target{Region: region, For: Duration(hold), Times: 1}
	case "kill-region":
		t = Target{Region: region, For: Duration(hold)}
	case "partition":
		if len(r.clustersOf(region)) < 2 && len(regions) < 2 {
			return Target{Cluster: "random", For: Duration(hold)} // nothing to split: cut a peer off
		}
		if len(regions) >= 2 {
			t = Target{For: Duration(hold), Sides: r.split(regions)}
		} else {
			t = Target{For: Duration(hold), Sides: r.split(r.clustersOf(region))}
		}
	case "delay":
		t = Target{Region: region, For: Duration(hold),
			Delay: Duration(50*time.Millisecond + time.Duration(r.intn(250))*time.Millisecond), Jitter: Duration(20 * time.Millisecond)}
	case "loss":
		t = Target{Region: region, For: Duration(hold), Loss: 0.1 + 0.2*r.float()}
	case "flap":
		period := 2*time.Second + time.Duration(r.intn(4000))*time.Millisecond
		if len(regions) >= 2 {
			t = Target{Region: region, For: Duration(hold), Period: Duration(period)}
		} else {
			t = Target{Cluster: "random", For: Duration(hold), Period: Duration(period)}
		}
	case "skew":
		off := time.Second + time.Duration(r.intn(2000))*time.Millisecond
		if r.intn(2) == 0 {
			off = -off
		}
		t.Offset = Duration(off)
	}
	return t
}

// split draws two non-empty sides from names.
func (r *runner) split(names []string) [][]string {
	names = slices.Clone(names)
	for i := len(names) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		names[i], names[j] = names[j], names[i]
	}
	cut := 1 + r.intn(len(names)-1)
	return [][]string{names[:cut], names[cut:]}
}
