package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// TestRegionsClockSkewFaultRefusesVersionsFromTheFuture: the clock fault
// sets one region leader's clock back; its status shows the offset, and
// the other region's fresh versions, now in its future beyond the max
// clock offset, are refused and their sender listed as skewed. Healed,
// writes from the other region arrive again.
func TestRegionsClockSkewFaultRefusesVersionsFromTheFuture(t *testing.T) {
	rs := newRegions(t, "eu", "us")
	eventually(t, "every region knows the other", rs.knowsAll)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	us := rs.client("us")
	// Behind by well more than the max clock offset (500ms), so that
	// eu's versions stay in us's future for seconds, whatever the load.
	if err := us.Fault(ctx, api.Fault{Layer: "clock", Action: "skew", Offset: "-5s"}); err != nil {
		t.Fatal(err)
	}
	st, err := us.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ClockOffset != "-5s" {
		t.Fatalf("us's status shows clock offset %q, want -5s", st.ClockOffset)
	}
	if st, _ := rs.client("eu").Status(ctx); st.ClockOffset != "" {
		t.Fatalf("eu's status shows clock offset %q, want none", st.ClockOffset)
	}

	// Writes in eu carry eu's (real) time: us refuses them as from its
	// future. Write again now and then until a push meets the refusal.
	refusedBefore := rs.peers["us"].Mesh().Stats().Refused
	end := time.Now().Add(2 * time.Minute)
	for i := 0; ; i++ {
		rs.apply("eu", configMaps(fmt.Sprintf("skewed-%d", i), 1))
		var refused bool
		for range 20 {
			st, err := us.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if refused = st.Mesh != nil && st.Mesh.Refused > refusedBefore && slices.Contains(st.Mesh.Skewed, "eu/c-eu"); refused {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if refused {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("us never refused eu's versions as skewed: %+v", rs.peers["us"].StatusView().Mesh)
		}
	}

	if err := us.Fault(ctx, api.Fault{Layer: "clock", Action: "heal"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := us.Status(ctx); st.ClockOffset != "" {
		t.Fatalf("healed, us's status shows clock offset %q", st.ClockOffset)
	}
	rs.apply("eu", configMaps("healed", 3))
	eventually(t, "eu's writes after the heal reach us", func() error {
		for i := range 3 {
			if !rs.holds("us", cmKeyN("healed", i)) {
				return fmt.Errorf("us lacks healed-%d", i)
			}
		}
		if err := rs.converged(); err != nil {
			return err
		}
		// The status carries the same digest in both regions.
		if eu, us := rs.peers["eu"].StatusView().Mesh, rs.peers["us"].StatusView().Mesh; eu.Digest != us.Digest || eu.Objects != us.Objects {
			return fmt.Errorf("status digests: eu %s (%d objects), us %s (%d objects)", eu.Digest, eu.Objects, us.Digest, us.Objects)
		}
		return nil
	})
}
