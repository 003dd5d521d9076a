package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Each scenario returns figures; a figure is a set of samples (one per
// trial) summarised as median, p99, min and max, next to the target the
// project set for it. Scenarios that need peer processes start a local mesh
// of `shoal agent` processes (node.StartMesh) and always stop it, whatever
// happens; the peers also die with this process (Pdeathsig).

// benchScenario is one scenario of shoal-bench.
type benchScenario struct {
	name string
	what string
	run  func(ctx context.Context, b *bencher) ([]*benchFigure, error)
}

var benchScenarios = []benchScenario{
	{"cluster-failover", "peer killed -> replacement replicas Ready elsewhere (LAN and local gossip profiles)", benchClusterFailover},
	{"leader-failover", "leader killed -> next write acknowledged", benchLeaderFailover},
	{"propagation", "apply acknowledged -> every bound cluster running (multi-process and in-process)", benchPropagation},
	{"scheduler", "region.Schedule throughput: 10,000 workloads over 100 clusters", benchScheduler},
	{"footprint", "peer RSS and idle CPU with 1,000 workloads", benchFootprint},
	{"real-propagation", "real member clusters: apply -> Deployment Ready in every bound member; 50 at once", benchRealPropagation},
	{"real-failover", "real member clusters: kube-apiserver killed -> replacement pods Ready in the survivors", benchRealFailover},
	{"real-footprint", "real member clusters: peer RSS and idle CPU with 200 workloads", benchRealFootprint},
	{"real-lifecycle", "real member clusters: promote 100 running Deployments; migrate one between members", benchRealLifecycle},
	{"region-failover", "mesh of 3 regions: every peer of a region killed -> its replicas Ready in the others", benchRegionFailover},
	{"region-propagation", "mesh of 3 regions, 50 ms between them: apply -> running in every region", benchRegionPropagation},
	{"region-catchup", "a region cut off while 1,000 objects changed: catch-up time and bytes", benchRegionCatchUp},
	{"region-scale", "20 regions in one process: convergence after a write, memory per peer", benchRegionScale},
	{"chaos-random", "chaos: the random scenario for 10 minutes on 3 regions x 3 clusters: violations, recovery per fault", benchChaosRandom},
	{"chaos-edge-flap", "chaos: an edge uplink flapping for 10 minutes: churn, catch-up of 1,000 objects", benchChaosEdgeFlap},
}

// benchFigure is one measured figure.
type benchFigure struct {
	Title   string
	Command string // the --only name that reproduces it
	Unit    string // unit of the samples: "ms", "placements/s", "MiB", "%"
	Samples []float64
	// Target says what the project aims for; Check tells whether the
	// summary meets it (nil: no target).
	Target string
	Check  func(s benchStats) bool
	// Compare is the comparison point from the issue (Karmada).
	Compare string
	How     string   // the "how measured" paragraph
	Details []string // further Markdown lines (tables, notes)
}

// benchStats summarises samples; P99 is the nearest-rank 99th percentile
// (with fewer than 100 samples it is the largest or second largest).
type benchStats struct {
	N                     int
	Median, P99, Min, Max float64
}

func summarize(xs []float64) benchStats {
	if len(xs) == 0 {
		return benchStats{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.99*float64(n))) - 1
	return benchStats{N: n, Median: med, P99: s[rank], Min: s[0], Max: s[n-1]}
}

// bencher is what every scenario gets.
type bencher struct {
	out    io.Writer
	bin    string // the shoal binary the mesh runs as agents
	trials int
	start  time.Time
}

func (b *bencher) progress(format string, args ...any) {
	fmt.Fprintf(b.out, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// failoverTrials is the number of trials of the failover figures: at least
// 10, whatever --trials says.
func (b *bencher) failoverTrials() int { return max(b.trials, 10) }

func benchNames() string {
	var names []string
	for _, s := range benchScenarios {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "ms":
		if v >= 1000 {
			return fmt.Sprintf("%.2f s", v/1000)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "placements/s":
		return fmt.Sprintf("%.0f/s", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "%":
		return fmt.Sprintf("%.2f %%", v)
	case "µs":
		return fmt.Sprintf("%.1f µs", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

func verdict(f *benchFigure, st benchStats) string {
	switch {
	case f.Check == nil || st.N == 0:
		return ""
	case f.Check(st):
		return "meets the target (" + f.Target + ")"
	default:
		return "MISSES the target (" + f.Target + ")"
	}
}

func msSince(t time.Time) float64 { return float64(time.Since(t)) / float64(time.Millisecond) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// machine describes where the figures were taken.
type machine struct {
	CPUs               int
	CPUModel           string
	MemTotal           string
	GoVersion          string
	Kernel             string
	Date               time.Time
	LoadStart, LoadEnd string
	Duration           time.Duration
}

func readMachine() machine {
	m := machine{CPUs: nprocs(), GoVersion: goVersion(), Date: time.Now().UTC(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(v), &kb)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// benchDeployment is the small Deployment every scenario applies: nginx
// replicas asking 10m CPU and 16Mi each, labelled app=NAME and, if given,
// with the extra labels ("key: value, key: value").
func benchDeployment(name, namespace string, replicas int, labels string) string {
	if labels != "" {
		labels = ", " + labels
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
  labels: {app: %[1]s%[4]s}
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: app
          image: nginx:1.27
          resources:
            requests: {cpu: 10m, memory: 16Mi}
`, name, namespace, replicas, labels)
}
