package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/region"
	"github.com/shoalmesh/shoal/transport"
)

// openWAN opens the peer's end of the links between regions (QUIC on
// WANPort, mutual TLS with the mesh CA unless the peer is insecure) and
// the mesh part that answers them.
func (p *Peer) openWAN() error {
	cfg := p.cfg
	link := cfg.WANLink
	if link == nil {
		qc := transport.DefaultQUICConfig()
		if cfg.Edge {
			qc = transport.EdgeQUICConfig()
		}
		qc.BindAddr = net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.WANPort))
		if cfg.AdvertiseAddr != "" {
			qc.AdvertiseAddr = net.JoinHostPort(cfg.AdvertiseAddr, strconv.Itoa(cfg.WANPort))
		}
		qc.TLS = p.tls
		qc.Insecure = p.tls == nil
		qc.Logger = p.logger.With("component", "wan")
		var err error
		if link, err = transport.NewQUICLink(qc); err != nil {
			return fmt.Errorf("wan: %w", err)
		}
	}
	p.wan = link
	mc := region.DefaultMeshConfig()
	mc.Region, mc.Cluster, mc.Addr = cfg.Region, cfg.Cluster, link.Addr()
	mc.Seeds = cfg.wanJoinAddrs()
	mc.Edge = cfg.Edge
	mc.SyncInterval = cfg.SyncInterval
	mc.GracePeriod, mc.EdgeGracePeriod = cfg.RegionGrace, cfg.EdgeRegionGrace
	mc.Clock = p.clock
	mc.Logger = p.logger.With("component", "mesh")
	var err error
	p.mesh, err = region.NewMesh(mc, p.fsm, p.raft, wanCaller{link}, leaderState{p})
	if err != nil {
		return err
	}
	link.Serve(p.serveWAN)
	return nil
}

// serveWAN answers a peer of another region. The caller's region and
// cluster are what its certificate proves (nothing on an insecure link,
// where the request's own claim is taken). Every request of the mesh is
// idempotent (objects merge by version), so 0-RTT data is served too.
func (p *Peer) serveWAN(ctx context.Context, from transport.Peer, req *shoalpb.WanMessage, early bool) (*shoalpb.WanMessage, error) {
	resp, err := p.mesh.Handle(ctx, from.Identity.Region, from.Identity.Cluster, req)
	var le *region.LinkError
	if errors.As(err, &le) {
		return nil, &transport.LinkErr{Code: le.GetCode(), Msg: le.GetMessage(), LeaderAddr: le.GetLeaderAddr()}
	}
	return resp, err
}

// wanCaller adapts a transport.Link to what region.Mesh calls.
type wanCaller struct{ link transport.Link }

func (w wanCaller) Call(ctx context.Context, addr, region string, req *shoalpb.WanMessage) (*shoalpb.WanMessage, error) {
	// Sync requests are safe to replay (merges go by version): on a
	// resumed session they may travel as 0-RTT data.
	resp, _, err := w.link.Call(ctx, addr, req, transport.CallOptions{Region: region, Idempotent: true})
	var le *transport.LinkErr
	if errors.As(err, &le) {
		return &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Error{Error: &shoalpb.LinkError{
			Code: le.Code, Message: le.Msg, LeaderAddr: le.LeaderAddr}}}, nil
	}
	return resp, err
}

// leaderState tells the mesh who leads the peer's region.
type leaderState struct{ p *Peer }

func (l leaderState) IsLeader() bool { return l.p.raft.IsLeader() }

func (l leaderState) LeaderCluster() string {
	id, _ := l.p.raft.Leader()
	return id
}

// WANAddr is the address other regions dial to reach this peer.
func (p *Peer) WANAddr() string { return p.wan.Addr() }

// Mesh gives the peer's part in the mesh of regions.
func (p *Peer) Mesh() *region.Mesh { return p.mesh }
