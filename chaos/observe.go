package chaos

import (
	"context"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/api/client"
)

// recorder hands every Event and Sample, in the order they arrive, to the
// checkers from one goroutine, and keeps the timeline and each peer's
// lane for the report.
type recorder struct {
	in       chan any
	done     chan struct{}
	checkers []Checker

	// Owned by the recorder's goroutine until done is closed: the
	// report's timeline and write counts, and the peers' lanes.
	report *Report
	tracks map[string]*track
	order  []string
}

type track struct {
	PeerTrack
	downSince, leaderSince time.Time
}

func newRecorder(report *Report, peers []Peer, checkers []Checker) *recorder {
	r := &recorder{in: make(chan any, 1024), done: make(chan struct{}), checkers: checkers, report: report, tracks: map[string]*track{}}
	for _, p := range peers {
		r.tracks[p.Cluster] = &track{PeerTrack: PeerTrack{Region: p.Region, Cluster: p.Cluster}}
		r.order = append(r.order, p.Cluster)
	}
	go r.run()
	return r
}

func (r *recorder) run() {
	defer close(r.done)
	for item := range r.in {
		switch v := item.(type) {
		case Event:
			switch v.Kind {
			case EventWrite, EventDelete:
				r.report.Count(v)
			case EventAttempt:
			default:
				r.report.Timeline = append(r.report.Timeline, v)
			}
			for _, c := range r.checkers {
				c.Event(v)
			}
		case Sample:
			r.lane(v)
			for _, c := range r.checkers {
				c.Observe(v)
			}
		case chan []string:
			// failing: the checkers with a violation so far, in order
			// after everything recorded before the question.
			var names []string
			for _, c := range r.checkers {
				if n, ok := c.(Counter); ok && n.Count() > 0 {
					names = append(names, c.Name())
				}
			}
			v <- names
		}
	}
}

// lane extends the peer's down and leader spans.
func (r *recorder) lane(s Sample) {
	t := r.tracks[s.Cluster]
	if t == nil {
		return
	}
	switch {
	case !s.Up && t.downSince.IsZero():
		t.downSince = s.At
	case s.Up && !t.downSince.IsZero():
		t.Down = append(t.Down, Span{From: t.downSince, To: s.At})
		t.downSince = time.Time{}
	}
	leader := s.Up && s.Status != nil && s.Status.State == "Leader"
	switch {
	case leader && t.leaderSince.IsZero():
		t.leaderSince = s.At
	case !leader && !t.leaderSince.IsZero():
		t.Leader = append(t.Leader, Span{From: t.leaderSince, To: s.At})
		t.leaderSince = time.Time{}
	}
}

// event records an event; it is safe from any goroutine until close.
func (r *recorder) event(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	r.in <- e
}

func (r *recorder) sample(s Sample) { r.in <- s }

// failing returns the checkers that have seen a violation so far (of
// everything recorded before the call).
func (r *recorder) failing() []string {
	reply := make(chan []string, 1)
	r.in <- reply
	return <-reply
}

// close stops the recorder and closes the lanes' open spans at end.
func (r *recorder) close(end time.Time) []PeerTrack {
	close(r.in)
	<-r.done
	var out []PeerTrack
	for _, c := range r.order {
		t := r.tracks[c]
		if !t.downSince.IsZero() {
			t.Down = append(t.Down, Span{From: t.downSince, To: end})
		}
		if !t.leaderSince.IsZero() {
			t.Leader = append(t.Leader, Span{From: t.leaderSince, To: end})
		}
		out = append(out, t.PeerTrack)
	}
	return out
}

// observer samples every peer on an interval until stopped.
type observer struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func observe(d Driver, rec *recorder, every time.Duration) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{cancel: cancel}
	for _, p := range d.Peers() {
		c, err := d.Client(p.Cluster)
		if err != nil {
			continue
		}
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				rec.sample(sampleOf(ctx, p, c))
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	return o
}

// sampleOf reads one peer's views; a peer that does not answer its status
// within the timeout is down.
func sampleOf(ctx context.Context, p Peer, c *client.Client) Sample {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s := Sample{At: time.Now(), Region: p.Region, Cluster: p.Cluster}
	st, err := c.Status(ctx)
	if err != nil {
		return s
	}
	ws, err := c.Workloads(ctx)
	if err != nil {
		return s
	}
	cs, err := c.Clusters(ctx)
	if err != nil {
		return s
	}
	sim, err := c.Simulation(ctx)
	if err == nil {
		s.Sim = &sim
	}
	s.Up, s.Status, s.Workloads, s.Clusters = true, &st, ws, cs
	return s
}

func (o *observer) stop() {
	o.cancel()
	o.wg.Wait()
}
