package region

import "time"

// A sync whose call goes silent (a request lost on the way, an answer
// that never comes back) holds its region's syncs until CallTimeout ends
// it: seconds in which a link that came back carries nothing, in either
// direction if the other region's call to this one went silent too. So
// a sync silent for hedgeRTTs times the link's usual answer time (at
// least a tenth of a sync interval and minHedgeAfter, at most an
// interval) gets another one beside it, whose
// first request carries no objects: a light question that finds the link
// working again, or goes silent too at little cost. Each further one
// waits twice as long, up to a sync interval, and no more are in flight
// than CallTimeout lets expire in turn, so that a link silent for long
// has one starting within a sync interval after it comes back. A request
// from the region itself shows the link carries again: the next sync
// starts at once (nudged).
const (
	hedgeRTTs   = 4
	maxInflight = 16
	// minHedgeAfter keeps a busy peer's slow answers (a garbage
	// collection, a loaded CPU) from looking silent on a fast link.
	minHedgeAfter = 50 * time.Millisecond
)

// hedgeAfter is how long the first sync with rem may be silent before
// another starts beside it. m.mu is held.
func (m *Mesh) hedgeAfter(rem *remote) time.Duration {
	if rem.rtt == 0 {
		return m.cfg.SyncInterval
	}
	return min(max(hedgeRTTs*rem.rtt, m.cfg.SyncInterval/10, minHedgeAfter), m.cfg.SyncInterval)
}

// nextHedge is how long the newest of rem's syncs in flight may be
// silent before another starts. m.mu is held.
func (m *Mesh) nextHedge(rem *remote) time.Duration {
	wait := m.hedgeAfter(rem)
	for i := 1; i < rem.inflight && wait < m.cfg.SyncInterval; i++ {
		wait *= 2
	}
	return min(wait, m.cfg.SyncInterval)
}

// mayHedge reports whether another sync with rem may start beside those
// in flight. m.mu is held.
func (m *Mesh) mayHedge(rem *remote, now time.Time) bool {
	limit := min(maxInflight, int(m.cfg.CallTimeout/m.cfg.SyncInterval)+2)
	if rem.inflight >= limit {
		return false
	}
	return rem.nudged || now.Sub(rem.lastStart) >= m.nextHedge(rem)
}

// nudge starts a sync with rem at once if its syncs in flight are silent:
// it was just heard from, so the link carries again.
func (m *Mesh) nudge(rem *remote) {
	m.mu.Lock()
	silent := rem.inflight > 0 && time.Since(rem.lastStart) >= m.hedgeAfter(rem)
	if silent {
		rem.nudged = true
	}
	m.mu.Unlock()
	if silent {
		m.Sync()
	}
}

// observeRTT folds how long an answered call took into rem's smoothed
// answer time (an eighth of each new one, as TCP smooths its RTT).
func (m *Mesh) observeRTT(rem *remote, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rem.rtt == 0 {
		rem.rtt = took
		return
	}
	rem.rtt += (took - rem.rtt) / 8
}
