package chaos

import (
	"context"
	"fmt"
	"slices"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/node"
)

// Peer is one peer of the mesh under test.
type Peer struct {
	Region  string `json:"region"`
	Cluster string `json:"cluster"`
	HTTP    string `json:"http"`
	WAN     string `json:"wan"`
	Edge    bool   `json:"edge,omitempty"`
}

// Driver acts on a mesh. Process faults need a mesh whose processes the
// harness started (LocalDriver); network, clock and cluster faults go
// through each peer's admin endpoints and work on any mesh.
type Driver interface {
	Peers() []Peer
	Client(cluster string) (*client.Client, error)
	// Kill sends SIGKILL, Pause SIGSTOP, Resume SIGCONT; Restart starts a
	// killed peer again from its data dir; Running says whether the
	// peer's process runs (paused or not).
	Kill(cluster string) error
	Pause(cluster string) error
	Resume(cluster string) error
	Restart(cluster string) error
	Running(cluster string) bool
	// Forge tries to speak for another cluster or region with the
	// certificate of cluster as, against the peer of target.
	Forge(ctx context.Context, as, target string) ([]node.ForgeResult, error)
	// Close ends every process the driver started.
	Close()
}

// Members stops and starts the API servers of real member clusters, for
// the apiserver-stop fault: a mesh whose peers (some of them) drive real
// Kubernetes clusters, which whoever started those clusters controls.
type Members interface {
	// StopAPIServer stops the API server of cluster's member cluster;
	// StartAPIServer starts it again and returns once it serves.
	StopAPIServer(cluster string) error
	StartAPIServer(ctx context.Context, cluster string) error
}

// LocalOptions are what a local mesh gets besides its scenario.
type LocalOptions struct {
	// PeerArgs are passed only to the agent of the named cluster ("eu-1"):
	// e.g. the --kubeconfig of a real member cluster (the others drive
	// simulated clusters).
	PeerArgs map[string][]string
	// Members controls the real member clusters' API servers (nil: the
	// apiserver-stop fault is refused).
	Members Members
}

// LocalDriver runs a local mesh of peer processes (node.Mesh, as `shoal
// dev` does) and drives it.
type LocalDriver struct {
	mesh    *node.Mesh
	edge    []string
	peers   []Peer
	members Members
}

// StartLocal starts the scenario's mesh from binary (the shoal executable)
// with its data dirs and logs under dir, and waits until every region has
// a leader that sees its clusters. Every peer drives a simulated cluster.
func StartLocal(ctx context.Context, binary, dir string, s *Scenario) (*LocalDriver, error) {
	return StartLocalWith(ctx, binary, dir, s, LocalOptions{})
}

// StartLocalWith is StartLocal with opts: some peers may drive real
// member clusters.
func StartLocalWith(ctx context.Context, binary, dir string, s *Scenario, opts LocalOptions) (*LocalDriver, error) {
	spec := node.MeshSpec{Binary: binary, Regions: s.Mesh.Regions, Clusters: s.Mesh.Clusters, Dir: dir,
		ExtraArgs: append([]string{"--status-bound", s.StatusBound.D().String()}, s.Mesh.Args...),
		PeerArgs:  map[string][]string{}}
	names := map[string]bool{}
	for r := 0; r < s.Mesh.Regions; r++ {
		for c := 0; c < s.Mesh.Clusters; c++ {
			names[fmt.Sprintf("%s-%d", node.MeshRegionName(r)[:2], c+1)] = true
		}
	}
	for c, args := range opts.PeerArgs {
		if !names[c] {
			return nil, fmt.Errorf("scenario %s: arguments for peer %q, which is not one of the mesh's clusters", s.Name, c)
		}
		spec.PeerArgs[c] = slices.Clone(args)
	}
	edge := map[string]bool{}
	for _, r := range s.Mesh.Edge {
		edge[r] = true
	}
	// The peers' names follow from the shape; the edge ones get --edge.
	for r := 0; r < s.Mesh.Regions; r++ {
		region := node.MeshRegionName(r)
		if !edge[region] {
			continue
		}
		for c := 0; c < s.Mesh.Clusters; c++ {
			name := fmt.Sprintf("%s-%d", region[:2], c+1)
			spec.PeerArgs[name] = append(spec.PeerArgs[name], "--edge")
		}
		delete(edge, region)
	}
	for r := range edge {
		return nil, fmt.Errorf("scenario %s: edge region %q is not one of the mesh's regions", s.Name, r)
	}
	m, err := node.StartMesh(spec)
	if err != nil {
		return nil, err
	}
	d := &LocalDriver{mesh: m, edge: s.Mesh.Edge, members: opts.Members}
	for _, p := range m.Peers() {
		d.peers = append(d.peers, Peer{Region: p.Region, Cluster: p.Cluster, HTTP: p.HTTP, WAN: p.WAN,
			Edge: slices.Contains(s.Mesh.Edge, p.Region)})
	}
	if err := m.WaitReady(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	return d, nil
}

// Peers implements Driver.
func (d *LocalDriver) Peers() []Peer { return slices.Clone(d.peers) }

// Client implements Driver.
func (d *LocalDriver) Client(cluster string) (*client.Client, error) { return d.mesh.Client(cluster) }

// Kill implements Driver.
func (d *LocalDriver) Kill(cluster string) error { return d.mesh.Kill(cluster) }

// Pause implements Driver.
func (d *LocalDriver) Pause(cluster string) error { return d.mesh.Pause(cluster) }

// Resume implements Driver.
func (d *LocalDriver) Resume(cluster string) error { return d.mesh.Resume(cluster) }

// Restart implements Driver.
func (d *LocalDriver) Restart(cluster string) error { return d.mesh.Restart(cluster) }

// Running implements Driver.
func (d *LocalDriver) Running(cluster string) bool { return d.mesh.Running(cluster) }

// Forge implements Driver.
func (d *LocalDriver) Forge(ctx context.Context, as, target string) ([]node.ForgeResult, error) {
	a, err := d.mesh.Peer(as)
	if err != nil {
		return nil, err
	}
	t, err := d.mesh.Peer(target)
	if err != nil {
		return nil, err
	}
	return node.ProbeForgedIdentity(ctx, d.mesh.Credentials(), node.ForgeIdentity{Region: a.Region, Cluster: a.Cluster}, *t)
}

// Members controls the real member clusters' API servers, or is nil.
func (d *LocalDriver) Members() Members { return d.members }

// Close implements Driver.
func (d *LocalDriver) Close() { d.mesh.Stop() }

// Mesh is the local mesh the driver runs.
func (d *LocalDriver) Mesh() *node.Mesh { return d.mesh }
