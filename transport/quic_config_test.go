package transport

import (
	"bytes"
	"errors"
	"log"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQUICConfigValidate(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	m := material(t, ca, caPEM, euID)
	alice := material(t, ca, caPEM, ClientIdentity("prod", "alice"))
	good := DefaultQUICConfig()
	good.BindAddr, good.TLS = "127.0.0.1:0", m
	tests := []struct {
		name  string
		edit  func(c *QUICConfig)
		field string // named in the error; "" for a valid config
	}{
		{"default", func(c *QUICConfig) {}, ""},
		{"edge", func(c *QUICConfig) { e := EdgeQUICConfig(); e.BindAddr, e.TLS = c.BindAddr, c.TLS; *c = e }, ""},
		{"zero fields take defaults", func(c *QUICConfig) { *c = QUICConfig{BindAddr: c.BindAddr, TLS: c.TLS} }, ""},
		{"insecure without TLS", func(c *QUICConfig) { c.TLS, c.Insecure = nil, true }, ""},
		{"no bind address", func(c *QUICConfig) { c.BindAddr = "" }, "BindAddr"},
		{"no TLS", func(c *QUICConfig) { c.TLS = nil }, "TLS"},
		{"client certificate", func(c *QUICConfig) { c.TLS = alice }, "TLS"},
		{"keep-alive too long", func(c *QUICConfig) { c.KeepAlive, c.IdleTimeout = 5*time.Second, 10*time.Second }, "KeepAlive"},
		{"negative timeout", func(c *QUICConfig) { c.HandshakeTimeout = -time.Second }, "HandshakeTimeout"},
		{"backoff inverted", func(c *QUICConfig) { c.BackoffMin, c.BackoffMax = time.Minute, time.Second }, "BackoffMin"},
		{"negative streams", func(c *QUICConfig) { c.MaxStreams = -1 }, "MaxStreams"},
		{"frame too large", func(c *QUICConfig) { c.MaxFrame = MaxFrameSize + 1 }, "MaxFrame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want ErrBadConfig naming %s", err, tt.field)
			}
		})
	}
	if e := EdgeQUICConfig(); e.KeepAlive != 5*time.Second || e.IdleTimeout != time.Minute || e.BackoffMax != 30*time.Second {
		t.Errorf("EdgeQUICConfig %+v", e)
	}
}

// quic-go prints its own warning about small UDP buffers with the standard
// logger; the link logs at most one line of its own instead.
func TestQUICBufferWarningOncePerProcess(t *testing.T) {
	var std bytes.Buffer
	log.SetOutput(&std)
	defer log.SetOutput(os.Stderr)
	var logs lockedBuffer
	for range 3 {
		cfg := testQUICConfig(t, nil)
		cfg.Insecure = true
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		newTestQUIC(t, cfg)
	}
	if v := os.Getenv(quicBufferWarningEnv); v != "true" {
		t.Errorf("%s=%q", quicBufferWarningEnv, v)
	}
	if n := strings.Count(logs.String(), "UDP socket buffers"); n > 1 {
		t.Errorf("%d buffer warnings:\n%s", n, logs.String())
	}
	if strings.Contains(std.String(), "buffer") {
		t.Errorf("quic-go printed: %s", std.String())
	}
	if runtime.GOOS == "linux" {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		if recv, send, ok := raiseBuffers(udp); !ok || recv <= 0 || send <= 0 {
			t.Errorf("buffers %d/%d, ok %v", recv, send, ok)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
