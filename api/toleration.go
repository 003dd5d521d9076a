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

// Untolerated returns a taint with effect NoSchedule or NoExecute that the
// tolerations do not tolerate; ok is false when every such taint is
// tolerated. PreferNoSchedule taints are never returned.
//
// A NoSchedule taint needs a toleration that tolerates it, tolerationSeconds
// aside (Karmada's TaintToleration filter). NoExecute taints follow Karmada's
// taint manager (GetMatchingTolerations and
// GetMinTolerationTimeWithCurrentTime, Kubernetes' rule before it): each
// NoExecute taint is tolerated by the first toleration, in the order given,
// that tolerates it, and those are the tolerations used. The cluster's
// NoExecute taints are then tolerated until the earliest Added plus
// tolerationSeconds over every pair of a used toleration that sets seconds
// and a NoExecute taint it tolerates; at or after that instant the taint of
// that pair is returned. So a toleration listed after one that already
// tolerates the taint bounds nothing, whatever its seconds; a used toleration
// without tolerationSeconds bounds nothing; a taint with a zero Added bounds
// nothing (Karmada skips a taint without timeAdded); and tolerationSeconds
// <= 0 ends the toleration at Added.
func Untolerated(tols []Toleration, taints []Taint, now time.Time) (Taint, bool) {
	for _, taint := range taints {
		if taint.Effect != TaintEffectNoSchedule && taint.Effect != TaintEffectNoExecute {
			continue
		}
		if firstTolerating(tols, taint) < 0 {
			return taint, true
		}
	}
	var (
		expiring Taint
		deadline time.Time
		bounded  bool
	)
	for _, taint := range taints {
		if taint.Effect != TaintEffectNoExecute {
			continue
		}
		used := tols[firstTolerating(tols, taint)]
		if used.TolerationSeconds == nil {
			continue
		}
		for _, other := range taints {
			if other.Effect != TaintEffectNoExecute || other.Added.IsZero() || !used.ToleratesTaint(other) {
				continue
			}
			if at := addSeconds(other.Added, *used.TolerationSeconds); !bounded || at.Before(deadline) {
				expiring, deadline, bounded = other, at, true
			}
		}
	}
	if bounded && !now.Before(deadline) {
		return expiring, true
	}
	return Taint{}, false
}

// firstTolerating gives the index of the first toleration that tolerates
// the taint, or -1.
func firstTolerating(tols []Toleration, taint Taint) int {
	for i, t := range tols {
		if t.ToleratesTaint(taint) {
			return i
		}
	}
	return -1
}

// addSeconds adds seconds to t, saturating beyond ~292 years either way
// where a time.Duration would overflow (Karmada's product wraps there).
func addSeconds(t time.Time, seconds int64) time.Time {
	const maxSeconds = int64(1<<63-1) / int64(time.Second)
	return t.Add(time.Duration(max(min(seconds, maxSeconds), -maxSeconds)) * time.Second)
}
