package region

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// maxSyncRounds bounds the requests one sync with a region makes in a row
// (following the leader, sending further batches).
const maxSyncRounds = 16

// verdictInterval is how often the leader checks whether a region went
// silent for its grace period.
const verdictInterval = 250 * time.Millisecond

// maxSummaryConflicts bounds the conflict events a summary carries.
const maxSummaryConflicts = 50

// Run is the leader's sync loop: it syncs with every other region every
// SyncInterval and at once whenever this region's objects change, commits
// when it last heard each region, and decides which regions are dead for
// placement. It returns when ctx ends (leadership lost).
func (m *Mesh) Run(ctx context.Context) error {
	if err := m.raft.Barrier(ctx); err != nil {
		return err
	}
	started := m.cfg.Clock.Now()
	m.adoptState(started)
	m.mu.Lock()
	m.leadSince = started
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.leadSince = time.Time{}
		m.mu.Unlock()
	}()
	changes, cancel := m.fsm.Subscribe()
	defer cancel()
	ticker := time.NewTicker(m.cfg.SyncInterval)
	defer ticker.Stop()
	// Verdicts are checked more often than syncs, so that a region is
	// found dead soon after its grace period ends, not up to a sync
	// interval later.
	verdictTicker := time.NewTicker(min(m.cfg.SyncInterval, verdictInterval))
	defer verdictTicker.Stop()
	lastObjects := m.objectsRev()
	lastHeard := started
	for {
		m.round(ctx)
		if now := m.cfg.Clock.Now(); now.Sub(lastHeard) >= m.cfg.HeardInterval {
			lastHeard = now
			m.commitHeard(ctx)
		}
		m.verdicts(ctx, started)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-verdictTicker.C:
				m.verdicts(ctx, started)
				continue
			case <-ticker.C:
			case <-m.kick:
			case <-changes:
				if rev := m.objectsRev(); rev != lastObjects {
					lastObjects = rev
				} else {
					continue
				}
			}
			break
		}
	}
}

// Sync asks the running sync loop to sync now.
func (m *Mesh) Sync() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

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

// summary is this region's summary as this peer's state has it.
func (m *Mesh) summary() *shoalpb.RegionSummary {
	now := m.cfg.Clock.Now()
	s := &shoalpb.RegionSummary{
		Region:     m.cfg.Region,
		Leader:     m.lead.LeaderCluster(),
		MadeUnixMs: now.UnixMilli(),
		Edge:       m.cfg.Edge,
		Revision:   m.fsm.AppliedIndex(),
	}
	m.fsm.Read(func(st *State) {
		for _, c := range st.Clusters() {
			if c.GetRegion() != m.cfg.Region {
				continue
			}
			s.Clusters = append(s.Clusters, c)
			if c.GetWanAddr() != "" {
				s.Peers = append(s.Peers, &shoalpb.WanPeer{Cluster: c.GetName(), Addr: c.GetWanAddr()})
			}
			for _, ws := range st.StatusesOn(c.GetName()) {
				s.Statuses = append(s.Statuses, ws)
			}
		}
		s.Bindings = st.Bindings()
		s.Conflicts = st.recentConflicts(maxSummaryConflicts)
	})
	slices.SortFunc(s.Statuses, func(a, b *shoalpb.WorkStatus) int {
		if c := bytes.Compare([]byte(a.GetWorkload().String()), []byte(b.GetWorkload().String())); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.GetCluster()), []byte(b.GetCluster()))
	})
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

// round starts a sync with every other region (and every seed not yet
// known to belong to one) that is not already being synced.
func (m *Mesh) round(ctx context.Context) {
	known := map[string]bool{}
	m.fsm.Read(func(s *State) {
		for _, r := range s.Regions() {
			known[r.GetSummary().GetRegion()] = true
		}
	})
	m.mu.Lock()
	for name, rem := range m.remotes {
		// A region recorded once and gone from the records was forgotten:
		// stop syncing with it (it joins again as new if it returns).
		if rem.committed != nil && !known[name] && !rem.busy {
			delete(m.remotes, name)
		}
	}
	var start []*remote
	for _, name := range sortedKeys(m.remotes) {
		rem := m.remotes[name]
		if !rem.busy && len(rem.addrs) > 0 {
			rem.busy = true
			start = append(start, rem)
		}
	}
	seeds := sortedKeys(m.seeds)
	m.mu.Unlock()
	for _, rem := range start {
		go func() {
			defer func() {
				m.mu.Lock()
				rem.busy = false
				m.mu.Unlock()
			}()
			m.syncRegion(ctx, rem)
		}()
	}
	for _, addr := range seeds {
		go m.probeSeed(ctx, addr)
	}
}

// probeSeed asks a seed address which region it belongs to.
func (m *Mesh) probeSeed(ctx context.Context, addr string) {
	req := m.request(nil, false, false)
	reply, err := m.call(ctx, addr, "", req)
	if err != nil {
		m.logger.Debug("seed did not answer", "addr", addr, "err", err)
		return
	}
	if reply.GetRegion() == "" || reply.GetRegion() == m.cfg.Region {
		m.mu.Lock()
		delete(m.seeds, addr)
		m.mu.Unlock()
		return
	}
	m.learn(reply.GetRegion(), reply.GetSummary(), "", addr, m.cfg.Clock.Now())
	m.Sync()
}

// call sends one sync request and unwraps the answer.
func (m *Mesh) call(ctx context.Context, addr, region string, req *shoalpb.SyncRequest) (*shoalpb.SyncReply, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
	defer cancel()
	resp, err := m.wan.Call(ctx, addr, region, &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Sync{Sync: req}})
	if err != nil {
		return nil, err
	}
	if e := resp.GetError(); e != nil {
		return nil, &LinkError{e}
	}
	reply := resp.GetSyncReply()
	if reply == nil {
		return nil, fmt.Errorf("mesh: %s answered a sync with %T", addr, resp.GetMsg())
	}
	if region != "" && reply.GetRegion() != region {
		return nil, fmt.Errorf("mesh: %s answered for region %q, not %s", addr, reply.GetRegion(), region)
	}
	return reply, nil
}

// linkAddrs are the addresses to sync with: the region's leader first
// (when known), then others up to LinksPerRegion.
func (m *Mesh) linkAddrs(rem *remote) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	if rem.leaderAddr != "" {
		out = append(out, rem.leaderAddr)
	}
	// Prefer addresses that answered lately, then the rest in order.
	rest := slices.Clone(rem.addrs)
	slices.SortStableFunc(rest, func(a, b string) int { return rem.heardBy[b].Compare(rem.heardBy[a]) })
	for _, a := range rest {
		if len(out) >= m.cfg.LinksPerRegion {
			break
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// syncRegion syncs with one region: data with its leader, a heartbeat
// with its other linked peers.
func (m *Mesh) syncRegion(ctx context.Context, rem *remote) {
	addrs := m.linkAddrs(rem)
	if len(addrs) == 0 {
		return
	}
	done := make(chan struct{}, len(addrs))
	for i, addr := range addrs {
		go func() {
			defer func() { done <- struct{}{} }()
			if i == 0 {
				m.syncPrimary(ctx, rem, addr)
			} else {
				m.heartbeat(ctx, rem, addr)
			}
		}()
	}
	for range addrs {
		<-done
	}
}

func (m *Mesh) heartbeat(ctx context.Context, rem *remote, addr string) {
	reply, err := m.call(ctx, addr, rem.name, m.request(nil, false, false))
	if err != nil {
		return
	}
	m.learn(rem.name, reply.GetSummary(), "", addr, m.cfg.Clock.Now())
}

// syncPrimary exchanges with the region's leader: follows a NOT_LEADER
// answer to the leader, sends batches until nothing is left to send,
// and commits what comes back.
func (m *Mesh) syncPrimary(ctx context.Context, rem *remote, addr string) {
	for range maxSyncRounds {
		m.mu.Lock()
		toLeader := rem.leaderOK && addr == rem.leaderAddr && rem.watermarks != nil
		m.mu.Unlock()
		req := m.request(rem, toLeader, true)
		reply, err := m.call(ctx, addr, rem.name, req)
		var le *LinkError
		switch {
		case errors.As(err, &le) && le.GetCode() == shoalpb.LinkCode_LINK_CODE_NOT_LEADER && le.GetLeaderAddr() != "":
			m.setLeader(rem, le.GetLeaderAddr(), false)
			addr = le.GetLeaderAddr()
			continue
		case err != nil:
			m.logger.Debug("sync failed", "peer_region", rem.name, "addr", addr, "err", err)
			m.mu.Lock()
			if rem.leaderAddr == addr {
				rem.leaderAddr, rem.leaderOK = "", false
			}
			m.mu.Unlock()
			return
		}
		now := m.cfg.Clock.Now()
		m.learn(rem.name, reply.GetSummary(), "", addr, now)
		m.account(req)
		if !reply.GetLeader() {
			next := reply.GetLeaderAddr()
			m.setLeader(rem, next, false)
			if next == "" || next == addr {
				return
			}
			addr = next
			continue
		}
		m.setLeader(rem, addr, true)
		more := m.absorb(ctx, rem, req, reply, now)
		if !more {
			return
		}
	}
}

func (m *Mesh) setLeader(rem *remote, addr string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if addr != "" {
		rem.leaderAddr = addr
		rem.addAddr(addr, true)
	}
	rem.leaderOK = ok
}

func (m *Mesh) account(req *shoalpb.SyncRequest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Syncs++
	m.stats.ObjectsSent += uint64(len(req.GetObjects()))
	for _, o := range req.GetObjects() {
		m.stats.BytesSent += uint64(proto.Size(o))
	}
	if req.GetWantFull() {
		m.stats.FullSyncs++
	}
}

// request builds a sync request for rem (nil: a seed or heartbeat):
// watermarks and digest always; objects the leader of rem lacks when
// withObjects; this region's summary when it changed since rem last got
// it (always when withSummary is false: heartbeats carry none).
func (m *Mesh) request(rem *remote, withObjects, withSummary bool) *shoalpb.SyncRequest {
	req := &shoalpb.SyncRequest{Region: m.cfg.Region, Heartbeat: !withObjects && !withSummary}
	now := m.cfg.Clock.Now()
	var theirs map[string]*shoalpb.Version
	inventory := false
	if rem != nil {
		m.mu.Lock()
		theirs, inventory = rem.watermarks, rem.inventory
		m.mu.Unlock()
	}
	var lastHeard int64
	var stale bool
	m.fsm.Read(func(s *State) {
		req.Watermarks = s.Watermarks()
		req.Digest = s.Digest()
		lastHeard, stale = s.LastHeard(), m.staleLocked(s, now.UnixMilli())
		if withObjects {
			req.Objects = s.ObjectsNewerThan(theirs, m.relayable(now.UnixMilli()), m.cfg.BatchObjects, m.cfg.BatchBytes)
			if inventory {
				req.Inventory, req.HasInventory = s.Inventory(), true
			}
		}
	})
	if withObjects && stale {
		// Cut off for longer than a tombstone lives: what was deleted
		// meanwhile may be forgotten everywhere else, so ask for a full
		// copy instead of sending back what may have been deleted.
		req.WantFull = true
		req.Horizon = &shoalpb.Version{WallMs: lastHeard}
		req.Objects, req.Inventory, req.HasInventory = nil, nil, false
	}
	if withSummary {
		sum := m.summary()
		h := summaryHash(sum)
		if rem == nil {
			req.Summary = sum
		} else {
			m.mu.Lock()
			if rem.sentSum != h || !withObjects {
				req.Summary = sum
			}
			m.mu.Unlock()
		}
	}
	return req
}

func summaryHash(s *shoalpb.RegionSummary) [32]byte {
	x := proto.Clone(s).(*shoalpb.RegionSummary)
	x.MadeUnixMs, x.Contacts, x.Revision = 0, nil, 0
	data, _ := proto.MarshalOptions{Deterministic: true}.Marshal(x)
	return sha256.Sum256(data)
}

// absorb takes in a leader's answer: its watermarks and summary, the
// objects it sent back (inventory or full copy), and whether the digests
// show a divergence the watermarks miss. It reports whether more should
// be sent at once.
func (m *Mesh) absorb(ctx context.Context, rem *remote, req *shoalpb.SyncRequest, reply *shoalpb.SyncReply, now time.Time) bool {
	m.mu.Lock()
	rem.watermarks = WatermarkMap(reply.GetWatermarks())
	rem.digest = reply.GetDigest()
	if req.GetSummary() != nil {
		rem.sentSum = summaryHash(req.GetSummary())
	}
	m.mu.Unlock()
	m.received(reply.GetObjects())
	if objs := reply.GetObjects(); len(objs) > 0 || reply.GetFull() {
		mo := &shoalpb.MergeObjects{FromRegion: rem.name, Objects: objs, Full: reply.GetFull() && req.GetWantFull(), Horizon: req.GetHorizon()}
		if n, err := m.commit(ctx, &shoalpb.Command{Cmd: &shoalpb.Command_MergeObjects{MergeObjects: mo}}); err != nil {
			m.logger.Warn("committing objects from another region failed", "peer_region", rem.name, "err", err)
			return false
		} else {
			m.mu.Lock()
			m.stats.ObjectsMerged += uint64(n)
			m.mu.Unlock()
		}
		if mo.GetFull() {
			// Resynchronised: the region is in contact again.
			heard := &shoalpb.RegionsHeard{Heard: []*shoalpb.RegionHeard{{Region: rem.name, UnixMs: now.UnixMilli()}}}
			if _, err := m.commit(ctx, &shoalpb.Command{Cmd: &shoalpb.Command_RegionsHeard{RegionsHeard: heard}}); err != nil {
				return false
			}
			m.logger.Info("resynchronised in full after a long cut-off", "from_region", rem.name, "objects", len(objs))
		}
	}
	if c := m.summaryCommand(rem, reply.GetSummary(), reply.GetWatermarks(), now); c != nil {
		if _, err := m.commit(ctx, c); err != nil {
			m.logger.Warn("committing another region's summary failed", "peer_region", rem.name, "err", err)
			return false
		}
	}
	var ours []byte
	var pending bool
	var sameMarks bool
	m.mu.Lock()
	theirs := rem.watermarks // replaced, never modified: safe to read after unlock
	m.mu.Unlock()
	m.fsm.Read(func(s *State) {
		ours = s.Digest()
		pending = len(s.ObjectsNewerThan(theirs, m.relayable(m.cfg.Clock.Now().UnixMilli()), 1, 0)) > 0
		sameMarks = sameWatermarks(s.Watermarks(), reply.GetWatermarks())
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	wasInventory := rem.inventory
	rem.inventory = sameMarks && !bytes.Equal(ours, reply.GetDigest()) && !req.GetHasInventory()
	if rem.inventory && !wasInventory {
		m.logger.Info("digests differ although watermarks agree: comparing inventories", "peer_region", rem.name)
	}
	return pending || rem.inventory
}

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

// grace is how long region r may go unheard.
func (m *Mesh) grace(r *shoalpb.RemoteRegion) time.Duration {
	if r.GetSummary().GetEdge() {
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

func (m *Mesh) objectsRev() uint64 {
	var rev uint64
	m.fsm.Read(func(s *State) { rev = s.Revisions().Objects })
	return rev
}

// stale reports whether this region must resynchronise in full.
func (m *Mesh) stale() bool {
	var stale bool
	now := m.cfg.Clock.Now().UnixMilli()
	m.fsm.Read(func(s *State) { stale = m.staleLocked(s, now) })
	return stale
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
