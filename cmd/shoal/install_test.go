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

func TestInstallWithTLSDir(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"ca", "init", "--dir", dir, "--mesh", "prod"},
		{"ca", "issue", "--dir", dir, "--region", "eu", "--cluster", "eu-1", "--ip", "198.51.100.7"},
	} {
		if code, out, errOut := shoal(args...); code != 0 {
			t.Fatalf("shoal %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	install := []string{"install", "--region", "eu", "--cluster", "eu-1", "--image", "shoal:v1", "--advertise", "198.51.100.7"}
	code, out, errOut := shoal(append(install, "--tls-dir", dir)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantIn(t, "manifests", out, "name: shoal-tls", "type: kubernetes.io/tls", "--tls-cert=/etc/shoal/tls/tls.crt", "scheme: HTTPS")
	if strings.Contains(errOut, "unauthenticated") {
		t.Errorf("warned about unauthenticated ports with TLS: %s", errOut)
	}

	// Without --tls-dir: no TLS Secret, and a warning.
	code, out, errOut = shoal(install...)
	if code != 0 || strings.Contains(out, "shoal-tls") || !strings.Contains(errOut, "unauthenticated") {
		t.Errorf("without --tls-dir: exit %d, TLS Secret %v, stderr %q", code, strings.Contains(out, "shoal-tls"), errOut)
	}

	// A certificate that does not cover the advertised address, or of
	// another cluster, is refused.
	install[len(install)-1] = "198.51.100.8"
	if code, _, errOut := shoal(append(install, "--tls-dir", dir)...); code != 1 || !strings.Contains(errOut, "--ip 198.51.100.8") {
		t.Errorf("advertise not covered: exit %d: %s", code, errOut)
	}
	install[4] = "eu-2"
	if code, _, errOut := shoal(append(install, "--tls-dir", dir)...); code != 1 || !strings.Contains(errOut, "--cluster eu-2") {
		t.Errorf("no certificate of eu-2: exit %d: %s", code, errOut)
	}
}

func TestInstallZoneFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"install", "--region", "eu", "--cluster", "eu-1", "--image", "shoal:v1", "--advertise", "198.51.100.7",
		"--zone", "eu-1a,eu-1b", "--zone", "eu-1c"}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"--zone=eu-1a\n", "--zone=eu-1b\n", "--zone=eu-1c\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("manifests lack %q", want)
		}
	}
	out.Reset()
	errOut.Reset()
	code = run([]string{"install", "--region", "eu", "--cluster", "eu-1", "--image", "shoal:v1", "--advertise", "198.51.100.7",
		"--zone", "eu-1a", "--zone", "eu-1a"}, strings.NewReader(""), &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), `zone "eu-1a" given twice`) {
		t.Errorf("a zone given twice: exit %d, stderr %q", code, errOut.String())
	}
}
