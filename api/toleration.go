package api

import (
	"time"
)

// Taint is a cluster taint. Added is when it was put on the cluster; it
// bounds NoExecute tolerationSeconds (a zero Added counts as "just now", so a
// taint of unknown age is never treated as expired).
type Taint struct {
	Key    string
	Value  string
	Effect string
	Added  time.Time
}

// String gives the taint as kubectl writes it: key=value:Effect, or
// key:Effect without a value.
func (t Taint) String() string {
	if t.Value == "" {
		return t.Key + ":" + t.Effect
	}
	return t.Key + "=" + t.Value + ":" + t.Effect
}

// ToleratesTaint reports whether the toleration tolerates the taint, with
// Kubernetes' semantics: an empty effect matches every effect; an empty key
// matches every key (validation only allows that with Exists); Exists matches
// any value; Equal (the default) needs the same value. tolerationSeconds is
// not considered here (see Untolerated).
func (t Toleration) ToleratesTaint(taint Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "Exists":
		return true
	case "", "Equal":
		return t.Value == taint.Value
	}
	return false
}

// Untolerated returns the first taint with effect NoSchedule or NoExecute
// that no toleration tolerates; ok is false when every such taint is
// tolerated. PreferNoSchedule taints are never returned.
//
// A NoExecute taint tolerated only by tolerations with tolerationSeconds is
// tolerated until Added plus the smallest of those seconds (Kubernetes'
// taint manager rule); at or after that instant it counts as untolerated. A
// matching toleration without tolerationSeconds tolerates it for ever only if
// no matching toleration sets seconds. tolerationSeconds <= 0 means not at
// all.
func Untolerated(tols []Toleration, taints []Taint, now time.Time) (Taint, bool) {
	for _, taint := range taints {
		if taint.Effect != TaintEffectNoSchedule && taint.Effect != TaintEffectNoExecute {
			continue
		}
		if !taintTolerated(tols, taint, now) {
			return taint, true
		}
	}
	return Taint{}, false
}

func taintTolerated(tols []Toleration, taint Taint, now time.Time) bool {
	matched := false
	var minSeconds *int64
	for _, t := range tols {
		if !t.ToleratesTaint(taint) {
			continue
		}
		matched = true
		if t.TolerationSeconds != nil && (minSeconds == nil || *t.TolerationSeconds < *minSeconds) {
			minSeconds = t.TolerationSeconds
		}
	}
	if !matched {
		return false
	}
	if taint.Effect != TaintEffectNoExecute || minSeconds == nil {
		return true
	}
	if *minSeconds <= 0 {
		return false
	}
	if taint.Added.IsZero() {
		return true
	}
	// Durations beyond ~292 years saturate rather than overflow.
	const maxSeconds = int64(1<<63-1) / int64(time.Second)
	d := time.Duration(min(*minSeconds, maxSeconds)) * time.Second
	return now.Before(taint.Added.Add(d))
}
