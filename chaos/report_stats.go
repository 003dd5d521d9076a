package chaos

import (
	"cmp"
	"slices"
	"time"
)

// Summarize sums up recoveries per kind of fault and phase, sorted by kind: how many
// faults, how many the mesh recovered from, and the minimum, median, 99th
// percentile and maximum of Took over the recovered ones (nearest-rank
// percentiles). A kind with nothing recovered has zero durations. It
// returns an empty, non-nil slice when rs is empty.
func Summarize(rs []Recovery) []RecoveryStats {
	type kindPhase struct {
		kind  EventKind
		phase string
	}
	took := map[kindPhase][]time.Duration{}
	faults := map[kindPhase]int{}
	for _, r := range rs {
		k := kindPhase{r.Kind, r.Phase}
		faults[k]++
		if r.Recovered {
			took[k] = append(took[k], r.Took)
		}
	}
	kinds := make([]kindPhase, 0, len(faults))
	for k := range faults {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b kindPhase) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.phase, b.phase))
	})

	out := make([]RecoveryStats, 0, len(kinds))
	for _, k := range kinds {
		ds := took[k]
		slices.Sort(ds)
		s := RecoveryStats{Kind: k.kind, Phase: k.phase, Faults: faults[k], Recovered: len(ds)}
		if len(ds) > 0 {
			s.Min = ds[0]
			s.Median = nearestRank(ds, 50)
			s.P99 = nearestRank(ds, 99)
			s.Max = ds[len(ds)-1]
		}
		out = append(out, s)
	}
	return out
}

// nearestRank is the p-th percentile (0 < p ≤ 100) of sorted, non-empty ds
// by the nearest-rank method: the smallest value with at least p percent
// of the values at or below it.
func nearestRank(ds []time.Duration, p int) time.Duration {
	rank := (p*len(ds) + 99) / 100 // ⌈p·n/100⌉, 1-based
	return ds[max(rank, 1)-1]
}
