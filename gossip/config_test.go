package gossip

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestProfilesAreValid(t *testing.T) {
	for _, p := range []Profile{ProfileLAN, ProfileEdge, ProfileLocal} {
		cfg, err := ProfileConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Name, cfg.Region = "eu-1", "eu-west"
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if cfg.Profile != p {
			t.Errorf("%s profile says %q", p, cfg.Profile)
		}
	}
	if _, err := ProfileConfig("wan"); !errors.Is(err, ErrBadConfig) {
		t.Errorf("unknown profile: %v", err)
	}
	lan, edge, local := DefaultLANConfig(), DefaultEdgeConfig(), DefaultLocalConfig()
	if !(local.ProbeInterval <= lan.ProbeInterval && lan.ProbeInterval < edge.ProbeInterval) {
		t.Errorf("probe intervals local %v, lan %v, edge %v are not ordered", local.ProbeInterval, lan.ProbeInterval, edge.ProbeInterval)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" for valid
	}{
		{"ok", func(c *Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "Name is empty"},
		{"name with slash", func(c *Config) { c.Name = "a/b" }, "slashes"},
		{"no region", func(c *Config) { c.Region = "" }, "Region is empty"},
		{"long region", func(c *Config) { c.Region = strings.Repeat("r", 250) }, "Region"},
		{"bad profile", func(c *Config) { c.Profile = "wan" }, "Profile"},
		{"bad bind addr", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		{"bad advertise addr", func(c *Config) { c.AdvertiseAddr = "x" }, "AdvertiseAddr"},
		{"port", func(c *Config) { c.BindPort = 70000 }, "BindPort"},
		{"advertise port", func(c *Config) { c.AdvertisePort = -1 }, "AdvertisePort"},
		{"key", func(c *Config) { c.SecretKey = []byte("short") }, "16, 24 or 32"},
		{"key 24", func(c *Config) { c.SecretKey = bytes.Repeat([]byte{1}, 24) }, ""},
		{"probe timeout", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "shorter than ProbeInterval"},
		{"zero probe", func(c *Config) { c.ProbeInterval = 0 }, "ProbeInterval is 0s"},
		{"gossip slower than probe", func(c *Config) { c.GossipInterval = time.Minute }, "GossipInterval"},
		{"suspicion", func(c *Config) { c.SuspicionMult = 0 }, "SuspicionMult"},
		{"reclaim", func(c *Config) { c.DeadNodeReclaimTime = -1 }, "DeadNodeReclaimTime"},
		{"buffer", func(c *Config) { c.EventBuffer = 0 }, "EventBuffer"},
		{"push pull", func(c *Config) { c.PushPullInterval = 0 }, "PushPullInterval"},
		{"no reconnect", func(c *Config) { c.ReconnectInterval, c.ReconnectTimeout = 0, 0 }, ""},
		{"negative reconnect", func(c *Config) { c.ReconnectInterval = -time.Second }, "ReconnectInterval"},
		{"reconnect without timeout", func(c *Config) { c.ReconnectTimeout = 0 }, "ReconnectTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLANConfig()
			cfg.Name, cfg.Region = "eu-1", "eu-west"
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

func TestMemberlistConfig(t *testing.T) {
	cfg := DefaultLANConfig()
	cfg.Name, cfg.Region = "eu-1", "eu-west"
	cfg.SecretKey = bytes.Repeat([]byte{7}, 16)
	mc := cfg.memberlistConfig()
	if mc.Label != "shoal/eu-west" {
		t.Errorf("label %q", mc.Label)
	}
	if mc.ProbeInterval != cfg.ProbeInterval || mc.ProbeTimeout != cfg.ProbeTimeout ||
		mc.SuspicionMult != cfg.SuspicionMult || mc.SuspicionMaxTimeoutMult != cfg.SuspicionMaxTimeoutMult ||
		mc.GossipInterval != cfg.GossipInterval || mc.PushPullInterval != cfg.PushPullInterval ||
		mc.DeadNodeReclaimTime != cfg.DeadNodeReclaimTime {
		t.Errorf("timings not carried over: %+v", mc)
	}
	if mc.EnableCompression {
		t.Error("memberlist compression is on")
	}
	cfg.SecretKey[0] = 0
	if mc.SecretKey[0] != 7 {
		t.Error("memberlist config shares the key slice")
	}
}

func TestMemberlistLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: eu-2)")
	l.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:1")
	l.Printf("no level")
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="Refuting a suspect message (from: eu-2)" component=memberlist`,
		`level=DEBUG msg="Stream connection from=127.0.0.1:1"`,
		`level=INFO msg="no level"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
}
