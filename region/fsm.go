package region

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// Limits that keep the state machine bounded.
const (
	eventsPerWorkload = 20
	clusterEvents     = 100
	// DefaultTombstoneTTL is how long a deleted object's tombstone is kept
	// at most when not every known region has acknowledged it, so that a
	// late write with an older version cannot resurrect it. A region cut
	// off for longer resynchronises in full.
	DefaultTombstoneTTL = 24 * time.Hour
	// TombstoneQuarantine is how long a tombstone is kept at least, even
	// once every region acknowledged it: far longer than a sync can be in
	// flight (a link's call times out well within it), so that a write
	// older than the delete, sent before its region merged the delete,
	// still finds the tombstone when it arrives.
	TombstoneQuarantine = time.Minute
	snapshotFormat      = 1
)

// ErrBadCommand is returned (as the Apply response) for a command the state
// machine refuses: it could not be decoded, or names nothing. Such a command
// changes nothing on any replica.
var ErrBadCommand = errors.New("bad command")

// ErrExists is returned for an ApplyObjects with only_new naming an object
// the region holds.
var ErrExists = errors.New("exists")

// Revisions count changes by category: each changes whenever its category
// does, so a reader that remembers the last Revisions it saw can skip work
// when nothing it depends on moved. They are local to this peer.
type Revisions struct {
	Objects  uint64
	Clusters uint64
	Bindings uint64
	Statuses uint64
	// Regions moves when another region's summary or verdict changes.
	Regions uint64
}

// FSM is the region state machine. It implements raft.FSM. Apply, Snapshot
// and Restore are called by Raft from one goroutine; the read methods may be
// called from any goroutine.
type FSM struct {
	region       string
	logger       *slog.Logger
	tombstoneTTL int64 // ms
	// tombstoneQuarantine is how long an acknowledged tombstone is kept
	// at least (ms).
	tombstoneQuarantine int64

	mu  sync.RWMutex
	st  *State
	seq uint64 // local change counter behind Revisions

	appliedMu sync.Mutex
	applied   uint64
	appliedCh chan struct{} // closed and replaced on every applied index

	subMu   sync.Mutex
	subs    map[int]chan struct{}
	nextSub int
}

var _ raft.FSM = (*FSM)(nil)

// FSMOption changes a state machine's settings. Every replica of a region
// must be given the same ones: they decide what the state becomes.
type FSMOption func(*FSM)

// WithTombstoneTTL sets how long a tombstone that not every known region
// has acknowledged is kept (DefaultTombstoneTTL unless set).
func WithTombstoneTTL(d time.Duration) FSMOption {
	return func(f *FSM) { f.tombstoneTTL = d.Milliseconds() }
}

// WithTombstoneQuarantine sets how long a tombstone every region
// acknowledged is kept at least (TombstoneQuarantine unless set; tests
// shorten it).
func WithTombstoneQuarantine(d time.Duration) FSMOption {
	return func(f *FSM) { f.tombstoneQuarantine = d.Milliseconds() }
}

// NewFSM returns an empty state machine for the named region.
func NewFSM(region string, logger *slog.Logger, opts ...FSMOption) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FSM{
		region:              region,
		logger:              logger,
		tombstoneTTL:        DefaultTombstoneTTL.Milliseconds(),
		tombstoneQuarantine: TombstoneQuarantine.Milliseconds(),
		st:                  newState(),
		appliedCh:           make(chan struct{}),
		subs:                map[int]chan struct{}{},
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

// TombstoneTTL is how long an unacknowledged tombstone is kept.
func (f *FSM) TombstoneTTL() time.Duration { return time.Duration(f.tombstoneTTL) * time.Millisecond }

// Apply applies one committed log entry. The response is nil, an error
// wrapping ErrBadCommand, or, for ApplyObjects and DeleteObjects, an
// encoded shoalpb.ObjectResults saying what the command did to each object
// at this index (it travels back to the writer). A command of a type this
// version does not know (from a newer peer) is skipped.
func (f *FSM) Apply(l *raft.Log) interface{} {
	var cmd shoalpb.Command
	var err error
	var results *shoalpb.ObjectResults
	changed := false
	if uerr := proto.Unmarshal(l.Data, &cmd); uerr != nil {
		// Refused identically on every replica, so the state stays the same
		// everywhere; a peer must not die for one bad entry.
		err = fmt.Errorf("%w: entry %d cannot be decoded: %v", ErrBadCommand, l.Index, uerr)
		f.logger.Error("skipping undecodable log entry", "index", l.Index, "err", uerr)
	} else {
		f.mu.Lock()
		now := l.AppendedAt.UnixMilli()
		if l.AppendedAt.IsZero() || now < f.st.lastMs {
			now = f.st.lastMs
		}
		f.st.lastMs = now
		f.seq++
		a := &applier{st: f.st, index: f.seq, now: now, region: f.region, tombstoneTTL: f.tombstoneTTL, quarantine: f.tombstoneQuarantine}
		err = a.apply(&cmd)
		changed, results = a.changed, a.results
		f.mu.Unlock()
	}
	f.setApplied(l.Index)
	if changed {
		f.notify()
	}
	if err == nil && results != nil {
		data, merr := proto.Marshal(results)
		if merr == nil {
			return data
		}
	}
	if err != nil {
		return err
	}
	return nil
}

// Snapshot captures the state for Raft, with the index of the last entry
// it includes. Stored messages are immutable, so copying the maps is
// enough; encoding happens in Persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	snap := f.st.toProto()
	snap.AppliedIndex = f.AppliedIndex()
	return &fsmSnapshot{snap: snap}, nil
}

// Restore replaces the state with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("region: reading snapshot: %w", err)
	}
	var snap shoalpb.Snapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("region: decoding snapshot: %w", err)
	}
	if snap.GetFormat() > snapshotFormat {
		return fmt.Errorf("region: snapshot format %d is newer than this peer understands (%d)", snap.GetFormat(), snapshotFormat)
	}
	st := stateFromProto(&snap)
	f.mu.Lock()
	f.seq++
	st.rev = Revisions{Objects: f.seq, Clusters: f.seq, Bindings: f.seq, Statuses: f.seq, Regions: f.seq}
	f.st = st
	f.mu.Unlock()
	// A follower that installs the leader's snapshot is at its index: a
	// reader waiting for an index it covers must not wait for an entry
	// that will never be applied here.
	f.resetApplied(snap.GetAppliedIndex())
	f.notify()
	return nil
}

// Read calls fn with the current state under a read lock. fn must not keep
// the State itself, nor modify any message it reads; it may keep the
// messages, which are never changed once stored.
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// Subscribe returns a channel that receives a value (coalesced) after every
// change of the state, and a function that ends the subscription.
func (f *FSM) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.subMu.Lock()
	id := f.nextSub
	f.nextSub++
	f.subs[id] = ch
	f.subMu.Unlock()
	return ch, func() {
		f.subMu.Lock()
		delete(f.subs, id)
		f.subMu.Unlock()
	}
}

func (f *FSM) notify() {
	f.subMu.Lock()
	defer f.subMu.Unlock()
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// AppliedIndex is the index of the last log entry applied.
func (f *FSM) AppliedIndex() uint64 {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.applied
}

func (f *FSM) setApplied(index uint64) {
	f.appliedMu.Lock()
	if index > f.applied {
		f.applied = index
	}
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.appliedMu.Unlock()
}

// resetApplied sets the applied index after a restore, which may move it
// back (a restore on start) or forward (a snapshot from the leader).
func (f *FSM) resetApplied(index uint64) {
	f.appliedMu.Lock()
	f.applied = index
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.appliedMu.Unlock()
}

// StateHash is a digest of the replicated state: replicas that applied
// the same log have the same hash, whatever snapshots they took or
// restored on the way. Revisions (local counters) are not part of it.
func (f *FSM) StateHash() [32]byte {
	f.mu.RLock()
	snap := f.st.toProto()
	f.mu.RUnlock()
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(snap)
	if err != nil {
		panic(fmt.Sprintf("region: encoding the state: %v", err)) // stored messages always encode
	}
	return sha256.Sum256(data)
}

// WaitApplied blocks until the entry at index has been applied here, so a
// client that wrote through this peer reads its own write.
func (f *FSM) WaitApplied(done <-chan struct{}, index uint64) bool {
	for {
		f.appliedMu.Lock()
		applied, ch := f.applied, f.appliedCh
		f.appliedMu.Unlock()
		if applied >= index {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

type fsmSnapshot struct {
	snap *shoalpb.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := proto.Marshal(s.snap)
	if err == nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("region: writing snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// applier applies one command to the state.
type applier struct {
	st      *State
	index   uint64 // the change counter for Revisions
	now     int64
	region  string
	changed bool
	// tombstoneTTL and quarantine are FSM.tombstoneTTL and
	// FSM.tombstoneQuarantine.
	tombstoneTTL, quarantine int64
	results                  *shoalpb.ObjectResults // what ApplyObjects or DeleteObjects did
}

func (a *applier) apply(cmd *shoalpb.Command) error {
	switch c := cmd.GetCmd().(type) {
	case *shoalpb.Command_ApplyObjects:
		return a.applyObjects(c.ApplyObjects)
	case *shoalpb.Command_DeleteObjects:
		return a.deleteObjects(c.DeleteObjects)
	case *shoalpb.Command_ReportCluster:
		return a.reportCluster(c.ReportCluster)
	case *shoalpb.Command_SetClusterState:
		return a.setClusterState(c.SetClusterState)
	case *shoalpb.Command_RemoveCluster:
		return a.removeCluster(c.RemoveCluster)
	case *shoalpb.Command_SetBindings:
		return a.setBindings(c.SetBindings)
	case *shoalpb.Command_ReportStatus:
		return a.reportStatus(c.ReportStatus)
	case *shoalpb.Command_RecordEvents:
		for _, e := range c.RecordEvents.GetEvents() {
			a.event(e.GetWorkload(), e.GetCluster(), e.GetType(), e.GetReason(), e.GetMessage())
		}
		return nil
	case *shoalpb.Command_LeaveRegion:
		return a.leaveRegion(c.LeaveRegion)
	case *shoalpb.Command_MergeObjects:
		return a.mergeObjects(c.MergeObjects)
	case *shoalpb.Command_SetRegionSummary:
		return a.setRegionSummary(c.SetRegionSummary)
	case *shoalpb.Command_RegionsHeard:
		return a.regionsHeard(c.RegionsHeard)
	case *shoalpb.Command_SetRegionState:
		return a.setRegionState(c.SetRegionState)
	case *shoalpb.Command_ForgetRegion:
		return a.forgetRegion(c.ForgetRegion)
	case *shoalpb.Command_Rebalance:
		return a.rebalance(c.Rebalance)
	case *shoalpb.Command_Migrate:
		return a.migrate(c.Migrate)
	default:
		// A command type from a newer peer: skipped on every replica alike.
		return nil
	}
}

// stamp advances the region's hybrid logical clock.
func (a *applier) stamp() *shoalpb.Version {
	c := a.st.clock
	v := &shoalpb.Version{WallMs: a.now, Origin: a.region}
	if c != nil && c.GetWallMs() >= a.now {
		v.WallMs = c.GetWallMs()
		v.Logical = c.GetLogical() + 1
	}
	a.st.clock = v
	a.st.watermarks[a.region] = v
	return v
}

// validKey refuses a key that Kubernetes would not accept (api.ValidateKey),
// so that two different objects can never share a state key, whoever
// wrote the command.
func validKey(k *shoalpb.ObjectKey) error {
	if err := api.ValidateKey(api.KeyFromProto(k)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	return nil
}

func (a *applier) applyObjects(c *shoalpb.ApplyObjects) error {
	// Check everything first: the command is all or nothing.
	for _, o := range c.GetObjects() {
		if err := validKey(o.GetKey()); err != nil {
			return err
		}
		if len(o.GetManifest()) == 0 {
			return fmt.Errorf("%w: %s has no manifest", ErrBadCommand, api.KeyFromProto(o.GetKey()).Display())
		}
		if old := a.st.objects[api.KeyFromProto(o.GetKey()).String()]; c.GetOnlyNew() && old != nil && !old.GetDeleted() {
			return fmt.Errorf("%w: %s is already Shoal's (generation %d); nothing was written", ErrExists, api.KeyFromProto(o.GetKey()).Display(), old.GetGeneration())
		}
	}
	a.results = &shoalpb.ObjectResults{}
	for _, o := range c.GetObjects() {
		key := api.KeyFromProto(o.GetKey())
		ks := key.String()
		old := a.st.objects[ks]
		if old != nil && !old.GetDeleted() && bytes.Equal(old.GetManifest(), o.GetManifest()) {
			a.result(key, "unchanged", old.GetGeneration())
			continue
		}
		if old != nil && !old.GetDeleted() {
			a.result(key, "configured", old.GetGeneration()+1)
		} else {
			a.result(key, "created", old.GetGeneration()+1)
		}
		n := &shoalpb.Object{
			Key:           key.Proto(),
			Manifest:      bytes.Clone(o.GetManifest()),
			Version:       a.stamp(),
			Generation:    old.GetGeneration() + 1,
			CreatedUnixMs: a.now,
			UpdatedUnixMs: a.now,
			Replaced:      old.GetVersion(),
		}
		if old != nil && !old.GetDeleted() {
			n.CreatedUnixMs = old.GetCreatedUnixMs()
		}
		a.st.objects[ks] = n
		a.st.rev.Objects = a.index
		a.changed = true
	}
	return nil
}

func (a *applier) deleteObjects(c *shoalpb.DeleteObjects) error {
	for _, k := range c.GetKeys() {
		// An object stored before keys were validated can still be deleted.
		if _, stored := a.st.objects[api.KeyFromProto(k).String()]; stored {
			continue
		}
		if err := validKey(k); err != nil {
			return err
		}
	}
	preserve := map[string]bool{}
	for _, k := range c.GetPreserve() {
		preserve[api.KeyFromProto(k).String()] = true
	}
	a.results = &shoalpb.ObjectResults{}
	for _, k := range c.GetKeys() {
		key := api.KeyFromProto(k)
		ks := key.String()
		old := a.st.objects[ks]
		if old == nil || old.GetDeleted() {
			a.result(key, "not found", old.GetGeneration())
			continue
		}
		a.result(key, "deleted", old.GetGeneration())
		a.st.objects[ks] = &shoalpb.Object{
			Key:                key.Proto(),
			Version:            a.stamp(),
			Generation:         old.GetGeneration(),
			Deleted:            true,
			CreatedUnixMs:      old.GetCreatedUnixMs(),
			UpdatedUnixMs:      a.now,
			PreserveOnClusters: preserve[ks],
			Replaced:           old.GetVersion(),
		}
		delete(a.st.events, ks)
		a.st.rev.Objects = a.index
		a.changed = true
	}
	a.collectTombstones()
	return nil
}

// result records what the command did to one object.
func (a *applier) result(key api.ObjectKey, what string, generation int64) {
	a.results.Results = append(a.results.Results, &shoalpb.ObjectResult{Key: key.Proto(), Result: what, Generation: generation})
}

// event records an event about a workload (nil key: about a cluster).
func (a *applier) event(wk *shoalpb.ObjectKey, cluster, typ, reason, msg string) {
	workload, limit := "", clusterEvents
	if wk != nil {
		workload, limit = api.KeyFromProto(wk).String(), eventsPerWorkload
		wk = a.sharedKey(workload, wk)
	}
	e := &shoalpb.Event{UnixMs: a.now, Workload: wk, Cluster: cluster, Type: typ, Reason: reason, Message: msg}
	evs := append(a.st.events[workload], e)
	if len(evs) > limit {
		evs = append([]*shoalpb.Event(nil), evs[len(evs)-limit:]...)
	}
	a.st.events[workload] = evs
	a.changed = true
}

// sharedKey gives the key message of the stored object ks, when there is
// one, for a message that refers to it by k: events and statuses then share
// one key per workload instead of each keeping the one of the command that
// made it (a workload's 20 events and 3 statuses held 23 copies). Stored
// messages are never modified, so sharing is safe; the state's value is
// the same either way.
func (a *applier) sharedKey(ks string, k *shoalpb.ObjectKey) *shoalpb.ObjectKey {
	if o := a.st.objects[ks]; o != nil && o.GetKey() != nil {
		return o.GetKey()
	}
	return k
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
