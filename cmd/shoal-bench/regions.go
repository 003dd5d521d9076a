package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/examples"
	"github.com/shoalmesh/shoal/gossip"
	"github.com/shoalmesh/shoal/node"
	"github.com/shoalmesh/shoal/region"
	"github.com/shoalmesh/shoal/transport"
)

// The mesh of regions: region failover with peer processes (QUIC, TLS),
// and propagation, catch-up and scale with in-process peers whose links
// between regions run on transport.InmemNetwork, where delays and cuts
// are injected.

var globalWebKey = api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "global-web"}

// globalWebRunning reports, from one peer's view, that global-web runs
// settled outside region skip ("" for none), in every one of regions
// regions when regions is not 0.
func globalWebRunning(ws []api.WorkloadView, skip string, regions int) bool {
	ok, n := api.ReadyOutside(ws, globalWebKey, skip)
	return ok && (regions == 0 || n == regions)
}

func benchRegionFailover(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	f := &benchFigure{
		Title: "Region failover: every peer of a region SIGKILLed -> its replicas Ready in the survivors", Unit: "ms",
		Target:  "<= 10 s median (goal <= 5 s)",
		Check:   func(s benchStats) bool { return s.Median <= 10000 },
		Compare: "Karmada: while the region of its control plane is down nothing is managed; Nomad multiregion jobs block while a region is down; Consul WAN gossip takes about 35-40 s to declare a server dead",
		How: "`shoal-bench --only region-failover`: a mesh of 3 regions × 2 `shoal agent` processes on loopback (TLS, " +
			"default timing: region grace 4 s, sync interval 1 s, a region's silence checked every 250 ms), examples/regions/global-web.yaml (6 replicas, one per cluster). " +
			"Each trial SIGKILLs both peers of ap-south (their simulated clusters keep what they ran) and times, by polling " +
			"GET /v1/workloads on a survivor every 50 ms, until all 6 replicas are Ready on eu-west's and us-east's clusters; " +
			"then it restarts ap-south from its data dirs and waits for failback before the next trial.",
	}
	dir, err := os.MkdirTemp("", "shoal-bench-regions-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	m, err := node.StartMesh(node.MeshSpec{Binary: b.bin, Regions: 3, Clusters: 2, Dir: dir,
		ExtraArgs: []string{"--log-level", "warn", "--failback-delay", "3s"}})
	if err != nil {
		return []*benchFigure{f}, scrubPaths(err)
	}
	defer m.Stop()
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := m.WaitReady(wctx); err != nil {
		return []*benchFigure{f}, scrubPaths(err)
	}
	c, err := m.Client("eu-1")
	if err != nil {
		return []*benchFigure{f}, err
	}
	docs, err := examples.RegionDocuments()
	if err != nil {
		return []*benchFigure{f}, err
	}
	if _, err := c.Apply(ctx, docs); err != nil {
		return []*benchFigure{f}, err
	}
	if _, err := waitWorkloads(ctx, c, 100*time.Millisecond, 90*time.Second, "global-web in every region",
		func(ws []api.WorkloadView) bool { return globalWebRunning(ws, "", 3) }); err != nil {
		return []*benchFigure{f}, err
	}
	victims := []string{"ap-1", "ap-2"}
	trials := min(b.failoverTrials(), 10)
	for i := range trials {
		t0 := time.Now()
		for _, v := range victims {
			if err := m.Kill(v); err != nil {
				return []*benchFigure{f}, err
			}
		}
		if _, err := waitWorkloads(ctx, c, 50*time.Millisecond, 60*time.Second, "the survivors to run global-web",
			func(ws []api.WorkloadView) bool { return globalWebRunning(ws, "ap-south", 0) }); err != nil {
			return []*benchFigure{f}, err
		}
		f.Samples = append(f.Samples, msSince(t0))
		b.progress("  trial %d/%d: %.0f ms", i+1, trials, f.Samples[len(f.Samples)-1])
		for _, v := range victims {
			if err := m.Restart(v); err != nil {
				return []*benchFigure{f}, err
			}
		}
		if _, err := waitWorkloads(ctx, c, 100*time.Millisecond, 90*time.Second, "failback to ap-south",
			func(ws []api.WorkloadView) bool { return globalWebRunning(ws, "", 3) }); err != nil {
			return []*benchFigure{f}, err
		}
	}
	return []*benchFigure{f}, nil
}

// inprocRegions is a mesh of one-peer regions in this process, linked by
// an in-memory network with fault hooks.
type inprocRegions struct {
	dir     string
	wan     *transport.InmemNetwork
	links   map[string]*transport.InmemLink
	peers   map[string]*node.Peer
	clients map[string]*client.Client
	names   []string
}

func regionName(i int) string { return fmt.Sprintf("r%02d", i) }

func startInprocRegions(ctx context.Context, b *bencher, n int, tune func(*node.Config)) (*inprocRegions, error) {
	dir, err := os.MkdirTemp("", "shoal-bench-inproc-")
	if err != nil {
		return nil, err
	}
	m := &inprocRegions{dir: dir, wan: transport.NewInmemNetwork(), links: map[string]*transport.InmemLink{},
		peers: map[string]*node.Peer{}, clients: map[string]*client.Client{}}
	creds, err := node.DevCredentialsIn(filepath.Join(dir, "tls"))
	if err != nil {
		m.close()
		return nil, err
	}
	for i := range n {
		name := regionName(i)
		cfg := node.DefaultConfig()
		cfg.Region, cfg.Cluster = name, name+"-1"
		cfg.Zones = []string{name + "-a"}
		cfg.Labels = map[string]string{"env": "prod"}
		cfg.DataDir = filepath.Join(dir, name)
		cfg.HTTPPort, cfg.GossipPort, cfg.RaftPort, cfg.WANPort = 0, 0, 0, 0
		cfg.Gossip = gossip.ProfileLocal
		cfg.BootstrapExpect = 1
		cfg.Sim.ReadyDelay = propReadyDelay
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if i > 0 {
			cfg.JoinWAN = []string{"wan-" + regionName(0) + ":7483"}
		}
		if err := creds.Configure(&cfg); err != nil {
			m.close()
			return nil, err
		}
		if tune != nil {
			tune(&cfg)
		}
		link := m.wan.Add("wan-"+name+":7483", transport.PeerIdentity("dev", name, cfg.Cluster))
		cfg.WANLink = link
		p, err := node.Start(cfg)
		if err != nil {
			m.close()
			return nil, scrubPaths(err)
		}
		m.links[name], m.peers[name] = link, p
		m.names = append(m.names, name)
		if m.clients[name], err = client.NewWith(p.URL(), creds.ClientOptions()); err != nil {
			m.close()
			return nil, err
		}
	}
	b.progress("  %d in-process regions started; waiting until each knows the others", n)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		missing := ""
		for _, name := range m.names {
			var k int
			m.peers[name].FSM().Read(func(s *region.State) {
				for _, r := range s.Regions() {
					if !r.GetDead() {
						k++
					}
				}
			})
			if k != n-1 {
				missing = fmt.Sprintf("%s knows %d of %d other regions", name, k, n-1)
				break
			}
		}
		if missing == "" {
			return m, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			m.close()
			return nil, errors.Join(errors.New(missing), ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *inprocRegions) close() {
	for _, p := range m.peers {
		_ = p.Shutdown()
	}
	os.RemoveAll(m.dir)
}

func (m *inprocRegions) digest(name string) string {
	var d []byte
	m.peers[name].FSM().Read(func(s *region.State) { d = s.Digest() })
	return string(d)
}

func benchRegionPropagation(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	const delay = 50 * time.Millisecond
	f := &benchFigure{
		Title: "Cross-region propagation, 50 ms one-way delay between regions: apply -> running in every bound cluster mesh-wide", Unit: "ms",
		Target: "p99 <= one round trip + 300 ms (400 ms)",
		Check:  func(s benchStats) bool { return s.P99 <= 400 },
		How: "`shoal-bench --only region-propagation`: 3 regions of one in-process peer each (node.Start, TLS on the API), their links " +
			"between regions on a transport.InmemNetwork where every request between two regions is delayed 50 ms (25 ms at " +
			"the sender's end and 25 ms at the receiver's, by the links' fault hooks); a Deployment of 2 replicas Duplicated " +
			"to every cluster is applied to one region's peer (in turn), and the time from the acknowledged apply until the " +
			"simulated cluster of every region holds it with every replica placed is recorded.",
	}
	m, err := startInprocRegions(ctx, b, 3, nil)
	if err != nil {
		return []*benchFigure{f}, err
	}
	defer m.close()
	for _, name := range m.names {
		for _, other := range m.names {
			if other != name {
				m.links[name].Faults().Delay(transport.Target{Region: other}, delay/2, 0)
			}
		}
	}
	n := b.trials
	for i := range n {
		name := fmt.Sprintf("mesh-prop-%03d", i)
		key := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: name}
		via := m.clients[m.names[i%len(m.names)]]
		if _, err := via.Apply(ctx, propDocuments(name)); err != nil {
			return []*benchFigure{f}, err
		}
		acked := time.Now()
		deadline := acked.Add(30 * time.Second)
		for {
			placed := 0
			for _, p := range m.peers {
				if o, ok := p.Sim().Objects()[key]; ok && o.Replicas == propReplicas && o.Placed == propReplicas {
					placed++
				}
			}
			if placed == len(m.peers) {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return []*benchFigure{f}, errors.Join(fmt.Errorf("%s: %d of %d regions run it after 30 s", name, placed, len(m.peers)), ctx.Err())
			}
			time.Sleep(time.Millisecond)
		}
		f.Samples = append(f.Samples, msSince(acked))
	}
	return []*benchFigure{f}, nil
}

func configMapDocs(prefix string, from, to int, value string) []byte {
	var sb strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&sb, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s-%04d, namespace: default}\ndata: {value: %q, padding: %q}\n",
			prefix, i, value, strings.Repeat("x", 200))
	}
	return []byte(sb.String())
}

func benchRegionCatchUp(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	const objects, unchanged = 1000, 4000
	timeF := &benchFigure{Title: "Catch-up after a region was cut off while 1,000 objects changed: time to equal digests", Unit: "ms",
		How: "`shoal-bench --only region-catchup`: 3 in-process one-peer regions on a transport.InmemNetwork; 5,000 ConfigMaps " +
			"(about 300 bytes each) are applied and replicated everywhere; region r02 is cut from the others (CutRegions), " +
			"1,000 of them are changed in r00, the cut is healed, and the time until r02's digest equals r00's is " +
			"recorded, with the bytes of objects r02 was sent against the size of a full copy of r00's objects (20% would be " +
			"exactly the changes, once)."}
	bytesF := &benchFigure{Title: "Catch-up after a region was cut off while 1,000 objects changed: bytes sent / a full copy", Unit: "%"}
	m, err := startInprocRegions(ctx, b, 3, nil)
	if err != nil {
		return []*benchFigure{timeF, bytesF}, err
	}
	defer m.close()
	src, cut := m.names[0], m.names[2]
	for from := 0; from < objects+unchanged; from += 250 {
		if _, err := m.clients[src].Apply(ctx, configMapDocs("cfg", from, from+250, "v1")); err != nil {
			return []*benchFigure{timeF, bytesF}, err
		}
	}
	waitEqual := func(what string) error {
		deadline := time.Now().Add(2 * time.Minute)
		for m.digest(cut) != m.digest(src) || m.digest(m.names[1]) != m.digest(src) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return errors.Join(fmt.Errorf("waiting for %s", what), ctx.Err())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}
	if err := waitEqual("the first copy everywhere"); err != nil {
		return []*benchFigure{timeF, bytesF}, err
	}
	trials := min(b.trials, 5)
	for t := range trials {
		for _, other := range m.names[:2] {
			m.wan.CutRegions(cut, other)
		}
		value := fmt.Sprintf("v%d", t+2)
		for from := 0; from < objects; from += 250 {
			if _, err := m.clients[src].Apply(ctx, configMapDocs("cfg", from, from+250, value)); err != nil {
				return []*benchFigure{timeF, bytesF}, err
			}
		}
		before := m.peers[cut].Mesh().Stats().BytesReceived
		var full int
		m.peers[src].FSM().Read(func(s *region.State) {
			for _, o := range s.AllObjects() {
				full += proto.Size(o)
			}
		})
		t0 := time.Now()
		m.wan.Heal()
		if err := waitEqual("the cut region to catch up"); err != nil {
			return []*benchFigure{timeF, bytesF}, err
		}
		timeF.Samples = append(timeF.Samples, msSince(t0))
		got := m.peers[cut].Mesh().Stats().BytesReceived - before
		bytesF.Samples = append(bytesF.Samples, 100*float64(got)/float64(full))
		b.progress("  trial %d/%d: %.0f ms, %d bytes received, full copy %d bytes", t+1, trials, timeF.Samples[t], got, full)
	}
	bytesF.How = "Bytes of objects the cut region was sent (from both other regions, each of which may send a change once) " +
		"over the encoded size of every object the source region holds; 100% would be one full copy."
	return []*benchFigure{timeF, bytesF}, nil
}

func rssMiB() float64 {
	v, err := procStatusMiB(os.Getpid(), "VmRSS")
	if err != nil {
		return 0
	}
	return v
}

func benchRegionScale(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	const n = 20
	conv := &benchFigure{Title: fmt.Sprintf("Scale: %d regions (one in-process peer each): a write in one region -> held by all %d", n, n), Unit: "ms",
		How: fmt.Sprintf("`shoal-bench --only region-scale`: %d regions of one peer each in this process (node.Start: Raft, gossip, "+
			"HTTPS API, simulated cluster each), linked on a transport.InmemNetwork (all links of a real mesh, no delay); every "+
			"region joins through r00 and learns the rest from summaries. A ConfigMap is applied to r00 and the time until "+
			"every region's state holds it is recorded; the memory figure is this process's RSS (with Go's GC target at 25, as "+
			"shoal agent runs) divided by %d.", n, n)}
	mem := &benchFigure{Title: fmt.Sprintf("Scale: memory per peer with %d regions in one process", n), Unit: "MiB"}
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	b.progress("  starting %d in-process regions", n)
	m, err := startInprocRegions(ctx, b, n, nil)
	if err != nil {
		return []*benchFigure{conv, mem}, err
	}
	defer m.close()
	for i := range max(b.trials/2, 5) {
		key := api.ObjectKey{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default"}
		if _, err := m.clients[m.names[0]].Apply(ctx, configMapDocs("scale", i, i+1, "x")); err != nil {
			return []*benchFigure{conv, mem}, err
		}
		key.Name = fmt.Sprintf("scale-%04d", i)
		t0 := time.Now()
		deadline := t0.Add(time.Minute)
		for {
			held := 0
			for _, p := range m.peers {
				p.FSM().Read(func(s *region.State) {
					if s.Object(key) != nil {
						held++
					}
				})
			}
			if held == n {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return []*benchFigure{conv, mem}, errors.Join(fmt.Errorf("%d of %d regions hold the write after a minute", held, n), ctx.Err())
			}
			time.Sleep(2 * time.Millisecond)
		}
		conv.Samples = append(conv.Samples, msSince(t0))
		runtime.GC()
		mem.Samples = append(mem.Samples, rssMiB()/n)
	}
	return []*benchFigure{conv, mem}, nil
}
