package region

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// WAN is what the mesh needs of the links between regions
// (transport.Link, adapted by node).
type WAN interface {
	// Call sends req to the peer at addr and returns its answer. When
	// region is not empty the answering peer must prove it belongs to
	// that region. A LinkError answer is returned as an error that
	// LinkErrorOf recognises.
	Call(ctx context.Context, addr, region string, req *shoalpb.WanMessage) (*shoalpb.WanMessage, error)
}

// LinkError is a LinkError answer as an error.
type LinkError struct{ *shoalpb.LinkError }

func (e *LinkError) Error() string {
	return fmt.Sprintf("%s: %s", e.GetCode(), e.GetMessage())
}

// Refuse returns a LinkError with code and message.
func Refuse(code shoalpb.LinkCode, format string, args ...any) error {
	return &LinkError{&shoalpb.LinkError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// LeaderState tells the mesh who leads this peer's region. Both must be
// safe to call from any goroutine and must not block.
type LeaderState interface {
	// IsLeader reports whether this peer leads its region right now.
	IsLeader() bool
	// LeaderCluster names the cluster whose peer leads the region, or ""
	// when none is known.
	LeaderCluster() string
}

// MeshConfig configures the mesh of regions as one peer takes part in it.
type MeshConfig struct {
	// Region and Cluster name this peer.
	Region, Cluster string
	// Addr is this peer's WAN address as other regions dial it.
	Addr string
	// Seeds are WAN addresses of peers of other regions to start from
	// (--join-wan); regions learn the rest from each other's summaries.
	Seeds []string
	// Edge marks this region's clusters as edge sites: others give it
	// EdgeGracePeriod, and it gives every other region the same.
	Edge bool
	// SyncInterval is how often the leader syncs with every other region
	// when nothing changes (it also syncs at once on every change). It is
	// the heartbeat between regions.
	SyncInterval time.Duration
	// GracePeriod is how long a region may go unheard by every link
	// before it is dead for placement; EdgeGracePeriod for edge regions.
	GracePeriod, EdgeGracePeriod time.Duration
	// MaxClockOffset is how far in this peer's future a remote version may
	// be; a request carrying a later one is refused and its sender
	// reported as skewed.
	MaxClockOffset time.Duration
	// HeardInterval is how often the leader commits when it last heard
	// each region (those times survive a change of leader).
	HeardInterval time.Duration
	// LinksPerRegion is how many peers of each other region the leader
	// keeps in touch with (the first is that region's leader).
	LinksPerRegion int
	// BatchObjects and BatchBytes cap the objects sent in one request.
	BatchObjects, BatchBytes int
	// CallTimeout bounds one request.
	CallTimeout time.Duration
	// Clock tells the time of skew checks and verdicts (ticks are real).
	Clock  clock.PassiveClock
	Logger *slog.Logger
}

// DefaultMeshConfig returns the LAN defaults.
func DefaultMeshConfig() MeshConfig {
	return MeshConfig{
		SyncInterval:    time.Second,
		GracePeriod:     4 * time.Second,
		EdgeGracePeriod: 2 * time.Minute,
		MaxClockOffset:  500 * time.Millisecond,
		HeardInterval:   2 * time.Second,
		LinksPerRegion:  2,
		BatchObjects:    500,
		BatchBytes:      4 << 20,
		CallTimeout:     5 * time.Second,
	}
}

// Validate checks the settings and their relations.
func (c MeshConfig) Validate() error {
	var errs []error
	if c.Region == "" || c.Cluster == "" {
		errs = append(errs, errors.New("mesh: Region and Cluster are required"))
	}
	if c.SyncInterval <= 0 || c.GracePeriod <= 0 || c.EdgeGracePeriod <= 0 || c.HeardInterval <= 0 || c.CallTimeout <= 0 {
		errs = append(errs, errors.New("mesh: SyncInterval, GracePeriod, EdgeGracePeriod, HeardInterval and CallTimeout must be positive"))
	}
	if c.GracePeriod < 2*c.SyncInterval {
		errs = append(errs, fmt.Errorf("mesh: GracePeriod (%s) must be at least twice SyncInterval (%s)", c.GracePeriod, c.SyncInterval))
	}
	if c.EdgeGracePeriod < c.GracePeriod {
		errs = append(errs, fmt.Errorf("mesh: EdgeGracePeriod (%s) is shorter than GracePeriod (%s)", c.EdgeGracePeriod, c.GracePeriod))
	}
	if c.MaxClockOffset <= 0 {
		errs = append(errs, errors.New("mesh: MaxClockOffset must be positive"))
	}
	if c.LinksPerRegion < 1 || c.BatchObjects < 1 || c.BatchBytes < 1 {
		errs = append(errs, errors.New("mesh: LinksPerRegion, BatchObjects and BatchBytes must be at least 1"))
	}
	return errors.Join(errs...)
}

// Mesh is one peer's part in the mesh of regions. Every peer answers
// other regions (Handle): a follower with its view and where its leader
// is, the leader by merging what they send through its region's Raft log.
// The leader alone runs the sync loop (Run, bound to leadership), which
// keeps links to every other region, sends its summary and the objects
// the others lack, and decides which regions are dead for placement.
type Mesh struct {
	cfg    MeshConfig
	fsm    *FSM
	raft   Raft
	wan    WAN
	lead   LeaderState
	logger *slog.Logger

	mu      sync.Mutex
	remotes map[string]*remote // by region
	seeds   map[string]bool    // seed addresses not yet known to belong to a region
	stats   MeshStats
	skewed  map[string]time.Time // "region/cluster" of peers refused for clock skew
	kick    chan struct{}
	// retrying is set while a quick retry is scheduled (retrySoon).
	retrying atomic.Bool
	// base is the state-derived part of this region's summary, made
	// once per applied index (summaryAndHash).
	base *summaryBase
	// leadSince is when the sync loop started (zero while it is not
	// running): no region can have been heard before it.
	leadSince time.Time
}

// MeshStats counts what the links carried, for status and benchmarks.
type MeshStats struct {
	// ObjectsSent and BytesSent count objects (and their encoded size)
	// sent to other regions; ObjectsMerged those received that changed
	// this region.
	ObjectsSent, BytesSent, ObjectsMerged uint64
	// ObjectsReceived and BytesReceived count objects other regions sent
	// this peer (in their requests and in answers to this peer's).
	ObjectsReceived, BytesReceived uint64
	// Syncs counts answered sync requests sent; FullSyncs resyncs asked.
	Syncs, FullSyncs uint64
	// QuickRetries counts syncs started early because the last attempt
	// failed at once (a link refused, not silent): see retrySoon.
	QuickRetries uint64
	// Hedged counts syncs started beside one whose call went silent:
	// see mayHedge.
	Hedged uint64
	// Refused counts requests refused (identity, skew, bad input).
	Refused uint64
}

// remote is the leader's memory of another region (not replicated).
type remote struct {
	name       string
	addrs      []string // known WAN addresses, leader first when known
	leaderAddr string
	leaderOK   bool // leaderAddr answered as leader
	heard      time.Time
	heardBy    map[string]time.Time // by address
	watermarks map[string]*shoalpb.Version
	summary    *shoalpb.RegionSummary
	summaryAt  time.Time // when summary arrived (our clock)
	sentSum    [32]byte  // hash of the summary last sent to it
	offered    [32]byte  // hash of the summary in the request in flight
	inventory  bool      // send our inventory next (digests differ)
	committed  *shoalpb.SetRegionSummary
	// Syncs in flight with it, when the newest began, and how long its
	// answers take, smoothed (see mayHedge).
	inflight  int
	lastStart time.Time
	rtt       time.Duration
	nudged    bool // heard from while silent: sync again at once
	// seq numbers this peer's requests to it, and learned the request
	// whose answer (or a request from it) last set watermarks: an answer
	// to an older request, coming back after a newer one (syncs run side
	// by side), does not set them back.
	seq, learned uint64
}

// NewMesh returns the mesh part of a peer. Handle may be called at once;
// Run only while the peer leads its region.
func NewMesh(cfg MeshConfig, fsm *FSM, r Raft, wan WAN, lead LeaderState) (*Mesh, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Mesh{
		cfg: cfg, fsm: fsm, raft: r, wan: wan, lead: lead,
		logger:  cfg.Logger.With("region", cfg.Region),
		remotes: map[string]*remote{},
		seeds:   map[string]bool{},
		skewed:  map[string]time.Time{},
		kick:    make(chan struct{}, 1),
	}
	for _, s := range cfg.Seeds {
		if s != "" && s != cfg.Addr {
			m.seeds[s] = true
		}
	}
	return m, nil
}

// Stats returns the link counters.
func (m *Mesh) Stats() MeshStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Skewed returns the peers refused for clock skew, with when.
func (m *Mesh) Skewed() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]time.Time, len(m.skewed))
	for k, v := range m.skewed {
		out[k] = v
	}
	return out
}

// Handle answers a request from a peer of another region. fromRegion and
// fromCluster are what the caller's certificate proves (empty in an
// insecure mesh, where the request's own claim is taken). It never
// panics on bad input: it answers with a LinkError.
func (m *Mesh) Handle(ctx context.Context, fromRegion, fromCluster string, req *shoalpb.WanMessage) (*shoalpb.WanMessage, error) {
	switch x := req.GetMsg().(type) {
	case *shoalpb.WanMessage_Ping:
		return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Pong{Pong: &shoalpb.Pong{Payload: x.Ping.GetPayload()}}}, nil
	case *shoalpb.WanMessage_Sync:
		reply, err := m.handleSync(ctx, fromRegion, fromCluster, x.Sync)
		if err != nil {
			m.mu.Lock()
			m.stats.Refused++
			m.mu.Unlock()
			return nil, err
		}
		return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_SyncReply{SyncReply: reply}}, nil
	default:
		return nil, Refuse(shoalpb.LinkCode_LINK_CODE_BAD_REQUEST, "unexpected message %T", x)
	}
}

// checkSync refuses a request that speaks for another region than its
// sender's certificate names, or whose summary does.
func (m *Mesh) checkSync(fromRegion, fromCluster string, req *shoalpb.SyncRequest) error {
	r := req.GetRegion()
	if r == "" {
		return Refuse(shoalpb.LinkCode_LINK_CODE_BAD_REQUEST, "sync request names no region")
	}
	if r == m.cfg.Region {
		return Refuse(shoalpb.LinkCode_LINK_CODE_BAD_REQUEST, "sync request from this peer's own region %s", r)
	}
	if fromRegion != "" && fromRegion != r {
		m.logger.Warn("refused a sync that speaks for another region", "caller_region", fromRegion, "caller_cluster", fromCluster, "claims", r)
		return Refuse(shoalpb.LinkCode_LINK_CODE_REFUSED, "the peer of cluster %s of region %s may not speak for region %s", fromCluster, fromRegion, r)
	}
	if s := req.GetSummary(); s != nil {
		if s.GetRegion() != r {
			m.logger.Warn("refused a summary of another region", "caller_region", r, "caller_cluster", fromCluster, "summary", s.GetRegion())
			return Refuse(shoalpb.LinkCode_LINK_CODE_REFUSED, "region %s may not send the summary of region %s", r, s.GetRegion())
		}
		for _, c := range s.GetClusters() {
			if c.GetRegion() != r {
				m.logger.Warn("refused a summary claiming another region's cluster", "caller_region", r, "caller_cluster", fromCluster, "cluster", c.GetName(), "cluster_region", c.GetRegion())
				return Refuse(shoalpb.LinkCode_LINK_CODE_REFUSED, "region %s may not speak for cluster %s of region %q", r, c.GetName(), c.GetRegion())
			}
		}
		for _, st := range s.GetStatuses() {
			if !hasCluster(s, st.GetCluster()) {
				return Refuse(shoalpb.LinkCode_LINK_CODE_REFUSED, "region %s reports a status for cluster %s, which is not one of its clusters", r, st.GetCluster())
			}
		}
	}
	for _, o := range req.GetObjects() {
		if err := checkRemote(o); err != nil {
			return Refuse(shoalpb.LinkCode_LINK_CODE_BAD_REQUEST, "%v", err)
		}
	}
	// A version too far ahead would drag this region's clock (and every
	// later write) into the future.
	limit := m.cfg.Clock.Now().Add(m.cfg.MaxClockOffset).UnixMilli()
	for _, o := range req.GetObjects() {
		if v := o.GetVersion(); v.GetWallMs() > limit {
			who := r + "/" + fromCluster
			m.mu.Lock()
			m.skewed[who] = m.cfg.Clock.Now()
			m.mu.Unlock()
			ahead := time.Duration(v.GetWallMs()-m.cfg.Clock.Now().UnixMilli()) * time.Millisecond
			m.logger.Warn("refused versions from a peer whose clock is ahead", "peer_region", r, "peer_cluster", fromCluster, "ahead", ahead, "max_offset", m.cfg.MaxClockOffset)
			return Refuse(shoalpb.LinkCode_LINK_CODE_CLOCK_SKEW, "version %s is %s in this peer's future (max clock offset %s): check the clock of region %s",
				VersionString(v), ahead, m.cfg.MaxClockOffset, r)
		}
	}
	return nil
}

func hasCluster(s *shoalpb.RegionSummary, name string) bool {
	for _, c := range s.GetClusters() {
		if c.GetName() == name {
			return true
		}
	}
	return false
}

func (m *Mesh) handleSync(ctx context.Context, fromRegion, fromCluster string, req *shoalpb.SyncRequest) (*shoalpb.SyncReply, error) {
	if err := m.checkSync(fromRegion, fromCluster, req); err != nil {
		return nil, err
	}
	if !m.lead.IsLeader() {
		reply := m.view(nil)
		reply.LeaderAddr = m.leaderAddr()
		return reply, nil
	}
	now := m.cfg.Clock.Now()
	m.received(req.GetObjects())
	rem := m.learn(req.GetRegion(), req.GetSummary(), fromCluster, "", now)
	m.nudge(rem)
	var cmds []*shoalpb.Command
	var fresh []*shoalpb.Object
	m.fsm.Read(func(s *State) {
		// Commit what is newer than what the region holds, and what it
		// has not seen yet even if it loses (the merge records the
		// conflict and moves the watermark).
		for _, o := range req.GetObjects() {
			l := s.objects[api.KeyFromProto(o.GetKey()).String()]
			if l == nil || CompareVersions(o.GetVersion(), l.GetVersion()) > 0 ||
				CompareVersions(o.GetVersion(), s.watermarks[o.GetVersion().GetOrigin()]) > 0 {
				fresh = append(fresh, o)
			}
		}
	})
	if len(fresh) > 0 {
		cmds = append(cmds, &shoalpb.Command{Cmd: &shoalpb.Command_MergeObjects{MergeObjects: &shoalpb.MergeObjects{
			FromRegion: req.GetRegion(), Objects: fresh}}})
	}
	if c := m.summaryCommand(rem, req.GetSummary(), req.GetWatermarks(), now); c != nil {
		cmds = append(cmds, c)
	}
	merged := 0
	for _, c := range cmds {
		n, err := m.commit(ctx, c)
		if err != nil {
			return nil, Refuse(shoalpb.LinkCode_LINK_CODE_UNAVAILABLE, "committing what region %s sent: %v", req.GetRegion(), err)
		}
		merged += n
	}
	reply := m.view(req)
	reply.Leader = true
	reply.LeaderAddr = m.cfg.Addr
	reply.Merged = uint32(merged)
	// What the caller holds is now known: its watermarks, and what this
	// answer carries. This leader's own next push starts from there and
	// does not send the same objects again.
	wm := WatermarkMap(req.GetWatermarks())
	for _, o := range reply.GetObjects() {
		if v := o.GetVersion(); CompareVersions(v, wm[v.GetOrigin()]) > 0 {
			wm[v.GetOrigin()] = v
		}
	}
	m.mu.Lock()
	rem.watermarks, rem.learned = wm, rem.seq
	m.mu.Unlock()
	m.mu.Lock()
	m.stats.ObjectsMerged += uint64(merged)
	m.mu.Unlock()
	return reply, nil
}

// view is this peer's answer: its region's summary, watermarks and digest,
// and, for an inventory or a full resync request, the objects asked for.
func (m *Mesh) view(req *shoalpb.SyncRequest) *shoalpb.SyncReply {
	reply := &shoalpb.SyncReply{Region: m.cfg.Region, Summary: m.summary()}
	now := m.cfg.Clock.Now().UnixMilli()
	m.fsm.Read(func(s *State) {
		reply.Watermarks = s.Watermarks()
		reply.Digest = s.Digest()
		switch {
		case m.staleLocked(s, now):
			// Cut off for longer than a tombstone lives: what this region
			// holds may have been deleted and forgotten elsewhere, so it
			// hands out nothing until it has resynchronised.
		case req.GetWantFull():
			reply.Objects = s.AllObjects()
			reply.Full = true
		case req.GetHasInventory():
			reply.Objects, reply.More = s.NewerOrMissing(req.GetInventory(), m.cfg.BatchObjects, m.cfg.BatchBytes)
		case req != nil && !req.GetHeartbeat() && m.lead.IsLeader():
			// What the caller lacks by its own watermarks travels back at
			// once: a region that returns catches up in one round trip,
			// whatever the backoff of the links towards it.
			reply.Objects, reply.More = s.ObjectsNewerThan(WatermarkMap(req.GetWatermarks()), m.relayable(now), m.cfg.BatchObjects, m.cfg.BatchBytes)
		}
	})
	return reply
}

// commit commits a command through the region's log and says how many
// objects it changed.
func (m *Mesh) commit(ctx context.Context, c *shoalpb.Command) (int, error) {
	data, err := proto.Marshal(c)
	if err != nil {
		return 0, err
	}
	res, err := m.raft.ApplyLocal(ctx, data)
	if err != nil {
		return 0, err
	}
	if len(res.Response) == 0 {
		return 0, nil
	}
	var out shoalpb.ObjectResults
	if err := proto.Unmarshal(res.Response, &out); err != nil {
		return 0, nil
	}
	return len(out.GetResults()), nil
}

// staleLocked reports whether this region lost contact with every other
// region for longer than a tombstone lives (it must resynchronise in
// full before it may hand out objects). s is read under the FSM lock.
func (m *Mesh) staleLocked(s *State, nowMs int64) bool {
	return len(s.regions) > 0 && nowMs-s.LastHeard() > m.fsm.tombstoneTTL
}

func (m *Mesh) received(objs []*shoalpb.Object) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.ObjectsReceived += uint64(len(objs))
	for _, o := range objs {
		m.stats.BytesReceived += uint64(proto.Size(o))
	}
}

// relayable says which objects this region sends another: its own writes
// at once, another region's only once they are older than the grace
// period. The origin sends its writes to every region itself; a region
// relays them only when the origin may not have (it died, or its link is
// broken), so that a region catching up is not sent every change by every
// region.
func (m *Mesh) relayable(nowMs int64) func(*shoalpb.Object) bool {
	relayAfter := m.cfg.GracePeriod.Milliseconds()
	return func(o *shoalpb.Object) bool {
		v := o.GetVersion()
		return v.GetOrigin() == m.cfg.Region || nowMs-v.GetWallMs() > relayAfter
	}
}
