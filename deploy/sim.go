package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
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
	// Dir, when set, is where the cluster keeps its objects and its
	// NotReady switch (a bbolt file, sim.db), so that it outlives the
	// process: NewSimCluster loads them. Empty: in memory only.
	Dir string
	// LockTimeout is how long NewSimCluster waits for another process to
	// release Dir's file before it fails. Default 1s.
	LockTimeout time.Duration
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
		LockTimeout:     time.Second,
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
	if c.LockTimeout < 0 {
		errs = append(errs, fmt.Errorf("sim config: lock timeout must not be negative, got %s", c.LockTimeout))
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
	if c.LockTimeout == 0 {
		c.LockTimeout = d.LockTimeout
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	return c
}

// SimCluster is a simulated member cluster with a simple scheduler, the
// twin of the client-go cluster. It lives in memory and, with
// SimConfig.Dir, in a file that outlives the process.
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
// as Ready, Capacity reports no nodes, and Apply, Delete and Release return
// ErrUnavailable, so that cluster failover can be tested. SetReady(true)
// brings the nodes back; placed replicas are Ready again after ReadyDelay.
//
// Every object has a UID, random like a Kubernetes uid, and a creation
// time, both kept from its first Apply until it is deleted or released.
// With SimConfig.Dir set, Apply, Delete, Release, SetReady and
// SetCapacityPercent write the change to Dir before they return, and a new SimCluster on the same Dir
// (after the process was killed, say) holds the same objects, UIDs and
// generations, is NotReady if it was and keeps its capacity percent. Its replicas are placed again,
// oldest object first, and count as Ready at once: their pods kept running
// while no one was watching. Writes are atomic but not fsynced, which is
// enough to survive the process, not the machine.
//
// A SimCluster is safe for concurrent use.
type SimCluster struct {
	cfg     SimConfig
	changed chan struct{}
	store   *simStore // nil without Dir

	mu     sync.Mutex
	closed bool
	seq    uint64 // Seq of the newest object
	ready  bool
	// capacityPct scales every node's allocatable (SetCapacityPercent).
	capacityPct int
	nodes       []api.Resources // requests of placed replicas, per node
	objects     map[api.ObjectKey]*simObject
	order       []*simObject // by creation, the order Pending replicas are retried in
	wakeAt      time.Time    // when the latest signal timer fires
	// failing and statusFields are SetFailing's and SetStatusFields',
	// by key (kept in memory only).
	failing      map[api.ObjectKey]string
	statusFields map[api.ObjectKey]map[string]any
}

var _ Cluster = (*SimCluster)(nil)

type simObject struct {
	rec      simRecord // as stored; rec.PerReplica counts one pod
	replicas []*simReplica
	restarts int // times its replicas were replaced by a new template
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
	Key api.ObjectKey
	// UID identifies this object from its creation to its deletion,
	// across updates and restarts; a deleted and re-created object has a
	// new one.
	UID string
	// Created is when the object was first applied, by SimConfig.Clock.
	Created     time.Time
	Generation  int64
	Manifest    []byte // as applied: with spec.replicas and Shoal's label set
	HasReplicas bool
	Replicas    int32 // desired
	Placed      int32 // placed on a node, Ready or not
	Ready       int32
	Pending     int32 // fitting on no node
	// Restarts counts the times a new template replaced its replicas
	// (since this SimCluster started); Foreign is true until Shoal adopts
	// an object made by Create.
	Restarts int
	Foreign  bool
}

// NewSimCluster returns a simulated cluster: without cfg.Dir a Ready one
// with no objects; with it, the one Dir holds (a Ready, empty one the first
// time). It fails, and leaves the file alone, if another process holds
// Dir's file for longer than cfg.LockTimeout or the file cannot be read.
// With Dir, the caller must Close it to let go of the file.
func NewSimCluster(cfg SimConfig) (*SimCluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &SimCluster{
		cfg:         cfg,
		changed:     make(chan struct{}, 1),
		ready:       true,
		capacityPct: 100,
		nodes:       make([]api.Resources, cfg.Nodes),
		objects:     make(map[api.ObjectKey]*simObject),
	}
	if cfg.Dir == "" {
		return s, nil
	}
	store, recs, meta, err := openSimStore(cfg.Dir, cfg.LockTimeout)
	if err != nil {
		return nil, err
	}
	s.store = store
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range recs {
		o := &simObject{rec: rec}
		for range rec.Replicas {
			o.replicas = append(o.replicas, &simReplica{node: -1})
		}
		s.objects[rec.Key] = o
		s.order = append(s.order, o)
		s.seq = max(s.seq, rec.Seq)
	}
	// Place them as on a Ready cluster at full capacity (pods stay on
	// NotReady nodes, and on nodes whose allocatable shrank), and Ready at
	// once.
	s.placePending()
	for _, o := range s.order {
		for _, r := range o.replicas {
			r.readyAt = time.Time{}
		}
	}
	s.ready, s.capacityPct = meta.ready, meta.capacityPercent
	return s, nil
}

// errSimClosed is returned by the changes asked of a closed SimCluster.
var errSimClosed = errors.New("simulated cluster closed")

// Close releases Dir's file; without Dir it does nothing else. Afterwards
// Apply, Delete, Release and SetReady fail; reads still answer from
// memory. It may be called more than once.
func (s *SimCluster) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.store != nil {
		return s.store.close()
	}
	return nil
}

// writable says why the cluster takes no change, if it does not; s.mu is
// held.
func (s *SimCluster) writable(op string, key api.ObjectKey) error {
	switch {
	case s.closed:
		return fmt.Errorf("%s %s: %w", op, key.Display(), errSimClosed)
	case !s.ready:
		return fmt.Errorf("%s %s: %w", op, key.Display(), ErrUnavailable)
	}
	return nil
}

// Apply implements Cluster.
func (s *SimCluster) Apply(ctx context.Context, w Work) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := applicable(w); err != nil {
		return err
	}
	manifest, _, err := render(w)
	if err != nil {
		return err
	}
	return s.put(w, manifest, false)
}

// put stores the object of w, rendered as manifest; foreign is true for
// Create. Applied over a foreign object, it adopts it under
// ConflictOverwrite (its replicas keep running if its pod template is
// unchanged) and fails with ErrConflict otherwise.
func (s *SimCluster) put(w Work, manifest []byte, foreign bool) error {
	t, err := api.ParseTemplate(manifest)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("apply", w.Key); err != nil {
		return err
	}
	rec := simRecord{Key: w.Key, Generation: w.Generation, Manifest: manifest, HasReplicas: w.HasReplicas, PerReplica: t.PerReplica, Foreign: foreign}
	rec.PerReplica.Pods = 1
	if w.HasReplicas {
		rec.Replicas = w.Replicas
	}
	o := s.objects[w.Key]
	adopt := false
	if o != nil && o.rec.Foreign && !foreign {
		if w.ConflictResolution != ConflictOverwrite {
			return fmt.Errorf("apply %s: %w", w.Key.Display(), ErrConflict)
		}
		adopt = samePodTemplate(o.rec.Manifest, manifest)
	}
	if o != nil {
		rec.UID, rec.Created, rec.Seq = o.rec.UID, o.rec.Created, o.rec.Seq
	} else {
		rec.UID, rec.Created, rec.Seq = string(uuid.NewUUID()), s.cfg.Clock.Now().Round(0), s.seq+1
	}
	if s.store != nil && (o == nil || !o.rec.equal(rec)) {
		if err := s.store.put(rec); err != nil {
			return fmt.Errorf("apply %s: %w", w.Key.Display(), err)
		}
	}
	freed := false
	switch {
	case o == nil:
		o = &simObject{}
		s.objects[w.Key] = o
		s.order = append(s.order, o)
		s.seq = rec.Seq
	case o.rec.Generation != w.Generation && !adopt:
		o.restarts++
		for _, r := range o.replicas {
			freed = s.release(r, o.rec.PerReplica) || freed
		}
		o.replicas = nil
	}
	o.rec = rec
	for int32(len(o.replicas)) < o.rec.Replicas {
		o.replicas = append(o.replicas, &simReplica{node: -1})
	}
	if excess := len(o.replicas) - int(o.rec.Replicas); excess > 0 {
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
	return s.forget("delete", key)
}

// forget removes key's object and its replicas, first from the store; s.mu
// is held.
func (s *SimCluster) forget(op string, key api.ObjectKey) error {
	if err := s.writable(op, key); err != nil {
		return err
	}
	o := s.objects[key]
	if o == nil {
		return nil
	}
	if s.store != nil {
		if err := s.store.remove(key); err != nil {
			return fmt.Errorf("%s %s: %w", op, key.Display(), err)
		}
	}
	freed := false
	for _, r := range o.replicas {
		freed = s.release(r, o.rec.PerReplica) || freed
	}
	delete(s.objects, key)
	s.order = slices.DeleteFunc(s.order, func(x *simObject) bool { return x == o })
	if freed {
		s.placePending()
	}
	s.signal()
	return nil
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
	return s.forget("release", key)
}

// List implements Cluster; keys come sorted by their string form.
func (s *SimCluster) List(ctx context.Context) ([]api.ObjectKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]api.ObjectKey, 0, len(s.objects))
	for k, o := range s.objects {
		if !o.rec.Foreign {
			keys = append(keys, k)
		}
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
	if o == nil || o.rec.Foreign {
		return Status{}, fmt.Errorf("%s: %w", key.Display(), ErrNotFound)
	}
	st := Status{Key: key, AppliedGeneration: o.rec.Generation, Health: HealthHealthy}
	why, failing := s.failing[key]
	if !o.rec.HasReplicas {
		if failing {
			st.Health, st.Reason = HealthUnhealthy, why
		}
		return st, nil
	}
	c := s.counts(o, s.cfg.Clock.Now())
	st.Replicas, st.ReadyReplicas = o.rec.Replicas, c.Ready
	if failing {
		st.ReadyReplicas = 0
	}
	switch {
	case failing:
		st.Health, st.Reason = HealthUnhealthy, fmt.Sprintf("0/%d replicas ready: %s", o.rec.Replicas, why)
	case !s.ready:
		st.Health, st.Reason = HealthUnhealthy, fmt.Sprintf("cluster NotReady: %d/%d replicas ready", c.Ready, o.rec.Replicas)
	case c.Pending > 0:
		st.Health, st.Reason = HealthUnhealthy, fmt.Sprintf("%d/%d replicas Pending: %s", c.Pending, o.rec.Replicas, s.whyNot(o.rec.PerReplica))
	case c.Ready < o.rec.Replicas:
		st.Health, st.Reason = HealthProgressing, fmt.Sprintf("%d/%d replicas ready", c.Ready, o.rec.Replicas)
	}
	return st, nil
}

// LiveStatus implements LiveStatuser: replicas and readyReplicas as
// Status gives them, and the fields SetStatusFields set.
func (s *SimCluster) LiveStatus(ctx context.Context, key api.ObjectKey) (map[string]any, error) {
	st, err := s.Status(ctx, key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{"replicas": int64(st.Replicas), "readyReplicas": int64(st.ReadyReplicas)}
	for k, v := range s.statusFields[key] {
		out[k] = v
	}
	return out, nil
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
		// Scaled down, a node may run more than its allocatable.
		c.Available.CpuMilli += max(alloc.CPUMilli-used.CPUMilli, 0)
		c.Available.MemoryBytes += max(alloc.MemoryBytes-used.MemoryBytes, 0)
		c.Available.Pods += max(alloc.Pods-used.Pods, 0)
	}
	return c, nil
}

// Changed implements Cluster.
func (s *SimCluster) Changed() <-chan struct{} { return s.changed }

// Objects returns a snapshot of every object the cluster holds.
func (s *SimCluster) Objects() map[api.ObjectKey]SimObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[api.ObjectKey]SimObject, len(s.objects))
	now := s.cfg.Clock.Now()
	for k, o := range s.objects {
		c := s.counts(o, now)
		c.Key, c.UID, c.Created = k, o.rec.UID, o.rec.Created
		c.Generation, c.Manifest = o.rec.Generation, slices.Clone(o.rec.Manifest)
		c.HasReplicas, c.Replicas = o.rec.HasReplicas, o.rec.Replicas
		c.Restarts, c.Foreign = o.restarts, o.rec.Foreign
		out[k] = c
	}
	return out
}
