package region

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// CompareVersions orders two versions: by wall time, then logical counter,
// then origin region name, so that any two distinct writes have one
// winner everywhere. A nil version is older than any other.
func CompareVersions(a, b *shoalpb.Version) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if c := cmp.Compare(a.GetWallMs(), b.GetWallMs()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.GetLogical(), b.GetLogical()); c != 0 {
		return c
	}
	return cmp.Compare(a.GetOrigin(), b.GetOrigin())
}

// Watermarks returns the newest version held from each origin region,
// sorted by origin.
func (s *State) Watermarks() []*shoalpb.Watermark {
	out := make([]*shoalpb.Watermark, 0, len(s.watermarks))
	for _, o := range sortedKeys(s.watermarks) {
		out = append(out, &shoalpb.Watermark{Origin: o, Version: s.watermarks[o]})
	}
	return out
}

// WatermarkMap turns watermarks into a map by origin.
func WatermarkMap(wms []*shoalpb.Watermark) map[string]*shoalpb.Version {
	m := make(map[string]*shoalpb.Version, len(wms))
	for _, w := range wms {
		if CompareVersions(w.GetVersion(), m[w.GetOrigin()]) > 0 {
			m[w.GetOrigin()] = w.GetVersion()
		}
	}
	return m
}

// Digest is a SHA-256 over every object's key and version, tombstones
// included, in key order: two regions that hold the same versions of the
// same objects have the same digest. It is computed again only after the
// objects changed.
func (s *State) Digest() []byte {
	s.digestMu.Lock()
	defer s.digestMu.Unlock()
	if s.digest == nil || s.digestRev != s.rev.Objects {
		s.digest, s.digestRev = s.computeDigest(), s.rev.Objects
	}
	return s.digest
}

// computeDigest is Digest without the cache.
func (s *State) computeDigest() []byte {
	h := sha256.New()
	var buf [8]byte
	for _, k := range sortedKeys(s.objects) {
		o := s.objects[k]
		v := o.GetVersion()
		h.Write([]byte(k))
		h.Write([]byte{0})
		binary.BigEndian.PutUint64(buf[:], uint64(v.GetWallMs()))
		h.Write(buf[:])
		binary.BigEndian.PutUint64(buf[:], v.GetLogical())
		h.Write(buf[:])
		h.Write([]byte(v.GetOrigin()))
		if o.GetDeleted() {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	return h.Sum(nil)
}

// ObjectsNewerThan returns the objects and tombstones whose version is
// newer than wm holds for the version's origin (and that keep accepts,
// when it is not nil), oldest version first, at most limit of them (0: no
// limit) and at most maxBytes of manifests (0: no limit; at least one
// object is always returned). Sent in this order, a receiver's watermark
// never passes a version it has not got. more says whether the caps left
// some out.
func (s *State) ObjectsNewerThan(wm map[string]*shoalpb.Version, keep func(*shoalpb.Object) bool, limit, maxBytes int) (objs []*shoalpb.Object, more bool) {
	var out []*shoalpb.Object
	for _, o := range s.objects {
		if CompareVersions(o.GetVersion(), wm[o.GetVersion().GetOrigin()]) > 0 && (keep == nil || keep(o)) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *shoalpb.Object) int { return CompareVersions(a.GetVersion(), b.GetVersion()) })
	return capObjects(out, limit, maxBytes)
}

func capObjects(out []*shoalpb.Object, limit, maxBytes int) ([]*shoalpb.Object, bool) {
	more := false
	if limit > 0 && len(out) > limit {
		out, more = out[:limit], true
	}
	if maxBytes > 0 {
		size := 0
		for i, o := range out {
			size += proto.Size(o)
			if size > maxBytes && i > 0 {
				return out[:i], true
			}
		}
	}
	return out, more
}

// Inventory returns every key and version held, tombstones included.
func (s *State) Inventory() []*shoalpb.ObjectVersion {
	out := make([]*shoalpb.ObjectVersion, 0, len(s.objects))
	for _, k := range sortedKeys(s.objects) {
		o := s.objects[k]
		out = append(out, &shoalpb.ObjectVersion{Key: o.GetKey(), Version: o.GetVersion()})
	}
	return out
}

// NewerOrMissing returns what this state holds that inv (another region's
// inventory) lacks or holds at an older version, oldest first, capped as
// ObjectsNewerThan caps (more: some were left out).
func (s *State) NewerOrMissing(inv []*shoalpb.ObjectVersion, limit, maxBytes int) (objs []*shoalpb.Object, more bool) {
	theirs := make(map[string]*shoalpb.Version, len(inv))
	for _, ov := range inv {
		theirs[api.KeyFromProto(ov.GetKey()).String()] = ov.GetVersion()
	}
	var out []*shoalpb.Object
	for k, o := range s.objects {
		if CompareVersions(o.GetVersion(), theirs[k]) > 0 {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *shoalpb.Object) int { return CompareVersions(a.GetVersion(), b.GetVersion()) })
	return capObjects(out, limit, maxBytes)
}

// AllObjects returns every object and tombstone held, sorted by key.
func (s *State) AllObjects() []*shoalpb.Object {
	out := make([]*shoalpb.Object, 0, len(s.objects))
	for _, k := range sortedKeys(s.objects) {
		out = append(out, s.objects[k])
	}
	return out
}

// Regions returns the other regions this one knows, sorted by name.
func (s *State) Regions() []*shoalpb.RemoteRegion {
	out := make([]*shoalpb.RemoteRegion, 0, len(s.regions))
	for _, k := range sortedKeys(s.regions) {
		out = append(out, s.regions[k])
	}
	return out
}

// Region returns what this region knows of another, or nil.
func (s *State) Region(name string) *shoalpb.RemoteRegion { return s.regions[name] }

// LastHeard is the last time (Unix ms) any other region was heard from,
// 0 when none ever was.
func (s *State) LastHeard() int64 {
	var last int64
	for _, r := range s.regions {
		last = max(last, r.GetHeardUnixMs())
	}
	return last
}

// Clock is the region's hybrid logical clock: the newest version it
// stamped or merged.
func (s *State) Clock() *shoalpb.Version { return s.clock }

// reasonConflictLost is the event reason of a write that lost to a
// concurrent one.
const reasonConflictLost = "ConflictLost"

// recentConflicts returns this region's newest ConflictLost events, at
// most n, oldest first.
func (s *State) recentConflicts(n int) []*shoalpb.Event {
	var out []*shoalpb.Event
	for _, w := range sortedKeys(s.events) {
		for _, e := range s.events[w] {
			if e.GetReason() == reasonConflictLost {
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b *shoalpb.Event) int { return cmp.Compare(a.GetUnixMs(), b.GetUnixMs()) })
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// Conflicts returns the ConflictLost events of an object that this region
// recorded or that another region's summary carries, each once, oldest
// first: every region shows a conflict, also one that never saw the
// losing write.
func (s *State) Conflicts(key api.ObjectKey) []*shoalpb.Event {
	ks := key.String()
	seen := map[string]bool{}
	var out []*shoalpb.Event
	add := func(e *shoalpb.Event) {
		if e.GetReason() != reasonConflictLost || api.KeyFromProto(e.GetWorkload()).String() != ks || seen[e.GetMessage()] {
			return
		}
		seen[e.GetMessage()] = true
		out = append(out, e)
	}
	for _, e := range s.events[ks] {
		add(e)
	}
	for _, r := range sortedKeys(s.regions) {
		for _, e := range s.regions[r].GetSummary().GetConflicts() {
			add(e)
		}
	}
	slices.SortStableFunc(out, func(a, b *shoalpb.Event) int { return cmp.Compare(a.GetUnixMs(), b.GetUnixMs()) })
	return out
}
