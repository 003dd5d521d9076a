package region

import (
	"bytes"
	"context"
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

// quickRetries is how many times per sync interval a link that refuses
// at once is tried again.
const quickRetries = 20

// retrySoon syncs again after a twentieth of the sync interval, once: a
// link that refuses at once (cut off, the other end restarting) is tried
// twenty times as often as a working one, so that a region catches up
// within moments of the link coming back rather than up to a whole
// interval later. Such a try costs a request without objects (the
// failure forgot the leader's address), refused before anything is sent
// or at the other end's door. A link that fails by silence is not tried
// sooner: its call already waited out its timeout.
func (m *Mesh) retrySoon(ctx context.Context) {
	if !m.retrying.CompareAndSwap(false, true) {
		return
	}
	m.mu.Lock()
	m.stats.QuickRetries++
	m.mu.Unlock()
	time.AfterFunc(m.cfg.SyncInterval/quickRetries, func() {
		m.retrying.Store(false)
		if ctx.Err() == nil {
			m.Sync()
		}
	})
}

// Sync asks the running sync loop to sync now.
func (m *Mesh) Sync() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// round starts a sync with every other region (and every seed not yet
// known to belong to one) that is not already being synced, or whose
// syncs in flight went silent (mayHedge).
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
		if rem.committed != nil && !known[name] && rem.inflight == 0 {
			delete(m.remotes, name)
		}
	}
	type started struct {
		rem   *remote
		hedge bool
		after time.Duration
	}
	var start []started
	now := time.Now()
	for _, name := range sortedKeys(m.remotes) {
		rem := m.remotes[name]
		if len(rem.addrs) == 0 {
			continue
		}
		hedge := rem.inflight > 0
		if hedge && !m.mayHedge(rem, now) {
			continue
		}
		if hedge {
			m.stats.Hedged++
		}
		rem.inflight++
		rem.lastStart, rem.nudged = now, false
		start = append(start, started{rem, hedge, m.nextHedge(rem)})
	}
	seeds := sortedKeys(m.seeds)
	m.mu.Unlock()
	for _, st := range start {
		go func() {
			// Looks again once this sync could be found silent.
			t := time.AfterFunc(st.after, m.Sync)
			defer func() {
				t.Stop()
				m.mu.Lock()
				st.rem.inflight--
				m.mu.Unlock()
			}()
			m.syncRegion(ctx, st.rem, st.hedge)
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
// with its other linked peers. A hedge (a sync beside a silent one) asks
// without objects first.
func (m *Mesh) syncRegion(ctx context.Context, rem *remote, hedge bool) {
	addrs := m.linkAddrs(rem)
	if len(addrs) == 0 {
		return
	}
	done := make(chan struct{}, len(addrs))
	for i, addr := range addrs {
		go func() {
			defer func() { done <- struct{}{} }()
			if i == 0 {
				m.syncPrimary(ctx, rem, addr, hedge)
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
func (m *Mesh) syncPrimary(ctx context.Context, rem *remote, addr string, hedge bool) {
	for i := range maxSyncRounds {
		m.mu.Lock()
		toLeader := rem.leaderOK && addr == rem.leaderAddr && rem.watermarks != nil && !(hedge && i == 0)
		rem.seq++
		seq := rem.seq
		m.mu.Unlock()
		req := m.request(rem, toLeader, true)
		began, startedAt := time.Now(), m.cfg.Clock.Now()
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
			// Forgotten unless another sync heard it meanwhile (a silent
			// call ends long after a hedge beside it got through).
			if rem.leaderAddr == addr && !rem.heardBy[addr].After(startedAt) {
				rem.leaderAddr, rem.leaderOK = "", false
			}
			m.mu.Unlock()
			if time.Since(began) < m.cfg.SyncInterval/4 {
				m.retrySoon(ctx)
			}
			return
		}
		m.observeRTT(rem, time.Since(began))
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
		// Again at once while either side has more: this region's objects
		// the other lacks, or a capped answer.
		more := m.absorb(ctx, rem, seq, req, reply, now)
		if !more && !reply.GetMore() {
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
			req.Objects, _ = s.ObjectsNewerThan(theirs, m.relayable(now.UnixMilli()), m.cfg.BatchObjects, m.cfg.BatchBytes)
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
		sum, h := m.summaryAndHash()
		if rem == nil {
			req.Summary = sum
		} else {
			m.mu.Lock()
			if rem.sentSum != h || !withObjects {
				req.Summary = sum
				rem.offered = h
			}
			m.mu.Unlock()
		}
	}
	return req
}

// absorb takes in a leader's answer: its watermarks and summary, the
// objects it sent back (inventory or full copy), and whether the digests
// show a divergence the watermarks miss. It reports whether more should
// be sent at once.
func (m *Mesh) absorb(ctx context.Context, rem *remote, seq uint64, req *shoalpb.SyncRequest, reply *shoalpb.SyncReply, now time.Time) bool {
	m.mu.Lock()
	if seq > rem.learned {
		rem.watermarks, rem.learned = WatermarkMap(reply.GetWatermarks()), seq
	}
	if req.GetSummary() != nil {
		rem.sentSum = rem.offered
	}
	m.mu.Unlock()
	m.received(reply.GetObjects())
	if objs := reply.GetObjects(); len(objs) > 0 || reply.GetFull() {
		mo := &shoalpb.MergeObjects{FromRegion: rem.name, Objects: objs, Full: reply.GetFull() && req.GetWantFull(), Horizon: req.GetHorizon()}
		if mo.GetFull() {
			mo.SenderWatermarks = reply.GetWatermarks()
		}
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
		newer, _ := s.ObjectsNewerThan(theirs, m.relayable(m.cfg.Clock.Now().UnixMilli()), 1, 0)
		pending = len(newer) > 0
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
