package deploy

import (
	"slices"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// Placement of a SimCluster's replicas onto its nodes. Every function here
// is called with s.mu held.

// counts counts o's replicas at time now; s.mu is held.
func (s *SimCluster) counts(o *simObject, now time.Time) SimObject {
	var c SimObject
	for _, r := range o.replicas {
		switch {
		case r.node < 0:
			c.Pending++
		case s.isReady(r, now):
			c.Placed++
			c.Ready++
		default:
			c.Placed++
		}
	}
	return c
}

// allocatable is one node's allocatable, scaled by the capacity percent.
func (s *SimCluster) allocatable() api.Resources {
	pct := int64(s.capacityPct)
	scale := func(v int64) int64 { return v/100*pct + v%100*pct/100 } // v*pct/100 without overflow
	return api.Resources{CPUMilli: scale(s.cfg.NodeCPUMilli), MemoryBytes: scale(s.cfg.NodeMemoryBytes), Pods: scale(s.cfg.NodePods)}
}

// lacks reports which of per's resources node i lacks.
func (s *SimCluster) lacks(i int, per api.Resources) (cpu, mem, pods bool) {
	alloc, used := s.allocatable(), s.nodes[i]
	return used.CPUMilli+per.CPUMilli > alloc.CPUMilli,
		used.MemoryBytes+per.MemoryBytes > alloc.MemoryBytes,
		used.Pods+per.Pods > alloc.Pods
}

// whyNot says why a replica requesting per fits on no node, in the manner of
// kube-scheduler's FailedScheduling message.
func (s *SimCluster) whyNot(per api.Resources) string {
	var cpu, mem, pods bool
	for i := range s.nodes {
		c, m, p := s.lacks(i, per)
		cpu, mem, pods = cpu || c, mem || m, pods || p
	}
	var what []string
	for _, x := range []struct {
		lack bool
		name string
	}{{cpu, "cpu"}, {mem, "memory"}, {pods, "pods"}} {
		if x.lack {
			what = append(what, x.name)
		}
	}
	if len(what) == 0 {
		return "waiting for placement"
	}
	return "insufficient " + strings.Join(what, ", ")
}

// place puts r on the first node it fits on, if any; s.mu is held.
func (s *SimCluster) place(r *simReplica, per api.Resources) bool {
	if !s.ready {
		return false
	}
	for i := range s.nodes {
		if c, m, p := s.lacks(i, per); c || m || p {
			continue
		}
		s.nodes[i].CPUMilli += per.CPUMilli
		s.nodes[i].MemoryBytes += per.MemoryBytes
		s.nodes[i].Pods += per.Pods
		r.node = i
		r.readyAt = s.cfg.Clock.Now().Add(s.cfg.ReadyDelay)
		s.wake(r.readyAt)
		return true
	}
	return false
}

// isReady reports whether r is Ready at now; s.mu is held.
func (s *SimCluster) isReady(r *simReplica, now time.Time) bool {
	return s.ready && r.node >= 0 && !now.Before(r.readyAt)
}

// wake makes sure Changed is signalled at t, when replicas become Ready;
// s.mu is held. Replicas placed together share one timer. The callback
// takes no lock: a fake clock may run it with its own lock held while
// another goroutine holds s.mu and waits for the clock.
func (s *SimCluster) wake(t time.Time) {
	if t.Equal(s.wakeAt) {
		return
	}
	s.wakeAt = t
	s.cfg.Clock.AfterFunc(t.Sub(s.cfg.Clock.Now()), s.signal)
}

// placeObject places o's Pending replicas.
func (s *SimCluster) placeObject(o *simObject) {
	for _, r := range o.replicas {
		if r.node < 0 && !s.place(r, o.rec.PerReplica) {
			return // the rest are no smaller
		}
	}
}

// placePending retries every Pending replica, oldest object first, after
// capacity freed up.
func (s *SimCluster) placePending() {
	for _, o := range s.order {
		s.placeObject(o)
	}
}

// release removes r, which requests per, from its node and reports whether
// that freed capacity.
func (s *SimCluster) release(r *simReplica, per api.Resources) bool {
	if r.node < 0 {
		return false
	}
	n := &s.nodes[r.node]
	n.CPUMilli -= per.CPUMilli
	n.MemoryBytes -= per.MemoryBytes
	n.Pods -= per.Pods
	r.node = -1
	return true
}

// scaleDown removes n replicas of o: Pending first, then not Ready, then
// Ready, newest first within each group (as a ReplicaSet chooses). It
// reports whether capacity was freed.
func (s *SimCluster) scaleDown(o *simObject, n int) bool {
	now := s.cfg.Clock.Now()
	rank := func(r *simReplica) int {
		switch {
		case r.node < 0:
			return 0
		case !s.isReady(r, now):
			return 1
		}
		return 2
	}
	freed := false
	for want := 0; want <= 2 && n > 0; want++ {
		for i := len(o.replicas) - 1; i >= 0 && n > 0; i-- {
			if r := o.replicas[i]; rank(r) == want {
				freed = s.release(r, o.rec.PerReplica) || freed
				o.replicas = slices.Delete(o.replicas, i, i+1)
				n--
			}
		}
	}
	return freed
}

func (s *SimCluster) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}
