package gossip

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport counts what goes through the transport it wraps.
type countingTransport struct {
	memberlist.NodeAwareTransport
	packets, dials, shutdowns atomic.Int32
}

func (c *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.packets.Add(1)
	return c.NodeAwareTransport.WriteToAddress(b, a)
}

func (c *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c.dials.Add(1)
	return c.NodeAwareTransport.DialAddressTimeout(a, timeout)
}

func (c *countingTransport) Shutdown() error {
	c.shutdowns.Add(1)
	return c.NodeAwareTransport.Shutdown()
}

// newNetTransport returns a NetTransport on a free loopback port.
func newNetTransport(t testing.TB) *memberlist.NetTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		Logger:    newMemberlistLogger(newTestLogger(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

// TestInjectedTransport gives a pool a transport built by the caller: the
// pool must use it for all its gossip, advertise its port and shut it down.
func TestInjectedTransport(t *testing.T) {
	nt := newNetTransport(t)
	tr := &countingTransport{NodeAwareTransport: nt}
	a := startPool(t, "eu-1")
	b := startPool(t, "eu-2", func(c *Config) {
		// BindPort is ignored: the transport is already bound.
		c.Transport, c.BindAddr, c.BindPort = tr, "", 1
	})

	want := fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())
	if b.LocalAddr() != want {
		t.Fatalf("LocalAddr %s, want the transport's address %s", b.LocalAddr(), want)
	}
	joinAll(t, a, b)
	waitFor(t, 10*time.Second, "b probes a through the injected transport", func() error {
		if tr.packets.Load() == 0 || tr.dials.Load() == 0 {
			return fmt.Errorf("%d packets and %d streams so far", tr.packets.Load(), tr.dials.Load())
		}
		return nil
	})
	if m, _ := member(a, "eu-2"); m.Addr != want {
		t.Errorf("a sees eu-2 at %s, want %s", m.Addr, want)
	}
	// A join address without a port means the transport's port.
	if !b.isSelf(t.Context(), "127.0.0.1") {
		t.Error("127.0.0.1 (no port) is not recognised as b's own address")
	}

	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if n := tr.shutdowns.Load(); n != 1 {
		t.Errorf("Shutdown shut the injected transport down %d times, want 1", n)
	}
	waitEvent(t, a, 15*time.Second, EventFailed, "eu-2")
}

func TestFailedNewShutsInjectedTransportDown(t *testing.T) {
	tr := &countingTransport{NodeAwareTransport: newNetTransport(t)}
	cfg := DefaultLocalConfig()
	cfg.Name, cfg.Region, cfg.Logger = "eu-1", "eu-west", newTestLogger(t)
	cfg.Transport = tr
	cfg.AdvertisePort = 7000 // without AdvertiseAddr
	if _, err := New(cfg, testMeta("eu-1")); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("New: %v, want ErrBadConfig", err)
	}
	if n := tr.shutdowns.Load(); n != 1 {
		t.Errorf("a failed New shut the injected transport down %d times, want 1", n)
	}
}

func TestValidateTransport(t *testing.T) {
	tr := &countingTransport{}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bind fields ignored", func(c *Config) { c.BindAddr, c.BindPort = "", 0 }, ""},
		{"bind addr not checked", func(c *Config) { c.BindAddr = "localhost" }, ""},
		{"advertise both", func(c *Config) { c.AdvertiseAddr, c.AdvertisePort = "10.0.0.1", 7946 }, ""},
		{"advertise port alone", func(c *Config) { c.AdvertisePort = 7946 }, "AdvertiseAddr"},
		{"advertise addr alone", func(c *Config) { c.AdvertiseAddr = "10.0.0.1" }, "AdvertisePort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLANConfig()
			cfg.Name, cfg.Region, cfg.Transport = "eu-1", "eu-west", tr
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrBadConfig mentioning %q", err, tc.want)
			}
		})
	}
}
