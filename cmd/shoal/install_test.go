package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestInstallPrintsManifests(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"install", "--region", "eu", "--cluster", "eu-1", "--image", "shoal:v1",
		"--advertise", "198.51.100.7", "--allow", "deployments.apps,configmaps"}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"kind: ClusterRole", "kind: StatefulSet", "--cluster=eu-1", "resources: [deployments]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("manifests lack %q", want)
		}
	}
	if !strings.Contains(errOut.String(), "--gossip-key") {
		t.Errorf("the generated gossip key is not shown: %q", errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"install", "--region", "eu"}, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Fatalf("missing flags: exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "--image") || out.Len() != 0 {
		t.Errorf("missing flags: stdout %q stderr %q", out.String(), errOut.String())
	}
}
