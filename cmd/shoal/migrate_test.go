package main

import (
	"strings"
	"testing"
)

// shoal migrate with one cluster: every move is refused with its reason
// (there is nowhere to go) and nothing moves; the usage is checked.
func TestCLIMigrateRefusals(t *testing.T) {
	p := startPeer(t)
	applyExamples(t, p)
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

// shoal clone: --dry-run shows the documents and writes nothing; the clone
// is written whole; a clone with the original's key is refused.
func TestCLIClone(t *testing.T) {
	p := startPeer(t)
	applyExamples(t, p)
	out := mustShoal(t, p, "clone", "Deployment", "default/web", "--from", "eu-1", "--to", "eu-1", "--namespace", "staging", "--dry-run")
	wantIn(t, "dry run", out, "# dry run: nothing written")
	wantIn(t, "dry run", out, "namespace: staging")
	if out := mustShoal(t, p, "get", "workloads"); strings.Contains(out, "staging") {
		t.Fatalf("a dry run wrote:\n%s", out)
	}
	out = mustShoal(t, p, "clone", "Deployment", "default/web", "--from", "eu-1", "--to", "eu-1", "--namespace", "staging")
	wantIn(t, "clone", out, "Deployment staging/web created (a clone of what runs on eu-1)")
	wantIn(t, "clone", out, "PropagationPolicy staging/web binds it to eu-1")
	code, _, errOut := shoal("--server", p.URL(), "clone", "Deployment", "default/web", "--from", "eu-1", "--to", "eu-1")
	if code != 1 || !strings.Contains(errOut, "give --namespace or --name") {
		t.Fatalf("clone onto itself: exit %d, %s", code, errOut)
	}
}
