package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/node"
)

func nprocs() int { return runtime.NumCPU() }

func goVersion() string { return runtime.Version() }

// renderBenchmarks writes BENCHMARKS.md.
func renderBenchmarks(m machine, scenarios []benchScenario, figures []*benchFigure, failed []string, partial bool, trials int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Shoal benchmarks")
	p("")
	p("Measured figures, written by `make bench` (which runs `shoal-bench --out BENCHMARKS.md`);")
	p("the figures in this file are not typed by hand. All peers run on loopback (127.0.0.1) on one machine.")
	p("In the figures whose title does not start with \"Real clusters\", each peer drives a simulated member")
	p("cluster (`deploy.SimCluster`), so they measure Shoal itself: gossip, Raft, scheduling, reconciliation")
	p("and status reporting, not a real kubelet. The \"Real clusters\" figures (scenarios `real-*`) drive real")
	p("Kubernetes control planes (kube-apiserver, kube-controller-manager, kube-scheduler, etcd; kwok as the")
	p("kubelet), built from their Go modules by `make k8s-tools`, on the same machine.")
	p("")
	p("## Machine")
	p("")
	p("| | |")
	p("|---|---|")
	p("| command | `make bench`%s |", map[bool]string{true: " (partial run: `--only`)", false: ""}[partial])
	p("| date | %s |", m.Date.Format("2006-01-02 15:04 MST"))
	p("| CPUs (`nproc`) | %d%s |", m.CPUs, optional(" × "+m.CPUModel, m.CPUModel != ""))
	p("| memory (MemTotal, /proc/meminfo) | %s |", m.MemTotal)
	p("| Go | %s |", m.GoVersion)
	p("| kernel | Linux %s |", m.Kernel)
	p("| Shoal version | %s |", node.Version)
	p("| load average (1, 5, 15 min) | %s at the start, %s at the end |", m.LoadStart, m.LoadEnd)
	p("| whole run | %s, %d trial(s) per figure (failover figures at least 10, propagation %d) |", m.Duration.Round(time.Second), trials, 5*trials)
	p("")
	p("The machine is shared: other test suites ran at the same time, so the figures are noisy")
	p("(see the load average above; with 2 CPUs a load above 2 means the peers waited for a CPU).")
	p("p99 is the nearest-rank 99th percentile: with fewer than 100 trials it is the largest sample, so one")
	p("slow trial decides it. Run one figure again with `./bin/shoal-bench --only NAME --out FILE` (the `real-*`")
	p("scenarios after `make k8s-tools`, from the repository root or with SHOAL_K8S_BIN set).")
	p("")
	p("## Summary")
	p("")
	p("| figure | median | p99 | min | max | n | target | met? | comparison |")
	p("|---|---|---|---|---|---|---|---|---|")
	for _, f := range figures {
		st := summarize(f.Samples)
		if st.N == 0 {
			p("| %s | – | – | – | – | 0 | %s | not measured | %s |", f.Title, f.Target, f.Compare)
			continue
		}
		met := "–"
		if f.Check != nil {
			met = "**no**"
			if f.Check(st) {
				met = "yes"
			}
		}
		p("| %s | %s | %s | %s | %s | %d | %s | %s | %s |", f.Title, fmtValue(st.Median, f.Unit), fmtValue(st.P99, f.Unit),
			fmtValue(st.Min, f.Unit), fmtValue(st.Max, f.Unit), st.N, f.Target, met, f.Compare)
	}
	if len(failed) > 0 {
		p("")
		p("Scenarios that failed in this run (their figures are missing or partial):")
		p("")
		for _, f := range failed {
			p("- %s", oneLine(f))
		}
	}
	for _, f := range figures {
		st := summarize(f.Samples)
		p("")
		p("## %s", f.Title)
		p("")
		if st.N > 0 && f.Check == nil {
			p("median **%s**, p99 %s, min %s, max %s over %d samples; no target set.", fmtValue(st.Median, f.Unit),
				fmtValue(st.P99, f.Unit), fmtValue(st.Min, f.Unit), fmtValue(st.Max, f.Unit), st.N)
			p("")
		} else if st.N > 0 {
			p("median **%s**, p99 %s, min %s, max %s over %d samples; target %s: %s.", fmtValue(st.Median, f.Unit),
				fmtValue(st.P99, f.Unit), fmtValue(st.Min, f.Unit), fmtValue(st.Max, f.Unit), st.N, f.Target,
				strings.TrimSpace(strings.SplitN(verdict(f, st)+" ", " (", 2)[0]))
			p("")
		}
		p("Reproduce: `make bench`, or this figure alone: `./bin/shoal-bench --only %s --out FILE`.", f.Command)
		p("")
		p("**How measured.** %s", f.How)
		if f.Compare != "" {
			p("")
			p("**Comparison.** %s", f.Compare)
		}
		if len(f.Details) > 0 {
			p("")
			for _, d := range f.Details {
				p("%s", d)
			}
		}
		if len(f.Samples) > 0 {
			p("")
			p("Samples (%s, in trial order): %s", f.Unit, sampleList(f.Samples, f.Unit))
		}
	}
	return b.String()
}

func optional(s string, ok bool) string {
	if ok {
		return s
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func sampleList(xs []float64, unit string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		switch unit {
		case "ms", "MiB", "µs":
			parts[i] = fmt.Sprintf("%.1f", x)
		case "%":
			parts[i] = fmt.Sprintf("%.2f", x)
		default:
			parts[i] = fmt.Sprintf("%.0f", x)
		}
	}
	return strings.Join(parts, ", ")
}
