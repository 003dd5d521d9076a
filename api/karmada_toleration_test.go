package api

import (
	"testing"
	"time"
)

// Compatibility with Karmada's taint tolerations, read at commit f8fdd02d
// (after v1.19.0-rc.0): the matching of one toleration against one taint
// (Kubernetes' Toleration.ToleratesTaint, which Karmada calls with the
// comparison operators off), and which taints a placement tolerates and for
// how long (pkg/util/helper/taint.go, used by Karmada's taint manager).
// The inputs and verdicts are those of the tests named; the scheduler's
// filter and the taint manager's eviction over whole clusters are checked
// in region/karmada_toleration_test.go.
//
// Left out, with no Shoal counterpart: TestTaintExists and
// TestTolerationExists (Karmada's taint and toleration bookkeeping: the
// first serves SetCurrentClusterTaints, whose cases are in region; the
// second only AddTolerations, which nothing in Karmada calls any more),
// TestAddTolerations, TestHasNoExecuteTaints, TestGetNoExecuteTaints and
// TestGenerateTaintsMessage (list helpers and an event message).

func TestKarmadaToleratesTaint(t *testing.T) {
	// k8s.io/api v0.36.3 (the version Shoal's go.mod resolves; Karmada at
	// f8fdd02d is on v0.35) core/v1/toleration_test.go,
	// TestTolerationToleratesTaint. Its Lt and Gt cases expect what the
	// TaintTolerationComparisonOperators gate gives; Karmada calls
	// ToleratesTaint with enableComparisonOperators false (taint_toleration.go,
	// taint.go: "For now, we disable the comparison operators"), so with
	// Karmada none of them tolerates, whatever the numbers.
	const src = "toleration_test.go TestTolerationToleratesTaint: "
	type tolCase struct {
		name  string
		tol   Toleration
		taint Taint
		want  bool
	}
	tests := []tolCase{
		{"same key and effect, Exists, taint without value",
			Toleration{Key: "foo", Operator: "Exists", Effect: TaintEffectNoSchedule},
			Taint{Key: "foo", Effect: TaintEffectNoSchedule}, true},
		{"same key and effect, Exists, taint with a value",
			Toleration{Key: "foo", Operator: "Exists", Effect: TaintEffectNoSchedule},
			Taint{Key: "foo", Value: "bar", Effect: TaintEffectNoSchedule}, true},
		{"same effect, empty key with Exists matches all taints",
			Toleration{Operator: "Exists", Effect: TaintEffectNoSchedule},
			Taint{Key: "foo", Value: "bar", Effect: TaintEffectNoSchedule}, true},
		{"same key, effect and value, Equal",
			Toleration{Key: "foo", Operator: "Equal", Value: "bar", Effect: TaintEffectNoSchedule},
			Taint{Key: "foo", Value: "bar", Effect: TaintEffectNoSchedule}, true},
		{"same key and effect, different values, Equal",
			Toleration{Key: "foo", Operator: "Equal", Value: "value1", Effect: TaintEffectNoSchedule},
			Taint{Key: "foo", Value: "value2", Effect: TaintEffectNoSchedule}, false},
		{"same key and value, different effects, Equal",
			Toleration{Key: "foo", Operator: "Equal", Value: "bar", Effect: TaintEffectNoSchedule},
			Taint{Key: "foo", Value: "bar", Effect: TaintEffectNoExecute}, false},
	}
	for _, c := range []struct{ name, key, op, tolValue, taintValue string }{
		{"Gt, taint value less than toleration value", "node.kubernetes.io/sla", "Gt", "950", "800"},
		{"Gt, taint value greater than toleration value", "node.kubernetes.io/sla", "Gt", "750", "950"},
		{"Lt, taint value greater than toleration value", "node.kubernetes.io/sla", "Lt", "800", "950"},
		{"Lt, taint value less than toleration value", "node.kubernetes.io/sla", "Lt", "950", "800"},
		{"Gt, equal numeric values", "node.kubernetes.io/sla", "Gt", "950", "950"},
		{"Gt, non-numeric taint value", "node.kubernetes.io/sla", "Gt", "950", "high"},
		{"Gt, negative values", "test-key", "Gt", "-100", "-200"},
		{"Gt, large int64 values", "test-key", "Gt", "9223372036854775806", "100"},
	} {
		tests = append(tests, tolCase{c.name + " (comparison operators off)",
			Toleration{Key: c.key, Operator: c.op, Value: c.tolValue, Effect: TaintEffectNoSchedule},
			Taint{Key: c.key, Value: c.taintValue, Effect: TaintEffectNoSchedule}, false})
	}
	for _, tt := range tests {
		t.Run(src+tt.name, func(t *testing.T) {
			if got := tt.tol.ToleratesTaint(tt.taint); got != tt.want {
				t.Fatalf("ToleratesTaint(%+v, %s) = %v, want %v", tt.tol, tt.taint, got, tt.want)
			}
		})
	}
}

func TestKarmadaGetMatchingTolerations(t *testing.T) {
	// pkg/util/helper/taint_test.go, TestGetMatchingTolerations: whether
	// every taint is tolerated. (The tolerations it returns are the ones
	// TestKarmadaGetMinTolerationTime bounds the time with.) The taints are
	// NoSchedule, so no time is involved.
	const src = "taint_test.go TestGetMatchingTolerations: "
	kv := func(k, v string) Taint { return Taint{Key: k, Value: v, Effect: TaintEffectNoSchedule} }
	tol := func(k, v string) Toleration { return Toleration{Key: k, Value: v, Effect: TaintEffectNoSchedule} }
	tests := []struct {
		name   string
		taints []Taint
		tols   []Toleration
		want   bool // every taint tolerated
	}{
		{"taints is nil", nil, []Toleration{tol("key1", "value1")}, true},
		{"tolerations is nil", []Taint{kv("key1", "value1")}, nil, false},
		{"tolerated is true", []Taint{kv("key1", "value1"), kv("key2", "value2")},
			[]Toleration{tol("key1", "value1"), tol("key2", "value2")}, true},
		{"tolerated is false", []Taint{kv("key1", "value1"), kv("key2", "value2")},
			[]Toleration{tol("key1", "value_1"), tol("key2", "value_2")}, false},
	}
	for _, tt := range tests {
		t.Run(src+tt.name, func(t *testing.T) {
			taint, bad := Untolerated(tt.tols, tt.taints, karmadaFixedTime)
			if !bad != tt.want {
				t.Fatalf("Untolerated = %v %v, want all tolerated %v", taint, bad, tt.want)
			}
		})
	}
}

// karmadaFixedTime is the current time of Karmada's toleration-time tests.
var karmadaFixedTime = time.Date(2025, 9, 23, 12, 0, 0, 0, time.UTC)

// forever stands for GetMinTolerationTime's -1: tolerated without end.
const forever = time.Duration(-1)

// checkTolerationTime checks that the tolerations tolerate the taints at
// now for want (forever: still a century later; 0: not at all), as
// Karmada's GetMinTolerationTimeWithCurrentTime answers.
func checkTolerationTime(t *testing.T, tols []Toleration, taints []Taint, now time.Time, want time.Duration) {
	t.Helper()
	tolerated := func(at time.Time) bool {
		_, bad := Untolerated(tols, taints, at)
		return !bad
	}
	switch {
	case want == forever:
		if !tolerated(now) || !tolerated(now.AddDate(100, 0, 0)) {
			t.Fatalf("not tolerated for ever: at now %v, a century later %v", tolerated(now), tolerated(now.AddDate(100, 0, 0)))
		}
	case want == 0:
		if tolerated(now) {
			t.Fatal("tolerated now, want evicted at once")
		}
	default:
		if !tolerated(now.Add(want-time.Nanosecond)) || tolerated(now.Add(want)) {
			t.Fatalf("want tolerated for %v: just before %v, at %v", want, tolerated(now.Add(want-time.Nanosecond)), tolerated(now.Add(want)))
		}
	}
}

func TestKarmadaGetMinTolerationTime(t *testing.T) {
	// pkg/util/helper/taint_test.go, TestGetMinTolerationTimeWithCurrentTime:
	// NoExecute taints and the tolerations used for them (the first that
	// tolerates each, GetMatchingTolerations); the answer is how long they
	// stay tolerated from fixedTime: -1 for ever, 0 not at all.
	const src = "taint_test.go TestGetMinTolerationTimeWithCurrentTime: "
	now := karmadaFixedTime
	s := func(n int64) *int64 { return &n }
	taint := func(k, v string, added time.Time) Taint {
		return Taint{Key: k, Value: v, Effect: TaintEffectNoExecute, Added: added}
	}
	exists := func(k string, secs *int64) Toleration {
		return Toleration{Key: k, Operator: "Exists", Effect: TaintEffectNoExecute, TolerationSeconds: secs}
	}
	tests := []struct {
		name   string
		taints []Taint
		tols   []Toleration
		want   time.Duration
	}{
		{"no noExecuteTaints", nil, []Toleration{exists("key", s(60))}, forever},
		{"no usedTolerations", []Taint{taint("key", "value", now)}, nil, 0},
		{"with noExecuteTaints and usedTolerations", []Taint{taint("key", "value", now)},
			[]Toleration{exists("key", s(60))}, 60 * time.Second},
		{"usedTolerantion.TolerationSeconds is nil", []Taint{taint("key", "value", now)},
			[]Toleration{exists("key", nil)}, forever},
		// A taint without timeAdded sets no bound (Karmada: "should not
		// happen"); Shoal's zero Added.
		{"noExecuteTaints.TimeAdded is nil", []Taint{taint("key", "value", time.Time{})},
			[]Toleration{exists("key", s(60))}, forever},
		{"find the latest trigger time", []Taint{taint("key1", "value1", now), taint("key2", "value2", now)},
			[]Toleration{exists("key1", s(120)), exists("key2", s(60))}, 60 * time.Second},
		{"trigger time is up", []Taint{taint("key", "value", time.Date(2025, 9, 23, 11, 58, 0, 0, time.UTC))},
			[]Toleration{exists("key", s(60))}, 0},
	}
	for _, tt := range tests {
		t.Run(src+tt.name, func(t *testing.T) {
			checkTolerationTime(t, tt.tols, tt.taints, now, tt.want)
		})
	}
}

func TestKarmadaUsedTolerations(t *testing.T) {
	// What GetMatchingTolerations and GetMinTolerationTimeWithCurrentTime
	// do together in Karmada's taint manager (taint_manager.go,
	// needEvictionWithCurrentTime), for inputs no Karmada test has: only
	// the first toleration that tolerates a NoExecute taint is used, and a
	// used toleration bounds every NoExecute taint it tolerates, not only
	// the one it was picked for.
	now := karmadaFixedTime
	s := func(n int64) *int64 { return &n }
	ago := now.Add(-time.Second)
	a := Taint{Key: "a", Effect: TaintEffectNoExecute, Added: ago}
	b := Taint{Key: "b", Effect: TaintEffectNoExecute, Added: ago}
	tests := []struct {
		name   string
		taints []Taint
		tols   []Toleration
		want   time.Duration
	}{
		{"a later toleration with seconds is not used", []Taint{a},
			[]Toleration{{Key: "a", Operator: "Exists"}, {Operator: "Exists", TolerationSeconds: s(30)}}, forever},
		{"the first toleration with seconds is used", []Taint{a},
			[]Toleration{{Operator: "Exists", TolerationSeconds: s(30)}, {Key: "a", Operator: "Exists"}}, 29 * time.Second},
		{"a toleration used for one taint bounds another it tolerates", []Taint{a, b},
			[]Toleration{{Key: "b", Operator: "Exists"}, {Operator: "Exists", TolerationSeconds: s(30)}}, 29 * time.Second},
		{"several used tolerations: the earliest end", []Taint{a, b},
			[]Toleration{{Key: "a", Operator: "Exists", TolerationSeconds: s(90)}, {Key: "b", Operator: "Exists", TolerationSeconds: s(20)}}, 19 * time.Second},
		{"a NoSchedule taint's toleration bounds no NoExecute taint", []Taint{{Key: "a", Effect: TaintEffectNoSchedule, Added: ago}, b},
			[]Toleration{{Key: "a", Operator: "Exists", Effect: TaintEffectNoSchedule, TolerationSeconds: s(5)}, {Key: "b", Operator: "Exists"}}, forever},
		{"zero seconds end the toleration at once", []Taint{a},
			[]Toleration{{Key: "a", Operator: "Exists", TolerationSeconds: s(0)}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkTolerationTime(t, tt.tols, tt.taints, now, tt.want)
		})
	}
}
