package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/deploy"
)

// openSimDir opens the simulated cluster kept in dir, on a fake clock
// reading start, and closes it when the test ends.
func openSimDir(t *testing.T, dir string, start time.Time) (*deploy.SimCluster, *testingclock.FakeClock) {
	t.Helper()
	clock := testingclock.NewFakeClock(start)
	s, err := deploy.NewSimCluster(deploy.SimConfig{Dir: dir, ReadyDelay: 200 * time.Millisecond, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, clock
}

func mustClose(t *testing.T, s *deploy.SimCluster) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSimKeepsObjectsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s, clock := openSimDir(t, dir, epoch)
	// Three nodes of 4 CPUs: web and api share node 0, big takes nodes 1
	// and 2 and leaves two replicas Pending.
	mustApply(t, s, work("web", "500m", "64Mi", 1, 3))
	uid := s.Objects()[deploymentKey("web")].UID
	clock.Step(time.Minute)
	mustApply(t, s, work("api", "1", "1Gi", 1, 2))
	mustApply(t, s, deploy.Work{Key: configMapKey("cfg"), Manifest: configMap("cfg"), Generation: 4})
	mustApply(t, s, work("big", "3", "1Gi", 1, 4))
	mustApply(t, s, work("web", "500m", "64Mi", 2, 3)) // a new generation: same object
	clock.Step(time.Second)
	before := s.Objects()
	if got := before[deploymentKey("web")]; got.UID != uid || !got.Created.Equal(epoch) {
		t.Fatalf("web after an update: UID %q created %v, want %q created %v", got.UID, got.Created, uid, epoch)
	}
	uids := map[string]bool{}
	for k, o := range before {
		if o.UID == "" || uids[o.UID] {
			t.Fatalf("%s: UID %q empty or not unique", k.Display(), o.UID)
		}
		uids[o.UID] = true
	}
	if o := before[deploymentKey("big")]; o.Ready != 2 || o.Pending != 2 {
		t.Fatalf("big before the restart: %+v", o)
	}
	mustClose(t, s)

	// No time passes on the new clock: the replicas are Ready at once.
	s2, _ := openSimDir(t, dir, epoch.Add(time.Hour))
	after := s2.Objects()
	if len(after) != len(before) {
		t.Fatalf("%d objects after the restart, want %d", len(after), len(before))
	}
	for k, b := range before {
		a, ok := after[k]
		switch {
		case !ok:
			t.Errorf("%s lost", k.Display())
		case a.UID != b.UID || !a.Created.Equal(b.Created) || a.Generation != b.Generation ||
			!bytes.Equal(a.Manifest, b.Manifest) || a.HasReplicas != b.HasReplicas || a.Replicas != b.Replicas:
			t.Errorf("%s: before %+v, after %+v", k.Display(), b, a)
		case a.Placed != b.Placed || a.Pending != b.Pending || a.Ready != a.Placed:
			t.Errorf("%s: placed/ready/pending %d/%d/%d, want %d/%d/%d", k.Display(), a.Placed, a.Ready, a.Pending, b.Placed, b.Placed, b.Pending)
		}
	}
	if st := mustStatus(t, s2, deploymentKey("web")); st.Health != deploy.HealthHealthy || st.ReadyReplicas != 3 || st.AppliedGeneration != 2 {
		t.Fatalf("web after the restart: %+v", st)
	}
	mustApply(t, s2, work("new", "100m", "1Mi", 1, 1))
	if o := s2.Objects()[deploymentKey("new")]; uids[o.UID] || !o.Created.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("a new object after the restart: %+v", o)
	}
}

func TestSimPersistsDeleteAndRelease(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := openSimDir(t, dir, epoch)
	for _, name := range []string{"a", "b", "c"} {
		mustApply(t, s, work(name, "100m", "1Mi", 1, 1))
	}
	if err := s.Delete(ctx, deploymentKey("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, deploymentKey("b")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	s2, _ := openSimDir(t, dir, epoch)
	if keys, err := s2.List(ctx); err != nil || len(keys) != 1 || keys[0] != deploymentKey("c") {
		t.Fatalf("after the restart List() = %v, %v; want only c", keys, err)
	}
	// Re-created, a deleted object is a new one.
	mustApply(t, s2, work("a", "100m", "1Mi", 1, 1))
	if err := s2.Delete(ctx, deploymentKey("c")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s2)
	s3, _ := openSimDir(t, dir, epoch)
	if keys, _ := s3.List(ctx); len(keys) != 1 || keys[0] != deploymentKey("a") {
		t.Fatalf("after the second restart List() = %v; want only a", keys)
	}
}

func TestSimPersistsNotReady(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, clock := openSimDir(t, dir, epoch)
	w := work("web", "100m", "1Mi", 1, 2)
	mustApply(t, s, w)
	clock.Step(time.Second)
	if err := s.SetReady(false); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	// A dead cluster stays dead across a restart of its peer.
	s2, clock2 := openSimDir(t, dir, epoch)
	if h, _, _ := s2.Health(ctx); h != shoalpb.Health_HEALTH_NOT_READY {
		t.Fatalf("Health() = %v after the restart, want NotReady", h)
	}
	if st := mustStatus(t, s2, w.Key); st.ReadyReplicas != 0 || st.Health != deploy.HealthUnhealthy {
		t.Fatalf("status while NotReady: %+v", st)
	}
	if err := s2.Apply(ctx, work("web", "100m", "1Mi", 1, 3)); !errors.Is(err, deploy.ErrUnavailable) {
		t.Fatalf("Apply = %v, want ErrUnavailable", err)
	}
	if o := s2.Objects()[w.Key]; o.Placed != 2 {
		t.Fatalf("replicas not placed on the NotReady nodes: %+v", o)
	}
	if err := s2.SetReady(true); err != nil {
		t.Fatal(err)
	}
	clock2.Step(200 * time.Millisecond)
	if st := mustStatus(t, s2, w.Key); st.ReadyReplicas != 2 {
		t.Fatalf("after SetReady(true): %+v", st)
	}
	mustClose(t, s2)
	s3, _ := openSimDir(t, dir, epoch)
	if h, _, _ := s3.Health(ctx); h != shoalpb.Health_HEALTH_READY {
		t.Fatalf("Health() = %v after SetReady(true) and a restart", h)
	}
}

func TestSimClosed(t *testing.T) {
	s, _ := openSimDir(t, t.TempDir(), epoch)
	w := work("web", "100m", "1Mi", 1, 1)
	mustApply(t, s, w)
	mustClose(t, s)
	mustClose(t, s) // twice is fine
	if err := s.Apply(context.Background(), w); err == nil {
		t.Fatal("Apply after Close succeeded")
	}
	if err := s.SetReady(false); err == nil {
		t.Fatal("SetReady after Close succeeded")
	}
	if st := mustStatus(t, s, w.Key); st.AppliedGeneration != 1 {
		t.Fatalf("Status after Close: %+v", st)
	}
}

func TestSimDirInUse(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSimDir(t, dir, epoch)
	_, err := deploy.NewSimCluster(deploy.SimConfig{Dir: dir, LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open of a Dir in use: %v", err)
	}
	mustClose(t, s)
	s2, err := deploy.NewSimCluster(deploy.SimConfig{Dir: dir, LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open after Close: %v", err)
	}
	mustClose(t, s2)
}

func TestSimUnreadableDir(t *testing.T) {
	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	for name, content := range map[string][]byte{
		"text":         []byte("not a database\n"),
		"random bytes": random,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openSimDir(t, dir, epoch)
			mustApply(t, s, work("web", "100m", "1Mi", 1, 1))
			mustClose(t, s)
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			if len(files) != 1 {
				t.Fatalf("files in Dir: %v", files)
			}
			if err := os.WriteFile(files[0], content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := deploy.NewSimCluster(deploy.SimConfig{Dir: dir, LockTimeout: 50 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), files[0]) || !strings.Contains(err.Error(), "move it away") {
				t.Fatalf("NewSimCluster on a damaged file: %v", err)
			}
		})
	}
}

// TestSimSurvivesKill kills a process that keeps applying (SIGKILL, at
// whatever point it has reached) and checks that a new SimCluster holds
// every change whose call had returned.
func TestSimSurvivesKill(t *testing.T) {
	if dir := os.Getenv("SHOAL_SIM_KILL_DIR"); dir != "" {
		applyUntilKilled(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimSurvivesKill$")
	cmd.Env = append(os.Environ(), "SHOAL_SIM_KILL_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()
	const enough = 200
	last := 0
	for sc := bufio.NewScanner(out); last < enough && sc.Scan(); {
		if n, err := strconv.Atoi(sc.Text()); err == nil {
			last = n
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if last < enough {
		t.Fatalf("the child applied %d rounds before it stopped: %s", last, stderr.String())
	}

	s, _ := openSimDir(t, dir, epoch)
	objs := s.Objects()
	if o := objs[deploymentKey("web")]; o.Generation < int64(last) || o.Ready != o.Replicas {
		t.Fatalf("web after the kill: %+v; round %d had returned", o, last)
	}
	for i := 1; i <= last; i++ {
		if _, ok := objs[configMapKey(fmt.Sprint("cfg-", i))]; !ok {
			t.Fatalf("cfg-%d lost; round %d had returned", i, last)
		}
	}
}

// applyUntilKilled applies round after round in the child process of
// TestSimSurvivesKill, printing each round's number once its calls have
// returned.
func applyUntilKilled(dir string) {
	s, err := deploy.NewSimCluster(deploy.SimConfig{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	for i := 1; i < 1_000_000; i++ {
		name := fmt.Sprint("cfg-", i)
		for _, w := range []deploy.Work{work("web", "10m", "1Mi", int64(i), int32(i%5)), {Key: configMapKey(name), Manifest: configMap(name), Generation: 1}} {
			if err := s.Apply(ctx, w); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		fmt.Println(i)
	}
	os.Exit(1)
}
