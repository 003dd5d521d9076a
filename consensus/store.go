package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

const (
	// logCacheSize is how many recent log entries are kept in memory in
	// front of the bolt store: one AppendEntries batch (raft's
	// MaxAppendEntries, 64), which is what the leader reads back to
	// replicate and a follower to apply; older entries are read from the
	// bolt file. The cache keeps every entry it holds alive until a newer
	// one takes its slot, so it is a floor under a peer's memory: entries
	// are up to MaxCommandSize (4 MiB) each, and with 512 slots the
	// entries of one burst of applies stayed on the heap of every peer
	// (about 1 MiB with 1,000 workloads, measured).
	logCacheSize = 64
	// boltLockTimeout bounds the wait for raft.db's file lock, held while
	// another node (or process) has the same directory open.
	boltLockTimeout = 5 * time.Second
)

// DiskStore is the production storage of a node: a raft-boltdb/v2 log
// and stable store in Dir/raft.db (with a cache of recent entries in front
// of the log) and file snapshots in Dir/snapshots. Pass its parts to New;
// close it after the node has shut down.
type DiskStore struct {
	Logs      raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
	bolt      *raftboltdb.BoltStore
}

// OpenDiskStore opens (or creates) the stores under dir, keeping retain
// snapshots. It fails after a few seconds if another process has dir open.
func OpenDiskStore(dir string, retain int, logger *slog.Logger) (*DiskStore, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if retain < 1 {
		return nil, fmt.Errorf("%w: snapshots to retain (%d) must be at least 1", ErrBadConfig, retain)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: data dir: %w", err)
	}
	boltOpts := *bbolt.DefaultOptions
	boltOpts.Timeout = boltLockTimeout // the file is locked while another node uses it
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &boltOpts})
	if err != nil {
		return nil, fmt.Errorf("consensus: open raft.db: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, retain, newRaftLogger(logger))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("consensus: snapshot store: %w", err)
	}
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("consensus: log cache: %w", err)
	}
	return &DiskStore{Logs: logs, Stable: store, Snapshots: snaps, bolt: store}, nil
}

// Close closes the bolt file.
func (s *DiskStore) Close() error { return s.bolt.Close() }

// InmemStore returns in-memory stores for tests: nothing survives the
// process, but a node restarted with the same stores keeps its state.
func InmemStore() (raft.LogStore, raft.StableStore, raft.SnapshotStore) {
	st := raft.NewInmemStore()
	return st, st, raft.NewInmemSnapshotStore()
}

// restartKey is the stable-store key of the restart point.
var restartKey = []byte("shoal/restart-index")

// readRestartPoint reads the restart point; a store that never had one
// gives 0.
func readRestartPoint(stable raft.StableStore) (uint64, error) {
	v, err := stable.GetUint64(restartKey)
	if err != nil {
		// raft-boltdb and raft's in-memory store say "not found" with an
		// error of their own; a key never written is 0 either way.
		if v == 0 && isNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("consensus: reading the restart point: %w", err)
	}
	return v, nil
}

func isNotFound(err error) bool {
	return errors.Is(err, raftboltdb.ErrKeyNotFound) || err.Error() == "not found"
}
