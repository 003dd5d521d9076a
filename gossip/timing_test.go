package gossip

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestTimeToDeadLAN measures, with DefaultLANConfig on loopback, how long
// after a member is killed (Shutdown, no Leave) every survivor has marked it
// dead. It logs the figures and asserts only a generous bound: the figures
// are the point (go test -run TimeToDead -v ./gossip).
func TestTimeToDeadLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement; skipped with -short")
	}
	for _, n := range []int{3, 5} {
		var runs []time.Duration
		for run := range 3 {
			runs = append(runs, timeToDead(t, n, run))
		}
		slices.Sort(runs)
		t.Logf("LAN profile, %d members: time to dead at every survivor min %v, median %v, max %v",
			n, runs[0].Round(time.Millisecond), runs[len(runs)/2].Round(time.Millisecond), runs[len(runs)-1].Round(time.Millisecond))
	}
}

func timeToDead(t *testing.T, n, run int) time.Duration {
	pools := make([]*Pool, n)
	for i := range pools {
		name := fmt.Sprintf("ttd%d-%d-%d", n, run, i)
		pools[i] = startPool(t, name, func(c *Config) {
			lan := DefaultLANConfig()
			lan.Name, lan.Region, lan.Logger = c.Name, c.Region, c.Logger
			lan.BindAddr, lan.BindPort = "127.0.0.1", 0
			*c = lan
		})
	}
	joinAll(t, pools...)

	victim := pools[n-1]
	name := victim.cfg.Name
	start := time.Now()
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	waitFor(t, 30*time.Second, name+" is dead at every survivor", func() error {
		latest := time.Time{}
		for _, p := range pools[:n-1] {
			m, _ := member(p, name)
			if m.State != StateDead {
				return fmt.Errorf("%s sees %s %s", p.cfg.Name, name, m.State)
			}
			if m.Since.After(latest) {
				latest = m.Since
			}
		}
		took = latest.Sub(start)
		return nil
	})
	for _, p := range pools[:n-1] {
		_ = p.Shutdown()
	}
	return took
}
