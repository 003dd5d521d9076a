package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/shoalmesh/shoal/node"
)

func runDev(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "dev", "dev [--regions N] [--clusters N] [--dir DIR] [--insecure] [-- AGENT FLAGS...]")
	regions := fs.Int("regions", 1, "number of regions (linked over QUIC: each region's peers name an earlier region's first peer with --join-wan)")
	clusters := fs.Int("clusters", 3, "clusters (peers) per region")
	dir := fs.String("dir", ".shoal/dev", "directory for data dirs, logs, peers.json, env and the mesh's credentials (tls/)")
	insecure := fs.Bool("insecure", false, "run the peers without TLS, token and gossip key (by default the mesh makes its own CA, certificates, token and gossip keys)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	mesh, err := node.StartMesh(node.MeshSpec{Binary: self, Regions: *regions, Clusters: *clusters, Dir: abs, ExtraArgs: rest, Insecure: *insecure})
	if err != nil {
		return err
	}
	defer mesh.Stop()
	for _, p := range mesh.Peers() {
		fmt.Fprintf(env.stdout, "%s %s %s\n", p.Region, p.Cluster, p.HTTP)
	}
	if creds := mesh.Credentials(); creds != nil {
		fmt.Fprintf(env.stdout, "# point the CLI at the mesh (also in %s):\n%s", mesh.EnvFile(), creds.Env(mesh.Peers()[0].HTTP))
	}
	fmt.Fprintf(env.stderr, "wrote %s; logs in %s; Ctrl-C stops every peer\n", filepath.Join(abs, "peers.json"), abs)
	sig := <-sigs
	fmt.Fprintf(env.stderr, "%s: stopping %d peers\n", sig, len(mesh.Peers()))
	return nil
}
