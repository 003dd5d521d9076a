package consensus

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestConfigValidate(t *testing.T) {
	ok := func() Config { c := DefaultConfig(); c.ID = "c1"; return c }
	if err := ok().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	edge := DefaultEdgeConfig()
	edge.ID = "c1"
	if err := edge.Validate(); err != nil {
		t.Fatalf("valid edge config: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no id", func(c *Config) { c.ID = "" }, "ID"},
		{"negative expect", func(c *Config) { c.BootstrapExpect = -1 }, "BootstrapExpect"},
		{"expect above max voters", func(c *Config) { c.BootstrapExpect = 6 }, "MaxVoters"},
		{"zero voters", func(c *Config) { c.MaxVoters = 0 }, "MaxVoters"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "LeaderLeaseTimeout"},
		{"lease above half the heartbeat", func(c *Config) { c.LeaderLeaseTimeout = c.HeartbeatTimeout/2 + time.Millisecond }, "LeaderLeaseTimeout"},
		{"election below heartbeat", func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 }, "ElectionTimeout"},
		{"tiny heartbeat", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{"no grace", func(c *Config) { c.DeadServerGrace = 0 }, "DeadServerGrace"},
		{"no apply timeout", func(c *Config) { c.ApplyTimeout = 0 }, "ApplyTimeout"},
		{"no trailing logs", func(c *Config) { c.TrailingLogs = 0 }, "TrailingLogs"},
	}
	for _, tt := range tests {
		c := ok()
		tt.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrBadConfig naming %s", tt.name, err, tt.want)
		}
	}
}

func TestBootstrapVoters(t *testing.T) {
	m := func(id string, st MemberStatus, expect int) Member {
		return Member{ID: id, RaftAddr: id + ":1", Status: st, BootstrapExpect: expect}
	}
	tests := []struct {
		name    string
		expect  int
		members []Member
		want    []string
		wantErr bool
	}{
		{"too few", 3, []Member{m("b", Alive, 3), m("a", Alive, 3)}, nil, false},
		{"exactly", 3, []Member{m("c", Alive, 3), m("b", Alive, 3), m("a", Alive, 3)}, []string{"a", "b", "c"}, false},
		{"first by id", 2, []Member{m("c", Alive, 2), m("b", Alive, 2), m("a", Alive, 2)}, []string{"a", "b"}, false},
		{"dead ignored", 2, []Member{m("a", Dead, 2), m("b", Alive, 2)}, nil, false},
		{"joiners ignored", 2, []Member{m("a", Alive, 0), m("b", Alive, 2), m("c", Alive, 2)}, []string{"b", "c"}, false},
		{"mismatch", 3, []Member{m("a", Alive, 3), m("b", Alive, 3), m("c", Alive, 2)}, nil, true},
	}
	for _, tt := range tests {
		got, err := bootstrapVoters(tt.expect, tt.members)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		var ids []string
		for _, g := range got {
			ids = append(ids, g.ID)
		}
		if !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("%s: voters %v, want %v", tt.name, ids, tt.want)
		}
	}
}

func TestPlanChanges(t *testing.T) {
	now := time.Unix(1000, 0)
	grace := time.Minute
	voter := func(id string) raft.Server {
		return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":1")}
	}
	nonvoter := func(id string) raft.Server {
		s := voter(id)
		s.Suffrage = raft.Nonvoter
		return s
	}
	mem := func(id string, st MemberStatus, ago time.Duration) Member {
		return Member{ID: id, RaftAddr: id + ":1", Status: st, Since: now.Add(-ago)}
	}
	view := func(ms ...Member) map[string]Member {
		out := map[string]Member{}
		for _, m := range ms {
			out[m.ID] = m
		}
		return out
	}
	tests := []struct {
		name    string
		servers []raft.Server
		members map[string]Member
		max     int
		leaving map[string]time.Time
		want    []string // "op id"
	}{
		{"in sync", []raft.Server{voter("a"), voter("b")},
			view(mem("a", Alive, 0), mem("b", Alive, 0)), 5, nil, nil},
		{"add voters then non-voters", []raft.Server{voter("a")},
			view(mem("a", Alive, 0), mem("c", Alive, 0), mem("b", Alive, 0), mem("d", Alive, 0)), 3, nil,
			[]string{"add-voter b", "add-voter c", "add-nonvoter d"}},
		{"suspect and dead not added", []raft.Server{voter("a")},
			view(mem("a", Alive, 0), mem("b", Suspect, 0), mem("c", Dead, 0)), 5, nil, nil},
		{"left within grace kept: gossip's leave is not authenticated", []raft.Server{voter("a"), voter("b"), voter("c"), nonvoter("d")},
			view(mem("a", Alive, 0), mem("b", Left, 0), mem("c", Alive, 0), mem("d", Alive, 0)), 3, nil,
			nil},
		{"left beyond grace removed, non-voter promoted", []raft.Server{voter("a"), voter("b"), voter("c"), nonvoter("d")},
			view(mem("a", Alive, 0), mem("b", Left, 2*time.Minute), mem("c", Alive, 0), mem("d", Alive, 0)), 3, nil,
			[]string{"remove b", "add-voter d"}},
		{"dead within grace kept", []raft.Server{voter("a"), voter("b"), voter("c")},
			view(mem("a", Alive, 0), mem("b", Dead, 30*time.Second), mem("c", Alive, 0)), 5, nil, nil},
		{"dead beyond grace removed", []raft.Server{voter("a"), voter("b"), voter("c")},
			view(mem("a", Alive, 0), mem("b", Dead, 2*time.Minute), mem("c", Alive, 0)), 5, nil,
			[]string{"remove b"}},
		{"never the leader itself", []raft.Server{voter("a"), voter("b")},
			view(mem("a", Left, 0), mem("b", Alive, 0)), 5, nil, nil},
		{"absent from view kept", []raft.Server{voter("a"), voter("b")},
			view(mem("a", Alive, 0)), 5, nil, nil},
		{"quorum guard", []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e")},
			view(mem("a", Alive, 0), mem("b", Dead, 2*time.Minute), mem("c", Dead, 2*time.Minute),
				mem("d", Dead, 2*time.Minute), mem("e", Suspect, 0)), 5, nil,
			nil},
		{"dead removed while a live majority remains", []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e")},
			view(mem("a", Alive, 0), mem("b", Dead, 2*time.Minute), mem("c", Dead, 2*time.Minute),
				mem("d", Suspect, 0), mem("e", Alive, 0)), 5, nil,
			[]string{"remove b", "remove c"}},
		{"leaving not re-added", []raft.Server{voter("a")},
			view(mem("a", Alive, 0), mem("b", Alive, time.Minute)), 5, map[string]time.Time{"b": now},
			nil},
		{"rejoined after leaving added", []raft.Server{voter("a")},
			view(mem("a", Alive, 0), mem("b", Alive, 0)), 5, map[string]time.Time{"b": now.Add(-time.Second)},
			[]string{"add-voter b"}},
		{"address change", []raft.Server{voter("a"), nonvoter("b")},
			view(mem("a", Alive, 0), Member{ID: "b", RaftAddr: "b:2", Status: Alive}), 1, nil,
			[]string{"add-nonvoter b"}},
	}
	for _, tt := range tests {
		plan := planChanges("a", tt.servers, tt.members, tt.max, grace, now, tt.leaving)
		var got []string
		for _, c := range plan {
			got = append(got, c.op.String()+" "+c.id)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: plan %v, want %v", tt.name, got, tt.want)
		}
	}
}
