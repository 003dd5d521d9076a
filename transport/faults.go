package transport

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Target selects traffic for a fault by the other end. Zero fields match
// anything: Target{Region: "eu"} is a whole region, Target{Addr: a} one
// address, Target{} everything. Region and Cluster match the other end's
// verified identity; on an outbound call before this end has ever
// completed a handshake with the address, the identity is not known yet
// and is checked once the handshake is done.
type Target struct {
	Region, Cluster, Addr string
}

func (t Target) matches(id Identity, addr string) bool {
	return (t.Region == "" || t.Region == id.Region) &&
		(t.Cluster == "" || t.Cluster == id.Cluster) &&
		(t.Addr == "" || t.Addr == addr)
}

// Faults injects failures into one end's traffic: tests and the chaos
// harness use them. It is safe for concurrent use; the zero value injects
// nothing and draws from a random seed.
//
// Outbound calls are matched by the address called and the peer's
// identity; a dropped call fails at once with ErrUnreachable (nothing is
// sent; the caller does not wait for its timeout). Inbound requests are
// matched by the caller's verified identity and its remote address; a
// dropped request is never handled nor answered, so its caller times out,
// as when packets are lost. A delay is waited before sending (outbound)
// or before handling (inbound), and ends early when the call's context is
// done.
type Faults struct {
	mu  sync.Mutex
	rng *rand.Rand
	// rules in the order they were set, so that a seeded run draws the
	// same numbers for the same requests.
	rules []rule
}

type ruleKind int

const (
	ruleCut ruleKind = iota
	ruleCutOut
	ruleDelay
	ruleLoss
)

type rule struct {
	target        Target
	kind          ruleKind
	delay, jitter time.Duration
	p             float64
}

// NewFaults returns fault hooks whose random draws (Loss, Delay jitter)
// follow seed, for reproducible runs.
func NewFaults(seed uint64) *Faults {
	f := &Faults{}
	f.SetSeed(seed)
	return f
}

// SetSeed restarts the random draws from seed.
func (f *Faults) SetSeed(seed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Cut drops every request to and from target.
func (f *Faults) Cut(target Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(rule{target: target, kind: ruleCut})
}

// CutOneWay drops only what this end sends to target; target's requests
// still arrive and are answered.
func (f *Faults) CutOneWay(target Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(rule{target: target, kind: ruleCutOut})
}

// Delay holds every request to and from target for d plus a uniform
// random part of jitter.
func (f *Faults) Delay(target Target, d, jitter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(rule{target: target, kind: ruleDelay, delay: d, jitter: max(jitter, 0)})
}

// Loss drops each request to and from target with probability p (0 to 1).
func (f *Faults) Loss(target Target, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(rule{target: target, kind: ruleLoss, p: p})
}

// Heal removes every fault set for exactly target (another Target that
// happens to match the same peers is left alone).
func (f *Faults) Heal(target Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = slices.DeleteFunc(f.rules, func(r rule) bool { return r.target == target })
}

// HealAll removes every fault.
func (f *Faults) HealAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// setLocked adds r, replacing a rule of the same kind and target.
func (f *Faults) setLocked(r rule) {
	for i, old := range f.rules {
		if old.kind == r.kind && old.target == r.target {
			f.rules[i] = r
			return
		}
	}
	f.rules = append(f.rules, r)
}

// verdict is what the faults decided for one request.
type verdict struct {
	drop  bool
	why   string
	delay time.Duration
}

// outbound decides for a request this end sends to the peer id at addr.
func (f *Faults) outbound(id Identity, addr string) verdict {
	return f.decide(id, addr, true)
}

// inbound decides for a request from the peer id at addr.
func (f *Faults) inbound(id Identity, addr string) verdict {
	return f.decide(id, addr, false)
}

func (f *Faults) decide(id Identity, addr string, out bool) verdict {
	if f == nil {
		return verdict{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var v verdict
	for _, r := range f.rules {
		if !r.target.matches(id, addr) {
			continue
		}
		switch r.kind {
		case ruleCut:
			return verdict{drop: true, why: "cut by a fault"}
		case ruleCutOut:
			if out {
				return verdict{drop: true, why: "cut one way by a fault"}
			}
		case ruleLoss:
			if f.float() < r.p {
				return verdict{drop: true, why: "lost by a fault"}
			}
		case ruleDelay:
			wait := r.delay
			if r.jitter > 0 {
				wait += time.Duration(f.int64n(int64(r.jitter) + 1))
			}
			v.delay = max(v.delay, wait)
		}
	}
	return v
}

// float and int64n draw from the seeded source (a random one if none was
// set). f.mu is held.
func (f *Faults) float() float64 {
	f.seedLocked()
	return f.rng.Float64()
}

func (f *Faults) int64n(n int64) int64 {
	f.seedLocked()
	return f.rng.Int64N(n)
}

func (f *Faults) seedLocked() {
	if f.rng == nil {
		f.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
}
