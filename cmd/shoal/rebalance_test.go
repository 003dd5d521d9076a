package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/node"
)

func TestCLIRebalance(t *testing.T) {
	p := startPeer(t)
	applyExamples(t, p)
	out := mustShoal(t, p, "rebalance", "Deployment", "default/web")
	wantIn(t, "rebalance", out, "Deployment default/web: placed afresh once")
	poll(t, "describe shows the Rebalanced event", func() error {
		code, out, errOut := shoal("--server", p.URL(), "describe", "workload", "default/web")
		if code != 0 || !strings.Contains(out, "Rebalanced") {
			return fmt.Errorf("describe: exit %d, %s%s", code, out, errOut)
		}
		return nil
	})
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rebalance", "Deployment", "default/nosuch"}, 1, "Deployment default/nosuch not found"},
		{[]string{"rebalance", "Deployment"}, 2, "want: shoal rebalance KIND NAMESPACE/NAME"},
	} {
		code, _, errOut := shoal(append([]string{"--server", p.URL()}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("shoal %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// applyExamples applies examples/ to the peer and waits until web is placed.
func applyExamples(t *testing.T, p *node.Peer) {
	t.Helper()
	mustShoal(t, p, "apply", "-f", "../../examples")
	poll(t, "web placed", func() error {
		code, out, errOut := shoal("--server", p.URL(), "describe", "workload", "default/web")
		if code != 0 || !strings.Contains(out, "Scheduling:    scheduled: 1/1 clusters feasible") {
			return fmt.Errorf("describe: exit %d, %s%s", code, out, errOut)
		}
		return nil
	})
}
