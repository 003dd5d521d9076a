package main

import (
	"bytes"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api"
)

func TestAgentZoneFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
		err  string
	}{
		{[]string{"--zone", "eu-1a"}, []string{"eu-1a"}, ""},
		{[]string{"--zone", "eu-1a", "--zone", "eu-1b"}, []string{"eu-1a", "eu-1b"}, ""},
		{[]string{"--zone", "eu-1a, eu-1b", "--zone=eu-1c"}, []string{"eu-1a", "eu-1b", "eu-1c"}, ""},
		{[]string{}, nil, ""},
		{[]string{"--zone", ""}, nil, `"" has an empty zone name`},
		{[]string{"--zone", "eu-1a,,eu-1b"}, nil, "empty zone name"},
		{[]string{"--zone", "eu-1a,"}, nil, "empty zone name"},
	} {
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var z zonesFlag
		fs.Var(&z, "zone", "")
		err := fs.Parse(tt.args)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
		case tt.err == "" && (err != nil || !slices.Equal(z, tt.want)):
			t.Errorf("%q: %q, %v; want %q", tt.args, z, err, tt.want)
		}
	}
}

func TestAgentRefusesBadZones(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	for _, tc := range []struct {
		zones []string
		code  int
		want  string
	}{
		{[]string{"eu-1a,"}, 2, "empty zone name"},
		{[]string{"eu 1a"}, 1, `zone "eu 1a": not a Kubernetes label value`},
		{[]string{"eu-1a", "eu-1b,eu-1a"}, 1, `zone "eu-1a" given twice`},
	} {
		args := []string{"agent", "--region", "eu", "--cluster", "eu-1", "--data-dir", dir, "--insecure", "--log-level", "error"}
		for _, z := range tc.zones {
			args = append(args, "--zone", z)
		}
		code, _, errOut := shoal(args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("zones %q: exit %d, stderr %q; want exit %d and %q", tc.zones, code, errOut, tc.code, tc.want)
		}
	}
}

func TestGetClustersZoneColumn(t *testing.T) {
	cs := []api.ClusterView{
		{Name: "eu-1", Region: "eu", Zone: "eu-1a", Zones: []string{"eu-1a", "eu-1b"}, Health: "Ready", Taints: []api.TaintView{}},
		// A peer older than zone lists serves only zone.
		{Name: "eu-2", Region: "eu", Zone: "eu-1c", Health: "Ready", Taints: []api.TaintView{}},
		{Name: "eu-3", Region: "eu", Health: "Ready", Taints: []api.TaintView{}},
	}
	for _, wide := range []bool{false, true} {
		var out bytes.Buffer
		printClusters(&out, cs, wide)
		lines := strings.Split(out.String(), "\n")
		for i, want := range []string{"eu-1a,eu-1b", "eu-1c", "-"} {
			if f := strings.Fields(lines[i+1]); len(f) < 3 || f[2] != want {
				t.Errorf("wide %v: ZONE of %q is not %q", wide, lines[i+1], want)
			}
		}
	}
}
