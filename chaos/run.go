package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
)

// Options of a run.
type Options struct {
	Seed  int64
	Short bool
	// Progress, when set, gets a line per event as the run goes.
	Progress io.Writer
	// Interval of the observer's samples (default 300ms).
	Interval time.Duration
	// Checkers replace DefaultCheckers (tests plant their own).
	Checkers []Checker
}

// runner runs one scenario against a driver.
type runner struct {
	s    *Scenario
	d    Driver
	opts Options
	// rng draws the faults and their targets, alone, so that a seed
	// draws the same schedule whatever the writes do; peers chooses the
	// peer of each request.
	rng     *rand.Rand
	rngMu   sync.Mutex
	peers   *rand.Rand
	peersMu sync.Mutex
	rec     *recorder
	began   time.Time

	mu     sync.Mutex
	nextID int
	active []*activeFault // in the order injected
	named  map[string]*activeFault
	// pausedSet are the peers stopped with SIGSTOP.
	pausedSet map[string]bool
	measures  []Measure

	writers []*writer
}

// activeFault is a fault in force and how to end it.
type activeFault struct {
	id   int
	kind string
	name string
	heal func(ctx context.Context) error
}

// Run runs the scenario on the driver's mesh and returns its report. The
// error is for a run that could not be carried out (a step failed); the
// report then says so too and holds what was seen until then.
func Run(ctx context.Context, s *Scenario, d Driver, opts Options) (*Report, error) {
	if opts.Interval <= 0 {
		opts.Interval = 300 * time.Millisecond
	}
	checkers := opts.Checkers
	if checkers == nil {
		checkers = DefaultCheckers(CheckParams{Recover: s.Recover.D(), Settle: s.Settle.D(), Autonomy: s.Autonomy.D(),
			StatusBound: s.StatusBound.D(), Guarded: s.Guarded})
		checkers = append(checkers, NewForgeRefused())
		if s.asserts() {
			checkers = append(checkers, NewAssertions())
		}
	}
	r := &runner{s: s, d: d, opts: opts, rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x5ea1)),
		peers: rand.New(rand.NewPCG(uint64(opts.Seed), 0x9ee7)), named: map[string]*activeFault{}}
	r.began = time.Now()
	report := &Report{Scenario: s.Name, Description: s.Description, Seed: opts.Seed, Short: opts.Short,
		Mesh: MeshShape{Regions: s.Mesh.Regions, Clusters: s.Mesh.Clusters, Edge: s.Mesh.Edge}, Started: r.began}
	r.rec = newRecorder(report, d.Peers(), checkers)
	obs := observe(d, r.rec, opts.Interval)

	runErr := r.steps(ctx, s.Steps)
	for _, w := range r.writers {
		w.stop()
	}
	// Whatever happened, end every fault and bring every peer back, then
	// give the mesh its time to converge.
	cleanCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.healAll(cleanCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("healing at the end: %w", err))
	}
	r.restore(cleanCtx)
	r.note("every fault healed; waiting for convergence")
	final, convErr := r.converge(ctx)
	if convErr != nil {
		r.note("%v", convErr)
	} else {
		r.note("converged")
	}
	obs.stop()
	report.Ended = time.Now()
	report.Peers = r.rec.close(report.Ended)
	report.Passed = runErr == nil
	for _, c := range checkers {
		vs := c.Finish(final)
		n := len(vs)
		if cn, ok := c.(Counter); ok {
			n = max(n, cn.Count())
		}
		v := Verdict{Name: c.Name(), Promise: c.Promise(), Passed: n == 0, Count: n}
		if len(vs) > MaxEvidence {
			vs = vs[:MaxEvidence]
		}
		v.Violations = vs
		report.Invariants = append(report.Invariants, v)
		if n > 0 {
			report.Passed = false
		}
		if rc, ok := c.(RecoveryChecker); ok {
			report.Recoveries = append(report.Recoveries, rc.Recoveries()...)
		}
	}
	report.ByKind = Summarize(report.Recoveries)
	report.Measures = r.measures
	if runErr != nil {
		report.Error = runErr.Error()
	}
	return report, runErr
}

func (r *runner) steps(ctx context.Context, steps []Step) error {
	for i, st := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.step(ctx, st); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, stepName(st), err)
		}
	}
	return nil
}

// stepName names a step for an error message.
func stepName(st Step) string {
	switch {
	case st.Apply != "":
		return "apply " + firstLine(st.Apply)
	case st.Delete != "":
		return "delete " + firstLine(st.Delete)
	case st.Wait != "":
		return "wait " + st.Wait
	case st.Fault != "":
		return "fault " + st.Fault
	case st.Heal != "":
		return "heal " + st.Heal
	case st.Writes != nil:
		return "writes"
	case st.Bulk != nil:
		return "bulk"
	case st.Repeat != nil:
		return "repeat"
	case st.Random != nil:
		return "random"
	case st.Assert != "":
		return "assert " + st.Assert
	}
	return "sleep " + st.Sleep.D().String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func (r *runner) step(ctx context.Context, st Step) error {
	switch {
	case st.Apply != "" || st.Delete != "":
		return r.apply(ctx, st)
	case st.Wait != "":
		took, err := r.wait(ctx, st.Wait, st.Timeout.D())
		if err != nil {
			return err
		}
		if st.Measure != "" {
			r.mu.Lock()
			r.measures = append(r.measures, Measure{Name: st.Measure, Took: took})
			r.mu.Unlock()
		}
		return nil
	case st.Assert != "":
		r.assert(ctx, st.Assert)
		return nil
	case st.Fault != "":
		return r.inject(ctx, st.Fault, st.Target)
	case st.Heal != "":
		if st.Heal == "all" {
			return r.healAll(ctx)
		}
		r.mu.Lock()
		f := r.named[st.Heal]
		r.mu.Unlock()
		if f == nil {
			return fmt.Errorf("fault %q is not in force", st.Heal)
		}
		return r.heal(ctx, f)
	case st.Writes != nil:
		w := startWriter(r, *st.Writes)
		r.writers = append(r.writers, w)
		return nil
	case st.Bulk != nil:
		return r.bulk(ctx, *st.Bulk)
	case st.Sleep > 0:
		return sleep(ctx, st.Sleep.D())
	case st.Repeat != nil:
		for i := 0; i < st.Repeat.Times; i++ {
			if err := r.steps(ctx, st.Repeat.Steps); err != nil {
				return fmt.Errorf("round %d: %w", i+1, err)
			}
		}
		return nil
	case st.Random != nil:
		return r.random(ctx, *st.Random)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// note records a line in the timeline and prints it.
func (r *runner) note(format string, args ...any) {
	r.record(Event{Kind: EventNote, Detail: fmt.Sprintf(format, args...)})
}

func (r *runner) record(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if r.opts.Progress != nil && e.Kind != EventWrite && e.Kind != EventDelete && e.Kind != EventAttempt {
		var who []string
		who = append(who, e.Regions...)
		who = append(who, e.Clusters...)
		line := fmt.Sprintf("%8s  %-9s", "+"+e.At.Sub(r.began).Round(100*time.Millisecond).String(), e.Kind)
		if e.ID > 0 {
			line += fmt.Sprintf(" #%d", e.ID)
		}
		if len(e.Heals) > 0 {
			line += fmt.Sprintf(" ends #%v", e.Heals)
		}
		if len(who) > 0 {
			line += " " + strings.Join(who, ",")
		}
		if e.Detail != "" {
			line += "  " + e.Detail
		}
		fmt.Fprintln(r.opts.Progress, line)
	}
	r.rec.event(e)
}

// intn draws from the schedule's seeded source.
func (r *runner) intn(n int) int {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.IntN(n)
}

func (r *runner) float() float64 {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.Float64()
}

// apply sends manifests to a live peer (retrying on another one).
func (r *runner) apply(ctx context.Context, st Step) error {
	docs, del := st.Apply, false
	if docs == "" {
		docs, del = st.Delete, true
	}
	if data, ok := App(docs); ok {
		docs = string(data)
	}
	var last error
	for attempt := 0; attempt < 20; attempt++ {
		c, who, err := r.liveClient("")
		if err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var resp api.ApplyResponse
		if del {
			resp, err = c.DeleteDocuments(actx, []byte(docs))
		} else {
			resp, err = c.Apply(actx, []byte(docs))
		}
		cancel()
		if err == nil {
			var objs []string
			for _, res := range resp.Results {
				objs = append(objs, res.Object+" "+res.Result)
			}
			r.note("%s via %s: %s", map[bool]string{false: "applied", true: "deleted"}[del], who, strings.Join(objs, ", "))
			return nil
		}
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status == 400 {
			return err
		}
		last = err
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("no peer took the manifests: %w", last)
}

// liveClient picks a running peer of region ("" for any), at random.
func (r *runner) liveClient(region string) (*client.Client, string, error) {
	var live []Peer
	for _, p := range r.d.Peers() {
		if (region == "" || p.Region == region) && r.d.Running(p.Cluster) && !r.paused(p.Cluster) {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil, "", fmt.Errorf("no running peer in %s", cmpOr(region, "the mesh"))
	}
	r.peersMu.Lock()
	p := live[r.peers.IntN(len(live))]
	r.peersMu.Unlock()
	c, err := r.d.Client(p.Cluster)
	return c, p.Cluster, err
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// regions lists the mesh's regions in order.
func (r *runner) regions() []string {
	var out []string
	for _, p := range r.d.Peers() {
		if !slices.Contains(out, p.Region) {
			out = append(out, p.Region)
		}
	}
	return out
}

// clustersOf lists the clusters of a region.
func (r *runner) clustersOf(region string) []string {
	var out []string
	for _, p := range r.d.Peers() {
		if p.Region == region {
			out = append(out, p.Cluster)
		}
	}
	sort.Strings(out)
	return out
}

// regionOf finds a cluster's region.
func (r *runner) regionOf(cluster string) (string, bool) {
	for _, p := range r.d.Peers() {
		if p.Cluster == cluster {
			return p.Region, true
		}
	}
	return "", false
}
