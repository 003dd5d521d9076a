package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/transport"
)

// ForgeIdentity names the peer whose certificate a forged-identity probe
// borrows.
type ForgeIdentity struct {
	Region, Cluster string
}

// ForgeResult is one attempt of ProbeForgedIdentity.
type ForgeResult struct {
	// Attempt says what was tried, and against which address.
	Attempt string `json:"attempt"`
	// Forged is true for an attempt that speaks for another region or
	// cluster than its certificate names: it must be refused. It is false
	// for a control attempt, which speaks truthfully over the same kind of
	// connection and must be accepted — without that, refusals could be
	// those of a peer that refuses everything, or that was never reached.
	Forged bool `json:"forged"`
	// Refused is true when the target refused the attempt for who it
	// claimed to be: LINK_CODE_REFUSED on a link between regions,
	// CODE_FORBIDDEN on the Raft port's forwarding.
	Refused bool `json:"refused"`
	// Accepted is true when the target did what was asked.
	Accepted bool `json:"accepted"`
	// Err is the target's answer when it did not accept, or why it could
	// not be reached (then neither Refused nor Accepted is set).
	Err string `json:"error,omitempty"`
}

// OK reports whether the attempt went as it must: a forged one refused,
// a control accepted.
func (r ForgeResult) OK() bool {
	if r.Forged {
		return r.Refused
	}
	return r.Accepted
}

// forgeTimeout bounds each attempt of the probe.
const forgeTimeout = 10 * time.Second

// ProbeForgedIdentity checks, against a running mesh, that a peer's
// certificate cannot speak for another region or cluster. With the
// certificate and key creds hold for the peer as (issued on first use),
// it tries, against target:
//
//   - a sync over a real QUIC link to target.WAN that says it comes from
//     another region than the certificate names, carrying an object;
//   - when target is of another region: a sync whose summary lists
//     target's cluster, of target's region, as its own — and a control:
//     a truthful heartbeat from as's own region;
//   - when target is of as's region: a cluster report forwarded over the
//     Raft port (as a follower forwards commands to its leader) for
//     another cluster than as — target's, or a made-up one when target is
//     as itself — to the region's leader (target, or whom target's API
//     names); and a control: a read-index request on the same path.
//
// Every forged attempt must come back Refused and every control Accepted
// (ForgeResult.OK). An error means the probe could not be set up (no
// credentials, a certificate that does not load, no local port); a target
// that cannot be reached is reported in the results. If the mesh wrongly
// accepts a forged attempt, what it carried takes effect: a ConfigMap
// default/shoal-forged-probe, or a Ready report for the other cluster.
func ProbeForgedIdentity(ctx context.Context, creds *DevCredentials, as ForgeIdentity, target MeshPeer) ([]ForgeResult, error) {
	if creds == nil {
		return nil, errors.New("forge probe: no credentials: a mesh without TLS trusts its network, and anyone may speak for anyone")
	}
	crt, key, err := creds.Peer(as.Region, as.Cluster)
	if err != nil {
		return nil, fmt.Errorf("forge probe: %w", err)
	}
	mat, err := transport.LoadFiles(creds.CACert(), crt, key)
	if err != nil {
		return nil, fmt.Errorf("forge probe: %w", err)
	}
	out, err := probeWAN(ctx, mat, as, target)
	if err != nil {
		return nil, err
	}
	if as.Region == target.Region {
		fwd, err := probeForward(ctx, creds, mat, as, target)
		if err != nil {
			return nil, err
		}
		out = append(out, fwd...)
	}
	return out, nil
}

// probeWAN makes the attempts over a QUIC link between regions.
func probeWAN(ctx context.Context, mat *transport.Material, as ForgeIdentity, target MeshPeer) ([]ForgeResult, error) {
	qc := transport.DefaultQUICConfig()
	qc.BindAddr, qc.TLS = localBind(target.WAN), mat
	qc.Logger = slog.New(slog.DiscardHandler)
	link, err := transport.NewQUICLink(qc)
	if err != nil {
		return nil, fmt.Errorf("forge probe: %w", err)
	}
	defer link.Close()
	other := "forged-not-" + as.Region
	now := time.Now().UnixMilli()
	type attempt struct {
		what   string
		forged bool
		req    *shoalpb.SyncRequest
	}
	attempts := []attempt{{
		what:   fmt.Sprintf("sync to %s (region %s) claiming region %s under the certificate of %s/%s, carrying an object", target.WAN, target.Region, other, as.Region, as.Cluster),
		forged: true,
		req: &shoalpb.SyncRequest{Region: other, Objects: []*shoalpb.Object{{
			Key:      &shoalpb.ObjectKey{ApiVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "shoal-forged-probe"},
			Manifest: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shoal-forged-probe","namespace":"default"}}`),
			Version:  &shoalpb.Version{WallMs: now, Origin: other}, Generation: 1,
		}}},
	}}
	if as.Region != target.Region {
		attempts = append(attempts,
			attempt{
				what:   fmt.Sprintf("sync to %s from region %s whose summary lists cluster %s of region %s as its own", target.WAN, as.Region, target.Cluster, target.Region),
				forged: true,
				req: &shoalpb.SyncRequest{Region: as.Region, Summary: &shoalpb.RegionSummary{Region: as.Region, MadeUnixMs: now,
					Clusters: []*shoalpb.ClusterRecord{{Name: target.Cluster, Region: target.Region, ReportedHealth: shoalpb.Health_HEALTH_READY}}}},
			},
			attempt{
				what: fmt.Sprintf("control: heartbeat to %s from region %s, its certificate's own", target.WAN, as.Region),
				req:  &shoalpb.SyncRequest{Region: as.Region, Heartbeat: true},
			})
	}
	var out []ForgeResult
	for _, a := range attempts {
		r := ForgeResult{Attempt: a.what, Forged: a.forged}
		actx, cancel := context.WithTimeout(ctx, forgeTimeout)
		resp, _, err := link.Call(actx, target.WAN, &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Sync{Sync: a.req}},
			transport.CallOptions{Region: target.Region})
		cancel()
		var le *transport.LinkErr
		switch {
		case errors.As(err, &le):
			r.Refused, r.Err = le.Code == shoalpb.LinkCode_LINK_CODE_REFUSED, err.Error()
		case err != nil:
			r.Err = err.Error()
		case resp.GetSyncReply() == nil:
			r.Err = fmt.Sprintf("answered a sync with %T", resp.GetMsg())
		default:
			r.Accepted = true
		}
		out = append(out, r)
	}
	return out, nil
}

// probeForward makes the attempts over the Raft port's forwarding, to the
// leader of as's (and target's) region.
func probeForward(ctx context.Context, creds *DevCredentials, mat *transport.Material, as ForgeIdentity, target MeshPeer) ([]ForgeResult, error) {
	network, err := consensus.NewTCPNetwork(consensus.TCPConfig{BindAddr: localBind(target.Raft), TLS: mat.PeerTLSConfig(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("forge probe: %w", err)
	}
	defer network.Close()
	victim := target.Cluster
	if victim == as.Cluster {
		victim = "shoal-forged-probe"
	}
	report, err := proto.Marshal(&shoalpb.Command{Cmd: &shoalpb.Command_ReportCluster{ReportCluster: &shoalpb.ReportCluster{
		Cluster: &shoalpb.ClusterRecord{Name: victim, Region: as.Region, ReportedHealth: shoalpb.Health_HEALTH_READY}}}})
	if err != nil {
		return nil, err
	}
	attempts := []struct {
		what   string
		forged bool
		req    *shoalpb.ForwardRequest
	}{{
		what:   fmt.Sprintf("cluster report for %s forwarded under the certificate of %s/%s", victim, as.Region, as.Cluster),
		forged: true,
		req:    &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_Apply{Apply: &shoalpb.ApplyRequest{Command: report}}},
	}, {
		what: fmt.Sprintf("control: read-index request forwarded under the certificate of %s/%s", as.Region, as.Cluster),
		req:  &shoalpb.ForwardRequest{Request: &shoalpb.ForwardRequest_ReadIndex{ReadIndex: &shoalpb.ReadIndexRequest{}}},
	}}
	var out []ForgeResult
	for _, a := range attempts {
		addr, resp, err := forwardToLeader(ctx, network, creds, target, a.req)
		r := ForgeResult{Attempt: a.what + " to the leader at " + addr, Forged: a.forged}
		switch {
		case err != nil:
			r.Err = err.Error()
		case resp.GetCode() == shoalpb.Code_CODE_OK:
			r.Accepted = true
		default:
			r.Refused = resp.GetCode() == shoalpb.Code_CODE_FORBIDDEN
			r.Err = fmt.Sprintf("%s: %s", resp.GetCode(), resp.GetMessage())
		}
		out = append(out, r)
	}
	return out, nil
}

// forwardToLeader sends req to target's Raft port and, if target does not
// lead, to the leader its HTTP API names.
func forwardToLeader(ctx context.Context, network consensus.Network, creds *DevCredentials, target MeshPeer, req *shoalpb.ForwardRequest) (string, *shoalpb.ForwardResponse, error) {
	send := func(addr string) (*shoalpb.ForwardResponse, error) {
		actx, cancel := context.WithTimeout(ctx, forgeTimeout)
		defer cancel()
		resp, _, err := consensus.SendForward(actx, network, addr, proto.Clone(req).(*shoalpb.ForwardRequest))
		return resp, err
	}
	resp, err := send(target.Raft)
	if err != nil || resp.GetCode() != shoalpb.Code_CODE_NOT_LEADER {
		return target.Raft, resp, err
	}
	leader, err := leaderRaftAddr(ctx, creds, target)
	if err != nil {
		return target.Raft, nil, fmt.Errorf("%s does not lead its region, and who does is not known: %w", target.Cluster, err)
	}
	resp, err = send(leader)
	return leader, resp, err
}

// leaderRaftAddr asks target's HTTP API for its region leader's Raft
// address.
func leaderRaftAddr(ctx context.Context, creds *DevCredentials, target MeshPeer) (string, error) {
	c, err := client.NewWith(target.HTTP, creds.ClientOptions())
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, forgeTimeout)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range st.Peers {
		if p.Leader && p.RaftAddr != "" {
			return p.RaftAddr, nil
		}
	}
	return "", fmt.Errorf("the status of %s names no leader", target.Cluster)
}

// localBind is the address to bind a probe's socket to: loopback for a
// loopback target (the local mesh), any address otherwise.
func localBind(target string) string {
	host, _, err := net.SplitHostPort(target)
	if ip := net.ParseIP(host); err == nil && (ip != nil && ip.IsLoopback() || host == "localhost") {
		return "127.0.0.1:0"
	}
	return ":0"
}
