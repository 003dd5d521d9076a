package chaos

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Scenario is a chaos scenario: the mesh it runs on, the promises' stated
// times, and its steps.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Mesh        struct {
		Regions  int `json:"regions"`
		Clusters int `json:"clusters"`
		// Edge regions run their peers with --edge (edge timing, an
		// autonomy period, the edge region grace).
		Edge []string `json:"edge,omitempty"`
		// Args are passed to every agent.
		Args []string `json:"args,omitempty"`
	} `json:"mesh"`
	// Recover is the stated time within which every workload's desired
	// replicas are Ready again after each fault (default 60s).
	Recover Duration `json:"recover,omitempty"`
	// Settle is how long after a heal a cluster still counts as disturbed
	// (default 10s).
	Settle Duration `json:"settle,omitempty"`
	// StatusBound is the agents' --status-bound (default 15s): no status
	// older than it may be shown as Ready.
	StatusBound Duration `json:"statusBound,omitempty"`
	// Autonomy is how long an edge region keeps its workloads unchanged
	// while its link is down (default 10m, the agents' --autonomy-period
	// with --edge).
	Autonomy Duration `json:"autonomy,omitempty"`
	// Converge bounds the wait for convergence after the last heal
	// (default 2m).
	Converge Duration `json:"converge,omitempty"`
	// Guarded are the workloads ("Kind namespace/name") that must never
	// run twice.
	Guarded []string `json:"guarded,omitempty"`
	Steps   []Step   `json:"steps"`
}

// Step is one step of a scenario. Exactly one of Apply, Delete, Wait,
// Fault, Heal, Writes, Bulk, Sleep, Repeat and Random is set.
type Step struct {
	// Apply sends manifests to a peer: the name of a built-in application
	// (Apps), a file (relative to the scenario file), or inline YAML.
	Apply string `json:"apply,omitempty"`
	// Delete deletes the objects of such manifests.
	Delete string `json:"delete,omitempty"`
	// Wait for ready (every workload's replicas Ready), regions (every
	// region sees every other alive), converged (ready, every region and
	// every running peer in it holds the same objects, the same split,
	// and no replicas kept for release) or leaders (every region has a
	// leader).
	Wait string `json:"wait,omitempty"`
	// Timeout of a Wait (default 90s): a wait that times out fails the
	// run.
	Timeout Duration `json:"timeout,omitempty"`
	// Measure names a Wait's duration in the report's measures (e.g. the
	// catch-up after a heal).
	Measure string `json:"measure,omitempty"`
	// Fault injects a fault (FaultKinds); For, when set, heals it after
	// that long (the step blocks), else it lasts until a Heal step.
	Fault string `json:"fault,omitempty"`
	Target
	// Heal ends the faults still in force: "all", or a fault's Name.
	Heal string `json:"heal,omitempty"`
	// Writes starts a stream of ConfigMap writes in the background.
	Writes *Writes `json:"writes,omitempty"`
	// Bulk writes many ConfigMaps at once through a peer of one region
	// (to measure how fast another region catches up).
	Bulk *Bulk `json:"bulk,omitempty"`
	// Sleep waits.
	Sleep Duration `json:"sleep,omitempty"`
	// Repeat runs Steps Times times.
	Repeat *Repeat `json:"repeat,omitempty"`
	// Random runs a seeded random schedule of faults.
	Random *Random `json:"random,omitempty"`
	// Assert checks, once and at once, a condition of the mesh (ready,
	// regions, converged or leaders, as Wait has them) or that every
	// invariant held so far (invariants). One that does not hold fails
	// the run's assertions, and the run goes on.
	Assert string `json:"assert,omitempty"`
}

// AssertConditions are what an assert step can check.
var AssertConditions = []string{"ready", "regions", "converged", "leaders", "invariants"}

// Target says what a fault acts on and how.
type Target struct {
	// Name lets a later Heal step name this fault.
	Name string `json:"name,omitempty"`
	// Cluster names a peer, or "leader:REGION" for that region's leader,
	// or "random" (seeded), or "random:REGION".
	Cluster string `json:"cluster,omitempty"`
	// Region names a region (kill-region, restart-region, flap, cut-region).
	Region string `json:"region,omitempty"`
	// Sides of a partition: each side a list of regions, or of clusters of
	// one region (a partition inside the region).
	Sides [][]string `json:"sides,omitempty"`
	// OneWay makes a cut asymmetric: the first side's traffic to the
	// others is dropped, theirs to it still arrives.
	OneWay bool `json:"oneWay,omitempty"`
	// Layer of a network fault: wan, gossip, raft or all.
	Layer string `json:"layer,omitempty"`
	// Delay, Jitter and Loss of a slow or lossy link.
	Delay  Duration `json:"delay,omitempty"`
	Jitter Duration `json:"jitter,omitempty"`
	Loss   float64  `json:"loss,omitempty"`
	// Offset of a clock skew.
	Offset Duration `json:"offset,omitempty"`
	// For is how long the fault lasts; Period is one down-and-up cycle of
	// a flap (half of it down); Times and Every repeat a kill-leader loop.
	For    Duration `json:"for,omitempty"`
	Period Duration `json:"period,omitempty"`
	Times  int      `json:"times,omitempty"`
	Every  Duration `json:"every,omitempty"`
	// As is the cluster whose certificate a forged-identity probe uses.
	As string `json:"as,omitempty"`
}

// Writes is a stream of ConfigMap writes, each through a random live
// peer, retried until acknowledged.
type Writes struct {
	// Rate is writes per second (default 10); Keys how many different
	// ConfigMaps (default 50); Deletes the share of deletes (0 to 1).
	Rate    float64 `json:"rate,omitempty"`
	Keys    int     `json:"keys,omitempty"`
	Deletes float64 `json:"deletes,omitempty"`
	// For is how long the stream runs (default: until the last step).
	For Duration `json:"for,omitempty"`
}

// Bulk is Count ConfigMaps (namespace chaos-bulk) written in one apply
// through a running peer of Region.
type Bulk struct {
	Count  int    `json:"count"`
	Region string `json:"region"`
}

// Repeat runs its steps several times.
type Repeat struct {
	Times int    `json:"times"`
	Steps []Step `json:"steps"`
}

// Random is a seeded random schedule: one fault at a time, drawn from
// Faults, held for a time drawn from Hold, then healed, then a Gap.
type Random struct {
	For    Duration   `json:"for"`
	Faults []string   `json:"faults,omitempty"`
	Hold   []Duration `json:"hold,omitempty"`
	Gap    Duration   `json:"gap,omitempty"`
}

// FaultKinds are the faults a step can inject.
var FaultKinds = []string{
	"kill", "stop", "restart", "kill-leader", "kill-region", "restart-region",
	"partition", "cut", "delay", "loss", "flap",
	"not-ready", "drain", "skew", "cut-off-restart", "forge", "apiserver-stop",
}

// Duration is a time.Duration written as a Go duration ("5s") in YAML.
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON reads "5s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*d = 0
		return nil
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs float64
	if _, err := fmt.Sscan(s, &secs); err == nil && !strings.ContainsAny(s, " \t") {
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	return fmt.Errorf("%q is not a duration (want e.g. 5s, 1m30s)", s)
}

// MarshalJSON writes the duration as "5s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.D().String() + `"`), nil }

//go:embed scenarios/*.yaml
var builtins embed.FS

//go:embed apps/*.yaml
var apps embed.FS

// List returns the built-in scenarios, by name.
func List() ([]*Scenario, error) {
	names, err := fs.Glob(builtins, "scenarios/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*Scenario
	for _, n := range names {
		data, err := builtins.ReadFile(n)
		if err != nil {
			return nil, err
		}
		s, err := Parse(data, false, "")
		if err != nil {
			return nil, fmt.Errorf("built-in %s: %w", n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Load reads a scenario by built-in name or from a file, in its long or
// short variant.
func Load(nameOrFile string, short bool) (*Scenario, error) {
	if data, err := builtins.ReadFile("scenarios/" + nameOrFile + ".yaml"); err == nil {
		return Parse(data, short, "")
	}
	data, err := os.ReadFile(nameOrFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%q is neither a built-in scenario (shoal chaos list) nor a file", nameOrFile)
		}
		return nil, err
	}
	return Parse(data, short, filepath.Dir(nameOrFile))
}

// App returns the manifests of a built-in application.
func App(name string) ([]byte, bool) {
	data, err := apps.ReadFile("apps/" + name + ".yaml")
	return data, err == nil
}

var paramRef = regexp.MustCompile(`\$\{([A-Za-z][A-Za-z0-9_-]*)\}`)

// Parse reads a scenario. Its top-level params (and, when short, the
// short section's values over them) are substituted for ${name} in the
// rest of the document before it is decoded; dir is where relative
// manifest files are found ("" for none).
func Parse(data []byte, short bool, dir string) (*Scenario, error) {
	var head struct {
		Params map[string]any `json:"params"`
		Short  map[string]any `json:"short"`
	}
	// ${name} is not YAML everywhere (in a flow mapping it is not): the
	// params are read with every reference standing in as 0.
	if err := yaml.Unmarshal(paramRef.ReplaceAll(data, []byte("0")), &head); err != nil {
		return nil, fmt.Errorf("scenario: %v", err)
	}
	for k := range head.Short {
		if _, ok := head.Params[k]; !ok {
			return nil, fmt.Errorf("scenario: short sets %q, which is not one of its params", k)
		}
	}
	values := map[string]string{}
	for k, v := range head.Params {
		values[k] = fmt.Sprint(v)
	}
	if short {
		for k, v := range head.Short {
			values[k] = fmt.Sprint(v)
		}
	}
	var missing []string
	body := paramRef.ReplaceAllFunc(data, func(m []byte) []byte {
		name := string(paramRef.FindSubmatch(m)[1])
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("scenario: ${%s} is not one of its params", strings.Join(missing, "}, ${"))
	}
	// The params and short sections are read above; the rest is strict.
	var doc map[string]any
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("scenario: %v", err)
	}
	delete(doc, "params")
	delete(doc, "short")
	rest, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var s Scenario
	if err := yaml.UnmarshalStrict(rest, &s); err != nil {
		return nil, fmt.Errorf("scenario: %v", err)
	}
	s.defaults()
	if err := s.resolve(dir); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Scenario) defaults() {
	if s.Mesh.Regions == 0 {
		s.Mesh.Regions = 1
	}
	if s.Mesh.Clusters == 0 {
		s.Mesh.Clusters = 3
	}
	set := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	set(&s.Recover, 60*time.Second)
	set(&s.Settle, 10*time.Second)
	set(&s.StatusBound, 15*time.Second)
	set(&s.Autonomy, 10*time.Minute)
	set(&s.Converge, 2*time.Minute)
}

// resolve reads the manifest files the steps name into the steps.
func (s *Scenario) resolve(dir string) error {
	var walk func(steps []Step) error
	walk = func(steps []Step) error {
		for i := range steps {
			st := &steps[i]
			for _, m := range []*string{&st.Apply, &st.Delete} {
				if *m == "" || strings.Contains(*m, "\n") {
					continue
				}
				if _, ok := App(*m); ok {
					continue
				}
				if dir == "" {
					return fmt.Errorf("scenario %s: step %d: %q is not a built-in application (%s)", s.Name, i+1, *m, strings.Join(AppNames(), ", "))
				}
				data, err := os.ReadFile(filepath.Join(dir, *m))
				if err != nil {
					return fmt.Errorf("scenario %s: step %d: %q is neither a built-in application nor a readable file: %v", s.Name, i+1, *m, err)
				}
				*m = string(data)
			}
			if st.Repeat != nil {
				if err := walk(st.Repeat.Steps); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(s.Steps)
}

// AppNames lists the built-in applications.
func AppNames() []string {
	names, _ := fs.Glob(apps, "apps/*.yaml")
	for i, n := range names {
		names[i] = strings.TrimSuffix(strings.TrimPrefix(n, "apps/"), ".yaml")
	}
	sort.Strings(names)
	return names
}

// Validate checks a scenario before anything runs, so that a mistake in
// step 9 does not show after eight steps of faults.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Name == "" {
		bad("scenario: name is missing")
	}
	if s.Mesh.Regions < 1 || s.Mesh.Regions > 6 || s.Mesh.Clusters < 1 || s.Mesh.Clusters > 9 {
		bad("scenario %s: mesh of %d regions x %d clusters: want 1-6 regions of 1-9 clusters", s.Name, s.Mesh.Regions, s.Mesh.Clusters)
	}
	if len(s.Steps) == 0 {
		bad("scenario %s: no steps", s.Name)
	}
	names := map[string]bool{}
	var check func(path string, steps []Step)
	check = func(path string, steps []Step) {
		for i, st := range steps {
			where := fmt.Sprintf("scenario %s: step %s%d", s.Name, path, i+1)
			set := 0
			for _, b := range []bool{st.Apply != "", st.Delete != "", st.Wait != "", st.Fault != "", st.Heal != "",
				st.Writes != nil, st.Bulk != nil, st.Sleep != 0, st.Repeat != nil, st.Random != nil, st.Assert != ""} {
				if b {
					set++
				}
			}
			if set != 1 {
				bad("%s: a step is exactly one of apply, delete, wait, fault, heal, writes, bulk, sleep, repeat, random, assert (this one has %d)", where, set)
				continue
			}
			switch {
			case st.Wait != "":
				if !slices.Contains([]string{"ready", "regions", "converged", "leaders"}, st.Wait) {
					bad("%s: wait %q: want ready, regions, converged or leaders", where, st.Wait)
				}
			case st.Measure != "":
				bad("%s: measure names the duration of a wait step", where)
			case st.Assert != "":
				if !slices.Contains(AssertConditions, st.Assert) {
					bad("%s: assert %q: want one of %s", where, st.Assert, strings.Join(AssertConditions, ", "))
				}
			case st.Fault != "":
				if err := checkTarget(st.Fault, st.Target); err != nil {
					bad("%s: %v", where, err)
				}
				if st.Name != "" {
					if names[st.Name] {
						bad("%s: fault name %q used twice", where, st.Name)
					}
					names[st.Name] = true
				}
			case st.Heal != "":
				if st.Heal != "all" && !names[st.Heal] {
					bad("%s: heal %q: no earlier fault has that name (or say all)", where, st.Heal)
				}
			case st.Writes != nil:
				w := st.Writes
				if w.Rate < 0 || w.Keys < 0 || w.Deletes < 0 || w.Deletes > 1 || w.For < 0 {
					bad("%s: writes: rate, keys and for must not be negative, deletes within 0 to 1", where)
				}
			case st.Bulk != nil:
				if st.Bulk.Count < 1 || st.Bulk.Count > 5000 || st.Bulk.Region == "" {
					bad("%s: bulk needs a count from 1 to 5000 and a region", where)
				}
			case st.Sleep < 0:
				bad("%s: sleep must not be negative", where)
			case st.Repeat != nil:
				if st.Repeat.Times < 1 || len(st.Repeat.Steps) == 0 {
					bad("%s: repeat needs times >= 1 and steps", where)
				}
				check(fmt.Sprintf("%s%d.", path, i+1), st.Repeat.Steps)
			case st.Random != nil:
				r := st.Random
				if r.For <= 0 {
					bad("%s: random needs a positive for", where)
				}
				for _, f := range r.Faults {
					if !slices.Contains(randomKinds, f) {
						bad("%s: random: fault %q cannot be drawn at random (%s)", where, f, strings.Join(randomKinds, ", "))
					}
				}
				if len(r.Hold) != 0 && (len(r.Hold) != 2 || r.Hold[0] <= 0 || r.Hold[1] < r.Hold[0]) {
					bad("%s: random: hold is [min, max], both positive", where)
				}
			}
		}
	}
	check("", s.Steps)
	return errors.Join(errs...)
}

// checkTarget checks that a fault names what it needs.
func checkTarget(kind string, t Target) error {
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("fault %s needs %s", kind, what)
		}
		return nil
	}
	if t.Layer != "" && !slices.Contains([]string{"wan", "gossip", "raft", "all"}, t.Layer) {
		return fmt.Errorf("fault %s: layer %q: want wan, gossip, raft or all", kind, t.Layer)
	}
	if t.For < 0 || t.Period < 0 || t.Every < 0 || t.Times < 0 || t.Delay < 0 || t.Jitter < 0 {
		return fmt.Errorf("fault %s: durations and times must not be negative", kind)
	}
	switch kind {
	case "kill", "stop", "restart", "not-ready", "drain", "cut-off-restart", "apiserver-stop":
		return need(t.Cluster != "" || (kind == "cut-off-restart" && t.Region != ""), "a cluster")
	case "kill-leader":
		return need(t.Cluster == "" && t.Region != "", "a region (and no cluster)")
	case "kill-region", "restart-region":
		return need(t.Region != "", "a region")
	case "partition":
		return need(len(t.Sides) >= 2 && !slices.ContainsFunc(t.Sides, func(s []string) bool { return len(s) == 0 }), "two or more non-empty sides")
	case "cut":
		return need(t.Cluster != "" || t.Region != "", "a cluster or a region (cut from every other peer)")
	case "delay":
		return need(t.Delay > 0 && (t.Region != "" || len(t.Sides) >= 2), "a delay and a region or sides")
	case "loss":
		return need(t.Loss > 0 && t.Loss <= 1 && (t.Region != "" || len(t.Sides) >= 2), "a loss within (0, 1] and a region or sides")
	case "flap":
		if err := need(t.Region != "" || t.Cluster != "", "a region or a cluster"); err != nil {
			return err
		}
		return need(t.Period > 0 && t.For > 0, "a period and a for")
	case "skew":
		return need(t.Offset != 0 && t.Cluster != "", "a cluster and a non-zero offset")
	case "forge":
		return need(t.As != "" && t.Cluster != "", "as (whose certificate) and a cluster (whom to call)")
	}
	return fmt.Errorf("unknown fault %q (%s)", kind, strings.Join(FaultKinds, ", "))
}

// randomKinds are the faults a random schedule draws from.
var randomKinds = []string{"kill", "stop", "kill-leader", "kill-region", "partition", "cut", "delay", "loss", "flap", "not-ready", "drain", "skew", "cut-off-restart"}

// String is the scenario's name and description, for `shoal chaos list`.
func (s *Scenario) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %s", s.Name, s.Description)
	return b.String()
}

// BuiltinYAML returns a built-in scenario's YAML as written.
func BuiltinYAML(name string) ([]byte, bool) {
	data, err := builtins.ReadFile("scenarios/" + name + ".yaml")
	return data, err == nil
}
