package region

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

func migrateCmd(from, to string) *shoalpb.Command {
	return &shoalpb.Command{Cmd: &shoalpb.Command_Migrate{Migrate: &shoalpb.Migrate{Workload: webKey.Proto(), From: from, To: to}}}
}

func migrations(b *shoalpb.Binding) string {
	s := ""
	for _, m := range b.GetMigrations() {
		s += m.GetFrom() + "->" + m.GetTo() + " "
	}
	return s
}

// shoal migrate moves the share of one cluster onto another for good, the
// old replicas kept until the new ones are Ready; a target that fails rolls
// the move back and it resumes when the target is back; migrating back
// cancels it, and A to B then B to C is A to C.
func TestLeaderMigrateMovesAShareGracefullyAndForGood(t *testing.T) {
	h := newLeaderHarness(t, "a", "b", "c")
	h.applyWeb(3, `{"clusterAffinity":{"clusterNames":["a"]},"replicaScheduling":{"replicaSchedulingType":"Divided"}}`)
	h.settle()
	h.report("a", webKey, 3, 3)
	h.command(migrateCmd("a", "b"))
	h.settle()
	b := h.binding(webKey)
	if targets(b) != "b=3" || evictionString(b.GetEvictions()) != "a=3" || migrations(b) != "a->b " {
		t.Fatalf("migrating: %q, evictions %q, migrations %q", targets(b), evictionString(b.GetEvictions()), migrations(b))
	}
	if events(&meshPeer{fsm: h.fsm}, webKey, "MigrationRequested") != 1 {
		t.Error("no MigrationRequested event")
	}
	h.report("b", webKey, 3, 2)
	h.settle()
	if b := h.binding(webKey); evictionString(b.GetEvictions()) != "a=3" {
		t.Fatalf("a released before b is Ready: %q", evictionString(b.GetEvictions()))
	}
	h.report("b", webKey, 3, 3)
	h.settle()
	h.advance(time.Minute)
	h.settle()
	if b := h.binding(webKey); targets(b) != "b=3" || len(b.GetEvictions()) != 0 {
		t.Fatalf("migrated: %q, evictions %q", targets(b), evictionString(b.GetEvictions()))
	}
	// For good: a scale change keeps it on b.
	h.command(applyObjects(obj(webKey, fmt.Sprintf(deployment, 4))))
	h.settle()
	if got := targets(h.binding(webKey)); got != "b=4" {
		t.Fatalf("scaled to 4 after the migration: %q", got)
	}
	h.report("b", webKey, 4, 4)

	// b fails: the share rolls back to a; b back, the move resumes.
	h.command(reportCluster("b", shoalpb.Health_HEALTH_NOT_READY))
	h.settle()
	if got := targets(h.binding(webKey)); got != "a=4" {
		t.Fatalf("target failed: %q, want rolled back to a", got)
	}
	h.command(reportCluster("b", shoalpb.Health_HEALTH_READY))
	h.settle()
	if b := h.binding(webKey); targets(b) != "b=4" || evictionString(b.GetEvictions()) != "a=4" {
		t.Fatalf("target back: %q, evictions %q", targets(b), evictionString(b.GetEvictions()))
	}

	// b to c continues a to b; c to a cancels it.
	h.command(migrateCmd("b", "c"))
	h.settle()
	if b := h.binding(webKey); migrations(b) != "a->c " || targets(b) != "c=4" {
		t.Fatalf("b to c: migrations %q, placed %q", migrations(b), targets(b))
	}
	h.report("c", webKey, 4, 4)
	h.settle()
	h.command(migrateCmd("c", "a"))
	h.settle()
	if b := h.binding(webKey); migrations(b) != "" || targets(b) != "a=4" || evictionString(b.GetEvictions()) != "c=4" {
		t.Fatalf("back to a: migrations %q, placed %q, evictions %q; want c kept until a is Ready", migrations(b), targets(b), evictionString(b.GetEvictions()))
	}
	h.report("a", webKey, 4, 4)
	h.settle()
	if b := h.binding(webKey); len(b.GetEvictions()) != 0 {
		t.Fatalf("a Ready: evictions %q", evictionString(b.GetEvictions()))
	}
}

func TestMigrateRefusesWhatItCannotMove(t *testing.T) {
	h := newLeaderHarness(t, "a", "b")
	for _, tc := range []struct {
		cmd  *shoalpb.Command
		want string
	}{
		{migrateCmd("a", "b"), "not placed in this region"},
	} {
		data, _ := proto.Marshal(tc.cmd)
		if _, err := h.raft.ApplyLocal(t.Context(), data); !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.cmd, err, tc.want)
		}
	}
	h.applyWeb(1, divided)
	h.settle()
	for _, tc := range []struct {
		cmd  *shoalpb.Command
		want string
	}{
		{migrateCmd("a", "a"), "to itself"},
		{migrateCmd("a", "z"), "cluster z is not in this region"},
		{migrateCmd("", "b"), "needs from and to"},
	} {
		data, _ := proto.Marshal(tc.cmd)
		if _, err := h.raft.ApplyLocal(t.Context(), data); !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.cmd, err, tc.want)
		}
	}
	if m := migrations(h.binding(webKey)); m != "" {
		t.Fatalf("refused migrations recorded %q", m)
	}
}
