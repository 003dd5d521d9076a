package node

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/shoalmesh/shoal/transport"
)

// maxTokens bounds the token file.
const maxTokens = 1024

// errUnauthorized is the answer to a request with neither a client
// certificate of the mesh nor a known token.
var errUnauthorized = errors.New("unauthorized: present a client certificate of the mesh (shoal --client-cert, --client-key) or a bearer token (shoal --token)")

// loadTokens reads a token file: one token a line, blank lines and lines
// starting with # skipped.
func loadTokens(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(out) == maxTokens {
			return nil, fmt.Errorf("token file %s: more than %d tokens", path, maxTokens)
		}
		out = append(out, []byte(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s has no token", path)
	}
	return out, nil
}

// authorize lets a request through if the peer runs without TLS (the API
// is open, as warned at start), if it is GET /v1/health (probes), if its
// connection has a verified client certificate of the mesh, or if it
// carries a listed bearer token. Anything else gets 401.
func authorize(mat *transport.Material, tokens [][]byte, h http.Handler) http.Handler {
	if mat == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/health" {
			h.ServeHTTP(w, r)
			return
		}
		if _, ok := mat.MeshIdentity(r.TLS); ok {
			h.ServeHTTP(w, r)
			return
		}
		if tokenListed(tokens, r.Header.Get("Authorization")) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
		writeError(w, http.StatusUnauthorized, errUnauthorized)
	})
}

// tokenListed compares the bearer token of an Authorization header with
// every listed token in constant time (each comparison runs to the end,
// and all are made).
func tokenListed(tokens [][]byte, header string) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false
	}
	found := 0
	for _, t := range tokens {
		found |= subtle.ConstantTimeCompare(t, []byte(tok))
	}
	return found == 1
}
