package main

import (
	"fmt"

	"github.com/shoalmesh/shoal/deploy"
	"github.com/shoalmesh/shoal/node"
)

func runInstall(env *cliEnv, args []string) error {
	var o deploy.InstallOptions
	fs := newFlagSet(env, "install", "install --region R --cluster C --image IMG --advertise ADDR [flags] | kubectl apply -f -")
	fs.StringVar(&o.Region, "region", "", "region of the peer")
	fs.StringVar(&o.Cluster, "cluster", "", "name of the member cluster")
	fs.StringVar(&o.Zone, "zone", "", "zone of the cluster")
	fs.StringVar(&o.Provider, "provider", "", "cloud provider of the cluster")
	var labels listFlag
	fs.Var(&labels, "label", "cluster label key=value (repeatable)")
	fs.StringVar(&o.Namespace, "namespace", "shoal-system", "namespace the peer runs in")
	fs.StringVar(&o.Image, "image", "", "image with the shoal binary (build it from this repository)")
	fs.StringVar(&o.Advertise, "advertise", "", "address the other peers of the region reach this one at (the Service's load-balancer address)")
	var join listFlag
	fs.Var(&join, "join", "gossip address host:port of another peer of the region (repeatable)")
	fs.IntVar(&o.BootstrapExpect, "bootstrap-expect", 0, "on the first peers of a new region: how many form it")
	fs.StringVar(&o.GossipProfile, "gossip-profile", "lan", "lan or edge")
	fs.StringVar(&o.GossipKey, "gossip-key", "", "the region's gossip key, base64 (default: a new one, printed to stderr; give the same to every peer of the region)")
	fs.StringVar(&o.ServiceType, "service-type", "LoadBalancer", "LoadBalancer or NodePort")
	fs.IntVar(&o.HTTPPort, "http-port", node.DefaultHTTPPort, "HTTP API port")
	fs.IntVar(&o.GossipPort, "gossip-port", node.DefaultGossipPort, "gossip port (TCP and UDP)")
	fs.IntVar(&o.RaftPort, "raft-port", node.DefaultRaftPort, "Raft port")
	fs.StringVar(&o.StorageSize, "storage-size", "1Gi", "size of the peer's data volume")
	fs.StringVar(&o.StorageClass, "storage-class", "", "storage class of the data volume (default: the cluster's)")
	var allow listFlag
	fs.Var(&allow, "allow", "resource the peer may manage, RESOURCE.GROUP (repeatable; default the usual workload kinds)")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	o.Labels, o.Allow = labels, allow
	if len(join) > 0 {
		o.Join = join.String()
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
	_, err = env.stdout.Write(out)
	return err
}
