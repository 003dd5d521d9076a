package api

import (
	"testing"
	"time"
)

func TestToleratesTaint(t *testing.T) {
	taint := Taint{Key: "k", Value: "v", Effect: TaintEffectNoSchedule}
	tests := []struct {
		name string
		tol  Toleration
		want bool
	}{
		{"equal default operator", Toleration{Key: "k", Value: "v", Effect: TaintEffectNoSchedule}, true},
		{"equal explicit", Toleration{Key: "k", Operator: "Equal", Value: "v"}, true},
		{"equal wrong value", Toleration{Key: "k", Value: "w"}, false},
		{"exists any value", Toleration{Key: "k", Operator: "Exists"}, true},
		{"empty key exists matches all", Toleration{Operator: "Exists"}, true},
		{"wrong key", Toleration{Key: "x", Operator: "Exists"}, false},
		{"wrong effect", Toleration{Key: "k", Operator: "Exists", Effect: TaintEffectNoExecute}, false},
		{"empty effect matches all", Toleration{Key: "k", Value: "v"}, true},
		{"unknown operator", Toleration{Key: "k", Operator: "Gt", Value: "v"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tol.ToleratesTaint(taint); got != tt.want {
				t.Fatalf("ToleratesTaint = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUntolerated(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	secs := func(s int64) *int64 { return &s }
	unreachable := Taint{Key: TaintClusterUnreachable, Effect: TaintEffectNoExecute, Added: now.Add(-time.Minute)}
	noSched := Taint{Key: "maint", Effect: TaintEffectNoSchedule}
	prefer := Taint{Key: "busy", Effect: TaintEffectPreferNoSchedule}
	tests := []struct {
		name   string
		tols   []Toleration
		taints []Taint
		want   string // key of the untolerated taint, "" for none
	}{
		{"no taints", nil, nil, ""},
		{"prefer never blocks", nil, []Taint{prefer}, ""},
		{"noschedule blocks", nil, []Taint{prefer, noSched}, "maint"},
		{"noschedule tolerated", []Toleration{{Key: "maint", Operator: "Exists"}}, []Taint{noSched}, ""},
		{"noexecute blocks", nil, []Taint{unreachable}, TaintClusterUnreachable},
		{"noexecute tolerated for ever", []Toleration{{Key: TaintClusterUnreachable, Operator: "Exists", Effect: TaintEffectNoExecute}}, []Taint{unreachable}, ""},
		{"noexecute within seconds", []Toleration{{Key: TaintClusterUnreachable, Operator: "Exists", TolerationSeconds: secs(120)}}, []Taint{unreachable}, ""},
		{"noexecute seconds expired", []Toleration{{Key: TaintClusterUnreachable, Operator: "Exists", TolerationSeconds: secs(30)}}, []Taint{unreachable}, TaintClusterUnreachable},
		{"expires exactly at the bound", []Toleration{{Key: TaintClusterUnreachable, Operator: "Exists", TolerationSeconds: secs(60)}}, []Taint{unreachable}, TaintClusterUnreachable},
		// Only the first toleration that tolerates a taint is used
		// (Karmada's GetMatchingTolerations): a later one's seconds do not
		// bound it, an earlier one's do.
		{"a later toleration's seconds are not used", []Toleration{
			{Operator: "Exists"},
			{Key: TaintClusterUnreachable, Operator: "Exists", TolerationSeconds: secs(30)}}, []Taint{unreachable}, ""},
		{"the first tolerating toleration's seconds bound", []Toleration{
			{Key: TaintClusterUnreachable, Operator: "Exists", TolerationSeconds: secs(30)},
			{Operator: "Exists"}}, []Taint{unreachable}, TaintClusterUnreachable},
		{"zero seconds evicts at once", []Toleration{{Operator: "Exists", TolerationSeconds: secs(0)}}, []Taint{{Key: "x", Effect: TaintEffectNoExecute, Added: now}}, "x"},
		{"unknown age never expires", []Toleration{{Operator: "Exists", TolerationSeconds: secs(1)}}, []Taint{{Key: "x", Effect: TaintEffectNoExecute}}, ""},
		{"seconds ignored for noschedule", []Toleration{{Operator: "Exists", TolerationSeconds: secs(1)}}, []Taint{{Key: "x", Effect: TaintEffectNoSchedule, Added: now.Add(-time.Hour)}}, ""},
		{"huge seconds do not overflow", []Toleration{{Operator: "Exists", TolerationSeconds: secs(1 << 62)}}, []Taint{unreachable}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad := Untolerated(tt.tols, tt.taints, now)
			if bad != (tt.want != "") || got.Key != tt.want {
				t.Fatalf("Untolerated = %v %v, want %q", got, bad, tt.want)
			}
		})
	}
}

func TestTaintString(t *testing.T) {
	if s := (Taint{Key: "a", Value: "b", Effect: "NoSchedule"}).String(); s != "a=b:NoSchedule" {
		t.Fatal(s)
	}
	if s := (Taint{Key: "a", Effect: "NoExecute"}).String(); s != "a:NoExecute" {
		t.Fatal(s)
	}
}
