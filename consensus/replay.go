package consensus

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
)

// errReplayAhead is a snapshot refused while the state machine is ahead of
// Raft after a replay: Raft would label it with an older index.
var errReplayAhead = errors.New("consensus: not snapshotting while catching up after a restart")

// replayFSM wraps the caller's FSM so that a restarted node can serve the
// state it last acted on before it hears from a leader.
//
// hashicorp/raft restores only the last snapshot on start; the committed
// entries after it are applied once a leader says they are committed. A
// node that acted on later state (a peer that applied it to its cluster)
// would otherwise come back with older state and undo what it did. So New
// replays the local log itself, up to the restart point the node recorded
// before acting (SetRestartPoint): those entries were committed, so they
// are final. Raft then delivers them again; the wrapper skips every entry
// up to what was replayed, and refuses snapshots until Raft has caught up,
// because Raft would label one with its own, older, applied index. A
// snapshot installed from the leader replaces the state and ends skipping.
type replayFSM struct {
	fsm raft.FSM

	mu     sync.Mutex
	skipTo uint64 // Raft's deliveries up to here were replayed already
}

func (f *replayFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	skip := l.Index <= f.skipTo
	if l.Index >= f.skipTo {
		f.skipTo = 0 // Raft has delivered everything replayed
	}
	f.mu.Unlock()
	if skip {
		return nil
	}
	return f.fsm.Apply(l)
}

func (f *replayFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	ahead := f.skipTo > 0
	f.mu.Unlock()
	if ahead {
		return nil, errReplayAhead
	}
	return f.fsm.Snapshot()
}

func (f *replayFSM) Restore(rc io.ReadCloser) error {
	f.mu.Lock()
	f.skipTo = 0
	f.mu.Unlock()
	return f.fsm.Restore(rc)
}

// replay restores the newest snapshot into f's FSM and applies the
// committed log entries after it up to to (never beyond the log). It
// returns the index the state machine is at.
func (f *replayFSM) replay(logs raft.LogStore, snaps raft.SnapshotStore, to uint64, log *slog.Logger) (uint64, error) {
	metas, err := snaps.List()
	if err != nil {
		return 0, fmt.Errorf("consensus: listing snapshots: %w", err)
	}
	var at uint64
	if len(metas) > 0 {
		meta, rc, err := snaps.Open(metas[0].ID)
		if err != nil {
			return 0, fmt.Errorf("consensus: opening snapshot %s: %w", metas[0].ID, err)
		}
		err = f.fsm.Restore(rc)
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("consensus: restoring snapshot %s: %w", meta.ID, err)
		}
		at = meta.Index
	}
	last, err := logs.LastIndex()
	if err != nil {
		return at, fmt.Errorf("consensus: reading the log: %w", err)
	}
	end := min(to, last)
	for i := at + 1; i <= end; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			log.Warn("replay stopped: a log entry is missing", "index", i, "err", err)
			break
		}
		if l.Type == raft.LogCommand {
			f.fsm.Apply(&l)
		}
		at = i
	}
	f.mu.Lock()
	f.skipTo = at
	f.mu.Unlock()
	return at, nil
}
