package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// SimConfig sizes a SimCluster. Zero fields take their defaults.
type SimConfig struct {
	Nodes           int           // number of nodes; default 3
	NodeCPUMilli    int64         // allocatable CPU per node, in millicores; default 4000
	NodeMemoryBytes int64         // allocatable memory per node, in bytes; default 8 GiB
	NodePods        int64         // allocatable pods per node; default 110
	ReadyDelay      time.Duration // how long a placed replica takes to become Ready; default 200ms
	// Clock tells the time and signals Changed when replicas become Ready;
	// nil means clock.RealClock. Its AfterFunc callbacks only signal a
	// channel, so a fake clock may run them with its own lock held.
	Clock clock.WithDelayedExecution
}

// DefaultSimConfig returns the defaults: three nodes of 4 CPUs, 8 GiB and
// 110 pods, replicas Ready 200ms after placement, real time.
func DefaultSimConfig() SimConfig {
	return SimConfig{
		Nodes:           3,
		NodeCPUMilli:    4000,
		NodeMemoryBytes: 8 << 30,
		NodePods:        110,
		ReadyDelay:      200 * time.Millisecond,
		Clock:           clock.RealClock{},
	}
}

// Validate checks that no field is negative.
func (c SimConfig) Validate() error {
	var errs []error
	if c.Nodes < 0 {
		errs = append(errs, fmt.Errorf("sim config: nodes must not be negative, got %d", c.Nodes))
	}
	if c.NodeCPUMilli < 0 {
		errs = append(errs, fmt.Errorf("sim config: node cpu must not be negative, got %dm", c.NodeCPUMilli))
	}
	if c.NodeMemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("sim config: node memory must not be negative, got %d bytes", c.NodeMemoryBytes))
	}
	if c.NodePods < 0 {
		errs = append(errs, fmt.Errorf("sim config: node pods must not be negative, got %d", c.NodePods))
	}
	if c.ReadyDelay < 0 {
		errs = append(errs, fmt.Errorf("sim config: ready delay must not be negative, got %s", c.ReadyDelay))
	}
	return errors.Join(errs...)
}

func (c SimConfig) withDefaults() SimConfig {
	d := DefaultSimConfig()
	if c.Nodes == 0 {
		c.Nodes = d.Nodes
	}
	if c.NodeCPUMilli == 0 {
		c.NodeCPUMilli = d.NodeCPUMilli
	}
	if c.NodeMemoryBytes == 0 {
		c.NodeMemoryBytes = d.NodeMemoryBytes
	}
	if c.NodePods == 0 {
		c.NodePods = d.NodePods
	}
	if c.ReadyDelay == 0 {
		c.ReadyDelay = d.ReadyDelay
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	return c
}

// SimCluster is an in-memory member cluster with a simple scheduler, the
// twin of the client-go cluster.
//
// Replicas are placed first-fit onto identical nodes by their per-replica
// requests (cpu, memory and one pod, read from the manifest). A placed
// replica becomes Ready ReadyDelay later; one that fits nowhere stays Pending
// and is placed as soon as capacity frees up (oldest object first). Scaling
// down removes Pending replicas first, then not-Ready, then Ready ones.
// Applying a new generation re-creates every replica (the Recreate strategy:
// ready replicas drop to zero and come back after ReadyDelay). Objects
// without replicas just exist and are Healthy.
//
// SetReady(false) models a cluster whose nodes all went NotReady: replicas
// stay placed (as pods stay on NotReady nodes until evicted) but none counts
// as Ready, Capacity reports no nodes, and Apply and Delete return
// ErrUnavailable, so that cluster failover can be tested. SetReady(true)
// brings the nodes back; placed replicas are Ready again after ReadyDelay.
type SimCluster struct {
	cfg     SimConfig
	changed chan struct{}

	mu      sync.Mutex
	ready   bool
	nodes   []api.Resources // requests of placed replicas, per node
	objects map[api.ObjectKey]*simObject
	order   []*simObject // by creation, the order Pending replicas are retried in
	wakeAt  time.Time    // when the latest signal timer fires
}

var _ Cluster = (*SimCluster)(nil)

type simObject struct {
	key         api.ObjectKey
	generation  int64
	manifest    []byte
	hasReplicas bool
	want        int32
	per         api.Resources
	replicas    []*simReplica
}

// simReplica is one replica. Readiness is not stored but read from the
// clock: a placed replica is Ready from readyAt on while the cluster is
// Ready. Timers only signal Changed when that moment comes, so that no
// timer callback takes s.mu.
type simReplica struct {
	node    int // -1 while Pending
	readyAt time.Time
}

// SimObject is a snapshot of one object a SimCluster holds.
type SimObject struct {
	Key         api.ObjectKey
	Generation  int64
	Manifest    []byte // as applied: with spec.replicas and Shoal's label set
	HasReplicas bool
	Replicas    int32 // desired
	Placed      int32 // placed on a node, Ready or not
	Ready       int32
	Pending     int32 // fitting on no node
}

// NewSimCluster returns a Ready simulated cluster with no objects.
func NewSimCluster(cfg SimConfig) (*SimCluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &SimCluster{
		cfg:     cfg,
		changed: make(chan struct{}, 1),
		ready:   true,
		nodes:   make([]api.Resources, cfg.Nodes),
		objects: make(map[api.ObjectKey]*simObject),
	}, nil
}

// Apply implements Cluster.
func (s *SimCluster) Apply(ctx context.Context, w Work) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := applicable(w); err != nil {
		return err
	}
	manifest, t, err := render(w)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return fmt.Errorf("apply %s: %w", w.Key.Display(), ErrUnavailable)
	}
	o := s.objects[w.Key]
	freed := false
	switch {
	case o == nil:
		o = &simObject{key: w.Key}
		s.objects[w.Key] = o
		s.order = append(s.order, o)
	case o.generation != w.Generation:
		for _, r := range o.replicas {
			freed = s.release(r, o.per) || freed
		}
		o.replicas = nil
	}
	o.generation, o.manifest, o.hasReplicas = w.Generation, manifest, w.HasReplicas
	o.per = t.PerReplica
	o.per.Pods = 1
	o.want = 0
	if w.HasReplicas {
		o.want = w.Replicas
	}
	for int32(len(o.replicas)) < o.want {
		o.replicas = append(o.replicas, &simReplica{node: -1})
	}
	if excess := len(o.replicas) - int(o.want); excess > 0 {
		freed = s.scaleDown(o, excess) || freed
	}
	if freed {
		s.placePending()
	} else {
		s.placeObject(o)
	}
	s.signal()
	return nil
}

// Delete implements Cluster. Deletion is immediate.
func (s *SimCluster) Delete(ctx context.Context, key api.ObjectKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return fmt.Errorf("delete %s: %w", key.Display(), ErrUnavailable)
	}
	s.forget(key)
	return nil
}

// forget removes key's object and its replicas; s.mu is held.
func (s *SimCluster) forget(key api.ObjectKey) {
	o := s.objects[key]
	if o == nil {
		return
	}
	freed := false
	for _, r := range o.replicas {
		freed = s.release(r, o.per) || freed
	}
	delete(s.objects, key)
	s.order = slices.DeleteFunc(s.order, func(x *simObject) bool { return x == o })
	if freed {
		s.placePending()
	}
	s.signal()
}

// Release implements Cluster. The sim keeps nothing it does not manage, so
// a released object is simply forgotten: it leaves the sim without being
// deleted (its replicas no longer count against the nodes).
func (s *SimCluster) Release(ctx context.Context, key api.ObjectKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return fmt.Errorf("release %s: %w", key.Display(), ErrUnavailable)
	}
	s.forget(key)
	return nil
}

// List implements Cluster; keys come sorted by their string form.
func (s *SimCluster) List(ctx context.Context) ([]api.ObjectKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]api.ObjectKey, 0, len(s.objects))
	for k := range s.objects {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b api.ObjectKey) int { return strings.Compare(a.String(), b.String()) })
	return keys, nil
}

// Status implements Cluster. It answers while the cluster is NotReady.
func (s *SimCluster) Status(ctx context.Context, key api.ObjectKey) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key]
	if o == nil {
		return Status{}, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	st := Status{Key: key, AppliedGeneration: o.generation, Health: HealthHealthy}
	if !o.hasReplicas {
		return st, nil
	}
	c := s.counts(o, s.cfg.Clock.Now())
	st.Replicas, st.ReadyReplicas = o.want, c.Ready
	switch {
	case !s.ready:
		st.Health, st.Reason = HealthUnhealthy, fmt.Sprintf("cluster NotReady: %d/%d replicas ready", c.Ready, o.want)
	case c.Pending > 0:
		st.Health, st.Reason = HealthUnhealthy, fmt.Sprintf("%d/%d replicas Pending: %s", c.Pending, o.want, s.whyNot(o.per))
	case c.Ready < o.want:
		st.Health, st.Reason = HealthProgressing, fmt.Sprintf("%d/%d replicas ready", c.Ready, o.want)
	}
	return st, nil
}

// Health implements Cluster.
func (s *SimCluster) Health(ctx context.Context) (shoalpb.Health, string, error) {
	if err := ctx.Err(); err != nil {
		return shoalpb.Health_HEALTH_UNKNOWN, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return shoalpb.Health_HEALTH_NOT_READY, "simulated: set NotReady", nil
	}
	return shoalpb.Health_HEALTH_READY, fmt.Sprintf("simulated: %d nodes Ready", len(s.nodes)), nil
}

// Capacity implements Cluster. A NotReady cluster has no Ready nodes, so
// every figure is zero.
func (s *SimCluster) Capacity(ctx context.Context) (*shoalpb.Capacity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &shoalpb.Capacity{Allocatable: &shoalpb.Resources{}, Available: &shoalpb.Resources{}, MaxNode: &shoalpb.Resources{}}
	if !s.ready {
		return c, nil
	}
	alloc := s.allocatable()
	c.Nodes = int32(len(s.nodes))
	c.MaxNode = &shoalpb.Resources{CpuMilli: alloc.CPUMilli, MemoryBytes: alloc.MemoryBytes, Pods: alloc.Pods}
	for _, used := range s.nodes {
		c.Allocatable.CpuMilli += alloc.CPUMilli
		c.Allocatable.MemoryBytes += alloc.MemoryBytes
		c.Allocatable.Pods += alloc.Pods
		c.Available.CpuMilli += alloc.CPUMilli - used.CPUMilli
		c.Available.MemoryBytes += alloc.MemoryBytes - used.MemoryBytes
		c.Available.Pods += alloc.Pods - used.Pods
	}
	return c, nil
}

// Changed implements Cluster.
func (s *SimCluster) Changed() <-chan struct{} { return s.changed }

// SetReady sets whether the cluster's nodes are Ready (see SimCluster for
// what NotReady means). It signals Changed.
func (s *SimCluster) SetReady(ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready == ready {
		return
	}
	s.ready = ready
	if ready {
		readyAt := s.cfg.Clock.Now().Add(s.cfg.ReadyDelay)
		for _, o := range s.order {
			for _, r := range o.replicas {
				if r.node >= 0 {
					r.readyAt = readyAt
				}
			}
		}
		s.wake(readyAt)
		s.placePending()
	}
	s.signal()
}

// Objects returns a snapshot of every object the cluster holds.
func (s *SimCluster) Objects() map[api.ObjectKey]SimObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[api.ObjectKey]SimObject, len(s.objects))
	now := s.cfg.Clock.Now()
	for k, o := range s.objects {
		c := s.counts(o, now)
		c.Key, c.Generation, c.Manifest = k, o.generation, slices.Clone(o.manifest)
		c.HasReplicas, c.Replicas = o.hasReplicas, o.want
		out[k] = c
	}
	return out
}
