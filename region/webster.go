package region

import (
	"container/heap"
	"hash/fnv"
)

// Webster's method (Sainte-Laguë), as Karmada divides replicas since v1.16
// (pkg/util/helper/webstermethod.go and the Dispenser of binding.go):
// seats are handed out one at a time, each to the party with the highest
// priority votes/(2*seats+1). A tie of priorities goes to the party with
// fewer seats, then to the smaller name, or to the larger name when the
// workload's UID says so (see namesDescending).
//
// Because each seat goes to the best party given the seats before it, the
// answer for n+1 seats is the answer for n plus one seat: growing a count
// never takes a seat from a party whose votes are unchanged.
//
// Handing out a billion replicas one at a time would take too long, so
// webster first gives every party at once all the seats whose priority
// reaches a threshold t chosen so that no more than n seats do, and hands
// out the rest one at a time. That is the same answer: the one-at-a-time
// method gives the n seats that come first in the order (priority
// descending, then the tie-break), a party's own seats come in that order
// because its priorities fall as it gains seats, and when at most n seats
// have a priority of t or more, every one of them is among the first n.

// party is one cluster in a division: its weight (votes) and the replicas
// (seats) it has been given so far.
type party struct {
	name     string
	votes    int64
	seats    int32
	priority float64
}

// seatPriority is the priority of a party's next seat once it holds seats.
// Karmada computes it in float64 as here; Shoal does 2*seats+1 in 64 bits
// where Karmada wraps it in 32 bits past 2^30 seats on one party.
func seatPriority(votes int64, seats int64) float64 {
	return float64(votes) / float64(2*seats+1)
}

func (p *party) setSeats(s int32) {
	p.seats = s
	p.priority = seatPriority(p.votes, int64(s))
}

// ahead reports whether p gets the next seat before q.
func (p *party) ahead(q *party, namesDesc bool) bool {
	if p.priority != q.priority {
		return p.priority > q.priority
	}
	if p.seats != q.seats {
		return p.seats < q.seats
	}
	if namesDesc {
		return p.name > q.name
	}
	return p.name < q.name
}

// namesDescending reports whether ties between parties with as many seats
// go to the larger name. Karmada's tieBreakerByUID decides it by the
// parity of the 32-bit FNV-1a hash of the workload's UID (odd: larger name
// first; empty UID: smaller name first), so that across workloads neither
// end of the alphabet is always favoured.
func namesDescending(uid string) bool {
	if uid == "" {
		return false
	}
	h := fnv.New32a()
	h.Write([]byte(uid))
	return h.Sum32()&1 == 1
}

// webster gives n seats to ps by Webster's method, setting each party's
// seats (from zero). Parties must have positive votes and distinct names.
func webster(n int32, ps []party, namesDesc bool) {
	for i := range ps {
		ps[i].setSeats(0)
	}
	if n <= 0 || len(ps) == 0 {
		return
	}
	left := n
	if int64(n) > 2*int64(len(ps)) {
		left -= websterBulk(n, ps)
	}
	q := &websterQueue{ps: ps, namesDesc: namesDesc}
	heap.Init(q)
	for ; left > 0; left-- {
		q.ps[0].setSeats(q.ps[0].seats + 1)
		heap.Fix(q, 0)
	}
}

// websterBulk gives each party every seat of priority t or more, for a t
// at which that is at most n seats in all and at least about n-3/2*len(ps),
// and returns how many seats it gave. n must exceed 2*len(ps).
func websterBulk(n int32, ps []party) int32 {
	var total float64
	for _, p := range ps {
		total += float64(p.votes)
	}
	// A party has about votes/(2t)+1/2 seats of priority t or more, so in
	// all between n-3/2*len(ps) and n-1/2*len(ps); the margin absorbs the
	// rounding of floating point, and t grows in the rare case it does not.
	t := total / float64(2*int64(n)-2*int64(len(ps)))
	for {
		var given int64
		for i := range ps {
			given += seatsAtOrAbove(ps[i].votes, t, int64(n))
			if given > int64(n) {
				break
			}
		}
		if given <= int64(n) {
			for i := range ps {
				ps[i].setSeats(int32(seatsAtOrAbove(ps[i].votes, t, int64(n))))
			}
			return int32(given)
		}
		t *= 1.0625
	}
}

// seatsAtOrAbove counts the seats k >= 0 with seatPriority(votes, k) >= t,
// up to limit+1.
func seatsAtOrAbove(votes int64, t float64, limit int64) int64 {
	est := (float64(votes)/t + 1) / 2
	k := limit + 1
	if est < float64(k) {
		k = int64(est)
	}
	for k > 0 && seatPriority(votes, k-1) < t {
		k--
	}
	for k <= limit && seatPriority(votes, k) >= t {
		k++
	}
	return k
}

// websterQueue orders parties so that the one to get the next seat is
// first (a heap; Push and Pop are there for heap.Interface only).
type websterQueue struct {
	ps        []party
	namesDesc bool
}

func (q *websterQueue) Len() int           { return len(q.ps) }
func (q *websterQueue) Less(i, j int) bool { return q.ps[i].ahead(&q.ps[j], q.namesDesc) }
func (q *websterQueue) Swap(i, j int)      { q.ps[i], q.ps[j] = q.ps[j], q.ps[i] }
func (q *websterQueue) Push(x any)         { q.ps = append(q.ps, x.(party)) }
func (q *websterQueue) Pop() any {
	p := q.ps[len(q.ps)-1]
	q.ps = q.ps[:len(q.ps)-1]
	return p
}
