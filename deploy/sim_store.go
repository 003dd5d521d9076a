package deploy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shoalmesh/shoal/api"
)

// simStore keeps a SimCluster's objects, its NotReady switch and its
// capacity percent in a bbolt file, so that a simulated cluster outlives
// the process that drives it, as a real cluster outlives its peer.
//
// Every change is one bbolt transaction, committed before the SimCluster
// call that makes it returns. bbolt writes new pages before the meta page
// that points at them, so a process killed in the middle of a write leaves
// the previous state readable. The store does not fsync (bbolt's NoSync):
// what a killed process wrote is in the kernel's page cache and outlives
// the process; only a crash of the machine could lose the last writes, and
// a simulated cluster need not survive that.
//
// bbolt locks the file: a second process (or a second SimCluster in the
// same process) opening it waits for the lock at most the configured
// timeout, then fails.
type simStore struct {
	db   *bolt.DB
	path string
}

// simStoreFile is the name of the file under SimConfig.Dir.
const simStoreFile = "sim.db"

// simStoreFormat versions the file's layout.
const simStoreFormat = "1"

var (
	simObjectsBucket = []byte("objects") // api.ObjectKey.String() → simRecord as JSON
	simMetaBucket    = []byte("meta")
	simFormatKey     = []byte("format")
	simReadyKey      = []byte("ready")           // "true" or "false"; absent means true
	simCapacityKey   = []byte("capacityPercent") // "0" to "100"; absent means 100
)

// simMeta is what the store keeps besides the objects: the NotReady
// switch and the capacity percent.
type simMeta struct {
	ready           bool
	capacityPercent int
}

// simRecord is what is kept of one object: everything but where its
// replicas run, which is worked out again on load.
type simRecord struct {
	Key         api.ObjectKey `json:"key"`
	UID         string        `json:"uid"`
	Created     time.Time     `json:"created"`
	Seq         uint64        `json:"seq"` // creation order, which Pending replicas are placed in
	Generation  int64         `json:"generation"`
	Manifest    []byte        `json:"manifest"`
	HasReplicas bool          `json:"hasReplicas"`
	Replicas    int32         `json:"replicas"` // desired; 0 without HasReplicas
	PerReplica  api.Resources `json:"perReplica"`
	// Foreign: not Shoal's (SimCluster.Create); List and Status do not see
	// it, and Apply adopts it only under ConflictOverwrite.
	Foreign bool `json:"foreign,omitempty"`
}

func (a simRecord) equal(b simRecord) bool {
	return a.Key == b.Key && a.UID == b.UID && a.Created.Equal(b.Created) && a.Seq == b.Seq &&
		a.Generation == b.Generation && bytes.Equal(a.Manifest, b.Manifest) && a.HasReplicas == b.HasReplicas &&
		a.Replicas == b.Replicas && a.PerReplica == b.PerReplica && a.Foreign == b.Foreign
}

// openSimStore opens, creating it if needed, the state file in dir and
// reads it: the objects in creation order, whether the cluster is Ready
// and its capacity percent. A file it cannot read is an error, never a
// panic.
func openSimStore(dir string, lockTimeout time.Duration) (_ *simStore, _ []simRecord, _ simMeta, err error) {
	path := filepath.Join(dir, simStoreFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, simMeta{}, fmt.Errorf("sim state: %w", err)
	}
	// bbolt reads the file through a memory map and trusts what it finds
	// past the checksummed meta pages: turn what a damaged file makes it
	// do into an error, and let go of the file (and its lock) then too.
	var (
		file *os.File
		db   *bolt.DB
	)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sim state %s is corrupt (%v): move it away to start with an empty cluster", path, p)
		}
		if err == nil {
			return
		}
		if db != nil {
			_ = db.Close()
		}
		if file != nil {
			// bbolt's Close gives up before it unlocks the file when the
			// damage breaks its unmapping, and a panic inside bolt.Open
			// leaves its memory map in place, which keeps the open file
			// (and so its lock) alive after the descriptor is closed:
			// unlock it explicitly, then close (a second close after
			// bbolt's own is a harmless error).
			_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
			_ = file.Close()
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, NoSync: true,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		}})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, nil, simMeta{}, fmt.Errorf("sim state %s is in use by another process (still locked after %s): stop it, or give each simulated cluster its own directory", path, lockTimeout)
	case err != nil:
		return nil, nil, simMeta{}, fmt.Errorf("sim state %s cannot be read (%w): move it away to start with an empty cluster", path, err)
	}
	s := &simStore{db: db, path: path}
	recs, meta, err := s.load()
	if err != nil {
		return nil, nil, simMeta{}, err
	}
	return s, recs, meta, nil
}

// load creates the buckets of a new file and reads an existing one.
func (s *simStore) load() (recs []simRecord, sm simMeta, err error) {
	corrupt := func(what string, err error) error {
		return fmt.Errorf("sim state %s: %s: %v: move the file away to start with an empty cluster", s.path, what, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(simMetaBucket)
		if err != nil {
			return corrupt("meta bucket", err)
		}
		objects, err := tx.CreateBucketIfNotExists(simObjectsBucket)
		if err != nil {
			return corrupt("objects bucket", err)
		}
		switch f := meta.Get(simFormatKey); {
		case f == nil:
			if err := meta.Put(simFormatKey, []byte(simStoreFormat)); err != nil {
				return err
			}
		case string(f) != simStoreFormat:
			return fmt.Errorf("sim state %s has format %q, this version reads %q: use the version that wrote it, or move the file away", s.path, f, simStoreFormat)
		}
		sm = simMeta{ready: true, capacityPercent: 100}
		if v := meta.Get(simReadyKey); v != nil {
			if sm.ready, err = strconv.ParseBool(string(v)); err != nil {
				return corrupt("ready switch", err)
			}
		}
		if v := meta.Get(simCapacityKey); v != nil {
			if sm.capacityPercent, err = strconv.Atoi(string(v)); err != nil || sm.capacityPercent < 0 || sm.capacityPercent > 100 {
				return corrupt("capacity percent", fmt.Errorf("%q is not a percent from 0 to 100", v))
			}
		}
		return objects.ForEach(func(k, v []byte) error {
			var r simRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return corrupt("object "+string(k), err)
			}
			if r.Key.String() != string(k) || r.UID == "" || r.Replicas < 0 || (!r.HasReplicas && r.Replicas != 0) {
				return corrupt("object "+string(k), errors.New("record does not match its key or is incomplete"))
			}
			recs = append(recs, r)
			return nil
		})
	})
	if err != nil {
		return nil, simMeta{}, err
	}
	slices.SortFunc(recs, func(a, b simRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return recs, sm, nil
}

// put writes r.
func (s *simStore) put(r simRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(simObjectsBucket).Put([]byte(r.Key.String()), v)
	})
}

// remove deletes key's record.
func (s *simStore) remove(key api.ObjectKey) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(simObjectsBucket).Delete([]byte(key.String()))
	})
}

// setReady writes the NotReady switch.
func (s *simStore) setReady(ready bool) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(simMetaBucket).Put(simReadyKey, []byte(strconv.FormatBool(ready)))
	})
}

// setCapacityPercent writes the capacity percent.
func (s *simStore) setCapacityPercent(pct int) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(simMetaBucket).Put(simCapacityKey, []byte(strconv.Itoa(pct)))
	})
}

func (s *simStore) update(f func(*bolt.Tx) error) error {
	if err := s.db.Update(f); err != nil {
		return fmt.Errorf("sim state %s: %w", s.path, err)
	}
	return nil
}

func (s *simStore) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sim state %s: %w", s.path, err)
	}
	return nil
}
