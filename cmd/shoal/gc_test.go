package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGCLeavesTheOperatorsGOGC: the agent sets its GC target only when
// GOGC is not set.
func TestTuneGCLeavesTheOperatorsGOGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	if _, set := tuneGC(func(k string) string { return map[string]string{"GOGC": "200"}[k] }); set {
		t.Error("GOGC=200 in the environment, and the agent set its own target")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC target %d after GOGC was set, want it untouched (100)", got)
	}
	if p, set := tuneGC(func(string) string { return "" }); !set || p != agentGCPercent {
		t.Errorf("no GOGC: tuneGC = %d, %v; want %d, true", p, set, agentGCPercent)
	}
	if got := debug.SetGCPercent(100); got != agentGCPercent {
		t.Errorf("GC target %d without GOGC, want %d", got, agentGCPercent)
	}
}
