package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/transport"
)

// DefaultEdgeAutonomy is an edge cluster's autonomy period unless set:
// long enough for an uplink to flap or a site to reboot without its
// workloads moving.
const DefaultEdgeAutonomy = 10 * time.Minute

// Default ports: HTTP API, gossip (UDP and TCP), Raft (TCP) and the QUIC
// links between regions (UDP).
const (
	DefaultHTTPPort   = 7480
	DefaultGossipPort = 7481
	DefaultRaftPort   = 7482
	DefaultWANPort    = 7483
)

// Config configures a peer.
type Config struct {
	// Region and Cluster name the peer; Cluster is unique in its region.
	Region  string
	Cluster string
	// Zones, Provider and Labels describe the cluster to placement. Zones
	// lists every zone the cluster runs in (--zone, repeatable), as
	// Karmada's spec.zones: each a Kubernetes label value, none twice.
	// Peers that read a single zone see the first.
	Zones    []string
	Provider string
	Labels   map[string]string
	// Edge marks an edge site: the edge gossip profile (unless Gossip is
	// set otherwise) and an autonomy period.
	Edge bool
	// AutonomyPeriod is how long the cluster may be unreachable before the
	// region moves its workloads away (a policy's own clusterTolerations
	// of the unreachable taint win). 0 means the region's default
	// tolerations; an edge cluster defaults to DefaultEdgeAutonomy.
	AutonomyPeriod time.Duration

	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string

	// BindAddr is the IP every listener binds to.
	BindAddr string
	// AdvertiseAddr is the IP other peers use; empty means BindAddr.
	AdvertiseAddr string
	// Ports; 0 picks a free port.
	HTTPPort, GossipPort, RaftPort int
	// WANPort is the UDP port of the QUIC links between regions.
	WANPort int

	// JoinWAN lists WAN addresses (host or host:port) of peers of other
	// regions (--join-wan); the regions learn the rest of the mesh from
	// each other's summaries.
	JoinWAN []string
	// WANLink, if set, replaces the peer's QUIC listener on WANPort:
	// tests put peers on a transport.InmemNetwork. The peer owns it.
	WANLink transport.Link
	// RegionGrace is how long another region may go unheard by every link
	// before it is dead for placement (EdgeRegionGrace for regions of
	// edge sites). StatusBound is how old a remote region's word may be
	// before its clusters and statuses show as Unknown.
	RegionGrace, EdgeRegionGrace, StatusBound time.Duration
	// SyncInterval is how often the region leader syncs with every other
	// region when nothing changes (the heartbeat between regions).
	SyncInterval time.Duration
	// TombstoneTTL is how long a delete is remembered at most when not
	// every region acknowledged it; a region cut off for longer
	// resynchronises in full. Every peer of the mesh must use the same.
	TombstoneTTL time.Duration

	// Join lists gossip addresses (host or host:port) of peers to join.
	Join []string
	// BootstrapExpect: wait for this many peers, then one bootstraps Raft.
	BootstrapExpect int

	// Gossip is the gossip profile: lan, edge or local. It also picks the
	// Raft timing: consensus.DefaultEdgeConfig for edge,
	// consensus.DefaultConfig otherwise.
	Gossip gossip.Profile
	// GossipKey optionally encrypts gossip (16, 24 or 32 bytes).
	GossipKey []byte

	// TLSCA, TLSCert and TLSKey are PEM files: the mesh CA, and this
	// peer's certificate and key from `shoal ca issue`, which must name
	// this peer's region and cluster. All three or none. With them the Raft
	// port is mutual TLS between peers of the region, and the HTTP API is
	// HTTPS and needs a client certificate of the mesh or a bearer token
	// holding the scope of the endpoint (see HTTPTokenFile).
	// Without them both are open to anyone who can reach the ports.
	TLSCA, TLSCert, TLSKey string
	// Insecure lets the peer start without TLS and without a gossip key:
	// its HTTP API, Raft port and gossip are then open to anyone who
	// reaches them (shoal agent --insecure; never in production). Without
	// it a peer refuses to start unless it has both.
	Insecure bool

	// HTTPTokenFile lists the bearer tokens the HTTP API accepts, one a
	// line, each optionally followed by its scopes: "TOKEN read,write,admin"
	// (a # starts a comment, blank lines are skipped). A token without
	// scopes gets read and write. It needs TLS: a token must not travel
	// in clear.
	//
	// The scopes: read is every GET, write is apply and delete, admin is
	// every /v1/agent/ endpoint (leave, the simulated cluster). GET
	// /v1/health needs none.
	HTTPTokenFile string
	// HTTPClientScopesFile grants scopes to client certificates of the
	// mesh by the NAME they carry (shoal://MESH/client/NAME): one
	// "NAME [SCOPE,...]" a line, "*" for every client not listed, no
	// scopes meaning read and write. Without it every client certificate
	// of the mesh gets read and write; with it an unlisted client gets the
	// scopes of "*", or none. Another peer's certificate only reads; this
	// peer's own certificate has every scope. It needs TLS.
	HTTPClientScopesFile string

	// GossipTransport, if set, carries the peer's gossip instead of a
	// socket on GossipPort: tests wrap one in a gossip.FaultTransport to
	// drop or delay what goes to a named peer. The peer owns it.
	GossipTransport memberlist.NodeAwareTransport

	// RaftNetwork, if set, replaces the peer's TCP Raft port (RaftPort,
	// TLS) with another consensus.Network: tests put peers on an
	// InmemNetwork to cut links between them. The peer owns it.
	RaftNetwork consensus.Network

	// Kubeconfig makes the peer drive a real cluster through client-go;
	// InCluster does the same with the pod's service account. Without
	// either the peer drives a simulated cluster configured by Sim.
	Kubeconfig string
	InCluster  bool
	// Sim configures the simulated cluster the peer drives (no kubeconfig).
	// Its objects live under DataDir/sim unless Sim.Dir says otherwise,
	// and outlive the peer, as a real cluster's do.
	Sim deploy.SimConfig
	// SimReset starts the simulated cluster empty, as if it had been
	// rebuilt: what it held is gone (shoal agent --sim-reset).
	SimReset bool

	// Failover timing: how long workloads tolerate an unreachable or
	// NotReady cluster, how long a recovered cluster must be Ready before
	// failback, and how long a cluster may be unreachable before it is
	// removed from the region.
	UnreachableToleration time.Duration
	NotReadyToleration    time.Duration
	FailbackDelay         time.Duration
	DeadClusterGrace      time.Duration

	// MaxBodyBytes bounds HTTP request bodies.
	MaxBodyBytes int64
	// WriteTimeout bounds how long a write waits to be committed, and
	// again how long it then waits to be applied on the peer that took it.
	WriteTimeout time.Duration

	// HTTPReadHeaderTimeout bounds reading a request's headers,
	// HTTPReadTimeout the whole request with its body, and HTTPIdleTimeout
	// how long a kept-alive connection may wait for its next request. The
	// HTTP server's write timeout is not set here: it is derived from
	// HTTPReadTimeout and WriteTimeout, so that a write that waits as long
	// as it may still gets its answer.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPIdleTimeout       time.Duration
	// HTTPMaxConns caps the HTTP connections served at once; past it a
	// new connection waits to be accepted until another closes.
	HTTPMaxConns int

	Logger *slog.Logger
}

// DefaultConfig returns a LAN peer's defaults; Region, Cluster and DataDir
// must still be set.
func DefaultConfig() Config {
	return Config{
		BindAddr:              "127.0.0.1",
		HTTPPort:              DefaultHTTPPort,
		GossipPort:            DefaultGossipPort,
		RaftPort:              DefaultRaftPort,
		Gossip:                gossip.ProfileLAN,
		Sim:                   deploy.SimConfig{Nodes: 3, NodeCPUMilli: 4000, NodeMemoryBytes: 8 << 30, NodePods: 110, ReadyDelay: 200 * time.Millisecond},
		UnreachableToleration: 0,
		NotReadyToleration:    0,
		FailbackDelay:         10 * time.Second,
		DeadClusterGrace:      72 * time.Hour,
		MaxBodyBytes:          4 << 20,
		WriteTimeout:          15 * time.Second,
		HTTPReadHeaderTimeout: 10 * time.Second,
		HTTPReadTimeout:       60 * time.Second,
		HTTPIdleTimeout:       2 * time.Minute,
		HTTPMaxConns:          256,
		WANPort:               DefaultWANPort,
		RegionGrace:           4 * time.Second,
		EdgeRegionGrace:       2 * time.Minute,
		StatusBound:           15 * time.Second,
		SyncInterval:          time.Second,
		TombstoneTTL:          24 * time.Hour,
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Validate checks the configuration and says what to fix.
func (c Config) Validate() error {
	var errs []error
	if !nameRE.MatchString(c.Region) || len(c.Region) > 63 {
		errs = append(errs, fmt.Errorf("region %q: must be a DNS label (lower-case letters, digits and '-', at most 63)", c.Region))
	}
	if !nameRE.MatchString(c.Cluster) || len(c.Cluster) > 63 {
		errs = append(errs, fmt.Errorf("cluster %q: must be a DNS label (lower-case letters, digits and '-', at most 63)", c.Cluster))
	}
	if err := api.CheckZones(c.Zones); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required (--data-dir)"))
	}
	if net.ParseIP(c.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("bind address %q is not an IP address", c.BindAddr))
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		errs = append(errs, fmt.Errorf("advertise address %q is not an IP address", c.AdvertiseAddr))
	}
	for name, p := range map[string]int{"http": c.HTTPPort, "gossip": c.GossipPort, "raft": c.RaftPort, "wan": c.WANPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s port %d out of range", name, p))
		}
	}
	if c.HTTPPort != 0 && (c.HTTPPort == c.GossipPort || c.HTTPPort == c.RaftPort) || c.GossipPort != 0 && c.GossipPort == c.RaftPort {
		errs = append(errs, fmt.Errorf("ports must differ: http %d, gossip %d, raft %d", c.HTTPPort, c.GossipPort, c.RaftPort))
	}
	if c.WANPort != 0 && c.WANPort == c.GossipPort {
		errs = append(errs, fmt.Errorf("the wan port %d is the gossip port: both use UDP", c.WANPort))
	}
	if c.BootstrapExpect < 0 {
		errs = append(errs, fmt.Errorf("bootstrap-expect %d must not be negative", c.BootstrapExpect))
	}
	if _, err := gossip.ProfileConfig(c.Gossip); err != nil {
		errs = append(errs, err)
	}
	if n := countSet(c.TLSCA, c.TLSCert, c.TLSKey); n != 0 && n != 3 {
		errs = append(errs, errors.New("TLS needs all three of --tls-ca, --tls-cert and --tls-key, or none"))
	}
	switch {
	case c.tls() && len(c.GossipKey) == 0:
		errs = append(errs, errors.New("TLS needs a gossip key too (--gossip-key): gossip would otherwise be open to anyone who reaches its port"))
	case !c.Insecure && (!c.tls() || len(c.GossipKey) == 0):
		errs = append(errs, errors.New("refusing to start without TLS and a gossip key: give --tls-ca, --tls-cert, --tls-key (see shoal ca) "+
			"and --gossip-key, or --insecure to run with ports open to anyone who reaches them (never in production); "+
			"shoal agent -dev and shoal dev make their own"))
	}
	if c.HTTPTokenFile != "" && !c.tls() {
		errs = append(errs, errors.New("--http-token-file needs TLS (--tls-ca, --tls-cert, --tls-key): tokens must not travel in clear"))
	}
	if c.HTTPClientScopesFile != "" && !c.tls() {
		errs = append(errs, errors.New("--http-client-scopes needs TLS (--tls-ca, --tls-cert, --tls-key): without it there are no client certificates"))
	}
	if c.Kubeconfig != "" && c.InCluster {
		errs = append(errs, errors.New("give either a kubeconfig or in-cluster, not both"))
	}
	if !c.real() {
		if err := c.Sim.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("max body bytes must be positive"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("write timeout must be positive"))
	}
	if c.HTTPReadHeaderTimeout <= 0 || c.HTTPReadTimeout <= 0 || c.HTTPIdleTimeout <= 0 {
		errs = append(errs, errors.New("HTTP read header, read and idle timeouts must be positive"))
	}
	if c.HTTPReadHeaderTimeout > c.HTTPReadTimeout {
		errs = append(errs, fmt.Errorf("HTTP read header timeout (%s) cannot be longer than the read timeout (%s), which includes the headers", c.HTTPReadHeaderTimeout, c.HTTPReadTimeout))
	}
	if c.HTTPMaxConns <= 0 {
		errs = append(errs, fmt.Errorf("--http-max-conns %d must be positive", c.HTTPMaxConns))
	}
	if c.SyncInterval <= 0 || c.RegionGrace < 2*c.SyncInterval {
		errs = append(errs, fmt.Errorf("region grace (%s) must be at least twice the sync interval (%s), which must be positive", c.RegionGrace, c.SyncInterval))
	}
	if c.EdgeRegionGrace < c.RegionGrace {
		errs = append(errs, fmt.Errorf("edge region grace (%s) must not be shorter than the region grace (%s)", c.EdgeRegionGrace, c.RegionGrace))
	}
	if c.StatusBound < c.RegionGrace {
		errs = append(errs, fmt.Errorf("status bound (%s) must not be shorter than the region grace (%s)", c.StatusBound, c.RegionGrace))
	}
	if c.TombstoneTTL < time.Second {
		errs = append(errs, fmt.Errorf("tombstone TTL (%s) must be at least a second", c.TombstoneTTL))
	}
	if c.UnreachableToleration < 0 || c.NotReadyToleration < 0 || c.FailbackDelay < 0 || c.DeadClusterGrace < 0 || c.AutonomyPeriod < 0 {
		errs = append(errs, errors.New("failover durations must not be negative"))
	}
	return errors.Join(errs...)
}

// autonomy is the autonomy period the peer reports for its cluster.
func (c Config) autonomy() time.Duration {
	if c.AutonomyPeriod == 0 && c.Edge {
		return DefaultEdgeAutonomy
	}
	return c.AutonomyPeriod
}

// tls reports whether the peer's ports use TLS.
func (c Config) tls() bool { return c.TLSCA != "" && c.TLSCert != "" && c.TLSKey != "" }

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// real reports whether the peer drives a real cluster.
func (c Config) real() bool { return c.Kubeconfig != "" || c.InCluster }

func (c Config) advertise() string {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr
	}
	return c.BindAddr
}

// wanJoinAddrs gives the WAN join list with the default WAN port added
// where an address has none.
func (c Config) wanJoinAddrs() []string { return withPort(c.JoinWAN, DefaultWANPort) }

// joinAddrs gives the join list with the default gossip port added where
// an address has none.
func (c Config) joinAddrs() []string { return withPort(c.Join, DefaultGossipPort) }

// withPort adds port to the addresses that have none.
func withPort(addrs []string, port int) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, strconv.Itoa(port))
		}
		out = append(out, a)
	}
	return out
}
