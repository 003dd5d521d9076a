package chaos

import (
	"slices"
	"time"
)

// Report is the outcome of one run of a scenario: what was done, how long
// the mesh took to recover, and every invariant's verdict.
type Report struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description,omitempty"`
	Seed        int64     `json:"seed"`
	Short       bool      `json:"short"`
	Mesh        MeshShape `json:"mesh"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended"`
	// Timeline is every event but the writes, in time order.
	Timeline []Event `json:"timeline"`
	// Writes and Deletes count the acknowledged writes and deletes.
	Writes  int `json:"writes"`
	Deletes int `json:"deletes"`
	// Activity is when they were acknowledged, per second of the run, in
	// time order and without the seconds that had none: the Timeline
	// leaves writes out, and the picture's writes lane needs their times.
	// Count keeps Writes, Deletes and Activity.
	Activity []Activity `json:"activity,omitempty"`
	// Peers are the lanes of the timeline: when each peer answered.
	Peers      []PeerTrack     `json:"peers"`
	Recoveries []Recovery      `json:"recoveries"`
	ByKind     []RecoveryStats `json:"recoveryByKind"`
	Invariants []Verdict       `json:"invariants"`
	// Measures are the durations of the wait steps that name one
	// (Step.Measure), in order.
	Measures []Measure `json:"measures,omitempty"`
	// Error is why the run stopped before its end (a step that failed),
	// empty when it ran to the end.
	Error  string `json:"error,omitempty"`
	Passed bool   `json:"passed"`
}

// Activity is the writes and deletes acknowledged in one second of a run.
type Activity struct {
	// At is the start of the second, Started plus a whole number of
	// seconds.
	At      time.Time `json:"at"`
	Writes  int       `json:"writes"`
	Deletes int       `json:"deletes"`
}

// Count adds an acknowledged Write or Delete to Writes or Deletes and to
// the Activity of its second; it ignores every other kind of event. Call
// it once Started is set, with events in time order (a late one is still
// counted in its own second, found by walking back).
func (r *Report) Count(e Event) {
	var w, d int
	switch e.Kind {
	case EventWrite:
		w = 1
	case EventDelete:
		d = 1
	default:
		return
	}
	r.Writes += w
	r.Deletes += d
	at := r.Started.Add(e.At.Sub(r.Started).Truncate(time.Second))
	if e.At.Before(r.Started) {
		at = r.Started
	}
	i := len(r.Activity)
	for i > 0 && r.Activity[i-1].At.After(at) {
		i--
	}
	if i > 0 && r.Activity[i-1].At.Equal(at) {
		r.Activity[i-1].Writes += w
		r.Activity[i-1].Deletes += d
		return
	}
	r.Activity = slices.Insert(r.Activity, i, Activity{At: at, Writes: w, Deletes: d})
}

// Measure is how long a named wait took.
type Measure struct {
	Name string        `json:"name"`
	Took time.Duration `json:"took"`
}

// MeshShape is the mesh a scenario ran on.
type MeshShape struct {
	Regions  int      `json:"regions"`
	Clusters int      `json:"clusters"`
	Edge     []string `json:"edge,omitempty"`
}

// PeerTrack is one peer's lane in the timeline.
type PeerTrack struct {
	Region  string `json:"region"`
	Cluster string `json:"cluster"`
	// Down are the spans when the peer did not answer the observer.
	Down []Span `json:"down,omitempty"`
	// Leader are the spans when it said it was its region's leader.
	Leader []Span `json:"leader,omitempty"`
}

// Span is a stretch of time.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// RecoveryStats sums up the recoveries of one kind of fault.
type RecoveryStats struct {
	Kind      EventKind     `json:"kind"`
	Phase     string        `json:"phase"`
	Faults    int           `json:"faults"`
	Recovered int           `json:"recovered"`
	Min       time.Duration `json:"min"`
	Median    time.Duration `json:"median"`
	P99       time.Duration `json:"p99"`
	Max       time.Duration `json:"max"`
}

// Verdict is one invariant's outcome.
type Verdict struct {
	Name    string `json:"name"`
	Promise string `json:"promise"`
	Passed  bool   `json:"passed"`
	// Violations holds at most MaxEvidence of them; Count is how many
	// there were.
	Violations []Violation `json:"violations,omitempty"`
	Count      int         `json:"count"`
}

// MaxEvidence is how many violations of one invariant a report keeps.
const MaxEvidence = 20
