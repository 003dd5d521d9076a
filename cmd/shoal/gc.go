package main

import (
	"runtime/debug"
)

// agentGCPercent is the garbage collector's target of `shoal agent` when
// the operator has not set GOGC: the heap may grow 25% over what is live
// before the next collection, where Go's default lets it double.
//
// A peer's live heap is small (about 10 MiB with 1,000 workloads), and
// what it holds on to beyond that is mostly heap waiting for the next
// collection. Measured with shoal-bench's footprint scenario (3 peers,
// 1,000 workloads, 3 runs; about 22 MiB of each figure is the executable's
// own pages): with Go's default GOGC=100 the middle peer sat at 45-47 MiB
// when idle and the leader peaked at 57-61 MiB while the workloads were
// applied; with 25, 39 MiB idle and 46-47 MiB at the peak. The price is
// more frequent collections while a burst is applied (about four times as
// many) and no measurable change when idle. The agent sets no memory
// limit: a fixed one would either never bind or make a large region's
// peers collect without pause. An operator who knows the budget (a pod's
// memory limit) sets GOMEMLIMIT, and GOGC to choose another trade-off; the
// runtime honours both.
const agentGCPercent = 25

// tuneGC sets the agent's garbage collector target unless GOGC is set in
// the environment (getenv). It reports the target it set, or false.
func tuneGC(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	debug.SetGCPercent(agentGCPercent)
	return agentGCPercent, true
}
