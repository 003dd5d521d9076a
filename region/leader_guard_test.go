package region

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// unknownQuorum is a mesh whose sync loop has not started yet.
type unknownQuorum struct{ MeshView }

func (unknownQuorum) Quorum(time.Time) (int, int, bool) { return 0, 0, false }

// While it cannot tell which regions it hears, the guard changes nothing,
// and it says so with a copy of the binding: the scheduling pass sets
// fields on what the guard returns, and the old binding is the state's
// own, which the mesh's sync loop reads meanwhile (a data race, and a
// state changed outside its log).
func TestGuardNeverHandsBackTheStatesBinding(t *testing.T) {
	l := &Leader{}
	l.SetMeshView(unknownQuorum{})
	old := &shoalpb.Binding{Guarded: true, RebalanceRequested: 3, Rebalanced: 2,
		Clusters: []*shoalpb.TargetCluster{{Name: "eu-west/eu-1", Replicas: 1}}}
	before := proto.Clone(old)
	key := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "ledger"}
	got := l.guard(time.Now(), meshInput{region: "eu-west"}, key, old, proto.Clone(old).(*shoalpb.Binding), old)
	if got == old {
		t.Fatal("guard returned the state's binding itself")
	}
	if !proto.Equal(got, before) {
		t.Fatalf("guard changed the placement while the quorum is unknown: %v, want %v", got, before)
	}
	got.Rebalanced = 9
	if !proto.Equal(old, before) {
		t.Fatal("a change to what guard returned changed the state's binding")
	}
}
