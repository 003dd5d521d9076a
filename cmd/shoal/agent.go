package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/node"
)

type labelsFlag map[string]string

func (l labelsFlag) String() string { return sortedLabels(l) }
func (l labelsFlag) Set(v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("label %q: want key=value", kv)
		}
		l[k] = val
	}
	return nil
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// zonesFlag collects zones from a repeatable flag that also takes a comma
// list (--zone a --zone b, --zone a,b). An empty name ("", "a,,b", "a,")
// is an error at once; the names themselves are checked with the rest of
// the configuration (api.CheckZones).
type zonesFlag []string

func (z *zonesFlag) String() string { return strings.Join(*z, ",") }
func (z *zonesFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return fmt.Errorf("%q has an empty zone name: give one zone per --zone, or a comma list without empty entries", v)
		}
		*z = append(*z, s)
	}
	return nil
}

type quantityFlag struct {
	q     *int64
	milli bool
}

func (f quantityFlag) String() string {
	if f.q == nil {
		return ""
	}
	if f.milli {
		return fmt.Sprintf("%dm", *f.q)
	}
	return fmt.Sprint(*f.q)
}

func (f quantityFlag) Set(v string) error {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return fmt.Errorf("%q is not a quantity like 4, 500m or 8Gi", v)
	}
	if f.milli {
		*f.q = q.MilliValue()
	} else {
		*f.q = q.Value()
	}
	return nil
}

func runAgent(env *cliEnv, args []string) error {
	cfg := node.DefaultConfig()
	fs := newFlagSet(env, "agent", "agent --region R --cluster C --data-dir DIR [flags]  |  agent -dev")
	dev := fs.Bool("dev", false, "development mode: one peer, one simulated cluster, a temporary data dir, nothing to configure")
	fs.StringVar(&cfg.Region, "region", "", "region of this peer (a DNS label)")
	fs.StringVar(&cfg.Cluster, "cluster", "", "name of this peer's cluster, unique in the region")
	var zones zonesFlag
	fs.Var(&zones, "zone", "zone the cluster runs in (repeatable or comma-separated for a cluster across several zones)")
	fs.StringVar(&cfg.Provider, "provider", "", "cloud provider of the cluster")
	labels := labelsFlag{}
	fs.Var(labels, "label", "cluster label key=value (repeatable)")
	fs.BoolVar(&cfg.Edge, "edge", false, "the cluster is an edge site: edge gossip timing (unless --gossip-profile says otherwise) and an autonomy period")
	fs.DurationVar(&cfg.AutonomyPeriod, "autonomy-period", 0, "how long the cluster may be unreachable before its workloads move (default 10m with --edge, else the region's tolerations); a policy's clusterTolerations win")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, stable store and snapshots")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "drive the member cluster of this kubeconfig (default: a simulated cluster)")
	fs.BoolVar(&cfg.InCluster, "in-cluster", false, "drive the cluster this peer runs in as a pod, with its service account")
	fs.StringVar(&cfg.BindAddr, "bind", cfg.BindAddr, "IP address every listener binds to")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise", "", "IP address other peers use (default the bind address)")
	fs.IntVar(&cfg.HTTPPort, "http-port", cfg.HTTPPort, "HTTP API port (0 picks a free one)")
	fs.IntVar(&cfg.GossipPort, "gossip-port", cfg.GossipPort, "gossip port, UDP and TCP (0 picks a free one)")
	fs.IntVar(&cfg.RaftPort, "raft-port", cfg.RaftPort, "Raft port (0 picks a free one)")
	var join listFlag
	fs.Var(&join, "join", "gossip address of a peer to join, host[:port] (repeatable or comma-separated)")
	fs.IntVar(&cfg.WANPort, "wan-port", cfg.WANPort, "UDP port of the QUIC links between regions (0 picks a free one)")
	var joinWAN listFlag
	fs.Var(&joinWAN, "join-wan", "WAN address of a peer of another region, host[:port] (repeatable or comma-separated); regions learn the rest of the mesh from each other")
	fs.DurationVar(&cfg.RegionGrace, "region-grace", cfg.RegionGrace, "how long another region may go unheard by every link before its share moves to the others")
	fs.DurationVar(&cfg.EdgeRegionGrace, "edge-region-grace", cfg.EdgeRegionGrace, "the same for a region of edge sites")
	fs.DurationVar(&cfg.StatusBound, "status-bound", cfg.StatusBound, "how old another region's word may be before its clusters and statuses show as Unknown")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", cfg.SyncInterval, "how often the region leader syncs with every other region when nothing changes")
	fs.DurationVar(&cfg.TombstoneTTL, "tombstone-ttl", cfg.TombstoneTTL, "how long a delete is remembered when not every region acknowledged it (the same on every peer of the mesh)")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 0, "wait for this many peers, then form the region's Raft group")
	profile := fs.String("gossip-profile", string(cfg.Gossip), "gossip and Raft timing: lan, edge (slow or lossy links) or local")
	gossipKey := fs.String("gossip-key", "", "base64 key (16, 24 or 32 bytes) that encrypts gossip")
	fs.IntVar(&cfg.Sim.Nodes, "sim-nodes", cfg.Sim.Nodes, "simulated cluster: number of nodes")
	fs.Var(quantityFlag{&cfg.Sim.NodeCPUMilli, true}, "sim-node-cpu", "simulated cluster: allocatable cpu per node (e.g. 4 or 3500m)")
	fs.Var(quantityFlag{&cfg.Sim.NodeMemoryBytes, false}, "sim-node-memory", "simulated cluster: allocatable memory per node (e.g. 8Gi)")
	fs.Int64Var(&cfg.Sim.NodePods, "sim-node-pods", cfg.Sim.NodePods, "simulated cluster: pods per node")
	fs.DurationVar(&cfg.Sim.ReadyDelay, "sim-ready-delay", cfg.Sim.ReadyDelay, "simulated cluster: time a replica takes to become Ready")
	fs.BoolVar(&cfg.SimReset, "sim-reset", false, "simulated cluster: start it empty, as a rebuilt cluster (its objects live under the data dir and outlive the peer)")
	fs.DurationVar(&cfg.UnreachableToleration, "unreachable-toleration", cfg.UnreachableToleration, "how long workloads stay on an unreachable cluster before moving")
	fs.DurationVar(&cfg.NotReadyToleration, "not-ready-toleration", cfg.NotReadyToleration, "how long workloads stay on a NotReady cluster before moving")
	fs.DurationVar(&cfg.FailbackDelay, "failback-delay", cfg.FailbackDelay, "how long a recovered cluster must be Ready before work moves back")
	fs.DurationVar(&cfg.DeadClusterGrace, "dead-cluster-grace", cfg.DeadClusterGrace, "how long a cluster may be unreachable before it is removed from the region")
	fs.StringVar(&cfg.TLSCA, "tls-ca", "", "mesh CA certificate (ca.crt from shoal ca init); with --tls-cert and --tls-key turns on TLS")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "this peer's certificate (shoal ca issue --region R --cluster C)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "key of this peer's certificate")
	fs.StringVar(&cfg.HTTPTokenFile, "http-token-file", "", "file of bearer tokens the HTTP API accepts: lines TOKEN [SCOPE,...], scopes read, write, admin, default read,write (needs TLS)")
	fs.StringVar(&cfg.HTTPClientScopesFile, "http-client-scopes", "", "file granting scopes to client certificates: lines NAME [SCOPE,...], * for the others; default every client read,write (needs TLS)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "start without TLS and gossip key: the HTTP API, Raft and gossip ports are open to anyone who reaches them (never in production)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest HTTP request body accepted")
	fs.IntVar(&cfg.HTTPMaxConns, "http-max-conns", cfg.HTTPMaxConns, "HTTP connections served at once; more wait to be accepted")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	cfg.Labels = labels
	cfg.Zones = zones
	cfg.Join = join
	cfg.JoinWAN = joinWAN
	cfg.Gossip = gossip.Profile(*profile)
	if cfg.Edge && !flagSet(fs, "gossip-profile") {
		cfg.Gossip = gossip.ProfileEdge
	}
	if *gossipKey != "" {
		key, err := base64.StdEncoding.DecodeString(*gossipKey)
		if err != nil {
			return usageErr("--gossip-key is not base64: %v", err)
		}
		cfg.GossipKey = key
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageErr("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(env.stderr, opts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(env.stderr, opts))
	default:
		return usageErr("--log-format %q: use text or json", *logFormat)
	}

	var devCreds *node.DevCredentials
	if *dev {
		if cfg.Region == "" {
			cfg.Region = "dev"
		}
		if cfg.Cluster == "" {
			cfg.Cluster = "dev-1"
		}
		if cfg.DataDir == "" {
			dir, err := os.MkdirTemp("", "shoal-dev-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfg.DataDir = dir
		}
		cfg.BootstrapExpect = 1
		cfg.Gossip = gossip.ProfileLocal
		if len(cfg.Labels) == 0 {
			// A cluster on this machine is on premises: the bursting
			// example (examples/bursting.yaml) runs here first.
			cfg.Labels = map[string]string{"env": "dev", "location": "on-prem"}
		}
		if !cfg.Insecure && cfg.TLSCA == "" {
			// Secure by default, with credentials of its own.
			creds, err := node.DevCredentialsIn(filepath.Join(cfg.DataDir, "tls"))
			if err != nil {
				return err
			}
			if err := creds.Configure(&cfg); err != nil {
				return err
			}
			devCreds = creds
		}
	}

	if gc, set := tuneGC(os.Getenv); set {
		cfg.Logger.Debug("garbage collector target set; set GOGC or GOMEMLIMIT to choose another", "gogc", gc)
	}
	peer, err := node.Start(cfg)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	fmt.Fprintf(env.stdout, "==> Shoal peer %s/%s: HTTP API at %s, gossip %s, raft %s, wan %s\n",
		cfg.Region, cfg.Cluster, peer.URL(), peer.GossipAddr(), peer.Raft().Addr(), peer.WANAddr())
	if *dev {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The peer's own certificate is a client certificate of the mesh.
			c, err := client.NewWith(peer.URL(), client.Options{CACert: cfg.TLSCA, ClientCert: cfg.TLSCert, ClientKey: cfg.TLSKey})
			if err == nil {
				_, err = c.WaitLeader(ctx)
			}
			if err != nil {
				fmt.Fprintf(env.stderr, "dev peer not ready: %v\n", err)
				return
			}
			fmt.Fprintf(env.stdout, "==> Shoal dev agent ready: %s\n", peer.URL())
			if devCreds != nil {
				fmt.Fprintf(env.stdout, "==> point the CLI at it:\n%s", devCreds.Env(peer.URL()))
			}
			fmt.Fprintf(env.stdout, "    try: shoal apply -f examples/ && shoal get workloads\n")
		}()
	}
	select {
	case sig := <-sigs:
		fmt.Fprintf(env.stdout, "==> %s: shutting down (the region sees this peer fail; use 'shoal leave' to leave for good)\n", sig)
		return peer.Shutdown()
	case <-peer.Done():
		fmt.Fprintln(env.stdout, "==> peer stopped")
		return nil
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
