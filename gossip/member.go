package gossip

import (
	"fmt"
	"time"

	"github.com/shoalmesh/shoal/api/shoalpb"
	"google.golang.org/protobuf/proto"
)

// State is the state of a member as this pool sees it.
type State int

const (
	// StateAlive: the member answers probes (or has not yet been found
	// not to).
	StateAlive State = iota
	// StateSuspect: reserved. memberlist v0.6.0 does not tell its user
	// when it suspects a member, so a Pool never reports it: members go
	// from StateAlive straight to StateDead.
	StateSuspect
	// StateDead: the member stopped answering and was declared failed.
	StateDead
	// StateLeft: the member left gracefully (Pool.Leave).
	StateLeft
)

// String returns "alive", "suspect", "dead" or "left".
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Member is a member of the pool as this pool sees it. Members are values:
// changing one changes nothing in the pool.
type Member struct {
	// Name is the member's cluster name.
	Name string
	// Addr is the member's gossip address, host:port.
	Addr string
	// Meta is the member's last readable metadata, or nil if none of its
	// metadata could be read (garbage or a newer format version).
	Meta *shoalpb.PeerMeta
	// State is the member's state.
	State State
	// Since is when the member entered State.
	Since time.Time
}

// clone returns a copy of m that shares nothing mutable with m.
func (m Member) clone() Member {
	if m.Meta != nil {
		m.Meta = proto.Clone(m.Meta).(*shoalpb.PeerMeta)
	}
	return m
}

// EventType says what happened to a member.
type EventType int

const (
	// EventJoin: a member joined, or came back after failing or leaving.
	EventJoin EventType = iota
	// EventUpdate: a live member's metadata changed.
	EventUpdate
	// EventFailed: a member was declared dead without having left.
	EventFailed
	// EventLeft: a member left gracefully.
	EventLeft
)

// String returns "join", "update", "failed" or "left".
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventFailed:
		return "failed"
	case EventLeft:
		return "left"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is a change of a member, with the member as it was right after the
// change.
type Event struct {
	Type   EventType
	Member Member
}

// String formats the event for logs and test failures.
func (e Event) String() string {
	return fmt.Sprintf("%s %s (%s)", e.Type, e.Member.Name, e.Member.State)
}
