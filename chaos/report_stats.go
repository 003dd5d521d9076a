package chaos

import (
	"slices"
	"time"
)

// Summarize sums up recoveries per kind of fault, sorted by kind: how many
// faults, how many the mesh recovered from, and the minimum, median, 99th
// percentile and maximum of Took over the recovered ones (nearest-rank
// percentiles). A kind with nothing recovered has zero durations. It
// returns an empty, non-nil slice when rs is empty.
func Summarize(rs []Recovery) []RecoveryStats {
	took := map[EventKind][]time.Duration{}
	faults := map[EventKind]int{}
	for _, r := range rs {
		faults[r.Kind]++
		if r.Recovered {
			took[r.Kind] = append(took[r.Kind], r.Took)
		}
	}
	kinds := make([]EventKind, 0, len(faults))
	for k := range faults {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)

	out := make([]RecoveryStats, 0, len(kinds))
	for _, k := range kinds {
		ds := took[k]
		slices.Sort(ds)
		s := RecoveryStats{Kind: k, Faults: faults[k], Recovered: len(ds)}
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
