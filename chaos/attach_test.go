package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api/client"
)

func TestAttachReadsAPeerListAndRefusesBadOnes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ body, want string }{
		{`{"region": "eu"}`, "not a peer list"},
		{`[]`, "no peers"},
		{`[{"region": "eu-west", "cluster": "eu-1"}]`, "peer 1 lacks a region, cluster or http address"},
		{`[{"region": "eu-west", "cluster": "eu-1", "http": "https://127.0.0.1:1"}, {"region": "eu-west", "cluster": "eu-1", "http": "https://127.0.0.1:2"}]`, `cluster "eu-1" is listed twice`},
	} {
		if _, err := Attach(write("bad.json", tc.body), client.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
	// The peers.json of `shoal dev` has more fields; they are ignored.
	d, err := Attach(write("peers.json", `[{"region": "eu-west", "cluster": "eu-1", "http": "https://127.0.0.1:7480", "pid": 4242, "dataDir": "x"}]`), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ps := d.Peers(); len(ps) != 1 || ps[0].Cluster != "eu-1" || ps[0].HTTP != "https://127.0.0.1:7480" {
		t.Fatalf("peers %+v", ps)
	}
	if _, err := d.Client("eu-1"); err != nil {
		t.Fatal(err)
	}
	// No process is touched: kill, stop and forge are refused.
	for _, err := range []error{d.Kill("eu-1"), d.Pause("eu-1"), d.Restart("eu-1")} {
		if err == nil || !strings.Contains(err.Error(), "did not start this mesh's peers") {
			t.Errorf("a process fault on an attached mesh: %v", err)
		}
	}
	if _, err := d.Forge(context.Background(), "eu-1", "eu-1"); err == nil {
		t.Error("forge on an attached mesh was not refused")
	}
	// A random schedule leaves the process faults out; one of nothing
	// else is refused.
	r := testRunner(d, 1)
	if err := r.random(context.Background(), Random{Faults: []string{"kill", "stop"}, For: Duration(1)}); err == nil || !strings.Contains(err.Error(), "none of the faults") {
		t.Errorf("a random schedule of process faults only on an attached mesh: %v", err)
	}
}
