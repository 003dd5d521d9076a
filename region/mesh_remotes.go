package region

import (
	"cmp"
	"crypto/sha256"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// maxSummaryConflicts bounds the conflict events a summary carries.
const maxSummaryConflicts = 50

// adoptState seeds the leader's memory from the committed records of
// other regions, so that a new leader knows where they are and when they
// were last heard (never earlier than its own start: it has had no chance
// to hear them yet).
func (m *Mesh) adoptState(started time.Time) {
	var regions []*shoalpb.RemoteRegion
	m.fsm.Read(func(s *State) { regions = s.Regions() })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range regions {
		rem := m.remoteLocked(r.GetSummary().GetRegion())
		if rem.summary == nil {
			rem.summary = r.GetSummary()
			rem.summaryAt = time.UnixMilli(r.GetHeardUnixMs())
			rem.addPeers(r.GetSummary())
		}
		if rem.watermarks == nil && r.GetWatermarks() != nil {
			rem.watermarks = WatermarkMap(r.GetWatermarks())
		}
		if rem.heard.Before(started) {
			rem.heard = started
		}
	}
}

func (m *Mesh) remoteLocked(name string) *remote {
	rem := m.remotes[name]
	if rem == nil {
		rem = &remote{name: name, heardBy: map[string]time.Time{}}
		m.remotes[name] = rem
	}
	return rem
}

func (r *remote) addAddr(addr string, first bool) {
	if addr == "" {
		return
	}
	if i := slices.Index(r.addrs, addr); i >= 0 {
		if !first || i == 0 {
			return
		}
		r.addrs = slices.Delete(r.addrs, i, i+1)
	}
	if first {
		r.addrs = append([]string{addr}, r.addrs...)
	} else {
		r.addrs = append(r.addrs, addr)
	}
}

func (r *remote) addPeers(s *shoalpb.RegionSummary) {
	for _, p := range s.GetPeers() {
		r.addAddr(p.GetAddr(), false)
		if p.GetCluster() == s.GetLeader() && p.GetAddr() != "" {
			r.leaderAddr = p.GetAddr()
		}
	}
}

// learn records what a peer of region name said: its summary (kept if
// newer), its peers and the regions it hears from. addr is the address
// that answered ("" for an inbound request).
func (m *Mesh) learn(name string, sum *shoalpb.RegionSummary, cluster, addr string, now time.Time) *remote {
	m.mu.Lock()
	defer m.mu.Unlock()
	rem := m.remoteLocked(name)
	rem.heard = now
	if addr != "" {
		rem.heardBy[addr] = now
		rem.addAddr(addr, false)
		delete(m.seeds, addr)
	}
	if sum != nil && (rem.summary == nil || sum.GetMadeUnixMs() > rem.summary.GetMadeUnixMs() ||
		(sum.GetMadeUnixMs() == rem.summary.GetMadeUnixMs() && sum.GetRevision() >= rem.summary.GetRevision())) {
		rem.summary = sum
		rem.summaryAt = now
		rem.addPeers(sum)
		for _, c := range sum.GetContacts() {
			if c.GetRegion() == m.cfg.Region || c.GetRegion() == "" {
				continue
			}
			other := m.remoteLocked(c.GetRegion())
			for _, p := range c.GetPeers() {
				other.addAddr(p.GetAddr(), false)
			}
		}
	}
	for _, a := range rem.addrs {
		delete(m.seeds, a)
	}
	return rem
}

// summaryCommand is the SetRegionSummary to commit for what a region
// said, or nil when the committed record already says it (times aside).
func (m *Mesh) summaryCommand(rem *remote, sum *shoalpb.RegionSummary, wms []*shoalpb.Watermark, now time.Time) *shoalpb.Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sum == nil {
		sum = rem.summary
	}
	if sum == nil {
		return nil
	}
	c := &shoalpb.SetRegionSummary{Summary: sum, Watermarks: wms, HeardUnixMs: now.UnixMilli()}
	if m.stale() {
		// Hearing others does not end staleness: only the full
		// resynchronisation does.
		c.HeardUnixMs = 0
	}
	if old := rem.committed; old != nil && sameSummary(old.GetSummary(), sum) &&
		sameWatermarks(old.GetWatermarks(), wms) {
		return nil
	}
	rem.committed = c
	return &shoalpb.Command{Cmd: &shoalpb.Command_SetRegionSummary{SetRegionSummary: c}}
}

// sameSummary compares two summaries apart from when they were made and
// how recently their region heard others.
func sameSummary(a, b *shoalpb.RegionSummary) bool {
	x := proto.Clone(a).(*shoalpb.RegionSummary)
	y := proto.Clone(b).(*shoalpb.RegionSummary)
	x.MadeUnixMs, y.MadeUnixMs = 0, 0
	x.Contacts, y.Contacts = nil, nil
	x.Revision, y.Revision = 0, 0
	return proto.Equal(x, y)
}

func sameWatermarks(a, b []*shoalpb.Watermark) bool {
	return proto.Equal(&shoalpb.Snapshot{Watermarks: a}, &shoalpb.Snapshot{Watermarks: b})
}

// summary is this region's summary as this peer's state has it. Its
// state-derived part is built once per applied index and leader (it is
// asked for on every sync with every region); the time, revision and
// contacts are filled in each time.
func (m *Mesh) summary() *shoalpb.RegionSummary {
	s, _ := m.summaryAndHash()
	return s
}

// summaryBase is a summary without its time, revision and contacts, with
// the hash of what it says (summaryHash).
type summaryBase struct {
	index  uint64
	leader string
	sum    *shoalpb.RegionSummary
	hash   [32]byte
}

// summaryAndHash is summary and the hash of its content.
func (m *Mesh) summaryAndHash() (*shoalpb.RegionSummary, [32]byte) {
	now := m.cfg.Clock.Now()
	index, leader := m.fsm.AppliedIndex(), m.lead.LeaderCluster()
	m.mu.Lock()
	base := m.base
	m.mu.Unlock()
	if base == nil || base.index != index || base.leader != leader {
		base = &summaryBase{index: index, leader: leader, sum: m.buildSummary(leader)}
		base.hash = summaryHash(base.sum)
		m.mu.Lock()
		m.base = base
		m.mu.Unlock()
	}
	b := base.sum
	// A new message sharing the base's (never modified) parts.
	s := &shoalpb.RegionSummary{
		Region: b.GetRegion(), Leader: b.GetLeader(), Edge: b.GetEdge(),
		Clusters: b.GetClusters(), Bindings: b.GetBindings(), Statuses: b.GetStatuses(),
		Peers: b.GetPeers(), Conflicts: b.GetConflicts(),
		MadeUnixMs: now.UnixMilli(), Revision: index,
	}
	if m.lead.IsLeader() {
		m.mu.Lock()
		for _, name := range sortedKeys(m.remotes) {
			rem := m.remotes[name]
			if rem.heard.IsZero() {
				continue
			}
			c := &shoalpb.RegionContact{Region: name, AgeMs: now.Sub(rem.heard).Milliseconds()}
			for i, a := range rem.addrs {
				if i >= m.cfg.LinksPerRegion+1 {
					break
				}
				c.Peers = append(c.Peers, &shoalpb.WanPeer{Addr: a})
			}
			s.Contacts = append(s.Contacts, c)
		}
		m.mu.Unlock()
	}
	return s, base.hash
}

// buildSummary reads the state-derived part of this region's summary.
func (m *Mesh) buildSummary(leader string) *shoalpb.RegionSummary {
	s := &shoalpb.RegionSummary{Region: m.cfg.Region, Leader: leader, Edge: m.cfg.Edge}
	keys := map[*shoalpb.WorkStatus]string{}
	m.fsm.Read(func(st *State) {
		for _, c := range st.Clusters() {
			if c.GetRegion() != m.cfg.Region {
				continue
			}
			s.Clusters = append(s.Clusters, c)
			if c.GetWanAddr() != "" {
				s.Peers = append(s.Peers, &shoalpb.WanPeer{Cluster: c.GetName(), Addr: c.GetWanAddr()})
			}
			for ks, ws := range st.StatusesOn(c.GetName()) {
				s.Statuses = append(s.Statuses, ws)
				keys[ws] = ks
			}
		}
		s.Bindings = st.Bindings()
		s.Conflicts = st.recentConflicts(maxSummaryConflicts)
	})
	slices.SortFunc(s.Statuses, func(a, b *shoalpb.WorkStatus) int {
		return cmp.Or(cmp.Compare(keys[a], keys[b]), cmp.Compare(a.GetCluster(), b.GetCluster()))
	})
	return s
}

// leaderAddr is the WAN address of this region's leader, when known.
func (m *Mesh) leaderAddr() string {
	name := m.lead.LeaderCluster()
	if name == "" {
		return ""
	}
	var addr string
	m.fsm.Read(func(s *State) { addr = s.Cluster(name).GetWanAddr() })
	return addr
}

func summaryHash(s *shoalpb.RegionSummary) [32]byte {
	x := proto.Clone(s).(*shoalpb.RegionSummary)
	x.MadeUnixMs, x.Contacts, x.Revision = 0, nil, 0
	data, _ := proto.MarshalOptions{Deterministic: true}.Marshal(x)
	return sha256.Sum256(data)
}

// SummaryAt is when the latest summary of region arrived, by this peer's
// clock (zero if none did while this peer led its region).
func (m *Mesh) SummaryAt(region string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rem := m.remotes[region]; rem != nil && !m.leadSince.IsZero() && rem.summaryAt.After(m.leadSince) {
		return rem.summaryAt
	}
	return time.Time{}
}
