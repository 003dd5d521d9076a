package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/region"
	"github.com/shoalmesh/shoal/transport"
)

// Version is the Shoal version, set at build time.
var Version = "dev"

// Peer is one running Shoal peer.
type Peer struct {
	cfg    Config
	logger *slog.Logger
	// clock is the peer's own time: real unless the clock fault skews it.
	clock *skewClock

	fsm        *region.FSM
	raft       *consensus.Node
	raftNet    consensus.Network
	store      *consensus.DiskStore
	pool       *gossip.Pool
	sim        *deploy.SimCluster  // nil when driving a real cluster
	kube       *deploy.KubeCluster // nil when simulating
	cluster    deploy.Cluster
	reconciler *deploy.Reconciler
	leader     *region.Leader
	mesh       *region.Mesh
	wan        transport.Link
	statuses   *statusReporter
	rendered   *renderer

	tls        *transport.Material // nil without TLS
	access     *access             // who may call what; nil without TLS
	httpLn     net.Listener
	httpSrv    *http.Server
	gossipAddr string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	metaMu sync.Mutex
	meta   *shoalpb.PeerMeta

	// leaving stops the cluster reports once the peer has said it leaves,
	// so that no late report brings its cluster back; reportMu orders a
	// report in flight before the leave.
	leaving  atomic.Bool
	reportMu sync.Mutex

	shutdownOnce sync.Once
	done         chan struct{}
}

// Start starts a peer: it listens on its ports, joins gossip, opens (or
// recovers) its Raft state and starts every loop. It returns once the peer
// serves its HTTP API; the region may still be electing a leader.
func Start(cfg Config) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("region", cfg.Region, "cluster", cfg.Cluster)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	p := &Peer{cfg: cfg, logger: logger, clock: &skewClock{}, done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := p.open(); err != nil {
		p.cancel()
		p.closeAll()
		return nil, err
	}
	p.startLoops()
	return p, nil
}

func (p *Peer) open() error {
	cfg := p.cfg
	var err error
	if err := p.loadTLS(); err != nil {
		return err
	}
	p.httpLn, err = net.Listen("tcp", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.HTTPPort)))
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	if cfg.real() {
		rc, err := deploy.LoadRESTConfig(cfg.Kubeconfig)
		if err != nil {
			return err
		}
		kc := deploy.DefaultKubeConfig(cfg.Cluster)
		kc.Logger = p.logger.With("component", "kube")
		p.kube, err = deploy.NewKubeCluster(kc, rc)
		if err != nil {
			return fmt.Errorf("member cluster: %w", err)
		}
		p.cluster = p.kube
	} else {
		sc := cfg.Sim
		if sc.Dir == "" {
			// The simulated cluster outlives the peer, as a real one
			// does: its objects stay under the data dir.
			sc.Dir = filepath.Join(cfg.DataDir, "sim")
		}
		if cfg.SimReset {
			if err := os.RemoveAll(sc.Dir); err != nil {
				return fmt.Errorf("simulated cluster: reset: %w", err)
			}
			p.logger.Warn("simulated cluster reset: it starts empty, as a rebuilt cluster would", "dir", sc.Dir)
		}
		p.sim, err = deploy.NewSimCluster(sc)
		if err != nil {
			return fmt.Errorf("simulated cluster: %w", err)
		}
		p.cluster = p.sim
	}

	p.fsm = region.NewFSM(cfg.Region, p.logger.With("component", "fsm"), region.WithTombstoneTTL(cfg.TombstoneTTL))
	rc := raftProfile(cfg.Gossip)
	rc.ID = cfg.Cluster
	rc.BootstrapExpect = cfg.BootstrapExpect
	rc.Logger = p.logger.With("component", "raft")
	rc.Authorize = func(from consensus.Peer, cmd []byte) error {
		return region.AuthorizeForward(from.Identity.Cluster, from.Verified, cmd)
	}
	raftLog := p.logger.With("component", "raft")
	p.store, err = consensus.OpenDiskStore(filepath.Join(cfg.DataDir, "raft"), rc.SnapshotRetain, raftLog)
	if err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	network := cfg.RaftNetwork
	if network == nil {
		tc := consensus.TCPConfig{BindAddr: net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.RaftPort)), Logger: raftLog}
		if cfg.AdvertiseAddr != "" {
			tc.AdvertiseAddr = net.JoinHostPort(cfg.AdvertiseAddr, strconv.Itoa(cfg.RaftPort))
		}
		if p.tls != nil {
			tc.TLS = p.tls.PeerTLSConfig()
		}
		if network, err = consensus.NewTCPNetwork(tc); err != nil {
			return fmt.Errorf("raft: %w", err)
		}
	}
	p.raftNet = network
	p.raft, err = consensus.New(rc, p.fsm, p.store.Logs, p.store.Stable, p.store.Snapshots, network)
	if err != nil {
		return fmt.Errorf("raft: %w", err)
	}

	gc, err := gossip.ProfileConfig(cfg.Gossip)
	if err != nil {
		return err
	}
	gc.Name = cfg.Cluster
	gc.Region = cfg.Region
	gc.BindAddr = cfg.BindAddr
	gc.BindPort = cfg.GossipPort
	gc.AdvertiseAddr = cfg.AdvertiseAddr
	gc.SecretKey = cfg.GossipKey
	if cfg.GossipTransport != nil {
		gc.Transport, gc.BindAddr, gc.BindPort = cfg.GossipTransport, "", 0
	}
	gc.Logger = p.logger.With("component", "gossip")
	p.meta = p.initialMeta()
	p.pool, err = gossip.New(gc, p.meta)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	p.gossipAddr = p.pool.LocalAddr()

	lc := region.DefaultLeaderConfig()
	lc.Region = cfg.Region
	lc.UnreachableToleration = cfg.UnreachableToleration
	lc.NotReadyToleration = cfg.NotReadyToleration
	lc.FailbackDelay = cfg.FailbackDelay
	lc.DeadClusterGrace = cfg.DeadClusterGrace
	lc.Clock = p.clock
	lc.Logger = p.logger.With("component", "leader")
	p.leader, err = region.NewLeader(lc, p.fsm, p.raft, peersView{p.pool})
	if err != nil {
		return err
	}

	if err := p.openWAN(); err != nil {
		return err
	}
	// Which regions the mesh hears decides guarded workloads (the
	// partition guard fences a region without a majority).
	p.leader.SetMeshView(p.mesh)

	p.rendered = newRenderer(cfg.Cluster)
	p.statuses = newStatusReporter(p)
	// A peer restarted while cut off keeps its cluster exactly as it is
	// until it has caught up with a leader (see desiredLoop).
	stale, since := p.raft.Stale()
	if stale {
		p.logger.Warn("running from the state last acted on: the cluster is held as it is until a leader is caught up with",
			"since", since)
	}
	p.reconciler, err = deploy.NewReconciler(deploy.ReconcilerConfig{
		ClusterName: cfg.Cluster,
		StartHeld:   stale,
		Logger:      p.logger.With("component", "reconciler"),
	}, p.cluster, p.statuses.report)
	if err != nil {
		return err
	}
	p.httpSrv = newHTTPServer(cfg, p.routes(), p.serverTLS(), p.logger)
	return nil
}

// raftProfile gives the Raft timing that goes with a gossip profile: the
// edge profile's tolerance of slow and lossy links, the LAN timing
// otherwise (local peers share a machine, the fastest network there is).
func raftProfile(p gossip.Profile) consensus.Config {
	if p == gossip.ProfileEdge {
		return consensus.DefaultEdgeConfig()
	}
	return consensus.DefaultConfig()
}

// loadTLS loads the peer's certificate and tokens, or warns that its ports
// are open.
func (p *Peer) loadTLS() error {
	cfg := p.cfg
	if !cfg.tls() {
		p.logger.Warn("no TLS: the HTTP API and the Raft port are unauthenticated, open to anyone who can reach them; " +
			"give the peer --tls-ca, --tls-cert and --tls-key (see shoal ca)")
		return nil
	}
	m, err := transport.LoadFiles(cfg.TLSCA, cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := m.CheckPeer(cfg.Region, cfg.Cluster); err != nil {
		return fmt.Errorf("tls: %s: %w", cfg.TLSCert, err)
	}
	a := &access{tls: m, self: m.Identity}
	if cfg.HTTPTokenFile != "" {
		if a.tokens, err = loadTokens(cfg.HTTPTokenFile); err != nil {
			return err
		}
	}
	if cfg.HTTPClientScopesFile != "" {
		if a.clients, a.otherClients, err = loadClientScopes(cfg.HTTPClientScopesFile); err != nil {
			return err
		}
	}
	p.tls, p.access = m, a
	clients := "every client certificate: " + defaultScopes.String()
	if a.clients != nil {
		clients = fmt.Sprintf("%d listed, others: %s", len(a.clients), a.otherClients)
	}
	p.logger.Info("TLS on", "mesh", m.Mesh, "identity", m.Identity.String(), "tokens", len(a.tokens), "clients", clients)
	return nil
}

func (p *Peer) serverTLS() *tls.Config {
	if p.tls == nil {
		return nil
	}
	return p.tls.ServerTLSConfig()
}

func (p *Peer) initialMeta() *shoalpb.PeerMeta {
	return &shoalpb.PeerMeta{
		Region: p.cfg.Region, Cluster: p.cfg.Cluster, Zone: api.FirstZone(p.cfg.Zones), Zones: p.cfg.Zones, Provider: p.cfg.Provider,
		Labels: p.cfg.Labels, Health: shoalpb.Health_HEALTH_UNKNOWN,
		RaftAddr: p.raft.Addr(), HttpAddr: p.HTTPAddr(), Edge: p.cfg.Edge,
		BootstrapExpect: uint32(p.cfg.BootstrapExpect), RaftState: p.raft.HasState(),
	}
}

// go runs fn in a goroutine tracked by the peer's wait group.
func (p *Peer) goLoop(name string, fn func(ctx context.Context)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn(p.ctx)
		p.logger.Debug("loop ended", "loop", name)
	}()
}

func (p *Peer) startLoops() {
	p.goLoop("http", func(ctx context.Context) {
		serve := p.httpSrv.Serve
		if p.tls != nil {
			serve = func(ln net.Listener) error { return p.httpSrv.ServeTLS(ln, "", "") }
		}
		if err := serve(limitConns(p.httpLn, p.cfg.HTTPMaxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.logger.Error("http server stopped", "err", err)
		}
	})
	if joins := p.cfg.joinAddrs(); len(joins) > 0 {
		p.goLoop("join", func(ctx context.Context) {
			if err := p.pool.JoinRetry(ctx, joins, time.Second); err != nil && ctx.Err() == nil {
				p.logger.Error("joining the region failed", "join", joins, "err", err)
			}
		})
	}
	if p.kube != nil {
		p.goLoop("kube", func(ctx context.Context) {
			// Retries while the API server cannot be reached; meanwhile
			// the reconciler's calls fail as unavailable and are retried.
			if err := p.kube.Start(ctx); err != nil && ctx.Err() == nil {
				p.logger.Error("member cluster informers stopped", "err", err)
			}
		})
	}
	p.goLoop("membership", p.membershipLoop)
	p.goLoop("leadership", p.leadershipLoop)
	p.goLoop("desired", p.desiredLoop)
	p.goLoop("reconciler", func(ctx context.Context) {
		if err := p.reconciler.Run(ctx); err != nil && ctx.Err() == nil {
			p.logger.Error("reconciler stopped", "err", err)
		}
	})
	p.goLoop("status", p.statuses.run)
	p.goLoop("cluster-report", p.clusterReportLoop)
}

// HTTPAddr is the address the HTTP API listens on (host:port).
func (p *Peer) HTTPAddr() string {
	_, port, _ := net.SplitHostPort(p.httpLn.Addr().String())
	return net.JoinHostPort(p.cfg.advertise(), port)
}

// URL is the base URL of the HTTP API: https:// with TLS.
func (p *Peer) URL() string {
	if p.tls != nil {
		return "https://" + p.HTTPAddr()
	}
	return "http://" + p.HTTPAddr()
}

// GossipAddr is the address others join (host:port).
func (p *Peer) GossipAddr() string { return p.gossipAddr }

// Config returns the peer's configuration.
func (p *Peer) Config() Config { return p.cfg }

// FSM gives read access to the peer's copy of the region state.
func (p *Peer) FSM() *region.FSM { return p.fsm }

// Raft gives the peer's Raft node.
func (p *Peer) Raft() *consensus.Node { return p.raft }

// Sim gives the simulated cluster the peer drives, or nil when it drives a
// real cluster.
func (p *Peer) Sim() *deploy.SimCluster { return p.sim }

// Done is closed when the peer has shut down.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Leave leaves the region gracefully: leadership is handed over, the peer is
// removed from the Raft group and announces its leave in gossip, so that its
// cluster is removed and its workloads move at once. Then it shuts down.
func (p *Peer) Leave(ctx context.Context) error {
	p.logger.Info("leaving the region")
	var errs []error
	// The region learns of the leave from this peer itself, through its
	// leader (with TLS, under this peer's certificate): gossip's leave is
	// not authenticated and only counts as a failure.
	p.reportMu.Lock()
	p.leaving.Store(true)
	p.reportMu.Unlock()
	leave := &shoalpb.Command{Cmd: &shoalpb.Command_LeaveRegion{LeaveRegion: &shoalpb.LeaveRegion{Cluster: p.cfg.Cluster}}}
	if err := p.commit(ctx, leave); err != nil {
		errs = append(errs, fmt.Errorf("leaving the region state: %w", err))
	}
	if err := p.raft.Leave(ctx); err != nil {
		errs = append(errs, fmt.Errorf("raft leave: %w", err))
	}
	if err := p.pool.Leave(5 * time.Second); err != nil {
		errs = append(errs, fmt.Errorf("gossip leave: %w", err))
	}
	errs = append(errs, p.Shutdown())
	return errors.Join(errs...)
}

// Shutdown stops the peer without leaving: to the others it looks like a
// failure, and it rejoins with its state when started again.
func (p *Peer) Shutdown() error {
	var err error
	p.shutdownOnce.Do(func() {
		p.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if p.httpSrv != nil {
			_ = p.httpSrv.Shutdown(ctx)
		}
		p.wg.Wait()
		err = p.closeAll()
		close(p.done)
	})
	return err
}

func (p *Peer) closeAll() error {
	var errs []error
	if p.wan != nil {
		errs = append(errs, p.wan.Close())
	}
	if p.pool != nil {
		errs = append(errs, p.pool.Shutdown())
	}
	if p.raft != nil {
		errs = append(errs, p.raft.Shutdown())
	}
	if p.store != nil {
		errs = append(errs, p.store.Close())
	}
	if p.sim != nil {
		errs = append(errs, p.sim.Close())
	}
	if p.httpLn != nil {
		_ = p.httpLn.Close()
	}
	return errors.Join(errs...)
}
