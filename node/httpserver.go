package node

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// httpWriteSlack is what the HTTP server's write timeout leaves, beyond
// the longest a handler may wait, to encode and send the answer.
const httpWriteSlack = 10 * time.Second

// httpWriteTimeout is the HTTP server's write timeout. It runs from the
// end of the request's headers, so it covers reading the body (at most
// HTTPReadTimeout), waiting for the commit (WriteTimeout) and for this
// peer to apply it (WriteTimeout again), and writing the answer: a write
// that waits as long as it may still gets its answer.
func (c Config) httpWriteTimeout() time.Duration {
	return c.HTTPReadTimeout + 2*c.WriteTimeout + httpWriteSlack
}

// newHTTPServer returns the server of the HTTP API with the configured
// timeouts; tlsConfig is nil without TLS.
func newHTTPServer(cfg Config, h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.httpWriteTimeout(),
		IdleTimeout:       cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// limitConns caps the connections served at once: past the cap, a new
// connection waits in the kernel's accept queue until one closes.
func limitConns(ln net.Listener, max int) net.Listener {
	return netutil.LimitListener(ln, max)
}

// withMethodChecks adds to mux, for every path of routes, a handler that
// answers a method the path does not serve with 405 and an Allow header.
// mux must already route each route's method and path: a pattern with a
// method is more specific than the bare path, so only other methods reach
// the 405.
func withMethodChecks(mux *http.ServeMux, routes []route) {
	allowed := map[string][]string{}
	for _, rt := range routes {
		allowed[rt.path] = append(allowed[rt.path], rt.method)
		if rt.method == http.MethodGet {
			allowed[rt.path] = append(allowed[rt.path], http.MethodHead) // served by GET patterns
		}
	}
	for path, methods := range allowed {
		slices.Sort(methods)
		allow := strings.Join(slices.Compact(methods), ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s does not take %s; it takes %s", r.URL.Path, r.Method, allow))
		})
	}
}
