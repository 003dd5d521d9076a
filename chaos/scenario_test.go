package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinScenariosParseLongAndShort(t *testing.T) {
	all, err := List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"clock-skew", "cut-off-restart", "edge-flap", "forged-identity", "kill-during-writes",
		"kill-region", "leader-kill-loop", "partition-and-heal", "random", "rolling-restart"}
	var got []string
	for _, s := range all {
		got = append(got, s.Name)
		short, err := Load(s.Name, true)
		if err != nil {
			t.Fatalf("%s short: %v", s.Name, err)
		}
		if short.Name != s.Name || len(short.Steps) != len(s.Steps) {
			t.Fatalf("%s: the short variant has other steps", s.Name)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("built-ins %v, want %v", got, want)
	}
}

func TestScenarioParamsAndShortVariant(t *testing.T) {
	doc := `name: p
params: {hold: 30s, regions: 3}
short: {hold: 5s}
mesh: {regions: ${regions}, clusters: 2}
steps:
  - {fault: kill, cluster: eu-1, for: "${hold}"}
`
	long, err := Parse([]byte(doc), false, "")
	if err != nil {
		t.Fatal(err)
	}
	short, err := Parse([]byte(doc), true, "")
	if err != nil {
		t.Fatal(err)
	}
	if long.Steps[0].For.D() != 30*time.Second || short.Steps[0].For.D() != 5*time.Second {
		t.Fatalf("for: long %s, short %s", long.Steps[0].For.D(), short.Steps[0].For.D())
	}
	if long.Mesh.Regions != 3 || short.Mesh.Regions != 3 {
		t.Fatalf("regions %d/%d", long.Mesh.Regions, short.Mesh.Regions)
	}
	if long.Recover.D() != time.Minute || long.StatusBound.D() != 15*time.Second {
		t.Fatalf("defaults: recover %s, status bound %s", long.Recover.D(), long.StatusBound.D())
	}
}

func TestScenarioBadInputSaysWhatIsWrong(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"unknown param", "name: x\nsteps:\n  - {sleep: ${nap}}\n", "${nap} is not one of its params"},
		{"short without param", "name: x\nparams: {a: 1s}\nshort: {b: 2s}\nsteps:\n  - {sleep: 1s}\n", `short sets "b"`},
		{"unknown field", "name: x\nsteps:\n  - {sleep: 1s, bogus: 1}\n", "bogus"},
		{"two kinds in a step", "name: x\nsteps:\n  - {sleep: 1s, wait: ready}\n", "exactly one of"},
		{"unknown fault", "name: x\nsteps:\n  - {fault: melt, cluster: eu-1}\n", `unknown fault "melt"`},
		{"fault without target", "name: x\nsteps:\n  - {fault: kill}\n", "fault kill needs a cluster"},
		{"partition of one side", "name: x\nsteps:\n  - {fault: partition, sides: [[eu-west]]}\n", "two or more non-empty sides"},
		{"flap without period", "name: x\nsteps:\n  - {fault: flap, region: eu-west, for: 10s}\n", "a period and a for"},
		{"heal of unknown fault", "name: x\nsteps:\n  - {heal: nope}\n", `heal "nope"`},
		{"bad wait", "name: x\nsteps:\n  - {wait: forever}\n", `wait "forever"`},
		{"bad duration", "name: x\nsteps:\n  - {sleep: soon}\n", `"soon" is not a duration`},
		{"bad layer", "name: x\nsteps:\n  - {fault: cut, cluster: eu-1, layer: smoke}\n", `layer "smoke"`},
		{"huge mesh", "name: x\nmesh: {regions: 40}\nsteps:\n  - {sleep: 1s}\n", "want 1-6 regions"},
		{"no steps", "name: x\n", "no steps"},
		{"unknown app", "name: x\nsteps:\n  - {apply: nosuchapp}\n", `"nosuchapp" is not a built-in application`},
		{"measure of no wait", "name: x\nsteps:\n  - {sleep: 1s, measure: nap}\n", "measure names the duration of a wait step"},
		{"bulk without region", "name: x\nsteps:\n  - bulk: {count: 10}\n", "bulk needs a count from 1 to 5000 and a region"},
		{"random fault not drawable", "name: x\nsteps:\n  - random: {for: 1m, faults: [forge]}\n", `fault "forge" cannot be drawn`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), false, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestScenarioReadsManifestsBesideItsFile(t *testing.T) {
	dir := t.TempDir()
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n"
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte("name: s\nsteps:\n  - {apply: app.yaml}\n  - {apply: web}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(file, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps[0].Apply != manifest || s.Steps[1].Apply != "web" {
		t.Fatalf("steps: %q, %q", s.Steps[0].Apply, s.Steps[1].Apply)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), false); err == nil || !strings.Contains(err.Error(), "neither a built-in scenario") {
		t.Fatalf("a missing file: %v", err)
	}
}
