package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/node"
)

// shapeDriver is a mesh of the given shape with no processes behind it:
// enough to check how faults are translated into calls.
type shapeDriver struct{ peers []Peer }

func newShape(regions, clusters int) *shapeDriver {
	d := &shapeDriver{}
	for r := 0; r < regions; r++ {
		region := node.MeshRegionName(r)
		for c := 0; c < clusters; c++ {
			d.peers = append(d.peers, Peer{Region: region, Cluster: fmt.Sprintf("%s-%d", region[:2], c+1)})
		}
	}
	return d
}

func (d *shapeDriver) Peers() []Peer                         { return d.peers }
func (d *shapeDriver) Client(string) (*client.Client, error) { return nil, fmt.Errorf("no client") }
func (d *shapeDriver) Kill(string) error                     { return nil }
func (d *shapeDriver) Pause(string) error                    { return nil }
func (d *shapeDriver) Resume(string) error                   { return nil }
func (d *shapeDriver) Restart(string) error                  { return nil }
func (d *shapeDriver) Running(string) bool                   { return true }
func (d *shapeDriver) Close()                                {}
func (d *shapeDriver) Forge(context.Context, string, string) ([]node.ForgeResult, error) {
	return nil, nil
}

func testRunner(d Driver, seed uint64) *runner {
	return &runner{d: d, rng: rand.New(rand.NewPCG(seed, 0x5ea1)), peers: rand.New(rand.NewPCG(seed, 0x9ee7)), named: map[string]*activeFault{}}
}

// calls lists a link set as "cluster:layer/action>target" lines, sorted.
func calls(l *linkSet) []string {
	var out []string
	for _, op := range l.ops {
		target := op.fault.Region + op.fault.Cluster
		out = append(out, fmt.Sprintf("%s:%s/%s>%s", op.cluster, op.fault.Layer, op.fault.Action, target))
	}
	sort.Strings(out)
	return out
}

func TestPartitionOfRegionsCutsEveryPeerTowardsTheOtherSide(t *testing.T) {
	r := testRunner(newShape(3, 2), 1)
	l, err := r.linkFaults("partition", Target{Sides: [][]string{{"eu-west"}, {"us-east", "ap-south"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ap-1:wan/cut>eu-west", "ap-2:wan/cut>eu-west",
		"eu-1:wan/cut>ap-south", "eu-1:wan/cut>us-east", "eu-2:wan/cut>ap-south", "eu-2:wan/cut>us-east",
		"us-1:wan/cut>eu-west", "us-2:wan/cut>eu-west",
	}
	if got := calls(l); !slices.Equal(got, want) {
		t.Fatalf("calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	one, err := r.linkFaults("partition", Target{Sides: [][]string{{"eu-west"}, {"us-east"}}, OneWay: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := calls(one); !slices.Equal(got, []string{"eu-1:wan/cut-one-way>us-east", "eu-2:wan/cut-one-way>us-east"}) {
		t.Fatalf("one-way calls %v", got)
	}
}

func TestPartitionInsideARegionCutsGossipAndRaftByCluster(t *testing.T) {
	r := testRunner(newShape(2, 3), 1)
	l, err := r.linkFaults("partition", Target{Sides: [][]string{{"eu-1"}, {"eu-2", "eu-3"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"eu-1:all/cut>eu-2", "eu-1:all/cut>eu-3", "eu-2:all/cut>eu-1", "eu-3:all/cut>eu-1"}
	if got := calls(l); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if _, err := r.linkFaults("partition", Target{Sides: [][]string{{"eu-1"}, {"us-2"}}}); err == nil || !strings.Contains(err.Error(), "stays inside one region") {
		t.Fatalf("a partition of clusters of two regions: %v", err)
	}
	if _, err := r.linkFaults("partition", Target{Sides: [][]string{{"eu-1"}, {"zz-9"}}}); err == nil || !strings.Contains(err.Error(), `"zz-9" is neither a region nor a cluster`) {
		t.Fatalf("an unknown name: %v", err)
	}
}

func TestCutOffFromOthersHoldsAcrossTheVictimsRestart(t *testing.T) {
	r := testRunner(newShape(2, 2), 1)
	l, err := r.cutOffFromOthers(Target{Cluster: "eu-2"})
	if err != nil {
		t.Fatal(err)
	}
	// Only the others' hooks: the victim's own die with its process.
	want := []string{"eu-1:all/cut>eu-2", "us-1:wan/cut>eu-2", "us-2:wan/cut>eu-2"}
	if got := calls(l); !slices.Equal(got, want) || !slices.Equal(l.victims, []string{"eu-2"}) {
		t.Fatalf("calls %v victims %v, want %v", got, l.victims, want)
	}
	l, err = r.cutOffFromOthers(Target{Region: "us-east"})
	if err != nil {
		t.Fatal(err)
	}
	if got := calls(l); !slices.Equal(got, []string{"eu-1:wan/cut>us-east", "eu-2:wan/cut>us-east"}) || len(l.victims) != 2 {
		t.Fatalf("region cut-off calls %v victims %v", got, l.victims)
	}
}

func TestRandomScheduleIsTheSameForTheSameSeed(t *testing.T) {
	draw := func(seed uint64) string {
		r := testRunner(newShape(3, 3), seed)
		var b strings.Builder
		for i := 0; i < 20; i++ {
			kind := randomKinds[r.intn(len(randomKinds))]
			t := r.randomTarget(kind, r.regions(), 5*time.Second)
			fmt.Fprintf(&b, "%s %+v\n", kind, t)
		}
		return b.String()
	}
	if a, b := draw(7), draw(7); a != b {
		t.Fatalf("seed 7 drew two schedules:\n%s\n%s", a, b)
	}
	if draw(7) == draw(8) {
		t.Fatal("seeds 7 and 8 drew the same schedule")
	}
}
