package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/node"
)

// The multi-process tests run the real binary: $SHOAL_BIN when set (the
// Makefile builds it), else one built once for the whole package.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func shoalBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("SHOAL_BIN"); b != "" {
		return b
	}
	binOnce.Do(func() {
		binDir, binError = os.MkdirTemp("", "shoal-bin-")
		if binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "shoal")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// child is a process the test started, with its stdout as lines.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *syncBuffer
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startChild starts the binary; it is killed at the end of the test if it
// still runs, and dies with the test process whatever happens.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(shoalBinary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 100), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("stderr of shoal %s:\n%s", strings.Join(args, " "), c.stderr.String())
		}
	})
	return c
}

// line waits for the next stdout line.
func (c *child) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("the process closed its stdout")
		}
		return l
	case <-time.After(deadline):
		t.Fatalf("no line on stdout within %s", deadline)
	}
	return ""
}

// stop sends SIGTERM and waits for the exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(deadline):
		t.Fatalf("no exit within %s of SIGTERM", deadline)
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

func readExampleFiles(t *testing.T) []byte {
	var all []byte
	for _, f := range []string{"web.yaml", "log-agent.yaml"} {
		data, err := os.ReadFile(filepath.Join("../../examples", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, data...), "\n---\n"...)
	}
	return all
}

// workloadsReady says why the workloads, as c sees them, are not all Ready
// with no replica bound to the cluster gone (evicting ones may stay).
func workloadsReady(ctx context.Context, c *client.Client, gone string) error {
	ws, err := c.Workloads(ctx)
	if err != nil {
		return err
	}
	if len(ws) != 3 {
		return fmt.Errorf("%d workloads", len(ws))
	}
	for _, w := range ws {
		if w.ReadyReplicas != w.BoundReplicas || len(w.Placements) == 0 {
			return fmt.Errorf("%s/%s: %d/%d ready on %d clusters", w.Kind, w.Name, w.ReadyReplicas, w.BoundReplicas, len(w.Placements))
		}
		if w.Name == "web" && w.BoundReplicas != 8 {
			return fmt.Errorf("web: %d replicas bound", w.BoundReplicas)
		}
		for _, p := range w.Placements {
			if p.Evicting {
				continue
			}
			if p.Cluster == gone {
				return fmt.Errorf("%s/%s: still bound to %s", w.Kind, w.Name, gone)
			}
			if p.Health != "Healthy" {
				return fmt.Errorf("%s/%s: %s on %s (%s)", w.Kind, w.Name, p.Health, p.Cluster, p.Reason)
			}
		}
	}
	return nil
}

func TestDevMeshMultiProcess(t *testing.T) {
	dir := t.TempDir()
	dev := startChild(t, "dev", "--regions", "1", "--clusters", "3", "--dir", dir, "--", "--failback-delay", "2s")
	printed := map[string]string{}
	for i := 0; i < 3; i++ {
		f := strings.Fields(dev.line(t))
		if len(f) != 3 || f[0] != "eu-west" || !strings.HasPrefix(f[2], "https://127.0.0.1:") {
			t.Fatalf("line %d of shoal dev: %q, want REGION CLUSTER HTTP-URL", i+1, f)
		}
		printed[f[1]] = f[2]
	}
	data, err := os.ReadFile(filepath.Join(dir, "peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var peers []node.MeshPeer
	if err := json.Unmarshal(data, &peers); err != nil {
		t.Fatal(err)
	}
	if len(peers) != 3 {
		t.Fatalf("peers.json lists %d peers", len(peers))
	}
	// The mesh made its own credentials and says how to use them, in its
	// output and in DIR/env.
	env := exportLines(t, dev)
	written, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil || !strings.Contains(string(written), "SHOAL_TOKEN="+env["SHOAL_TOKEN"]) {
		t.Fatalf("DIR/env: %q, %v; printed %v", written, err, env)
	}
	opts := client.Options{CACert: env["SHOAL_CACERT"], Token: env["SHOAL_TOKEN"]}
	if _, err := client.New(env["SHOAL_SERVER"]); err != nil {
		t.Fatal(err)
	}
	clients := map[string]*client.Client{}
	for _, p := range peers {
		if p.Region != "eu-west" || p.PID <= 0 || printed[p.Cluster] != p.HTTP || p.DataDir == "" || p.Log == "" {
			t.Fatalf("peers.json entry %+v does not match the printed %v", p, printed)
		}
		// Without credentials a peer answers 401.
		bare, err := client.NewWith(p.HTTP, client.Options{CACert: opts.CACert})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, "a request without credentials to "+p.Cluster+" answered 401", func() error {
			if _, err := bare.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "unauthorized") {
				return fmt.Errorf("%v, want unauthorized", err)
			}
			return nil
		})
		c, err := client.NewWith(p.HTTP, opts)
		if err != nil {
			t.Fatal(err)
		}
		clients[p.Cluster] = c
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var leader string
	for name, c := range clients {
		st, err := c.WaitLeader(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		leader = st.Leader
	}
	if _, err := clients[leader].Apply(ctx, readExampleFiles(t)); err != nil {
		t.Fatal(err)
	}
	for name, c := range clients {
		poll(t, "every workload Ready, seen from "+name, func() error { return workloadsReady(ctx, c, "") })
	}

	// SIGKILL the leader's process: a crash, to the region.
	var victim node.MeshPeer
	for _, p := range peers {
		if p.Cluster == leader {
			victim = p
		}
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	delete(clients, victim.Cluster)
	for name, c := range clients {
		poll(t, "replicas moved off "+victim.Cluster+", seen from "+name, func() error {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if st.Leader == "" || st.Leader == victim.Cluster {
				return fmt.Errorf("leader %q", st.Leader)
			}
			return workloadsReady(ctx, c, victim.Cluster)
		})
	}

	dev.stop(t)
	for _, p := range peers {
		poll(t, fmt.Sprintf("peer %s (pid %d) gone", p.Cluster, p.PID), func() error {
			if err := syscall.Kill(p.PID, 0); !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill(%d, 0): %v", p.PID, err)
			}
			return nil
		})
	}
}

// exportLines reads the "export NAME=VALUE" lines a dev mode prints next.
func exportLines(t *testing.T, c *child) map[string]string {
	t.Helper()
	env := map[string]string{}
	for len(env) < 3 {
		l := c.line(t)
		if kv, ok := strings.CutPrefix(l, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = strings.Trim(v, "'")
		}
	}
	return env
}

// busyPort says why a default port of `shoal agent -dev` is not free, or "".
func busyPort() string {
	for _, port := range []int{node.DefaultHTTPPort, node.DefaultGossipPort, node.DefaultRaftPort} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Sprintf("TCP %s: %v", addr, err)
		}
		l.Close()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", node.DefaultGossipPort)
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Sprintf("UDP %s: %v", addr, err)
	}
	u.Close()
	return ""
}

func TestAgentDevIsReachableWithNoFlags(t *testing.T) {
	if why := busyPort(); why != "" {
		t.Skipf("shoal agent -dev listens on the fixed ports %d-%d and one is busy on this machine (%s); not testing it here",
			node.DefaultHTTPPort, node.DefaultRaftPort, why)
	}
	agent := startChild(t, "agent", "-dev")
	want := fmt.Sprintf("https://127.0.0.1:%d", node.DefaultHTTPPort)
	for {
		l := agent.line(t)
		if url, ok := strings.CutPrefix(l, "==> Shoal dev agent ready: "); ok {
			if url != want {
				t.Fatalf("ready at %q, want %q", url, want)
			}
			break
		}
	}
	// It made its own CA, certificate, token and gossip key, and prints
	// the export lines that point the CLI at it.
	env := exportLines(t, agent)
	if env["SHOAL_SERVER"] != want || env["SHOAL_CACERT"] == "" || env["SHOAL_TOKEN"] == "" {
		t.Fatalf("export lines %v", env)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	code, out, errOut := shoal("status")
	if code != 0 || !strings.Contains(out, "Leader:   dev-1") || !strings.Contains(out, "Region:   dev") {
		t.Fatalf("shoal status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = shoal("apply", "-f", "../../examples")
	if code != 0 {
		t.Fatalf("shoal apply: exit %d\n%s%s", code, out, errOut)
	}
	c, err := client.NewWith(want, client.Options{CACert: env["SHOAL_CACERT"], Token: env["SHOAL_TOKEN"]})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the examples Ready on the dev agent (log-agent; web wants clusters labelled env=prod)", func() error {
		ws, err := c.Workloads(context.Background())
		if err != nil {
			return err
		}
		for _, w := range ws {
			if w.Kind == "Deployment" && w.Name == "log-agent" && (w.BoundReplicas == 0 || w.ReadyReplicas != w.BoundReplicas) {
				return fmt.Errorf("%s/%s %d/%d", w.Kind, w.Name, w.ReadyReplicas, w.BoundReplicas)
			}
		}
		return nil
	})
	agent.stop(t)
}

// make demo: the demo runs to its end on its own, fails over and back,
// shows that the returning cluster kept its objects (same uids), kills a
// region and brings it back, and leaves no peer process behind.
func TestDemoRunsToTheEnd(t *testing.T) {
	demo := startChild(t, "demo")
	var out []string
	for l := range demo.lines {
		out = append(out, l)
	}
	<-demo.exited
	text := strings.Join(out, "\n")
	if code := demo.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("shoal demo exited %d:\n%s\n%s", code, text, demo.stderr.String())
	}
	for _, want := range []string{"failover took", "(held)", "failback took", "Deployment default/web", "done in",
		// Bursting: the on-prem cluster fills up, the rest spills into the
		// cloud tier, and a scale down drains the cloud first.
		"==> Bursting: on premises (eu-3)", "replicas by tier: on-prem 3, cloud 3", "    eu-3 (on-prem) 3\n", "Bursting took",
		// The mesh of regions: a region killed, taken over, caught up with deltas, given back.
		"Killing region ap-south", "takeover took", "caught up in", "Deployment default/global-web", "Unknown ("} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "failback took") != 2 {
		t.Errorf("the demo did not fail back twice (a cluster, then a region):\n%s", text)
	}
	if strings.Contains(text, " NEW") || !strings.Contains(text, " same") {
		t.Errorf("the returning cluster's objects were re-created:\n%s", text)
	}
	// Every peer it started is gone: the pids it printed no longer exist.
	for _, l := range out {
		i := strings.Index(l, "(pid ")
		if i < 0 {
			continue
		}
		var pid int
		fmt.Sscanf(l[i:], "(pid %d", &pid)
		if pid > 0 {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("peer pid %d still exists after the demo: %v", pid, err)
			}
		}
	}
}
