package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoalmesh/shoal/api/client"
)

// MeshSpec describes a local mesh of peer processes on loopback, the
// playground behind `shoal dev` and `shoal demo`.
type MeshSpec struct {
	// Binary is the shoal executable to run as `agent`.
	Binary string
	// Regions and Clusters (per region) to start.
	Regions, Clusters int
	// Dir holds each peer's data dir and log, and peers.json.
	Dir string
	// ExtraArgs are passed to every agent (e.g. --failback-delay 5s).
	ExtraArgs []string
	// PeerArgs are passed, after ExtraArgs, only to the agent of the named
	// cluster ("eu-1", ...): e.g. the --kubeconfig of its own member cluster.
	PeerArgs map[string][]string
	// Insecure runs the peers with --insecure: plain HTTP, Raft and gossip.
	// Without it the mesh makes DevCredentials in Dir/tls and runs every
	// peer with TLS, a token file and a gossip key, as production does.
	Insecure bool
}

// MeshPeer is one peer process of a local mesh.
type MeshPeer struct {
	Region   string            `json:"region"`
	Cluster  string            `json:"cluster"`
	HTTP     string            `json:"http"`
	Gossip   string            `json:"gossip"`
	Raft     string            `json:"raft"`
	WAN      string            `json:"wan"`
	Zone     string            `json:"zone"`
	Provider string            `json:"provider"`
	Labels   map[string]string `json:"labels"`
	DataDir  string            `json:"dataDir"`
	Log      string            `json:"log"`
	PID      int               `json:"pid"`
	args     []string
	cmd      *exec.Cmd
	exited   chan struct{}
	paused   bool // stopped with SIGSTOP and not continued; guarded by Mesh.mu
}

// Mesh is a running local mesh.
type Mesh struct {
	spec  MeshSpec
	creds *DevCredentials // nil when Insecure
	mu    sync.Mutex
	peers []*MeshPeer
}

// Spec is what the mesh was started with.
func (m *Mesh) Spec() MeshSpec {
	s := m.spec
	s.ExtraArgs = slices.Clone(s.ExtraArgs)
	s.PeerArgs = maps.Clone(s.PeerArgs)
	for k, v := range s.PeerArgs {
		s.PeerArgs[k] = slices.Clone(v)
	}
	return s
}

// Credentials are the mesh's dev credentials, nil for an insecure mesh.
func (m *Mesh) Credentials() *DevCredentials { return m.creds }

// ClientOptions reach the mesh's peers' APIs with every scope.
func (m *Mesh) ClientOptions() client.Options {
	if m.creds == nil {
		return client.Options{}
	}
	return m.creds.ClientOptions()
}

// Client returns a client of the peer of cluster.
func (m *Mesh) Client(cluster string) (*client.Client, error) {
	p, err := m.Peer(cluster)
	if err != nil {
		return nil, err
	}
	return client.NewWith(p.HTTP, m.ClientOptions())
}

var regionNames = []string{"eu-west", "us-east", "ap-south", "sa-east", "af-south", "me-central"}

// MeshRegionName is the name of the i-th region of a local mesh.
func MeshRegionName(i int) string {
	if i < len(regionNames) {
		return regionNames[i]
	}
	return fmt.Sprintf("region-%d", i+1)
}

// meshProviders are the providers of a local mesh's clusters, in turn.
var meshProviders = []string{"aws", "gcp", "onprem"}

// MeshClusterName is the name of the i-th cluster (from 0) of a local
// mesh's region: eu-1, eu-2... in eu-west.
func MeshClusterName(region string, i int) string {
	return fmt.Sprintf("%s-%d", region[:2], i+1)
}

// MeshProvider is the provider of the i-th cluster (from 0) of each region
// of a local mesh: aws, gcp and onprem in turn. An onprem cluster is also
// labelled location=on-prem, as examples/bursting.yaml selects it.
func MeshProvider(i int) string { return meshProviders[i%len(meshProviders)] }

// freePort finds a port free for both TCP and UDP on 127.0.0.1. It picks
// below the kernel's ephemeral range where it can: a port the kernel hands
// out for ":0" (as every test and client socket gets) could be given to
// someone else between this check and the peer's own bind.
func freePort() (int, error) {
	low, high := 10000, ephemeralStart()-1
	for i := 0; i < 200; i++ {
		port := 0
		if high-low > 1000 {
			port = low + rand.IntN(high-low)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		port = l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port on 127.0.0.1")
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (32768 where it cannot be read).
func ephemeralStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(data), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}

// StartMesh starts every peer of the mesh. Each region's first peer is the
// others' join address; every peer waits for all of its region's peers
// before bootstrapping Raft.
func StartMesh(spec MeshSpec) (*Mesh, error) {
	if spec.Regions < 1 || spec.Clusters < 1 {
		return nil, fmt.Errorf("a mesh needs at least 1 region and 1 cluster, got %d and %d", spec.Regions, spec.Clusters)
	}
	if spec.Clusters > 26 {
		return nil, fmt.Errorf("at most 26 clusters per region on one machine, got %d", spec.Clusters)
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	m := &Mesh{spec: spec}
	scheme := "http://"
	if !spec.Insecure {
		creds, err := DevCredentialsIn(filepath.Join(spec.Dir, "tls"))
		if err != nil {
			return nil, err
		}
		m.creds, scheme = creds, "https://"
	}
	// Every region's peers name the first peer of each earlier region as
	// their way into the mesh; the regions learn the rest from each other.
	var wanSeeds []string
	for r := 0; r < spec.Regions; r++ {
		region := MeshRegionName(r)
		var join string
		seeds := slices.Clone(wanSeeds)
		for c := 0; c < spec.Clusters; c++ {
			ports := make([]int, 4)
			for i := range ports {
				p, err := freePort()
				if err != nil {
					m.Stop()
					return nil, err
				}
				ports[i] = p
			}
			cluster := MeshClusterName(region, c)
			tier := "silver"
			if c == 0 {
				tier = "gold"
			}
			p := &MeshPeer{
				Region: region, Cluster: cluster,
				HTTP:     scheme + "127.0.0.1:" + strconv.Itoa(ports[0]),
				Gossip:   "127.0.0.1:" + strconv.Itoa(ports[1]),
				Raft:     "127.0.0.1:" + strconv.Itoa(ports[2]),
				WAN:      "127.0.0.1:" + strconv.Itoa(ports[3]),
				Zone:     fmt.Sprintf("%s-%c", region, 'a'+c%3),
				Provider: MeshProvider(c),
				Labels:   map[string]string{"env": "prod", "tier": tier},
				DataDir:  filepath.Join(spec.Dir, region, cluster),
				Log:      filepath.Join(spec.Dir, region, cluster+".log"),
			}
			if p.Provider == "onprem" {
				p.Labels["location"] = "on-prem"
			}
			p.args = []string{"agent",
				"--region", region, "--cluster", cluster, "--zone", p.Zone,
				"--provider", p.Provider,
				"--data-dir", p.DataDir, "--bind", "127.0.0.1",
				"--http-port", strconv.Itoa(ports[0]), "--gossip-port", strconv.Itoa(ports[1]), "--raft-port", strconv.Itoa(ports[2]),
				"--wan-port", strconv.Itoa(ports[3]),
				"--bootstrap-expect", strconv.Itoa(spec.Clusters), "--gossip-profile", "local",
			}
			for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
				p.args = append(p.args, "--label", k+"="+p.Labels[k])
			}
			for _, seed := range seeds {
				p.args = append(p.args, "--join-wan", seed)
			}
			if c == 0 {
				wanSeeds = append(wanSeeds, p.WAN)
			}
			if join != "" {
				p.args = append(p.args, "--join", join)
			} else {
				join = p.Gossip
			}
			if m.creds != nil {
				sec, err := m.creds.AgentArgs(region, cluster)
				if err != nil {
					m.Stop()
					return nil, err
				}
				p.args = append(p.args, sec...)
			} else {
				p.args = append(p.args, "--insecure")
			}
			p.args = append(p.args, spec.ExtraArgs...)
			p.args = append(p.args, spec.PeerArgs[cluster]...)
			if err := m.start(p); err != nil {
				m.Stop()
				return nil, err
			}
			m.peers = append(m.peers, p)
		}
	}
	if err := m.writeJSON(); err != nil {
		m.Stop()
		return nil, err
	}
	if m.creds != nil {
		if err := os.WriteFile(m.EnvFile(), []byte(m.creds.Env(m.peers[0].HTTP)), 0o600); err != nil {
			m.Stop()
			return nil, err
		}
	}
	return m, nil
}

// EnvFile is Dir/env: the export lines that point the CLI at the mesh.
func (m *Mesh) EnvFile() string { return filepath.Join(m.spec.Dir, "env") }

func (m *Mesh) start(p *MeshPeer) error {
	if err := os.MkdirAll(filepath.Dir(p.Log), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.spec.Binary, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The children die with the mesh process, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", p.Cluster, err)
	}
	p.cmd, p.PID, p.exited, p.paused = cmd, cmd.Process.Pid, make(chan struct{}), false
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		m.mu.Lock()
		if p.cmd == cmd {
			p.paused = false // a stopped process that was killed is no longer paused
		}
		m.mu.Unlock()
		close(exited)
	}(p.exited)
	return nil
}

// Peers returns the mesh's peers.
func (m *Mesh) Peers() []*MeshPeer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*MeshPeer(nil), m.peers...)
}

// Peer finds a peer by cluster name.
func (m *Mesh) Peer(cluster string) (*MeshPeer, error) {
	for _, p := range m.Peers() {
		if p.Cluster == cluster {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no peer for cluster %q in the mesh", cluster)
}

func (m *Mesh) writeJSON() error {
	data, err := json.MarshalIndent(m.Peers(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(m.spec.Dir, "peers.json"), append(data, '\n'), 0o644)
}

// process returns the peer's current process and its exit channel, nil
// if it was never started.
func (m *Mesh) process(cluster string) (*MeshPeer, *exec.Cmd, chan struct{}, error) {
	p, err := m.Peer(cluster)
	if err != nil {
		return nil, nil, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return p, p.cmd, p.exited, nil
}

// Running reports whether the peer of cluster was started and has not
// exited since (a paused peer is running).
func (m *Mesh) Running(cluster string) bool {
	_, cmd, exited, err := m.process(cluster)
	if err != nil || cmd == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// Paused reports whether the peer of cluster is paused (Pause, not yet
// Resume).
func (m *Mesh) Paused(cluster string) bool {
	p, err := m.Peer(cluster)
	if err != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return p.paused
}

// Kill kills a peer process with SIGKILL: to the region it is a crash. A
// paused peer dies too.
func (m *Mesh) Kill(cluster string) error {
	_, cmd, exited, err := m.process(cluster)
	if err != nil {
		return err
	}
	if cmd == nil {
		return fmt.Errorf("peer %s was never started", cluster)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-exited
	return nil
}

// Pause stops the peer's process with SIGSTOP: it keeps its sockets and
// state but answers nothing — to the region and its clients a hung peer,
// not a crashed one. Resume continues it. Pausing a paused peer does
// nothing; a peer that is not running cannot be paused. Only the process
// the mesh started is signalled.
func (m *Mesh) Pause(cluster string) error {
	return m.setPaused(cluster, true)
}

// Resume continues a paused peer with SIGCONT. Resuming a peer that is not
// paused does nothing.
func (m *Mesh) Resume(cluster string) error {
	return m.setPaused(cluster, false)
}

func (m *Mesh) setPaused(cluster string, pause bool) error {
	p, err := m.Peer(cluster)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.paused == pause {
		return nil
	}
	running := p.cmd != nil
	if running {
		select {
		case <-p.exited:
			running = false
		default:
		}
	}
	if !running {
		return fmt.Errorf("peer %s is not running: restart it first", cluster)
	}
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("peer %s: %s: %w", cluster, sig, err)
	}
	p.paused = pause
	return nil
}

// Restart starts a killed or stopped peer again with the same data dir and
// ports. A paused peer is still running: Resume it, or Kill it first.
func (m *Mesh) Restart(cluster string) error {
	p, err := m.Peer(cluster)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.paused {
		return fmt.Errorf("peer %s is paused, not stopped: Resume it, or Kill it before a restart", cluster)
	}
	select {
	case <-p.exited:
	default:
		return fmt.Errorf("peer %s is still running", cluster)
	}
	// A region's first peer was the seed and started with no --join. Its
	// old members hold it as dead and no longer talk to it, so restarted
	// it would stay alone in gossip: it joins through the others.
	if !slices.Contains(p.args, "--join") {
		for _, o := range m.peers {
			if o.Region == p.Region && o != p {
				p.args = append(p.args, "--join", o.Gossip)
			}
		}
	}
	return m.start(p)
}

// Stop ends every peer: SIGTERM (a paused peer is continued first, since a
// stopped process acts on no signal but SIGKILL), then SIGKILL for those
// still running after a grace period. It waits for all of them.
func (m *Mesh) Stop() {
	type proc struct {
		cmd    *exec.Cmd
		exited chan struct{}
	}
	var procs []proc
	m.mu.Lock()
	for _, p := range m.peers {
		if p.cmd == nil {
			continue
		}
		if p.paused {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			p.paused = false
		}
		procs = append(procs, proc{p.cmd, p.exited})
	}
	m.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	grace := time.After(10 * time.Second)
	for _, p := range procs {
		select {
		case <-p.exited:
		case <-grace:
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
	}
}

// WaitReady waits until every peer of every region knows its leader and the
// leader sees all the region's clusters.
func (m *Mesh) WaitReady(ctx context.Context) error {
	for _, p := range m.Peers() {
		c, err := client.NewWith(p.HTTP, m.ClientOptions())
		if err != nil {
			return err
		}
		for {
			st, err := c.Status(ctx)
			if err == nil && st.Leader != "" {
				cs, err := c.Clusters(ctx)
				if err == nil && len(cs) >= m.spec.Clusters {
					break
				}
			}
			// A peer that exits (say, its port was taken) keeps its region
			// from forming: say which at once.
			for _, o := range m.Peers() {
				select {
				case <-o.exited:
					return fmt.Errorf("peer %s exited; see its log %s%s", o.Cluster, o.Log, logTail(o.Log, 5))
				default:
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("peer %s not ready (see its log %s): %w%s", p.Cluster, p.Log, ctx.Err(), logTail(p.Log, 5))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// logTail is the last n lines of a peer's log, for an error message (the
// log may be gone with its directory by the time someone reads it).
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "; its log ends:\n  " + strings.Join(lines, "\n  ")
}
