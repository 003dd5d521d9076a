package region

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

const dynamicWeight = `{"clusterAffinity":{"clusterNames":[%s]},"replicaScheduling":{"replicaSchedulingType":"Divided",` +
	`"replicaDivisionPreference":"Weighted","weightPreference":{"dynamicWeight":"AvailableReplicas"}}}`

func rebalanceCmd(keys ...api.ObjectKey) *shoalpb.Command {
	r := &shoalpb.Rebalance{}
	for _, k := range keys {
		r.Workloads = append(r.Workloads, k.Proto())
	}
	return &shoalpb.Command{Cmd: &shoalpb.Command_Rebalance{Rebalance: r}}
}

// A dynamic-weight workload keeps its replicas where they run when its
// policy widens; shoal rebalance places it afresh once, over every
// cluster, keeping the replicas that move until their replacements are
// Ready, and records it.
func TestLeaderRebalancePlacesAfreshOnce(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c")
	h.applyWeb(3, fmt.Sprintf(dynamicWeight, `"a"`))
	h.settle()
	h.report("a", webKey, 3, 3)
	h.command(applyObjects(obj(ppKey, policy(fmt.Sprintf(dynamicWeight, `"a","b","c"`)))))
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=3" {
		t.Fatalf("widened policy: %q (the previous placement is kept)", got)
	}

	h.command(rebalanceCmd(webKey))
	h.settle()
	b := h.binding(webKey)
	if targets(b) != "a=1, b=1, c=1" || evictionString(b.GetEvictions()) != "a=3" {
		t.Fatalf("after rebalance: %q, evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
	if b.GetRebalanced() != b.GetRebalanceRequested() || b.GetRebalanced() == 0 {
		t.Fatalf("rebalance not answered: requested %d, answered %d", b.GetRebalanceRequested(), b.GetRebalanced())
	}
	if events(&meshPeer{fsm: h.fsm}, webKey, "Rebalanced") != 1 {
		t.Error("no Rebalanced event")
	}
	for _, c := range []string{"a", "b", "c"} {
		h.report(c, webKey, 1, 1)
	}
	h.settle()
	if b := h.binding(webKey); targets(b) != "a=1, b=1, c=1" || len(b.GetEvictions()) != 0 {
		t.Fatalf("once the replacements are Ready: %q, evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
	// Once: later passes keep the new placement sticky.
	h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 4))))
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=2, b=1, c=1" && got != "a=1, b=2, c=1" && got != "a=1, b=1, c=2" {
		t.Fatalf("scaled to 4 after the rebalance: %q", got)
	}
}

func TestRebalanceRefusesWhatIsNotPlaced(t *testing.T) {
	h := newLeaderHarness(t, "a")
	h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 1))))
	h.settle()
	other := api.ObjectKey{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "nosuch"}
	for _, tc := range []struct {
		cmd  *shoalpb.Command
		want string
	}{
		{rebalanceCmd(), "names no workload"},
		{rebalanceCmd(other), "no template Deployment default/nosuch"},
		{rebalanceCmd(webKey), "not placed (no policy selects it)"},
	} {
		data, _ := proto.Marshal(tc.cmd)
		_, err := h.raft.ApplyLocal(t.Context(), data)
		if !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rebalance: %v, want %q", err, tc.want)
		}
	}
}
