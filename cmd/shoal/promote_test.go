package main

import (
	"strings"
	"testing"
)

// shoal promote finds the peer of the named cluster through --server and
// adopts the object; --dry-run writes nothing; bad input says what is
// wrong and writes nothing.
func TestCLIPromote(t *testing.T) {
	p := startPeer(t)
	legacy := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"legacy","namespace":"default"},` +
		`"spec":{"replicas":1,"selector":{"matchLabels":{"app":"legacy"}},"template":{"metadata":{"labels":{"app":"legacy"}},"spec":{"containers":[{"name":"a","image":"a:1"}]}}}}`
	if err := p.Sim().Create([]byte(legacy)); err != nil {
		t.Fatal(err)
	}
	out := mustShoal(t, p, "promote", "deployments", "default/legacy", "--cluster", "eu-1", "--dry-run")
	wantIn(t, "dry run", out, "# dry run: nothing written")
	wantIn(t, "dry run", out, "clusterNames:\n      - eu-1")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"promote", "Deployment", "default/legacy"}, 2, "want: shoal promote KIND NAMESPACE/NAME --cluster C"},
		{[]string{"promote", "Widget", "default/legacy", "--cluster", "eu-1"}, 2, "give --api-version"},
		{[]string{"promote", "Deployment", "default/legacy", "--cluster", "eu-7"}, 1, "cluster eu-7 is not a member of the mesh (members: eu-1)"},
		{[]string{"promote", "Deployment", "default/nosuch", "--cluster", "eu-1"}, 1, "Deployment default/nosuch does not exist in cluster eu-1"},
	} {
		code, _, errOut := shoal(append([]string{"--server", p.URL()}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("shoal %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if out := mustShoal(t, p, "get", "workloads"); strings.Contains(out, "legacy") {
		t.Fatalf("nothing should be written yet:\n%s", out)
	}
	out = mustShoal(t, p, "promote", "Deployment", "default/legacy", "--cluster", "eu-1")
	wantIn(t, "promote", out, "Deployment default/legacy promoted from eu-1 (uid ")
	wantIn(t, "promote", out, "PropagationPolicy default/legacy binds it to eu-1")
	code, _, errOut := shoal("--server", p.URL(), "promote", "Deployment", "default/legacy", "--cluster", "eu-1")
	if code != 1 || !strings.Contains(errOut, "already Shoal's") {
		t.Fatalf("promote again: exit %d, %s", code, errOut)
	}
}
