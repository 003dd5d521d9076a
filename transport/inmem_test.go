package transport

import (
	"errors"
	"testing"
)

func TestInmemPartitionAndRegionCuts(t *testing.T) {
	n := NewInmemNetwork()
	ids := map[string]Identity{
		"eu-1": PeerIdentity("prod", "eu", "eu-1"),
		"eu-2": PeerIdentity("prod", "eu", "eu-2"),
		"us-1": PeerIdentity("prod", "us", "us-1"),
		"ap-1": PeerIdentity("prod", "ap", "ap-1"),
	}
	links := map[string]*InmemLink{}
	for addr, id := range ids {
		l := n.Add(addr, id)
		l.Serve((&recorder{}).handle)
		t.Cleanup(func() { l.Close() })
		links[addr] = l
	}
	// reach lists, for every ordered pair, whether a call is answered.
	check := func(step string, reach map[[2]string]bool) {
		t.Helper()
		for from := range links {
			for to := range links {
				if from == to {
					continue
				}
				_, err := callPing(t, links[from], to, CallOptions{})
				want := reach[[2]string{from, to}]
				switch {
				case want && err != nil:
					t.Errorf("%s: %s to %s: %v", step, from, to, err)
				case !want && !errors.Is(err, ErrUnreachable):
					t.Errorf("%s: %s to %s: %v, want ErrUnreachable", step, from, to, err)
				}
			}
		}
	}
	all := func(except ...[2]string) map[[2]string]bool {
		m := map[[2]string]bool{}
		for a := range links {
			for b := range links {
				m[[2]string{a, b}] = true
			}
		}
		for _, e := range except {
			delete(m, e)
			delete(m, [2]string{e[1], e[0]})
		}
		return m
	}

	check("whole", all())
	// eu-1 and us-1 together; eu-2 alone; ap-1 in no group.
	n.Partition([]string{"eu-1", "us-1"}, []string{"eu-2"})
	check("partitioned", map[[2]string]bool{{"eu-1", "us-1"}: true, {"us-1", "eu-1"}: true})
	n.Heal()
	check("healed", all())
	n.CutRegions("eu", "us")
	check("eu cut from us", all([2]string{"eu-1", "us-1"}, [2]string{"eu-2", "us-1"}))
	n.Heal()
	check("healed again", all())
}

func TestInmemAddresses(t *testing.T) {
	n := NewInmemNetwork()
	a := n.Add("a", euID)
	b := n.Add("b", usID)
	b.Serve((&recorder{}).handle)
	if _, err := callPing(t, a, "nowhere", CallOptions{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("unknown address: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("adding an address in use did not panic")
			}
		}()
		n.Add("b", usID)
	}()
	b.Close()
	if _, err := callPing(t, a, "b", CallOptions{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed address: %v", err)
	}
	// A restart at the same address.
	b = n.Add("b", usID)
	b.Serve((&recorder{}).handle)
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := callPing(t, a, "b", CallOptions{}); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}
