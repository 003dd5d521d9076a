package region

import (
	"context"
	"fmt"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// verdictInterval is how often the leader checks whether a region went
// silent for its grace period.
const verdictInterval = 250 * time.Millisecond

// commitHeard commits when each region was last heard, for the regions
// heard since the last commit.
func (m *Mesh) commitHeard(ctx context.Context) {
	var committed map[string]int64
	m.fsm.Read(func(s *State) {
		committed = map[string]int64{}
		for _, r := range s.Regions() {
			committed[r.GetSummary().GetRegion()] = r.GetHeardUnixMs()
		}
	})
	if m.stale() {
		return
	}
	c := &shoalpb.RegionsHeard{}
	m.mu.Lock()
	for _, name := range sortedKeys(m.remotes) {
		h := m.remotes[name].heard.UnixMilli()
		if old, ok := committed[name]; ok && h > old {
			c.Heard = append(c.Heard, &shoalpb.RegionHeard{Region: name, UnixMs: h})
		}
	}
	m.mu.Unlock()
	if len(c.Heard) == 0 {
		return
	}
	if _, err := m.commit(ctx, &shoalpb.Command{Cmd: &shoalpb.Command_RegionsHeard{RegionsHeard: c}}); err != nil {
		m.logger.Debug("committing heard times failed", "err", err)
	}
}

// grace is how long region r may go unheard: the edge grace period when
// either end is a region of edge sites (an edge region's own uplink is the
// link that fails, so it judges the others as they judge it).
func (m *Mesh) grace(r *shoalpb.RemoteRegion) time.Duration {
	if r.GetSummary().GetEdge() || m.cfg.Edge {
		return m.cfg.EdgeGracePeriod
	}
	return m.cfg.GracePeriod
}

// verdicts decides which regions are dead for placement: not heard by
// any of this region's links for their grace period, and no live region
// that this one hears says it hears them (so that one broken link does
// not fail a healthy region over). With no third region to ask, silence
// alone decides. A region heard again is alive.
func (m *Mesh) verdicts(ctx context.Context, started time.Time) {
	now := m.cfg.Clock.Now()
	var regions []*shoalpb.RemoteRegion
	m.fsm.Read(func(s *State) { regions = s.Regions() })
	var cmds []*shoalpb.Command
	m.mu.Lock()
	for _, r := range regions {
		name := r.GetSummary().GetRegion()
		rem := m.remotes[name]
		heard := started
		if rem != nil && rem.heard.After(heard) {
			heard = rem.heard
		}
		grace := m.grace(r)
		silent := now.Sub(heard) > grace
		witness := ""
		if silent {
			witness = m.witnessLocked(name, grace, now)
		}
		dead := silent && witness == ""
		if dead == r.GetDead() {
			continue
		}
		reason := "heard again"
		if dead {
			reason = fmt.Sprintf("not heard by any link for %s and no other region hears it", now.Sub(heard).Round(time.Millisecond))
		}
		cmds = append(cmds, &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionState{SetRegionState: &shoalpb.SetRegionState{
			Region: name, Alive: !dead, Reason: reason}}})
	}
	m.mu.Unlock()
	for _, c := range cmds {
		if _, err := m.commit(ctx, c); err != nil {
			m.logger.Debug("committing a region verdict failed", "err", err)
			return
		}
		m.logger.Info("region verdict", "peer_region", c.GetSetRegionState().GetRegion(), "alive", c.GetSetRegionState().GetAlive(),
			"reason", c.GetSetRegionState().GetReason())
	}
}

// witnessLocked names a live region whose latest summary says it heard
// region name within grace, or "".
func (m *Mesh) witnessLocked(name string, grace time.Duration, now time.Time) string {
	for _, wn := range sortedKeys(m.remotes) {
		w := m.remotes[wn]
		if wn == name || w.summary == nil || now.Sub(w.heard) > grace {
			continue
		}
		for _, c := range w.summary.GetContacts() {
			if c.GetRegion() != name {
				continue
			}
			age := time.Duration(c.GetAgeMs())*time.Millisecond + now.Sub(w.summaryAt)
			if age <= grace {
				return wn
			}
		}
	}
	return ""
}

// Quorum tells how many of the mesh's regions (this one included) this
// region's links heard within 2/5 of their grace period and are not dead
// for placement, of how many it knows: a region that does not hear a majority this way stops its
// guarded workloads before the others (which wait a whole grace period)
// may find it dead and take them over. ok is false while the sync loop
// is not running (this peer does not lead, or just started to).
func (m *Mesh) Quorum(now time.Time) (seen, total int, ok bool) {
	var regions []*shoalpb.RemoteRegion
	m.fsm.Read(func(s *State) { regions = s.Regions() })
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leadSince.IsZero() {
		return 0, 0, false
	}
	seen, total = 1, 1+len(regions)
	for _, r := range regions {
		if r.GetDead() {
			// Dead for placement until the verdict says otherwise: it
			// cannot be part of a majority that takes its share over.
			continue
		}
		heard := m.leadSince
		if rem := m.remotes[r.GetSummary().GetRegion()]; rem != nil && rem.heard.After(heard) {
			heard = rem.heard
		}
		if now.Sub(heard) <= m.grace(r)*2/5 {
			seen++
		}
	}
	return seen, total, true
}
