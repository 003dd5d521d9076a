package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/shoalmesh/shoal/api"
)

// ReconcilerConfig configures a Reconciler. Zero durations take defaults.
type ReconcilerConfig struct {
	// ClusterName names the cluster in logs. Required.
	ClusterName string
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Clock drives retries and resyncs; nil means clock.RealClock. Its
	// AfterFunc callbacks only queue a key or signal a channel, so a fake
	// clock may run them with its own lock held.
	Clock clock.WithDelayedExecution
	// ResyncInterval is how often everything the cluster holds is compared
	// with everything desired, whether or not anything signalled a change.
	// Default 30s.
	ResyncInterval time.Duration
	// MinRetryDelay is the delay before the first retry of a failed sync;
	// it doubles with every further failure of the same key. Default 100ms.
	MinRetryDelay time.Duration
	// MaxRetryDelay caps the retry delay. Default 30s.
	MaxRetryDelay time.Duration
	// StartHeld makes the Reconciler start held (see SetHold): a peer that
	// restarts cut off from its region keeps its cluster as it is until it
	// has caught up.
	StartHeld bool
	// Workers is how many keys are synced at once; one key is never
	// synced by two workers at a time. Default 8: a sync mostly waits for
	// the API server, so a few in flight hide its round trips; many more
	// would only queue behind the client's rate limit.
	Workers int
}

// DefaultReconcilerConfig returns the defaults for the named cluster.
func DefaultReconcilerConfig(clusterName string) ReconcilerConfig {
	return ReconcilerConfig{
		ClusterName:    clusterName,
		Logger:         slog.Default(),
		Clock:          clock.RealClock{},
		ResyncInterval: 30 * time.Second,
		MinRetryDelay:  100 * time.Millisecond,
		MaxRetryDelay:  30 * time.Second,
		Workers:        8,
	}
}

// Validate checks that the cluster is named, that the durations are not
// negative and in order, and that Workers is not negative.
func (c ReconcilerConfig) Validate() error {
	var errs []error
	if c.ClusterName == "" {
		errs = append(errs, errors.New("reconciler config: cluster name is required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"resync interval", c.ResyncInterval}, {"min retry delay", c.MinRetryDelay}, {"max retry delay", c.MaxRetryDelay}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("reconciler config: %s must not be negative, got %s", d.name, d.v))
		}
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("reconciler config: workers must not be negative, got %d", c.Workers))
	}
	if d := c.withDefaults(); d.MinRetryDelay > d.MaxRetryDelay {
		errs = append(errs, fmt.Errorf("reconciler config: min retry delay (%s) is larger than max retry delay (%s)", d.MinRetryDelay, d.MaxRetryDelay))
	}
	return errors.Join(errs...)
}

func (c ReconcilerConfig) withDefaults() ReconcilerConfig {
	d := DefaultReconcilerConfig(c.ClusterName)
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = d.ResyncInterval
	}
	if c.MinRetryDelay == 0 {
		c.MinRetryDelay = d.MinRetryDelay
	}
	if c.MaxRetryDelay == 0 {
		c.MaxRetryDelay = d.MaxRetryDelay
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	return c
}

// Report receives status changes: the statuses that changed since they were
// last reported, and the keys the cluster no longer holds, each sorted by
// key. It is called from the Reconciler's workers, one call at a time (never
// concurrently, though not always from the same goroutine), in the order
// the changes were recorded: a batch goes out whenever no key is left
// waiting in the queue or 256 changes have gathered, and no call carries
// more than 256. It must not block for long (the worker calling it syncs
// nothing meanwhile; the callee batches or forwards) and must copy the
// slices if it keeps them.
type Report func(statuses []Status, removed []api.ObjectKey)

// maxBatch bounds how many statuses one Report call carries.
const maxBatch = 256

// Reconciler keeps one cluster matching the desired work (see the package
// documentation for its loop).
type Reconciler struct {
	cfg     ReconcilerConfig
	log     *slog.Logger
	cluster Cluster
	report  Report
	queue   *queue[api.ObjectKey]
	resync  chan struct{}
	started atomic.Bool
	ready   atomic.Bool
	onHold  atomic.Bool

	mu          sync.Mutex
	desired     map[api.ObjectKey]Work
	haveDesired bool
	held        map[api.ObjectKey]struct{} // keys the cluster was last seen to hold
	firstPass   map[api.ObjectKey]struct{} // keys left to sync before Ready
	passStarted bool

	// smu guards what the workers record per key (reconciler_report.go).
	// It is never held across a call to the cluster or to Report.
	smu      sync.Mutex
	reported map[api.ObjectKey]Status
	errs     map[api.ObjectKey]string
	// applied is a digest of the manifest last applied per key: a
	// manifest that changes without a new generation, because an override
	// policy changed, is applied again.
	applied      map[api.ObjectKey][sha256.Size]byte
	batch        map[api.ObjectKey]Status
	batchRemoved map[api.ObjectKey]struct{}
	// withheld is the change the hold keeps from being made, per key.
	withheld map[api.ObjectKey]string
	// flushMu makes Report calls one at a time; flushWanted and flushAll
	// ask its holder to look again before it lets go (see flush).
	flushMu     sync.Mutex
	flushWanted atomic.Bool
	flushAll    atomic.Bool
}

// NewReconciler returns a Reconciler for cluster that reports to report.
// Nothing happens until Run.
func NewReconciler(cfg ReconcilerConfig, cluster Cluster, report Report) (*Reconciler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cluster == nil {
		return nil, errors.New("reconciler: cluster is required")
	}
	if report == nil {
		return nil, errors.New("reconciler: report is required")
	}
	cfg = cfg.withDefaults()
	r := &Reconciler{
		cfg:          cfg,
		log:          cfg.Logger.With("cluster", cfg.ClusterName),
		cluster:      cluster,
		report:       report,
		queue:        newQueue[api.ObjectKey](cfg.Clock, cfg.MinRetryDelay, cfg.MaxRetryDelay),
		resync:       make(chan struct{}, 1),
		desired:      map[api.ObjectKey]Work{},
		held:         map[api.ObjectKey]struct{}{},
		reported:     map[api.ObjectKey]Status{},
		errs:         map[api.ObjectKey]string{},
		applied:      map[api.ObjectKey][sha256.Size]byte{},
		batch:        map[api.ObjectKey]Status{},
		batchRemoved: map[api.ObjectKey]struct{}{},
		withheld:     map[api.ObjectKey]string{},
	}
	r.onHold.Store(cfg.StartHeld)
	return r, nil
}

// SetDesired replaces the whole desired set for this cluster; the latest
// set wins, and rapid calls coalesce (a key changed many times before the
// worker reaches it is applied once, as last set). It never blocks on the
// cluster and may be called before Run. Works with a zero key are ignored;
// of works with the same key the last wins. A change of manifest must come
// with a new generation to be applied. The caller must not modify the
// manifests afterwards.
func (r *Reconciler) SetDesired(works []Work) {
	next := make(map[api.ObjectKey]Work, len(works))
	for _, w := range works {
		if w.Key == (api.ObjectKey{}) {
			r.log.Warn("ignoring desired work without a key")
			continue
		}
		next[w.Key] = w
	}
	r.mu.Lock()
	prev, first := r.desired, !r.haveDesired
	r.desired, r.haveDesired = next, true
	r.mu.Unlock()
	// prev and next are never modified once published, so the diff needs
	// no lock.
	for k, w := range next {
		if p, ok := prev[k]; !ok || !sameWork(p, w) {
			r.queue.Add(k)
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			r.queue.Add(k)
		}
	}
	if first {
		r.triggerResync() // now held-but-undesired keys may be deleted
	}
}

// sameWork reports whether a and b ask the same of the cluster, manifests
// aside (a changed manifest comes with a new generation).
func sameWork(a, b Work) bool {
	return a.Generation == b.Generation && a.HasReplicas == b.HasReplicas && a.Replicas == b.Replicas &&
		a.ConflictResolution == b.ConflictResolution && a.Release == b.Release && a.RenderError == b.RenderError &&
		bytes.Equal(a.Manifest, b.Manifest)
}

// Ready reports whether the first desired set has been reconciled: every
// key desired or held at that time has been synced once, successfully or
// not (failures are retried and reported in Status.Error), without the
// hold. Once true it stays true, through later holds too.
func (r *Reconciler) Ready() bool { return r.ready.Load() }

// SetHold holds the cluster exactly as it is (held true) or lets the
// Reconciler change it again (false). While held, syncs go on reading every
// key's status and reporting it, but make no change: no Apply, Delete or
// Release is started, and WithheldChanges counts what they would have
// done. Lifting the hold starts a full resync at once, so the cluster
// converges without waiting for the next one. A sync that had already
// decided on a change when SetHold(true) was called still makes it (it is
// not waited for); every sync that decides after SetHold(true) returns
// makes none. SetHold is safe to call from any goroutine, before Run too,
// and never blocks.
func (r *Reconciler) SetHold(held bool) {
	if r.onHold.Swap(held) == held {
		return
	}
	if held {
		r.log.Info("holding the cluster as it is: no changes until the hold is lifted")
		return
	}
	r.log.Info("hold lifted: resyncing", "withheld_changes", r.WithheldChanges())
	r.triggerResync()
}

// ResendStatuses makes the Reconciler report every key's status again on
// its next sync, whether or not it changed since it was last reported, and
// starts a full resync. The region forgets what a cluster reported when the
// cluster fails (its replicas may have stopped meanwhile); this is how the
// peer tells it again once it can read its cluster. Safe to call from any
// goroutine; it never blocks.
func (r *Reconciler) ResendStatuses() {
	r.smu.Lock()
	clear(r.reported)
	r.smu.Unlock()
	r.triggerResync()
}

// Held reports whether the Reconciler is held (see SetHold).
func (r *Reconciler) Held() bool { return r.onHold.Load() }

// WithheldChanges returns how many keys need a change (an apply, delete or
// release) that the hold kept from being made, as of their last sync. It
// falls back as syncs after the hold is lifted make the changes. Safe to
// call from any goroutine.
func (r *Reconciler) WithheldChanges() int {
	r.smu.Lock()
	defer r.smu.Unlock()
	return len(r.withheld)
}

// Run reconciles until ctx ends, then returns nil. It may be called once.
func (r *Reconciler) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("reconciler: Run called twice")
	}
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.work(ctx) })
	}
	defer wg.Wait()
	defer r.queue.ShutDown()

	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	listFailures := 0
	// keys is reused for every change signal: a burst of changes (every
	// replica becoming Ready signals one) would otherwise allocate a list
	// of every known key for each.
	var keys []api.ObjectKey
	r.triggerResync()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.cluster.Changed():
			keys = r.knownKeys(keys[:0], nil)
			for _, k := range keys {
				r.queue.Nudge(k)
			}
		case <-r.resync:
			if timer != nil {
				timer.Stop()
			}
			next := r.cfg.ResyncInterval
			if err := r.fullResync(ctx); err != nil {
				listFailures++
				next = backoff(r.cfg.MinRetryDelay, r.cfg.MaxRetryDelay, listFailures)
				r.log.Warn("listing objects failed", "err", err, "retry_in", next)
			} else {
				listFailures = 0
			}
			timer = r.cfg.Clock.AfterFunc(next, r.triggerResync)
		}
	}
}

func (r *Reconciler) triggerResync() {
	select {
	case r.resync <- struct{}{}:
	default:
	}
}

// fullResync lists the cluster and queues every key held or desired. The
// first successful one after the desired set is known, and not held,
// starts the pass that makes the Reconciler Ready.
func (r *Reconciler) fullResync(ctx context.Context) error {
	listed, err := r.cluster.List(ctx)
	keys := r.knownKeys(nil, listed)
	startPass := false
	if err == nil && !r.onHold.Load() {
		r.mu.Lock()
		if r.haveDesired && !r.passStarted {
			r.passStarted, startPass = true, true
			r.firstPass = make(map[api.ObjectKey]struct{}, len(keys))
			for _, k := range keys {
				r.firstPass[k] = struct{}{}
			}
		}
		r.mu.Unlock()
	}
	var waiting []api.ObjectKey
	for _, k := range keys {
		if !r.queue.Nudge(k) {
			waiting = append(waiting, k)
		}
	}
	if startPass {
		// Keys waiting out a backoff have failed a sync already.
		r.passed(waiting...)
	}
	return err
}

// knownKeys adds listed to the held keys and appends held ∪ desired to
// keys.
func (r *Reconciler) knownKeys(keys, listed []api.ObjectKey) []api.ObjectKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range listed {
		r.held[k] = struct{}{}
	}
	keys = slices.Grow(keys, len(r.held)+len(r.desired))
	for k := range r.held {
		keys = append(keys, k)
	}
	for k := range r.desired {
		if _, ok := r.held[k]; !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// backoff returns minDelay doubled for every failure after the first, at
// most maxDelay.
func backoff(minDelay, maxDelay time.Duration, failures int) time.Duration {
	d := minDelay
	for i := 1; i < failures && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

// work is a worker's loop. The queue hands a key to one worker at a time;
// a worker reports the pending batch when no key is waiting or the batch
// is full.
func (r *Reconciler) work(ctx context.Context) {
	for {
		k, ok := r.queue.Get()
		if !ok {
			return
		}
		counts, err := r.sync(ctx, k)
		switch {
		case err == nil:
			r.queue.Forget(k)
		case ctx.Err() == nil:
			// An unavailable cluster is retried as soon as it signals a
			// change; any other failure waits out its backoff.
			d := r.queue.AddRateLimited(k, !errors.Is(err, ErrUnavailable))
			r.log.Warn("sync failed", "key", k.String(), "err", err, "retry_in", d)
		}
		r.queue.Done(k)
		if counts {
			r.passed(k)
		}
		r.flush(r.queue.Len() == 0)
	}
}

// passed records that keys were synced against a known desired set, and
// makes the Reconciler Ready when that completes the first pass.
func (r *Reconciler) passed(keys ...api.ObjectKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstPass == nil {
		return
	}
	for _, k := range keys {
		delete(r.firstPass, k)
	}
	if len(r.firstPass) == 0 {
		r.firstPass = nil
		r.ready.Store(true)
		r.log.Info("first desired set reconciled")
	}
}
