package chaos

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeMembers records what the apiserver-stop fault asks of the real
// member clusters.
type fakeMembers struct{ calls []string }

func (m *fakeMembers) StopAPIServer(c string) error { m.calls = append(m.calls, "stop "+c); return nil }
func (m *fakeMembers) StartAPIServer(_ context.Context, c string) error {
	m.calls = append(m.calls, "start "+c)
	return nil
}

// memberDriver is a shape of a mesh whose peers drive real clusters.
type memberDriver struct {
	*shapeDriver
	members Members
}

func (d memberDriver) Members() Members { return d.members }

func TestAPIServerStopActsOnRealMembersOnly(t *testing.T) {
	ctx := context.Background()
	// A mesh of simulated clusters has no API server to stop: a clear
	// error, not a fault that silently does nothing.
	r := testRunner(newShape(1, 2), 1)
	if _, err := r.start(ctx, "apiserver-stop", Target{Cluster: "eu-1"}); err == nil || !strings.Contains(err.Error(), "simulated") {
		t.Fatalf("apiserver-stop on simulated clusters: %v", err)
	}

	m := &fakeMembers{}
	r = testRunner(memberDriver{shapeDriver: newShape(1, 2), members: m}, 1)
	report := &Report{}
	r.rec = newRecorder(report, r.d.Peers(), nil)
	f, err := r.start(ctx, "apiserver-stop", Target{Cluster: "eu-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.heal(ctx); err != nil {
		t.Fatal(err)
	}
	r.rec.close(time.Now())
	if want := []string{"stop eu-1", "start eu-1"}; !slices.Equal(m.calls, want) {
		t.Fatalf("calls %v, want %v", m.calls, want)
	}
	if len(report.Timeline) != 1 || report.Timeline[0].Kind != EventNotReady || !slices.Equal(report.Timeline[0].Clusters, []string{"eu-1"}) {
		t.Fatalf("timeline %+v; want eu-1's cluster lost (not-ready)", report.Timeline)
	}
}

func TestAPIServerStopNeedsACluster(t *testing.T) {
	_, err := Parse([]byte("name: x\nmesh: {regions: 1, clusters: 2}\nsteps:\n  - fault: apiserver-stop\n    for: 5s\n"), false, "")
	if err == nil || !strings.Contains(err.Error(), "apiserver-stop needs a cluster") {
		t.Fatalf("apiserver-stop without a cluster: %v", err)
	}
}
