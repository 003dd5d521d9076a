package region

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
)

// VersionString shows a version as wall_ms.logical@origin.
func VersionString(v *shoalpb.Version) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprintf("%d.%d@%s", v.GetWallMs(), v.GetLogical(), v.GetOrigin())
}

// checkRemote refuses a remote object that names nothing or has no
// version: the command is all or nothing.
func checkRemote(o *shoalpb.Object) error {
	if err := validKey(o.GetKey()); err != nil {
		return err
	}
	v := o.GetVersion()
	if v == nil || v.GetOrigin() == "" {
		return fmt.Errorf("%w: %s has no version", ErrBadCommand, api.KeyFromProto(o.GetKey()).Display())
	}
	if !o.GetDeleted() && len(o.GetManifest()) == 0 {
		return fmt.Errorf("%w: %s has no manifest", ErrBadCommand, api.KeyFromProto(o.GetKey()).Display())
	}
	return nil
}

// concurrent reports whether winner (the newer version) was written
// without knowing loser: loser is newer than what winner replaced where it
// was made. The loser cannot have known the winner (the clock orders what
// a writer saw before its own write), so neither saw the other. Writes of
// one origin are ordered by its own log and never concurrent.
func concurrent(winner, loser *shoalpb.Object) bool {
	return loser.GetVersion().GetOrigin() != winner.GetVersion().GetOrigin() &&
		CompareVersions(loser.GetVersion(), winner.GetReplaced()) > 0
}

// mergeObjects keeps, for each remote object, the newer of its version
// and the local one (last writer wins by version, so every region ends
// with the same winner). A write that loses to one made concurrently in
// another region is recorded as a ConflictLost event on the object, on
// every region that sees both. The region's clock and watermarks move
// past every version received.
func (a *applier) mergeObjects(c *shoalpb.MergeObjects) error {
	for _, o := range c.GetObjects() {
		if err := checkRemote(o); err != nil {
			return err
		}
	}
	a.results = &shoalpb.ObjectResults{}
	inFull := map[string]bool{}
	for _, r := range c.GetObjects() {
		key := api.KeyFromProto(r.GetKey())
		ks := key.String()
		inFull[ks] = true
		rv := r.GetVersion()
		fresh := CompareVersions(rv, a.st.watermarks[rv.GetOrigin()]) > 0
		a.observe(rv)
		l := a.st.objects[ks]
		if l != nil && CompareVersions(rv, l.GetVersion()) <= 0 {
			// A relayed copy of a write already seen is not a new conflict.
			if fresh && CompareVersions(rv, l.GetVersion()) < 0 && !r.GetDeleted() && !l.GetDeleted() && concurrent(l, r) {
				a.conflict(key, r, l)
			}
			continue
		}
		n := &shoalpb.Object{
			Key:                key.Proto(),
			Manifest:           bytes.Clone(r.GetManifest()),
			Version:            rv,
			Generation:         l.GetGeneration(),
			Deleted:            r.GetDeleted(),
			CreatedUnixMs:      a.now,
			UpdatedUnixMs:      a.now,
			PreserveOnClusters: r.GetPreserveOnClusters(),
			Replaced:           r.GetReplaced(),
		}
		if r.GetDeleted() {
			n.Manifest = nil
			if l == nil && !fresh {
				// A tombstone this region already saw and has since
				// collected, relayed back by a region that has not yet:
				// it is as old as the delete, not as its receipt, or
				// each region's copy would restart the other's
				// quarantine and they would pass it back and forth
				// for ever, never collected.
				n.CreatedUnixMs = min(a.now, rv.GetWallMs())
				n.UpdatedUnixMs = n.CreatedUnixMs
			}
		}
		changed := l == nil || l.GetDeleted() != n.GetDeleted() || !bytes.Equal(l.GetManifest(), n.GetManifest())
		if changed && !n.GetDeleted() {
			n.Generation++
		}
		if l != nil && !l.GetDeleted() {
			n.CreatedUnixMs = l.GetCreatedUnixMs()
		}
		a.st.objects[ks] = n
		what := "configured"
		switch {
		case n.GetDeleted():
			what = "deleted"
			delete(a.st.events, ks)
		case l == nil || l.GetDeleted():
			what = "created"
		}
		if !n.GetDeleted() && l != nil && !l.GetDeleted() && concurrent(r, l) {
			a.conflict(key, l, r)
		}
		a.result(key, what, n.GetGeneration())
		a.st.rev.Objects = a.index
		a.changed = true
	}
	if c.GetFull() {
		a.dropMissing(c, inFull)
	}
	a.collectTombstones()
	return nil
}

// dropMissing drops, on a full resynchronisation, what this region holds
// that the sender's full set lacks although it is no newer than the
// horizon (the newest version this region had from others when it lost
// contact): the sender collected its tombstone long ago, so it was
// deleted. Writes made here after the horizon are kept (and sent on).
func (a *applier) dropMissing(c *shoalpb.MergeObjects, inFull map[string]bool) {
	senderSaw := WatermarkMap(c.GetSenderWatermarks())
	for _, ks := range sortedKeys(a.st.objects) {
		o := a.st.objects[ks]
		if inFull[ks] {
			continue
		}
		// Missing from the full copy: deleted and forgotten there if it
		// is from before the horizon (when this region last heard
		// anyone) or, written by another region, if the sender saw it
		// (this region got it from someone while in contact: it is no
		// news of its own, whatever the clocks say of the horizon).
		v := o.GetVersion()
		saw := v.GetOrigin() != a.region && CompareVersions(v, senderSaw[v.GetOrigin()]) <= 0
		if !saw && CompareVersions(v, c.GetHorizon()) > 0 {
			continue
		}
		delete(a.st.objects, ks)
		delete(a.st.events, ks)
		if !o.GetDeleted() {
			a.event(nil, "", "Warning", "ResyncDropped",
				fmt.Sprintf("%s was deleted in the mesh while this region was cut off (full resynchronisation from %s)",
					api.KeyFromProto(o.GetKey()).Display(), c.GetFromRegion()))
		}
		a.st.rev.Objects = a.index
		a.changed = true
	}
}

// observe moves the clock and the origin's watermark past a received
// version (the hybrid logical clock's receive rule).
func (a *applier) observe(v *shoalpb.Version) {
	if CompareVersions(v, a.st.clock) > 0 {
		a.st.clock = &shoalpb.Version{WallMs: v.GetWallMs(), Logical: v.GetLogical(), Origin: a.region}
	}
	if CompareVersions(v, a.st.watermarks[v.GetOrigin()]) > 0 {
		a.st.watermarks[v.GetOrigin()] = v
	}
}

// conflict records that loser, written concurrently with winner, lost.
func (a *applier) conflict(key api.ObjectKey, loser, winner *shoalpb.Object) {
	a.event(key.Proto(), "", "Warning", reasonConflictLost,
		fmt.Sprintf("the write from region %s (version %s) lost to a concurrent write from region %s (version %s)",
			loser.GetVersion().GetOrigin(), VersionString(loser.GetVersion()),
			winner.GetVersion().GetOrigin(), VersionString(winner.GetVersion())))
}

// collectTombstones forgets a tombstone once every known region has
// acknowledged it (its watermark for the tombstone's origin has passed
// it) and it is older than the quarantine (TombstoneQuarantine), or once it is older than
// the tombstone TTL. With no other region known only the TTL applies.
//
// The quarantine is for writes in flight: a region that merged the
// delete no longer holds the older object, but a sync it sent before
// merging it may still carry that object; arriving after the tombstone
// was gone, it would find nothing newer and bring the object back.
func (a *applier) collectTombstones() {
	ttl := a.tombstoneTTL
	if ttl <= 0 {
		ttl = DefaultTombstoneTTL.Milliseconds()
	}
	quarantine := min(a.quarantine, ttl)
	// Map order does not matter: each tombstone is judged on its own.
	for ks, o := range a.st.objects {
		if !o.GetDeleted() {
			continue
		}
		age := a.now - o.GetUpdatedUnixMs()
		if age > ttl || (age >= quarantine && a.acknowledged(o.GetVersion())) {
			delete(a.st.objects, ks)
			a.st.rev.Objects = a.index
			a.changed = true
		}
	}
}

func (a *applier) acknowledged(v *shoalpb.Version) bool {
	if len(a.st.regions) == 0 {
		return false
	}
	for _, r := range a.st.regions {
		if CompareVersions(WatermarkMap(r.GetWatermarks())[v.GetOrigin()], v) < 0 {
			return false
		}
	}
	return true
}

// setRegionSummary records another region's summary and watermarks.
func (a *applier) setRegionSummary(c *shoalpb.SetRegionSummary) error {
	sum := c.GetSummary()
	name := sum.GetRegion()
	if name == "" || name == a.region {
		return fmt.Errorf("%w: a region summary must name another region (got %q)", ErrBadCommand, name)
	}
	for _, cl := range sum.GetClusters() {
		if cl.GetRegion() != name {
			return fmt.Errorf("%w: summary of region %s holds cluster %s of region %q", ErrBadCommand, name, cl.GetName(), cl.GetRegion())
		}
	}
	old := a.st.regions[name]
	n := &shoalpb.RemoteRegion{
		Summary:          sum,
		Watermarks:       c.GetWatermarks(),
		HeardUnixMs:      max(c.GetHeardUnixMs(), old.GetHeardUnixMs()),
		Dead:             old.GetDead(),
		StateSinceUnixMs: old.GetStateSinceUnixMs(),
		Reason:           old.GetReason(),
		ReturnedUnixMs:   old.GetReturnedUnixMs(),
	}
	if old == nil {
		n.StateSinceUnixMs = a.now
		a.event(nil, "", "Normal", "RegionJoined", fmt.Sprintf("region %s joined the mesh", name))
	}
	a.st.regions[name] = n
	if old == nil || !proto.Equal(old.GetSummary(), sum) {
		a.st.rev.Regions = a.index
	}
	a.changed = true
	a.collectTombstones()
	return nil
}

// regionsHeard refreshes when other regions were last heard from.
func (a *applier) regionsHeard(c *shoalpb.RegionsHeard) error {
	for _, h := range c.GetHeard() {
		old := a.st.regions[h.GetRegion()]
		if old == nil || h.GetUnixMs() <= old.GetHeardUnixMs() {
			continue
		}
		n := proto.Clone(old).(*shoalpb.RemoteRegion)
		n.HeardUnixMs = h.GetUnixMs()
		a.st.regions[h.GetRegion()] = n
		a.changed = true
	}
	a.collectTombstones()
	return nil
}

// setRegionState records the leader's verdict on another region.
func (a *applier) setRegionState(c *shoalpb.SetRegionState) error {
	old := a.st.regions[c.GetRegion()]
	if old == nil {
		return fmt.Errorf("%w: no region %q known", ErrBadCommand, c.GetRegion())
	}
	if old.GetDead() == !c.GetAlive() {
		return nil
	}
	n := proto.Clone(old).(*shoalpb.RemoteRegion)
	n.Dead = !c.GetAlive()
	n.StateSinceUnixMs = a.now
	if !n.Dead {
		n.ReturnedUnixMs = a.now
	}
	n.Reason = c.GetReason()
	a.st.regions[c.GetRegion()] = n
	typ, what := "Normal", "alive"
	if n.Dead {
		typ, what = "Warning", "dead for placement"
	}
	a.event(nil, "", typ, "RegionState", fmt.Sprintf("region %s is %s: %s", c.GetRegion(), what, c.GetReason()))
	a.st.rev.Regions = a.index
	a.changed = true
	return nil
}

// forgetRegion drops a dead region for good: only a region dead for
// placement may be forgotten (an alive one would come straight back).
func (a *applier) forgetRegion(c *shoalpb.ForgetRegion) error {
	old := a.st.regions[c.GetRegion()]
	switch {
	case old == nil:
		return fmt.Errorf("%w: no region %q known", ErrBadCommand, c.GetRegion())
	case !old.GetDead():
		return fmt.Errorf("%w: region %s is alive; only a region dead for placement can be forgotten", ErrBadCommand, c.GetRegion())
	}
	delete(a.st.regions, c.GetRegion())
	a.event(nil, "", "Warning", "RegionForgotten", fmt.Sprintf("region %s was forgotten: its share stays with the other regions", c.GetRegion()))
	a.st.rev.Regions = a.index
	a.changed = true
	a.collectTombstones()
	return nil
}
