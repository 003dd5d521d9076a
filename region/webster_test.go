package region

import (
	"fmt"
	"math"
	"testing"

	"pgregory.net/rapid"
)

// oneAtATime is Webster's method as Karmada runs it: every seat, in turn,
// to the best party by a plain scan.
func oneAtATime(n int32, votes []int64, namesDesc bool) []int32 {
	seats := make([]int32, len(votes))
	name := func(i int) string { return fmt.Sprintf("p%d", i) }
	for range n {
		best := -1
		for i, v := range votes {
			if best < 0 {
				best = i
				continue
			}
			pi, pb := seatPriority(v, int64(seats[i])), seatPriority(votes[best], int64(seats[best]))
			switch {
			case pi != pb:
				if pi > pb {
					best = i
				}
			case seats[i] != seats[best]:
				if seats[i] < seats[best] {
					best = i
				}
			case (name(i) < name(best)) != namesDesc:
				best = i
			}
		}
		seats[best]++
	}
	return seats
}

func genParties(t *rapid.T) []party {
	top := rapid.SampledFrom([]int64{3, 12, 1000, 1 << 31, math.MaxInt64}).Draw(t, "top")
	ps := make([]party, rapid.IntRange(1, 8).Draw(t, "n"))
	for i := range ps {
		ps[i] = party{name: fmt.Sprintf("p%d", i), votes: rapid.Int64Range(1, top).Draw(t, "votes")}
	}
	return ps
}

// The shortcut that hands out most seats at once gives what handing them
// out one at a time gives, ties and rounding included.
func TestWebsterShortcutMatchesOneAtATime(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ps := genParties(t)
		n := int32(rapid.IntRange(0, 4000).Draw(t, "seats"))
		desc := rapid.Bool().Draw(t, "desc")
		votes := make([]int64, len(ps))
		for i, p := range ps {
			votes[i] = p.votes
		}
		want := oneAtATime(n, votes, desc)
		webster(n, ps, desc)
		got := make([]int32, len(ps))
		for _, p := range ps {
			var i int
			fmt.Sscanf(p.name, "p%d", &i)
			got[i] = p.seats
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%d seats over %v: got %v, one at a time %v", n, votes, got, want)
			}
		}
	})
}

// Up to the largest count of replicas, one seat more is one seat more for
// exactly one party.
func TestWebsterHugeCountsGrowByOne(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ps := genParties(t)
		n := int32(rapid.Int64Range(math.MaxInt32-1000, math.MaxInt32).Draw(t, "seats"))
		desc := rapid.Bool().Draw(t, "desc")
		prev := make([]party, len(ps))
		copy(prev, ps)
		webster(n-1, prev, desc)
		webster(n, ps, desc)
		was := map[string]int32{}
		for _, p := range prev {
			was[p.name] = p.seats
		}
		var grew int64
		for _, p := range ps {
			if p.seats < was[p.name] {
				t.Fatalf("%s went %d -> %d", p.name, was[p.name], p.seats)
			}
			grew += int64(p.seats - was[p.name])
		}
		if grew != 1 {
			t.Fatalf("%d -> %d seats added %d", n-1, n, grew)
		}
	})
}
