package main

import (
	"fmt"
	"strings"
	"testing"
)

// shoal migrate with one cluster: every move is refused with its reason
// (there is nowhere to go) and nothing moves; the usage is checked.
func TestCLIMigrateRefusals(t *testing.T) {
	p := startPeer(t)
	mustShoal(t, p, "apply", "-f", "../../examples")
	poll(t, "web placed", func() error {
		code, out, errOut := shoal("--server", p.URL(), "describe", "workload", "default/web")
		if code != 0 || !strings.Contains(out, "Scheduling:    scheduled: 1/1 clusters feasible") {
			return fmt.Errorf("describe: exit %d, %s%s", code, out, errOut)
		}
		return nil
	})
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"migrate", "Deployment", "default/web", "--from", "eu-1"}, 2, "want: shoal migrate KIND NAMESPACE/NAME --from A --to B"},
		{[]string{"migrate", "Deployment", "default/web", "--from", "eu-1", "--to", "eu-2"}, 1, "cluster eu-2 is not a member of the mesh"},
		{[]string{"migrate", "Deployment", "default/web", "--from", "eu-1", "--to", "eu-1"}, 1, "--from and --to are both eu-1"},
		{[]string{"migrate", "Deployment", "default/nosuch", "--from", "eu-1", "--to", "eu-2"}, 1, "Deployment default/nosuch not found"},
	} {
		code, _, errOut := shoal(append([]string{"--server", p.URL()}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("shoal %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if out := mustShoal(t, p, "describe", "workload", "default/web"); strings.Contains(out, "Migrated:") {
		t.Fatalf("a refused migrate left a migration:\n%s", out)
	}
}
