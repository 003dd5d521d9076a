package node

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestHTTPMethodNotAllowed(t *testing.T) {
	_, p := newSinglePeer(t)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/v1/status", "GET, HEAD"},
		{http.MethodDelete, "/v1/workloads", "GET, HEAD"},
		{http.MethodGet, "/v1/apply", "POST"},
		{http.MethodPut, "/v1/delete", "POST"},
		{http.MethodGet, "/v1/objects", "DELETE"},
		{http.MethodGet, "/v1/agent/leave", "POST"},
		{http.MethodPost, "/v1/agent/simulation", "PUT"},
		{http.MethodPost, "/v1/health", "GET, HEAD"},
	} {
		req, err := http.NewRequest(tc.method, p.URL()+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d, Allow %q, want 405 and Allow %q: %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow, data)
			continue
		}
		if msg := errorMessage(t, data); !strings.Contains(msg, tc.allow) || !strings.Contains(msg, tc.path) {
			t.Errorf("%s %s: message %q does not say what the path takes", tc.method, tc.path, msg)
		}
	}
	// Unknown paths stay 404; the right method is served.
	if code, _ := call(t, p, http.MethodPost, "/v1/statuses", nil); code != http.StatusNotFound {
		t.Errorf("POST /v1/statuses: %d, want 404", code)
	}
	if code, data := call(t, p, http.MethodGet, "/v1/status", nil); code != http.StatusOK {
		t.Errorf("GET /v1/status: %d %s", code, data)
	}
}

// rawConn dials the peer's HTTP port with no client in between.
func rawConn(t *testing.T, p *Peer) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.HTTPAddr(), deadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads from c until the server closes it, or fails the test
// after within.
func waitClosed(t *testing.T, c net.Conn, within time.Duration, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the connection is still open after %s", what, within)
	}
}

// TestHTTPServerTimeouts checks that the peer's HTTP server drops clients
// that hold a connection without finishing a request, or idle.
func TestHTTPServerTimeouts(t *testing.T) {
	m := newMeshWith(t, func(c *Config) {
		c.HTTPReadHeaderTimeout, c.HTTPReadTimeout, c.HTTPIdleTimeout = 200*time.Millisecond, 500*time.Millisecond, 300*time.Millisecond
	}, "eu-1")
	p := m.peers["eu-1"]
	const within = 5 * time.Second

	t.Run("headers never finished", func(t *testing.T) {
		c := rawConn(t, p)
		if _, err := io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: shoal\r\n"); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, c, within, "half a request's headers")
	})
	t.Run("body never finished", func(t *testing.T) {
		c := rawConn(t, p)
		if _, err := io.WriteString(c, "POST /v1/apply HTTP/1.1\r\nHost: shoal\r\nContent-Length: 100\r\n\r\napiVersion"); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, c, within, "a tenth of a body")
	})
	t.Run("idle after a request", func(t *testing.T) {
		c := rawConn(t, p)
		if _, err := io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: shoal\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(within))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("health: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		waitClosed(t, c, within, "an idle kept-alive connection")
	})
	t.Run("announced body over the limit", func(t *testing.T) {
		// Refused at once, from the announced length: the server neither
		// reads nor waits for a terabyte.
		c := rawConn(t, p)
		if _, err := io.WriteString(c, "POST /v1/apply HTTP/1.1\r\nHost: shoal\r\nContent-Length: 1099511627776\r\n\r\napiVersion: v1\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(within))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("1 TiB announced: %d, want 413", resp.StatusCode)
		}
	})
}

func TestHTTPWriteTimeoutCoversACommit(t *testing.T) {
	for _, wt := range []time.Duration{time.Second, 15 * time.Second, 2 * time.Minute} {
		cfg := DefaultConfig()
		cfg.WriteTimeout = wt
		srv := newHTTPServer(cfg, http.NotFoundHandler(), nil, testLogger(t))
		// A write reads its body, waits for the commit, then for this
		// peer to apply it; each wait is bounded by WriteTimeout.
		if need := cfg.HTTPReadTimeout + 2*cfg.WriteTimeout; srv.WriteTimeout <= need {
			t.Errorf("WriteTimeout %s: the server's write timeout %s does not exceed the %s a write may take", wt, srv.WriteTimeout, need)
		}
		if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 {
			t.Errorf("timeouts unset: read header %s, read %s, idle %s", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
		}
	}
}

// TestHTTPConnectionCap holds every connection the cap allows and checks
// that the next one is served only once one of them closes.
func TestHTTPConnectionCap(t *testing.T) {
	m := newMeshWith(t, func(c *Config) { c.HTTPMaxConns = 2 }, "eu-1")
	p := m.peers["eu-1"]
	held := []net.Conn{rawConn(t, p), rawConn(t, p)}
	next := rawConn(t, p)
	if _, err := io.WriteString(next, "GET /v1/health HTTP/1.1\r\nHost: shoal\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(next)
	_ = next.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Fatalf("a third connection was served (%s) while two are held, with a cap of 2", resp.Status)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection: %v, want it kept waiting", err)
	}
	held[0].Close()
	_ = next.SetReadDeadline(time.Now().Add(deadline))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the third connection is not served once one closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %d", resp.StatusCode)
	}
}
