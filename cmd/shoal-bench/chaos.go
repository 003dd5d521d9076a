package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shoalmesh/shoal/chaos"
)

// The chaos figures: the long variants of two built-in scenarios run as
// `shoal chaos run` runs them, their reports turned into figures.

// chaosRun runs a built-in scenario's long variant with seed 1 on a local
// mesh of bin/shoal processes; the report is also saved (report.json and
// timeline.svg) under bin/chaos/bench-NAME.
func chaosRun(ctx context.Context, b *bencher, name string) (*chaos.Report, error) {
	s, err := chaos.Load(name, false)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "shoal-bench-chaos-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	d, err := chaos.StartLocal(sctx, b.bin, filepath.Join(dir, "mesh"), s)
	cancel()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	report, err := chaos.Run(ctx, s, d, chaos.Options{Seed: 1})
	if report != nil {
		save := filepath.Join(filepath.Dir(b.bin), "chaos", "bench-"+name)
		if serr := report.Save(save); serr != nil {
			b.progress("    saving the report: %v", serr)
		} else {
			b.progress("    report in %s", save)
		}
	}
	return report, err
}

// violations counts a report's broken promises and lists them, each
// failed invariant with its first violations (the report.json saved
// beside the binary has them all, with their evidence).
func violations(r *chaos.Report) (int, []string) {
	n := 0
	var lines, firsts []string
	for _, v := range r.Invariants {
		n += v.Count
		state := "held"
		if !v.Passed {
			state = fmt.Sprintf("**%d violations**", v.Count)
			for i, x := range v.Violations {
				if i == 3 {
					break
				}
				firsts = append(firsts, fmt.Sprintf("- %s, +%s: %s", v.Name, x.At.Sub(r.Started).Round(time.Second), x.Message))
			}
		}
		lines = append(lines, fmt.Sprintf("| %s | %s |", v.Name, state))
	}
	if len(firsts) > 0 {
		lines = append(lines, "", "The first violations of each failed invariant:", "")
		lines = append(lines, firsts...)
	}
	return n, lines
}

// recoveryTable is a report's recoveries by kind of fault, as Markdown.
func recoveryTable(r *chaos.Report) []string {
	out := []string{"", "| fault | phase | faults | recovered | median | p99 | max |", "|---|---|---|---|---|---|---|"}
	for _, s := range r.ByKind {
		out = append(out, fmt.Sprintf("| %s | %s | %d | %d | %s | %s | %s |", s.Kind, s.Phase, s.Faults, s.Recovered,
			s.Median.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.Max.Round(time.Millisecond)))
	}
	return out
}

func benchChaosRandom(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	r, err := chaosRun(ctx, b, "random")
	if r == nil {
		return nil, err
	}
	n, table := violations(r)
	faults := 0
	var took []float64
	for _, rc := range r.Recoveries {
		if rc.Phase == chaos.PhaseHeal {
			faults++
			if rc.Recovered {
				took = append(took, float64(rc.Took.Milliseconds()))
			}
		}
	}
	how := fmt.Sprintf("`shoal-bench --only chaos-random` (or `make chaos CHAOS_SCENARIOS=random`): the built-in random scenario, long variant, seed 1 — "+
		"a mesh of %d regions × %d `shoal agent` processes on loopback (TLS), web (6 replicas over every cluster) and the ledger (one replica, strict partition guard), "+
		"writes at 10/s over 50 ConfigMaps (20%% deletes), and for %s one fault at a time drawn from every kind "+
		"(held 3–12 s, then healed, then 2 s once the mesh is Ready again). Every peer's view sampled every 300 ms; every invariant checked throughout and on the final state.",
		r.Mesh.Regions, r.Mesh.Clusters, r.Ended.Sub(r.Started).Round(time.Second))
	violationsFig := &benchFigure{
		Title: "Chaos, random schedule: invariant violations", Unit: "violations", Samples: []float64{float64(n)},
		Target: "0", Check: func(s benchStats) bool { return s.Max == 0 },
		How: how,
		Details: append([]string{"", fmt.Sprintf("%d faults injected, %d writes and %d deletes acknowledged.", faults, r.Writes, r.Deletes),
			"", "| invariant | result |", "|---|---|"}, table...),
	}
	recoveryFig := &benchFigure{
		Title: "Chaos, random schedule: time to recover after each fault's heal (all kinds)", Unit: "ms", Samples: took,
		Target: "every fault recovered within the scenario's 60 s", Check: func(s benchStats) bool { return s.N == faults && s.Max <= 60000 },
		How:     "From the same run: from each heal until a peer's view shows every workload's desired replicas Ready (for kills, stops and NotReady clusters the takeover while the fault held is measured too).",
		Details: recoveryTable(r),
	}
	if err != nil {
		return []*benchFigure{violationsFig, recoveryFig}, err
	}
	return []*benchFigure{violationsFig, recoveryFig}, nil
}

func benchChaosEdgeFlap(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	r, err := chaosRun(ctx, b, "edge-flap")
	if r == nil {
		return nil, err
	}
	churn := 0
	for _, v := range r.Invariants {
		if v.Name == "no-edge-churn" || v.Name == "no-delete-while-cut-off" {
			churn += v.Count
		}
	}
	_, table := violations(r)
	var catchUp []float64
	for _, m := range r.Measures {
		if m.Name == "catch-up" {
			catchUp = append(catchUp, float64(m.Took.Milliseconds()))
		}
	}
	how := "`shoal-bench --only chaos-edge-flap` (or `make chaos CHAOS_SCENARIOS=edge-flap`): the built-in edge-flap scenario, long variant, seed 1 — " +
		"2 regions × 2 `shoal agent` processes, us-east run with `--edge` (edge region grace 2 min, autonomy 10 min), web over every cluster, writes at 10/s; " +
		"us-east's links to the other region cut and healed every 2.5 s (a 5 s period) for 10 minutes."
	figs := []*benchFigure{{
		Title: "Chaos, edge uplink flapping for 10 minutes (5 s period): replicas moved or restarted", Unit: "changes",
		Samples: []float64{float64(churn)}, Target: "0", Check: func(s benchStats) bool { return s.Max == 0 },
		How:     how + " Counted: every change of an edge cluster's objects (uid, replicas) or of a placement on it, as any peer shows it, while the uplink flapped.",
		Details: append([]string{"", "| invariant | result |", "|---|---|"}, table...),
	}, {
		Title: "Chaos, edge region catching up after the last flap: 1,000 objects changed while its uplink was down", Unit: "ms",
		Samples: catchUp, Target: "<= 1 s median on loopback", Check: func(s benchStats) bool { return s.N > 0 && s.Median <= 1000 },
		How: "From the same run: after the flapping, five times over: us-east's uplink is cut once more, 1,000 ConfigMaps are changed in one apply through a peer of eu-west, " +
			"the uplink is healed, and the time until every running peer of both regions holds the same objects is measured (the `catch-up` measures of the report): " +
			"the harness reads every peer's status every 50 ms until all show one digest, and counts up to those reads; it then checks on the leaders' workloads that both regions show the same split and every replica Ready " +
			"(a catch-up ends only when that holds too). It varies with where each region's sync loop stands when the link comes back.",
	}}
	if len(catchUp) == 0 && err == nil {
		err = fmt.Errorf("the report has no catch-up measure")
	}
	return figs, err
}
