package region

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/shoalmesh/shoal/api"
)

// Division follows Karmada's assignment (pkg/scheduler/core/assignment.go,
// division_algorithm.go and the Dispenser of pkg/util/helper/binding.go):
//
//   - Duplicated: every selected cluster runs all replicas.
//   - Divided, Weighted, static weights: a cluster's weight is the largest
//     weight of the rules whose targetCluster it matches; clusters of
//     weight 0 (matching no rule) get nothing; when no cluster has a weight,
//     or there is no weightPreference, all weigh 1. Recomputed from scratch
//     each time; the previous replicas only break ties of the remainder.
//   - Divided, Weighted, dynamicWeight AvailableReplicas, and Divided,
//     Aggregated ("Steady" assignment): the previous replicas on clusters
//     still selected are kept. Scaling up (or replacing a lost cluster's
//     replicas) spreads only the difference, weightEntry by the replicas each
//     cluster can still take; Aggregated takes as few clusters as it can,
//     those already running the workload first, then those with the most
//     room. Scaling down shrinks the previous assignment proportionally
//     (Aggregated first drops the smallest previous clusters).
//
// The dispenser gives each cluster floor(weight*n/sum) and the remainder one
// replica each by weight, then previous replicas, then name (Karmada breaks
// the last tie at random; Shoal must be deterministic).

const (
	maxReplicas = math.MaxInt32
	// unlimitedReplicas is the room of a cluster whose capacity is unknown.
	unlimitedReplicas = int64(math.MaxInt32)
)

type replicaStrategy int

const (
	strategyDuplicated replicaStrategy = iota
	strategyStaticWeight
	strategyDynamicWeight
	strategyAggregated
)

// strategyOf classifies the replica scheduling of a workload. Kinds without
// replicas are propagated whole, like Duplicated with 0 replicas. A nil
// replicaScheduling is Duplicated (Karmada's Placement.ReplicaSchedulingType);
// empty fields take the defaults (Divided, Weighted).
func strategyOf(w Workload) (replicaStrategy, error) {
	rs := w.Placement.ReplicaScheduling
	if !w.HasReplicas || rs == nil {
		return strategyDuplicated, nil
	}
	switch rs.ReplicaSchedulingType {
	case api.ReplicaSchedulingTypeDuplicated:
		return strategyDuplicated, nil
	case api.ReplicaSchedulingTypeDivided, "":
	default:
		return 0, fmt.Errorf("unknown replicaSchedulingType %q", rs.ReplicaSchedulingType)
	}
	switch rs.ReplicaDivisionPreference {
	case api.ReplicaDivisionPreferenceAggregated:
		return strategyAggregated, nil
	case api.ReplicaDivisionPreferenceWeighted, "":
	default:
		return 0, fmt.Errorf("unknown replicaDivisionPreference %q", rs.ReplicaDivisionPreference)
	}
	if rs.WeightPreference == nil || rs.WeightPreference.DynamicWeight == "" {
		return strategyStaticWeight, nil
	}
	if rs.WeightPreference.DynamicWeight != api.DynamicWeightByAvailableReplicas {
		return 0, fmt.Errorf("unknown dynamicWeight %q", rs.WeightPreference.DynamicWeight)
	}
	return strategyDynamicWeight, nil
}

// needsRoom reports whether the strategy divides replicas by the room of the
// clusters (and can therefore fail for want of it).
func (s replicaStrategy) needsRoom() bool {
	return s == strategyDynamicWeight || s == strategyAggregated
}

// estimateReplicas is how many replicas of size per fit in avail: the
// minimum over cpu, memory and pods of the dimensions the replica requests,
// capped at MaxInt32 (Karmada's general estimator). unknown is true (and n
// unlimited) when avail is nil or the replica requests nothing.
func estimateReplicas(avail *api.Resources, per api.Resources) (n int64, unknown bool) {
	if avail == nil {
		return unlimitedReplicas, true
	}
	n, asked := unlimitedReplicas, false
	fit := func(have, need int64) {
		if need <= 0 {
			return
		}
		asked = true
		n = min(n, max(have, 0)/need)
	}
	fit(avail.CPUMilli, per.CPUMilli)
	fit(avail.MemoryBytes, per.MemoryBytes)
	fit(avail.Pods, per.Pods)
	if !asked {
		return unlimitedReplicas, true
	}
	return n, false
}

// errInsufficient is wrapped by the error of a division that lacks room.
var errInsufficient = errors.New("insufficient capacity")

// divide assigns replicas to the selected clusters (in rank order).
func divideReplicas(st replicaStrategy, w Workload, replicas int32, sel []*schedCandidate) ([]Target, error) {
	if replicas == 0 {
		// Karmada keeps the placement of a workload scaled to zero: every
		// selected cluster, each with 0 replicas.
		out := make([]Target, 0, len(sel))
		for _, c := range sel {
			out = append(out, Target{Cluster: c.Name})
		}
		return out, nil
	}
	switch st {
	case strategyDuplicated:
		out := make([]Target, 0, len(sel))
		for _, c := range sel {
			out = append(out, Target{Cluster: c.Name, Replicas: replicas})
		}
		return out, nil
	case strategyStaticWeight:
		return divideStatic(w, replicas, sel), nil
	default:
		return divideDynamic(st, replicas, sel)
	}
}

// weightEntry is one entry of a dispenser's weight list.
type weightEntry struct {
	name   string
	weight int64
	last   int32 // previous replicas, a tie-break
}

func divideStatic(w Workload, replicas int32, sel []*schedCandidate) []Target {
	var rules []api.StaticClusterWeight
	if wp := w.Placement.ReplicaScheduling.WeightPreference; wp != nil {
		rules = wp.StaticWeightList
	}
	var list []weightEntry
	var sum int64
	for _, c := range sel {
		var wt int64
		for i := range rules {
			if ok, _ := rules[i].TargetCluster.Matches(c.ClusterFacts); ok {
				wt = max(wt, rules[i].Weight)
			}
		}
		if wt > 0 {
			list = append(list, weightEntry{name: c.Name, weight: wt, last: c.prev})
			sum = satAddInt64(sum, wt)
		}
	}
	if sum == 0 {
		list = list[:0]
		for _, c := range sel {
			list = append(list, weightEntry{name: c.Name, weight: 1, last: c.prev})
		}
	}
	return nonZeroTargets(dispense(replicas, list, nil))
}

func divideDynamic(st replicaStrategy, replicas int32, sel []*schedCandidate) ([]Target, error) {
	var scheduled []Target
	var assigned int64
	for _, c := range sel {
		if c.prev > 0 {
			scheduled = append(scheduled, Target{Cluster: c.Name, Replicas: c.prev})
			assigned += int64(c.prev)
		}
	}
	switch {
	case assigned > int64(replicas):
		// Scale down: the previous assignment is the weight; as if it
		// were a first schedule of the new count over those clusters.
		slices.SortFunc(scheduled, func(a, b Target) int {
			if c := cmp.Compare(b.Replicas, a.Replicas); c != 0 {
				return c
			}
			return strings.Compare(a.Cluster, b.Cluster)
		})
		if st == strategyAggregated {
			scheduled = prefixReaching(scheduled, int64(replicas))
		}
		list := make([]weightEntry, 0, len(scheduled))
		for _, t := range scheduled {
			list = append(list, weightEntry{name: t.Cluster, weight: int64(t.Replicas)})
		}
		return nonZeroTargets(dispense(replicas, list, nil)), nil
	case assigned == int64(replicas):
		return scheduled, nil
	}
	// Scale up (a first schedule is a scale up from 0): only the new
	// replicas move, weightEntry by the room each cluster still has.
	need := int64(replicas) - assigned
	type room struct {
		c    *schedCandidate
		free int32
	}
	avail := make([]room, 0, len(sel))
	var total int64
	for _, c := range sel {
		free := c.free
		if c.unknown {
			free = int64(replicas) // as Karmada: unknown room weighs the whole count
		}
		avail = append(avail, room{c: c, free: int32(min(free, maxReplicas))})
		total += min(free, maxReplicas)
	}
	if total < need {
		return nil, fmt.Errorf("%w: the selected clusters can take %d more replicas, %d needed", errInsufficient, total, need)
	}
	slices.SortFunc(avail, func(a, b room) int {
		if st == strategyAggregated {
			// Clusters already running the workload first, so that it
			// stays together.
			if c := cmp.Compare(boolRank(b.c.prev > 0), boolRank(a.c.prev > 0)); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(a.c.prefer, b.c.prefer); c != 0 {
			return c
		}
		if c := cmp.Compare(b.free, a.free); c != 0 {
			return c
		}
		return strings.Compare(a.c.Name, b.c.Name)
	})
	list := make([]weightEntry, 0, len(avail))
	var sum int64
	for _, r := range avail {
		if st == strategyAggregated && sum >= need {
			break // Aggregated: the shortest prefix with room for all
		}
		sum += int64(r.free)
		list = append(list, weightEntry{name: r.c.Name, weight: int64(r.free), last: r.c.prev})
	}
	return nonZeroTargets(dispense(int32(need), list, scheduled)), nil
}

// prefixReaching gives the shortest prefix whose replicas add up to n.
func prefixReaching(ts []Target, n int64) []Target {
	var sum int64
	for i, t := range ts {
		if sum += int64(t.Replicas); sum >= n {
			return ts[:i+1]
		}
	}
	return ts
}

// dispense divides n replicas by the weights and adds them to init. Each
// entry gets floor(weight*n/sum); the rest go one each in the order weight
// desc, previous replicas desc, name. Non-positive weights get nothing; if
// no weight is positive nothing is added.
func dispense(n int32, list []weightEntry, init []Target) []Target {
	out := map[string]int64{}
	for _, t := range init {
		out[t.Cluster] += int64(t.Replicas)
	}
	ws := make([]weightEntry, 0, len(list))
	for _, w := range list {
		if w.weight > 0 {
			ws = append(ws, w)
		}
	}
	normalizeWeights(ws)
	var sum uint64
	for _, w := range ws {
		sum += uint64(w.weight)
	}
	if n > 0 && sum > 0 {
		slices.SortFunc(ws, func(a, b weightEntry) int {
			if c := cmp.Compare(b.weight, a.weight); c != 0 {
				return c
			}
			if c := cmp.Compare(b.last, a.last); c != 0 {
				return c
			}
			return strings.Compare(a.name, b.name)
		})
		remain := int64(n)
		shares := make([]int64, len(ws))
		for i, w := range ws {
			hi, lo := bits.Mul64(uint64(w.weight), uint64(n))
			q, _ := bits.Div64(hi, lo, sum) // hi < sum: weight <= sum and n < 2^63
			shares[i] = int64(q)
			remain -= shares[i]
		}
		for i := 0; remain > 0 && len(shares) > 0; i = (i + 1) % len(shares) {
			shares[i]++
			remain--
		}
		for i, w := range ws {
			out[w.name] += shares[i]
		}
	}
	res := make([]Target, 0, len(out))
	for name, r := range out {
		res = append(res, Target{Cluster: name, Replicas: int32(min(r, maxReplicas))})
	}
	slices.SortFunc(res, func(a, b Target) int { return strings.Compare(a.Cluster, b.Cluster) })
	return res
}

// normalizeWeights scales positive weights down, keeping each at least 1,
// until their sum fits comfortably in 62 bits.
func normalizeWeights(ws []weightEntry) {
	const limit = uint64(1) << 62
	for {
		var sum uint64
		over := false
		for _, w := range ws {
			s, carry := bits.Add64(sum, uint64(w.weight), 0)
			if carry != 0 || s > limit {
				over = true
				break
			}
			sum = s
		}
		if !over {
			return
		}
		for i := range ws {
			ws[i].weight = max(ws[i].weight>>1, 1)
		}
	}
}

func nonZeroTargets(ts []Target) []Target {
	out := ts[:0]
	for _, t := range ts {
		if t.Replicas > 0 {
			out = append(out, t)
		}
	}
	return out
}

func satAddInt64(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
