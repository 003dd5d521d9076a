package node

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// TestCheckFaultClockSkew: skew needs an offset of at most an hour either
// way, is of the clock layer only, and the clock layer takes no target.
func TestCheckFaultClockSkew(t *testing.T) {
	for _, bad := range []struct {
		f    api.Fault
		want string
	}{
		{api.Fault{Layer: "clock", Action: "skew"}, "skew needs an offset"},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "soon"}, `offset "soon"`},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "2"}, `offset "2"`},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "61m"}, "beyond the 1h0m0s"},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "-2h"}, "beyond the 1h0m0s"},
		{api.Fault{Action: "skew", Offset: "1s"}, "skew is an action of the clock layer"},
		{api.Fault{Layer: "wan", Action: "skew", Offset: "1s"}, "skew is an action of the clock layer"},
		{api.Fault{Layer: "wan", Action: "cut", Offset: "1s"}, "offset goes with the clock layer's skew only"},
		{api.Fault{Layer: "clock", Action: "cut"}, `takes skew, heal or heal-all, not "cut"`},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "1s", Region: "us"}, "takes no region, cluster or addr"},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "1s", Delay: "1s"}, "takes an offset, not a delay"},
		{api.Fault{Layer: "clock", Action: "heal", Offset: "1s"}, "takes no offset"},
	} {
		if _, err := checkFault(bad.f); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error saying %q", bad.f, err, bad.want)
		}
	}
	for _, good := range []struct {
		f      api.Fault
		offset time.Duration
		heals  bool
	}{
		{api.Fault{Layer: "clock", Action: "skew", Offset: "-2s"}, -2 * time.Second, false},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "1h"}, time.Hour, false},
		{api.Fault{Layer: "clock", Action: "skew", Offset: "-1h"}, -time.Hour, false},
		{api.Fault{Layer: "clock", Action: "heal"}, 0, true},
		{api.Fault{Layer: "clock", Action: "heal-all"}, 0, true},
		{api.Fault{Action: "heal-all"}, 0, true},
		{api.Fault{Layer: "all", Action: "heal"}, 0, true},
		{api.Fault{Layer: "all", Action: "heal", Region: "us"}, 0, false},
		{api.Fault{Layer: "wan", Action: "heal-all"}, 0, false},
	} {
		s, err := checkFault(good.f)
		if err != nil {
			t.Errorf("%+v: %v", good.f, err)
			continue
		}
		if s.offset != good.offset || s.healsClock() != good.heals {
			t.Errorf("%+v: offset %s, heals the clock %v; want %s, %v", good.f, s.offset, s.healsClock(), good.offset, good.heals)
		}
	}
}

func TestSkewClockMovesNowBySetOffset(t *testing.T) {
	var c skewClock
	before := time.Now()
	c.SetOffset(-time.Hour)
	if now := c.Now(); now.After(before.Add(-time.Hour+time.Minute)) || now.Before(before.Add(-2*time.Hour)) {
		t.Fatalf("Now with -1h: %s, real %s", now, before)
	}
	if s := c.Since(before); s > -time.Hour+time.Minute {
		t.Fatalf("Since a real time with -1h: %s", s)
	}
	c.SetOffset(0)
	if c.Offset() != 0 || c.Since(before) < 0 {
		t.Fatalf("healed: offset %s, since %s", c.Offset(), c.Since(before))
	}
}
