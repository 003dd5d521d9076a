package region

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/shoalmesh/shoal/api"
)

// The property test checks Schedule on random clusters and placements
// against a deliberately naive reference: a filter written as plain loops,
// a one-replica-at-a-time Webster divider for the cases whose answer is fully
// determined (static weights; dynamic weights on a first schedule without
// spread constraints), and invariants for the rest.

func refFeasible(w Workload, clusters []ClusterInfo, aff *api.ClusterAffinity) map[string]bool {
	count := map[string]int{}
	for _, c := range clusters {
		count[c.Name]++
	}
	inPrev := map[string]bool{}
	for _, t := range w.Previous {
		inPrev[t.Cluster] = true
	}
	out := map[string]bool{}
	for _, c := range clusters {
		if count[c.Name] != 1 {
			continue
		}
		if aff != nil {
			if slices.Contains(aff.ExcludeClusters, c.Name) || len(aff.ClusterNames) > 0 && !slices.Contains(aff.ClusterNames, c.Name) {
				continue
			}
			if ok, _ := aff.Matches(c.ClusterFacts); !ok {
				continue
			}
		}
		// Karmada's taint manager: the first toleration that tolerates a
		// NoExecute taint is used, and a used toleration with seconds ends
		// the toleration of every NoExecute taint it tolerates at Added
		// plus its seconds.
		ok := true
		tols := w.Placement.ClusterTolerations
		var used []api.Toleration
		for _, taint := range c.Taints {
			if taint.Effect == api.TaintEffectPreferNoSchedule || taint.Effect == api.TaintEffectNoSchedule && inPrev[c.Name] {
				continue
			}
			i := slices.IndexFunc(tols, func(tol api.Toleration) bool { return tol.ToleratesTaint(taint) })
			if i < 0 {
				ok = false
			} else if taint.Effect == api.TaintEffectNoExecute {
				used = append(used, tols[i])
			}
		}
		for _, tol := range used {
			for _, taint := range c.Taints {
				if taint.Effect == api.TaintEffectNoExecute && tol.TolerationSeconds != nil && tol.ToleratesTaint(taint) &&
					!testNow.Before(taint.Added.Add(time.Duration(*tol.TolerationSeconds)*time.Second)) {
					ok = false
				}
			}
		}
		for _, sc := range w.Placement.SpreadConstraints {
			if len(refGroupKeys(c, sc)) == 0 {
				ok = false
			}
		}
		if ok {
			out[c.Name] = true
		}
	}
	return out
}

// refGroupKeys gives the groups of a spread constraint a cluster is in:
// one, none (it lacks the field) or, for zones, each of its zones.
func refGroupKeys(c ClusterInfo, sc api.SpreadConstraint) []string {
	var v string
	switch sc.SpreadByField {
	case "cluster":
		v = c.Name
	case "region":
		v = c.Region
	case "zone":
		return c.Zones
	case "provider":
		v = c.Provider
	default:
		v = c.Labels[sc.SpreadByLabel]
	}
	if v == "" {
		return nil
	}
	return []string{v}
}

// zonesOverlap reports whether the workload spreads by zone over clusters
// of which one is in several zones. Then the clusters kept under the
// cluster constraint are picked to cover the chosen zone groups, and losing
// one may take another set of clusters to cover them: the others need not
// keep what they ran.
func zonesOverlap(w Workload, clusters []ClusterInfo) bool {
	return slices.ContainsFunc(w.Placement.SpreadConstraints, func(sc api.SpreadConstraint) bool { return sc.SpreadByField == "zone" }) &&
		slices.ContainsFunc(clusters, func(c ClusterInfo) bool { return len(c.Zones) > 1 })
}

// refCover is the fewest groups that hold every one of the clusters, each
// given by its groups: how many groups a selection needed at least. It tries
// every set of groups, smallest first.
func refCover(keys [][]string) int {
	var all []string
	for _, ks := range keys {
		for _, k := range ks {
			if !slices.Contains(all, k) {
				all = append(all, k)
			}
		}
	}
	best := len(all)
	for set := 0; set < 1<<len(all); set++ {
		n := 0
		for i := range all {
			n += set >> i & 1
		}
		if n >= best {
			continue
		}
		if !slices.ContainsFunc(keys, func(ks []string) bool {
			return !slices.ContainsFunc(ks, func(k string) bool { return set>>slices.Index(all, k)&1 == 1 })
		}) {
			best = n
		}
	}
	return best
}

// refDivide is Webster's method written the slow way: one replica at a
// time to the cluster whose weight/(2r+1) is largest, compared exactly as
// w1*(2r2+1) > w2*(2r1+1); a tie goes to fewer replicas, then to the
// smaller name, or the larger one when nameDesc.
func refDivide(n int32, weights map[string]int64, nameDesc bool) map[string]int32 {
	out := map[string]int32{}
	for range n {
		best := ""
		for name, w := range weights {
			if w <= 0 {
				continue
			}
			if best == "" {
				best = name
				continue
			}
			bw, r, br := weights[best], int64(out[name]), int64(out[best])
			l, rr := w*(2*br+1), bw*(2*r+1)
			switch {
			case l > rr:
				best = name
			case l == rr && r < br:
				best = name
			case l == rr && r == br && (name < best) != nameDesc:
				best = name
			}
		}
		if best == "" {
			break
		}
		out[best]++
	}
	return out
}

func asMap(ts []Target) map[string]int32 {
	m := map[string]int32{}
	for _, t := range ts {
		m[t.Cluster] = t.Replicas
	}
	return m
}

// refTiers gives the clusters of each overflow tier of the term used (one
// tier without overflowAffinities): those a tier's affinity admits and no
// earlier one does. Only a workload uses the overflow tiers.
func refTiers(w Workload, clusters []ClusterInfo, term string) []map[string]bool {
	tiers := []map[string]bool{refFeasible(w, clusters, affinityOf(w, term))}
	if !w.HasReplicas {
		return tiers
	}
	for _, t := range w.Placement.ClusterAffinities {
		if t.AffinityName != term {
			continue
		}
		for _, o := range t.OverflowAffinities {
			tier := refFeasible(w, clusters, &o.ClusterAffinity)
			for _, earlier := range tiers {
				for name := range earlier {
					delete(tier, name)
				}
			}
			tiers = append(tiers, tier)
		}
	}
	return tiers
}

// hasOverflow reports whether the term used has overflowAffinities.
func hasOverflow(w Workload, term string) bool {
	for _, t := range w.Placement.ClusterAffinities {
		if t.AffinityName == term {
			return t.OverflowAffinities != nil
		}
	}
	return false
}

func affinityOf(w Workload, term string) *api.ClusterAffinity {
	for _, t := range w.Placement.ClusterAffinities {
		if t.AffinityName == term {
			a := t.ClusterAffinity
			return &a
		}
	}
	return w.Placement.ClusterAffinity
}

func TestScheduleAgainstReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var clusters []ClusterInfo
		for _, i := range rapid.Permutation([]int{0, 1, 2, 3, 4, 5, 6, 7}).Draw(t, "names")[:rapid.IntRange(0, 8).Draw(t, "nclusters")] {
			clusters = append(clusters, genCluster(t, names[i]))
		}
		w := work(int32(rapid.IntRange(0, 30).Draw(t, "replicas")), genPlacement(t))
		w.HasReplicas = rapid.IntRange(0, 9).Draw(t, "kind") != 0
		w.UID = rapid.SampledFrom([]string{"", karmadaEvenUID, karmadaOddUID}).Draw(t, "uid")
		st, _ := strategyOf(w)

		r := Schedule(w, clusters, testNow)

		// Never depends on the order of the clusters.
		shuffled := slices.Clone(clusters)
		rand.New(rand.NewPCG(uint64(len(clusters)), 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if r2 := Schedule(w, shuffled, testNow); !reflect.DeepEqual(r, r2) {
			t.Fatalf("order matters:\n%+v\n%+v", r, r2)
		}
		if r.Unschedulable {
			if r.Targets != nil || r.Reason == "" {
				t.Fatalf("unschedulable result %+v", r)
			}
			if len(w.Placement.ClusterAffinities) == 0 && len(refFeasible(w, clusters, w.Placement.ClusterAffinity)) == 0 &&
				!strings.HasPrefix(r.Reason, "0/") {
				t.Fatalf("reason %q", r.Reason)
			}
			return
		}
		if !slices.IsSortedFunc(r.Targets, func(a, b Target) int { return strings.Compare(a.Cluster, b.Cluster) }) {
			t.Fatalf("targets not sorted: %v", r.Targets)
		}
		tiers := refTiers(w, clusters, r.AffinityTerm)
		overflow := hasOverflow(w, r.AffinityTerm) && w.HasReplicas
		feasible := map[string]bool{}
		for _, tier := range tiers {
			for name := range tier {
				feasible[name] = true
			}
		}
		got := asMap(r.Targets)
		var sum int64
		for _, tg := range r.Targets {
			if !feasible[tg.Cluster] {
				t.Fatalf("target %s is not feasible (feasible %v)", tg.Cluster, feasible)
			}
			sum += int64(tg.Replicas)
		}
		// Totals.
		switch {
		case !w.HasReplicas || w.Replicas == 0 || st == strategyDuplicated:
			want := w.Replicas
			if !w.HasReplicas {
				want = 0
			}
			for _, tg := range r.Targets {
				if tg.Replicas != want {
					t.Fatalf("want %d everywhere, got %v", want, r.Targets)
				}
			}
		default:
			if sum != int64(w.Replicas) {
				t.Fatalf("sum %d != replicas %d: %v", sum, w.Replicas, r.Targets)
			}
		}
		// Spread constraints: never more groups selected than maxGroups (a
		// cluster in several zones is in each zone's group, and only the
		// groups it was selected by count); as many groups as minGroups
		// among the targets when every selected cluster is a target.
		if st != strategyStaticWeight {
			for _, sc := range w.Placement.SpreadConstraints {
				groups := map[string]bool{}
				var keys [][]string
				for _, tg := range r.Targets {
					ks := refGroupKeys(clusters[slices.IndexFunc(clusters, func(c ClusterInfo) bool { return c.Name == tg.Cluster })], sc)
					keys = append(keys, ks)
					for _, k := range ks {
						groups[k] = true
					}
				}
				if n := refCover(keys); n > sc.MaxGroups {
					t.Fatalf("%v: %d groups needed for the targets > maxGroups %d: %v", sc, n, sc.MaxGroups, r.Targets)
				}
				if (st == strategyDuplicated || w.Replicas == 0) && len(groups) < sc.MinGroups {
					t.Fatalf("%v: %d groups < minGroups %d: %v", sc, len(groups), sc.MinGroups, r.Targets)
				}
			}
		}
		// Fully determined divisions against the naive divider.
		if w.HasReplicas && w.Replicas > 0 {
			weights := map[string]int64{}
			switch {
			case st == strategyStaticWeight:
				for name := range feasible {
					c := clusters[slices.IndexFunc(clusters, func(c ClusterInfo) bool { return c.Name == name })]
					if wp := w.Placement.ReplicaScheduling.WeightPreference; wp != nil {
						for _, rule := range wp.StaticWeightList {
							if ok, _ := rule.TargetCluster.Matches(c.ClusterFacts); ok && rule.Weight > weights[name] {
								weights[name] = rule.Weight
							}
						}
					}
					if weights[name] == 0 {
						delete(weights, name)
					}
				}
				if len(weights) == 0 {
					for name := range feasible {
						weights[name] = 1
					}
				}
			case st == strategyDynamicWeight && len(w.Placement.SpreadConstraints) == 0 && !overflow:
				for name := range feasible {
					c := clusters[slices.IndexFunc(clusters, func(c ClusterInfo) bool { return c.Name == name })]
					n, unknown := estimateReplicas(c.Available, w.PerReplica)
					if unknown {
						n = int64(w.Replicas)
					}
					weights[name] = n
				}
			case st == strategyDynamicWeight && len(w.Placement.SpreadConstraints) == 0:
				// Tier after tier: each takes what it has room for of
				// what is left, divided by room (unknown room weighs
				// the whole count).
				want := map[string]int32{}
				remaining := int64(w.Replicas)
				for _, tier := range tiers {
					tw, room := map[string]int64{}, int64(0)
					for name := range tier {
						c := clusters[slices.IndexFunc(clusters, func(c ClusterInfo) bool { return c.Name == name })]
						n, unknown := estimateReplicas(c.Available, w.PerReplica)
						room += n
						if unknown {
							n = int64(w.Replicas)
						}
						tw[name] = n
					}
					share := min(remaining, room)
					for name, n := range refDivide(int32(share), tw, w.UID == karmadaOddUID) {
						if n > 0 {
							want[name] = n
						}
					}
					remaining -= share
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("tiered division %v, reference %v (tiers %v)", got, want, tiers)
				}
			}
			if len(weights) > 0 {
				if want := refDivide(w.Replicas, weights, w.UID == karmadaOddUID); !reflect.DeepEqual(got, want) {
					t.Fatalf("division %v, reference %v (weights %v)", got, want, weights)
				}
			}
		}
		// Room: a first schedule by room never exceeds a cluster's room.
		if st.needsRoom() && w.HasReplicas {
			for _, tg := range r.Targets {
				c := clusters[slices.IndexFunc(clusters, func(c ClusterInfo) bool { return c.Name == tg.Cluster })]
				if n, unknown := estimateReplicas(c.Available, w.PerReplica); !unknown && int64(tg.Replicas) > n {
					t.Fatalf("%s gets %d, room %d", tg.Cluster, tg.Replicas, n)
				}
			}
		}

		// Stickiness: the output fed back as Previous is a fixed point.
		w.Previous, w.PreviousAffinityTerm = r.Targets, r.AffinityTerm
		if again := Schedule(w, clusters, testNow); !reflect.DeepEqual(again, r) {
			t.Fatalf("not a fixed point:\n%+v\n%+v", r, again)
		}

		// Losing a cluster: with dynamic weights or Aggregated the others
		// keep their replicas and exactly the lost cluster's replicas move;
		// with Duplicated the others keep theirs. Asserted when the
		// reschedule succeeds with the same affinity term and zone groups
		// do not overlap (zonesOverlap). Not with overflow tiers: there an
		// earlier tier with room takes replicas back from later ones, as
		// Karmada's division does.
		if len(r.Targets) == 0 || !w.HasReplicas || w.Replicas == 0 || overflow {
			return
		}
		lost := r.Targets[rapid.IntRange(0, len(r.Targets)-1).Draw(t, "lost")].Cluster
		rest := slices.DeleteFunc(slices.Clone(clusters), func(c ClusterInfo) bool { return c.Name == lost })
		r3 := Schedule(w, rest, testNow)
		if r3.Unschedulable || r3.AffinityTerm != r.AffinityTerm || zonesOverlap(w, clusters) {
			return
		}
		after := asMap(r3.Targets)
		switch st {
		case strategyDynamicWeight, strategyAggregated:
			var moved int32
			for name, n := range after {
				if n < got[name] {
					t.Fatalf("%s lost replicas %d -> %d after %s left", name, got[name], n, lost)
				}
				moved += n - got[name]
			}
			if moved != got[lost] {
				t.Fatalf("moved %d replicas, %s had %d: %v -> %v", moved, lost, got[lost], got, after)
			}
		case strategyDuplicated:
			for name, n := range got {
				if name != lost && after[name] != n {
					t.Fatalf("%s changed %d -> %d after %s left", name, n, after[name], lost)
				}
			}
		}
	})
}
