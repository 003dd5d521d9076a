package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/node"
)

// AttachedDriver drives a mesh the harness did not start: its peers are
// named in a list (the peers.json `shoal dev` writes, or one written by
// hand for any mesh) and reached with the caller's credentials, which
// need the admin scope. Every fault it injects goes through the peers' own
// endpoints (cut, partition, delay, loss, flap, not-ready, drain, skew);
// the faults that act on processes (kill, stop, restart, kill-leader,
// kill-region, cut-off-restart) and forge, which needs the mesh's
// certificates, are refused: the harness ends only processes it started.
type AttachedDriver struct {
	peers []Peer
	opts  client.Options
}

// errNotOwned is the error of a process fault on an attached mesh.
func errNotOwned(what, cluster string) error {
	return fmt.Errorf("%s %s: the harness did not start this mesh's peers (attached with a peer list), so it does not act on their processes; "+
		"only faults through the peers' endpoints work here (cut, partition, delay, loss, flap, not-ready, drain, skew)", what, cluster)
}

// Attach reads a peer list (JSON: a list of {region, cluster, http} as
// `shoal dev` writes in peers.json; wan and edge are optional) and drives
// those peers with opts.
func Attach(peersFile string, opts client.Options) (*AttachedDriver, error) {
	data, err := os.ReadFile(peersFile)
	if err != nil {
		return nil, err
	}
	var list []Peer
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: not a peer list (a JSON list of {region, cluster, http}): %w", peersFile, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: no peers", peersFile)
	}
	seen := map[string]bool{}
	for i, p := range list {
		switch {
		case p.Region == "" || p.Cluster == "" || p.HTTP == "":
			return nil, fmt.Errorf("%s: peer %d lacks a region, cluster or http address: %+v", peersFile, i+1, p)
		case seen[p.Cluster]:
			return nil, fmt.Errorf("%s: cluster %q is listed twice", peersFile, p.Cluster)
		}
		seen[p.Cluster] = true
	}
	return &AttachedDriver{peers: list, opts: opts}, nil
}

// Peers implements Driver.
func (d *AttachedDriver) Peers() []Peer { return slices.Clone(d.peers) }

// Client implements Driver.
func (d *AttachedDriver) Client(cluster string) (*client.Client, error) {
	for _, p := range d.peers {
		if p.Cluster == cluster {
			return client.NewWith(p.HTTP, d.opts)
		}
	}
	return nil, fmt.Errorf("no peer for cluster %q in the peer list", cluster)
}

// Kill implements Driver: refused.
func (d *AttachedDriver) Kill(cluster string) error { return errNotOwned("kill", cluster) }

// Pause implements Driver: refused.
func (d *AttachedDriver) Pause(cluster string) error { return errNotOwned("stop", cluster) }

// Resume implements Driver: refused.
func (d *AttachedDriver) Resume(cluster string) error { return errNotOwned("continue", cluster) }

// Restart implements Driver: refused.
func (d *AttachedDriver) Restart(cluster string) error { return errNotOwned("restart", cluster) }

// Running implements Driver: the harness takes every listed peer for
// running (it never stops one).
func (d *AttachedDriver) Running(string) bool { return true }

// Forge implements Driver: refused (it needs the mesh's certificates).
func (d *AttachedDriver) Forge(_ context.Context, as, _ string) ([]node.ForgeResult, error) {
	return nil, fmt.Errorf("forge as %s: needs the certificates of the mesh's peers, which only a mesh the harness started gives it", as)
}

// Close implements Driver: nothing to end.
func (d *AttachedDriver) Close() {}

// ownsProcesses reports whether the faults that act on peer processes
// work on d's mesh.
func ownsProcesses(d Driver) bool {
	_, attached := d.(*AttachedDriver)
	return !attached
}

// processKinds are the faults that act on peer processes (or need the
// mesh's certificates).
var processKinds = []string{"kill", "stop", "restart", "kill-leader", "kill-region", "restart-region", "cut-off-restart", "forge"}
