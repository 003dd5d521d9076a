package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/node"
)

// TestMeshPauseResumeAndStop runs a one-peer mesh of real processes: a
// paused peer's HTTP API answers nothing until it is resumed, a paused
// peer cannot be restarted, and Stop ends a paused mesh through SIGTERM
// (the peer is continued first) rather than the SIGKILL of last resort.
func TestMeshPauseResumeAndStop(t *testing.T) {
	m, err := node.StartMesh(node.MeshSpec{Binary: shoalBinary(t), Regions: 1, Clusters: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			m.Stop()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if s := m.Spec(); s.Regions != 1 || s.Clusters != 1 {
		t.Fatalf("Spec: %+v", s)
	}
	p := m.Peers()[0]
	c, err := m.Client(p.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	answers := func(within time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		_, err := c.Status(ctx)
		return err
	}
	if !m.Running(p.Cluster) || m.Paused(p.Cluster) {
		t.Fatalf("started: running %v, paused %v", m.Running(p.Cluster), m.Paused(p.Cluster))
	}

	if err := m.Pause(p.Cluster); err != nil {
		t.Fatal(err)
	}
	if !m.Running(p.Cluster) || !m.Paused(p.Cluster) {
		t.Fatalf("paused: running %v, paused %v", m.Running(p.Cluster), m.Paused(p.Cluster))
	}
	if err := answers(2 * time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a paused peer's API: %v, want no answer", err)
	}
	if err := m.Restart(p.Cluster); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("restarting a paused peer: %v, want a refusal that says it is paused", err)
	}

	if err := m.Resume(p.Cluster); err != nil {
		t.Fatal(err)
	}
	poll(t, "the resumed peer answers", func() error { return answers(5 * time.Second) })

	if err := m.Pause(p.Cluster); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	stopped = true
	if m.Running(p.Cluster) || m.Paused(p.Cluster) {
		t.Fatalf("stopped: running %v, paused %v", m.Running(p.Cluster), m.Paused(p.Cluster))
	}
	log, err := os.ReadFile(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "terminated: shutting down") {
		t.Errorf("the paused peer did not shut down on SIGTERM; its log ends:\n%s", tail(string(log), 5))
	}
	if err := m.Pause(p.Cluster); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("pausing a stopped peer: %v, want an error saying it is not running", err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
