package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// linkSet is a network fault as the fault calls that make it: each peer
// told to cut, slow or drop its traffic to some others.
type linkSet struct {
	ops     []linkOp
	regions []string
	// victims are the peers cut off (cut-off-restart).
	victims []string
	r       *runner
}

type linkOp struct {
	cluster string
	fault   api.Fault
}

func (l *linkSet) add(cluster string, f api.Fault) {
	l.ops = append(l.ops, linkOp{cluster: cluster, fault: f})
}

func (l *linkSet) clusters() []string {
	var out []string
	for _, op := range l.ops {
		if !slices.Contains(out, op.cluster) {
			out = append(out, op.cluster)
		}
	}
	sort.Strings(out)
	return out
}

func (l *linkSet) apply(ctx context.Context, r *runner) error {
	l.r = r
	for _, op := range l.ops {
		if err := r.fault(ctx, op.cluster, op.fault); err != nil {
			return err
		}
	}
	return nil
}

// heal undoes every call; a peer that is not running lost its faults with
// its process.
func (l *linkSet) heal(ctx context.Context) error {
	var errs []error
	for _, op := range l.ops {
		if !l.r.d.Running(op.cluster) {
			continue
		}
		f := op.fault
		f.Action, f.Delay, f.Jitter, f.Probability = "heal", "", "", 0
		errs = append(errs, l.r.fault(ctx, op.cluster, f))
	}
	return errors.Join(errs...)
}

// linkFaults builds a partition, a cut, a delay or a loss.
func (r *runner) linkFaults(kind string, t Target) (*linkSet, error) {
	l := &linkSet{}
	action := "cut"
	if t.OneWay {
		action = "cut-one-way"
	}
	switch kind {
	case "delay", "loss":
		f := api.Fault{Layer: "wan", Action: kind}
		if kind == "delay" {
			f.Delay, f.Jitter = t.Delay.D().String(), t.Jitter.D().String()
		} else {
			f.Probability = t.Loss
		}
		if t.Region != "" {
			cs := r.clustersOf(t.Region)
			if len(cs) == 0 {
				return nil, fmt.Errorf("no region %q in the mesh", t.Region)
			}
			for _, c := range cs {
				l.add(c, f)
			}
			l.regions = []string{t.Region}
			return l, nil
		}
		return r.regionSides(l, t.Sides, f, false)
	case "partition":
		if regions, ok := r.allRegions(t.Sides); ok {
			return r.regionSides(l, regions, api.Fault{Layer: "wan", Action: action}, t.OneWay)
		}
		return r.clusterSides(l, t.Sides, cmpOr(t.Layer, "all"), action, t.OneWay)
	case "cut":
		layer := cmpOr(t.Layer, "all")
		if t.Cluster != "" {
			c, err := r.pick(context.Background(), t.Cluster)
			if err != nil {
				return nil, err
			}
			l.add(c, api.Fault{Layer: layer, Action: action})
			l.victims = []string{c}
			if !t.OneWay {
				for _, p := range r.d.Peers() {
					if p.Cluster != c {
						l.add(p.Cluster, api.Fault{Layer: layer, Action: "cut", Cluster: c})
					}
				}
			}
			return l, nil
		}
		if len(r.clustersOf(t.Region)) == 0 {
			return nil, fmt.Errorf("no region %q in the mesh", t.Region)
		}
		var rest []string
		for _, g := range r.regions() {
			if g != t.Region {
				rest = append(rest, g)
			}
		}
		return r.regionSides(l, [][]string{{t.Region}, rest}, api.Fault{Layer: "wan", Action: action}, t.OneWay)
	}
	return nil, fmt.Errorf("unknown link fault %q", kind)
}

// allRegions reports whether every name of the sides is a region.
func (r *runner) allRegions(sides [][]string) ([][]string, bool) {
	regions := r.regions()
	for _, s := range sides {
		for _, n := range s {
			if !slices.Contains(regions, n) {
				return nil, false
			}
		}
	}
	return sides, true
}

// regionSides makes every peer of each side apply f towards the regions
// of the other sides (only the first side's peers when oneWay).
func (r *runner) regionSides(l *linkSet, sides [][]string, f api.Fault, oneWay bool) (*linkSet, error) {
	if len(sides) < 2 {
		return nil, errors.New("a fault between regions needs two sides (or a region)")
	}
	if _, ok := r.allRegions(sides); !ok {
		return nil, fmt.Errorf("sides %s: every name must be a region of the mesh (%v)", sidesString(sides), r.regions())
	}
	for i, side := range sides {
		if oneWay && i > 0 {
			break
		}
		for j, other := range sides {
			if i == j {
				continue
			}
			for _, region := range side {
				for _, c := range r.clustersOf(region) {
					for _, target := range other {
						g := f
						g.Region = target
						l.add(c, g)
					}
				}
			}
		}
	}
	for _, s := range sides {
		l.regions = append(l.regions, s...)
	}
	return l, nil
}

// clusterSides partitions the peers of one region from each other.
func (r *runner) clusterSides(l *linkSet, sides [][]string, layer, action string, oneWay bool) (*linkSet, error) {
	region := ""
	for _, s := range sides {
		for _, c := range s {
			g, ok := r.regionOf(c)
			if !ok {
				return nil, fmt.Errorf("sides %s: %q is neither a region nor a cluster of the mesh", sidesString(sides), c)
			}
			if region != "" && g != region {
				return nil, fmt.Errorf("sides %s: a partition of clusters stays inside one region (%s and %s)", sidesString(sides), region, g)
			}
			region = g
		}
	}
	for i, side := range sides {
		if oneWay && i > 0 {
			break
		}
		for j, other := range sides {
			if i == j {
				continue
			}
			for _, c := range side {
				for _, target := range other {
					l.add(c, api.Fault{Layer: layer, Action: action, Cluster: target})
				}
			}
		}
	}
	return l, nil
}

// cutOffFromOthers cuts a peer (or every peer of a region) off from the
// rest of the mesh by the others' hooks only, so that the cut holds
// across the victims' restarts.
func (r *runner) cutOffFromOthers(t Target) (*linkSet, error) {
	l := &linkSet{}
	if t.Region != "" {
		l.victims = r.clustersOf(t.Region)
		if len(l.victims) == 0 {
			return nil, fmt.Errorf("no region %q in the mesh", t.Region)
		}
		for _, p := range r.d.Peers() {
			if p.Region != t.Region {
				l.add(p.Cluster, api.Fault{Layer: "wan", Action: "cut", Region: t.Region})
			}
		}
		l.regions = []string{t.Region}
		return l, nil
	}
	c, err := r.pick(context.Background(), t.Cluster)
	if err != nil {
		return nil, err
	}
	region, _ := r.regionOf(c)
	l.victims = []string{c}
	for _, p := range r.d.Peers() {
		switch {
		case p.Cluster == c:
		case p.Region == region:
			l.add(p.Cluster, api.Fault{Layer: "all", Action: "cut", Cluster: c})
		default:
			l.add(p.Cluster, api.Fault{Layer: "wan", Action: "cut", Cluster: c})
		}
	}
	return l, nil
}

// flap takes links down and up on a period for a while: an edge region's
// uplink (t.Region) or a peer's links (t.Cluster).
func (r *runner) flap(ctx context.Context, t Target) error {
	var l *linkSet
	var err error
	ev := Event{Kind: EventFlap}
	if t.Region != "" {
		l, err = r.linkFaults("cut", Target{Region: t.Region})
		ev.Regions = []string{t.Region}
		for _, p := range r.d.Peers() {
			if p.Region == t.Region && p.Edge {
				ev.Edge = true
			}
		}
		// The peers of an edge region are named: within its autonomy
		// period nothing on them may change while the uplink flaps. A
		// region's leader otherwise decides for its clusters as it
		// would (a guarded workload fenced without a majority).
		if ev.Edge {
			ev.Clusters = r.clustersOf(t.Region)
		}
	} else {
		l, err = r.linkFaults("cut", Target{Cluster: t.Cluster, Layer: t.Layer})
		if err == nil {
			ev.Clusters = l.victims
		}
	}
	if err != nil {
		return err
	}
	ev.Detail = fmt.Sprintf("down and up every %s for %s", t.Period.D(), t.For.D())
	down := t.Period.D() / 2
	f := r.register("flap", t.Name, ev, func(ctx context.Context) error { return l.heal(ctx) })
	end := time.Now().Add(t.For.D())
	for time.Now().Before(end) {
		if err := l.apply(ctx, r); err != nil {
			return err
		}
		if err := sleep(ctx, min(down, time.Until(end))); err != nil {
			return err
		}
		if err := l.heal(ctx); err != nil {
			return err
		}
		if err := sleep(ctx, min(t.Period.D()-down, max(time.Until(end), 0))); err != nil {
			return err
		}
	}
	return r.heal(ctx, f)
}

// killLeaderLoop kills a region's leader, keeps it down for For (default
// 5s), restarts it, waits for a leader, and does that Times times, Every
// apart.
func (r *runner) killLeaderLoop(ctx context.Context, t Target) error {
	times, down := max(t.Times, 1), t.For.D()
	if down <= 0 {
		down = 5 * time.Second
	}
	for i := 0; i < times; i++ {
		began := time.Now()
		f, err := r.start(ctx, "kill", Target{Cluster: "leader:" + t.Region, Name: t.Name})
		if err != nil {
			return err
		}
		if err := sleep(ctx, down); err != nil {
			return err
		}
		if err := r.heal(ctx, f); err != nil {
			return err
		}
		if _, err := r.wait(ctx, "leaders", 60*time.Second); err != nil {
			return err
		}
		if rest := t.Every.D() - time.Since(began); i < times-1 && rest > 0 {
			if err := sleep(ctx, rest); err != nil {
				return err
			}
		}
	}
	return nil
}

// forge has one peer's certificate speak for another cluster or region;
// every attempt must be refused.
func (r *runner) forge(ctx context.Context, t Target) error {
	target, err := r.pick(ctx, t.Cluster)
	if err != nil {
		return err
	}
	if _, ok := r.regionOf(t.As); !ok {
		return fmt.Errorf("forge: no peer for cluster %q in the mesh", t.As)
	}
	results, err := r.d.Forge(ctx, t.As, target)
	if err != nil {
		return fmt.Errorf("forge: %w", err)
	}
	r.mu.Lock()
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	for _, res := range results {
		what, verdict := "control", "accepted"
		if res.Forged {
			what = "forged"
		}
		switch {
		case res.Refused:
			verdict = "refused"
		case !res.Accepted:
			verdict = "unanswered"
		}
		value := "as it must"
		if !res.OK() {
			value = "wrong"
		}
		detail := fmt.Sprintf("%s %s: %s", what, res.Attempt, verdict)
		if res.Err != "" {
			detail += " (" + res.Err + ")"
		}
		r.record(Event{Kind: EventForge, ID: id, Clusters: []string{t.As, target}, Value: value, Detail: detail})
	}
	return nil
}
