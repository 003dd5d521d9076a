package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/node"
	"github.com/shoalmesh/shoal/transport"
)

func runInstall(env *cliEnv, args []string) error {
	var o deploy.InstallOptions
	fs := newFlagSet(env, "install", "install --region R --cluster C --image IMG --advertise ADDR [flags] | kubectl apply -f -")
	fs.StringVar(&o.Region, "region", "", "region of the peer")
	fs.StringVar(&o.Cluster, "cluster", "", "name of the member cluster")
	var zones zonesFlag
	fs.Var(&zones, "zone", "zone the cluster runs in (repeatable or comma-separated)")
	fs.StringVar(&o.Provider, "provider", "", "cloud provider of the cluster")
	var labels listFlag
	fs.Var(&labels, "label", "cluster label key=value (repeatable)")
	fs.StringVar(&o.Namespace, "namespace", "shoal-system", "namespace the peer runs in")
	fs.StringVar(&o.Image, "image", "", "image with the shoal binary (build it from this repository)")
	fs.StringVar(&o.Advertise, "advertise", "", "address the other peers of the region reach this one at (the Service's load-balancer address)")
	var join listFlag
	fs.Var(&join, "join", "gossip address host:port of another peer of the region (repeatable)")
	var joinWAN listFlag
	fs.Var(&joinWAN, "join-wan", "WAN address host:port of a peer of another region (repeatable); regions learn the rest from each other")
	fs.IntVar(&o.BootstrapExpect, "bootstrap-expect", 0, "on the first peers of a new region: how many form it")
	fs.StringVar(&o.GossipProfile, "gossip-profile", "lan", "lan or edge")
	fs.StringVar(&o.GossipKey, "gossip-key", "", "the region's gossip key, base64 (default: a new one, printed to stderr; give the same to every peer of the region)")
	fs.StringVar(&o.ServiceType, "service-type", "LoadBalancer", "LoadBalancer or NodePort")
	fs.IntVar(&o.HTTPPort, "http-port", node.DefaultHTTPPort, "HTTP API port")
	fs.IntVar(&o.GossipPort, "gossip-port", node.DefaultGossipPort, "gossip port (TCP and UDP)")
	fs.IntVar(&o.RaftPort, "raft-port", node.DefaultRaftPort, "Raft port")
	fs.IntVar(&o.WANPort, "wan-port", node.DefaultWANPort, "UDP port of the QUIC links between regions")
	fs.StringVar(&o.StorageSize, "storage-size", "1Gi", "size of the peer's data volume")
	fs.StringVar(&o.StorageClass, "storage-class", "", "storage class of the data volume (default: the cluster's)")
	tlsDir := fs.String("tls-dir", "", "directory with the mesh CA's ca.crt and this peer's REGION-CLUSTER.crt/.key (shoal ca issue ... --ip ADVERTISE); rendered as the Secret shoal-tls")
	var allow listFlag
	fs.Var(&allow, "allow", "resource the peer may manage, RESOURCE.GROUP (repeatable; default the usual workload kinds)")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	o.Labels, o.Allow, o.Zones = labels, allow, zones
	if len(joinWAN) > 0 {
		o.JoinWAN = joinWAN.String()
	}
	if len(join) > 0 {
		o.Join = join.String()
	}
	if *tlsDir != "" && o.Region != "" && o.Cluster != "" { // without them InstallManifests says what is missing
		t, err := installTLS(*tlsDir, o.Region, o.Cluster, o.Advertise)
		if err != nil {
			return err
		}
		o.TLS = t
	}
	if o.GossipKey == "" {
		key, err := deploy.NewGossipKey()
		if err != nil {
			return err
		}
		o.GossipKey = key
		fmt.Fprintf(env.stderr, "new gossip key for region %s (give every other peer of the region --gossip-key %s)\n", o.Region, key)
	}
	out, err := deploy.InstallManifests(o)
	if err != nil {
		return usageErr("%v", err)
	}
	if o.TLS == nil {
		fmt.Fprintln(env.stderr, "warning: no --tls-dir: the peer runs --insecure, its HTTP API and Raft port unauthenticated, open to anyone who reaches its Service (see shoal ca)")
	}
	_, err = env.stdout.Write(out)
	return err
}

// installTLS reads and checks a peer's certificate for install: it must
// chain to the CA in dir, name the peer's region and cluster, and cover the
// address the other peers dial (--advertise).
func installTLS(dir, region, cluster, advertise string) (*deploy.InstallTLS, error) {
	name := region + "-" + cluster
	files := [3]string{filepath.Join(dir, transport.CACertFile), filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")}
	var data [3][]byte
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--tls-dir: %w (issue the peer's certificate with shoal ca issue --dir %s --region %s --cluster %s --ip %s)",
				err, dir, region, cluster, advertise)
		}
		data[i] = b
	}
	m, err := transport.LoadPEM(data[0], data[1], data[2])
	if err != nil {
		return nil, fmt.Errorf("--tls-dir: %s: %w", files[1], err)
	}
	if err := m.CheckPeer(region, cluster); err != nil {
		return nil, fmt.Errorf("--tls-dir: %s: %w", files[1], err)
	}
	if advertise != "" {
		if err := m.Cert.Leaf.VerifyHostname(advertise); err != nil {
			return nil, fmt.Errorf("--tls-dir: %s does not cover the --advertise address %s; issue it again with --ip %s: %w", files[1], advertise, advertise, err)
		}
	}
	return &deploy.InstallTLS{CACert: data[0], Cert: data[1], Key: data[2]}, nil
}
