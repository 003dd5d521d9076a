package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/shoalmesh/shoal/transport"
)

// scope is a set of rights on the HTTP API.
type scope uint8

const (
	// scopeRead is every GET but /v1/health, which needs nothing.
	scopeRead scope = 1 << iota
	// scopeWrite is apply and delete.
	scopeWrite
	// scopeAdmin is every /v1/agent/ endpoint: leave, the simulated
	// cluster, and the fault hooks to come.
	scopeAdmin

	scopeAll = scopeRead | scopeWrite | scopeAdmin
)

// defaultScopes are those of a token listed without scopes, and of every
// client certificate when no client scopes file is given: read and write,
// never admin, which must be granted by name.
const defaultScopes = scopeRead | scopeWrite

var scopeNames = []struct {
	s    scope
	name string
}{{scopeRead, "read"}, {scopeWrite, "write"}, {scopeAdmin, "admin"}}

// String lists the scopes as the configuration files write them:
// "read,write", or "none".
func (s scope) String() string {
	var names []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// parseScopes reads a comma-separated list of scope names.
func parseScopes(list string) (scope, error) {
	var s scope
	for _, name := range strings.Split(list, ",") {
		i := -1
		for j, n := range scopeNames {
			if n.name == name {
				i = j
			}
		}
		if i < 0 {
			return 0, fmt.Errorf("unknown scope %q; scopes are read, write and admin, comma-separated", name)
		}
		s |= scopeNames[i].s
	}
	return s, nil
}

// Limits of the access files.
const (
	maxTokens  = 1024
	maxClients = 1024
)

// errUnauthorized is the answer to a request with neither a client
// certificate of the mesh nor a known token.
var errUnauthorized = errors.New("unauthorized: present a client certificate of the mesh (shoal --client-cert, --client-key) or a bearer token (shoal --token)")

type tokenGrant struct {
	token  []byte
	scopes scope
}

// access decides who may call what on the HTTP API. A nil *access is an
// open API: every request holds every scope.
type access struct {
	tls  *transport.Material
	self transport.Identity // this peer: its own certificate holds every scope
	// tokens are the bearer tokens of the token file.
	tokens []tokenGrant
	// clients grants client certificates by name; nil without a client
	// scopes file, when every client certificate holds defaultScopes.
	clients map[string]scope
	// otherClients is the "*" line of the client scopes file.
	otherClients scope
}

// accessFile reads the lines of a token or client scopes file: a # starts
// a comment to the end of the line, blank lines are skipped, and each other
// line is a name (a token or a client) and optionally its scopes,
// defaultScopes when it has none.
func accessFile(path, what string, max int, line func(name string, s scope) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s file: %w", what, err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for no := 1; sc.Scan(); no++ {
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if strings.HasPrefix(f, "#") { // a comment to the end of the line
				fields = fields[:i]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		if n++; n > max {
			return fmt.Errorf("%s file %s: more than %d lines", what, path, max)
		}
		s := defaultScopes
		switch len(fields) {
		case 1:
		case 2:
			if s, err = parseScopes(fields[1]); err != nil {
				return fmt.Errorf("%s file %s, line %d: %w", what, path, no, err)
			}
		default:
			return fmt.Errorf("%s file %s, line %d: want %s and optionally its scopes, such as read,write (no spaces between them)", what, path, no, what)
		}
		if err := line(fields[0], s); err != nil {
			return fmt.Errorf("%s file %s, line %d: %w", what, path, no, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s file %s: %w", what, path, err)
	}
	if n == 0 {
		return fmt.Errorf("%s file %s has no %s", what, path, what)
	}
	return nil
}

// loadTokens reads a token file: lines TOKEN [SCOPE,...].
func loadTokens(path string) ([]tokenGrant, error) {
	var out []tokenGrant
	err := accessFile(path, "token", maxTokens, func(tok string, s scope) error {
		for _, t := range out {
			if string(t.token) == tok {
				return errors.New("the token is listed twice")
			}
		}
		out = append(out, tokenGrant{token: []byte(tok), scopes: s})
		return nil
	})
	return out, err
}

// loadClientScopes reads a client scopes file: lines NAME [SCOPE,...],
// NAME being the client name of a certificate (shoal://MESH/client/NAME)
// or * for every client not listed.
func loadClientScopes(path string) (clients map[string]scope, others scope, err error) {
	clients = map[string]scope{}
	otherSet := false
	err = accessFile(path, "client", maxClients, func(name string, s scope) error {
		if name == "*" {
			if otherSet {
				return errors.New("* is listed twice")
			}
			others, otherSet = s, true
			return nil
		}
		if err := transport.CheckName("client", name); err != nil {
			return fmt.Errorf("%w (the NAME of shoal ca issue --client NAME, or *)", err)
		}
		if _, ok := clients[name]; ok {
			return fmt.Errorf("client %s is listed twice", name)
		}
		clients[name] = s
		return nil
	})
	return clients, others, err
}

// caller is who made a request and what it may do.
type caller struct {
	who    string // for messages: "client certificate shoal://prod/client/alice"
	scopes scope
	grant  string // where more scopes are granted, for messages
}

type callerKey struct{}

// identify returns the caller of a request: by its verified client
// certificate if it has one, else by its bearer token; ok is false for
// neither.
func (a *access) identify(r *http.Request) (c caller, ok bool) {
	if id, ok := a.tls.MeshIdentity(r.TLS); ok {
		c.who = "certificate " + id.String()
		switch {
		case id == a.self:
			c.scopes, c.grant = scopeAll, ""
		case id.IsPeer():
			c.scopes, c.grant = scopeRead, "another peer's certificate only reads; use a client certificate"
		case a.clients == nil:
			c.scopes, c.grant = defaultScopes, "grant more with --http-client-scopes"
		default:
			s, listed := a.clients[id.Client]
			if !listed {
				s = a.otherClients
			}
			c.scopes, c.grant = s, "grant more in the --http-client-scopes file"
		}
		return c, true
	}
	if s := a.tokenScopes(r.Header.Get("Authorization")); s != 0 {
		return caller{who: "this bearer token", scopes: s, grant: "grant more in the --http-token-file"}, true
	}
	return caller{}, false
}

// tokenScopes returns the scopes of the bearer token of an Authorization
// header, none for an unknown token. It compares the token with every
// listed one in constant time (each comparison runs to the end, and all
// are made).
func (a *access) tokenScopes(header string) scope {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return 0
	}
	var s scope
	for _, t := range a.tokens {
		match := subtle.ConstantTimeCompare(t.token, []byte(tok)) // 1 or 0
		s |= t.scopes & scope(-match)
	}
	return s
}

// authenticate finds the caller of every request and passes it on to h in
// the request's context; a request from no one the peer knows gets 401,
// but for GET /v1/health (probes). Without TLS (a nil *access) every
// request holds every scope.
func (a *access) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := caller{who: "anyone (the API has no TLS)", scopes: scopeAll}
		if a != nil {
			var ok bool
			if c, ok = a.identify(r); !ok {
				if r.Method == http.MethodGet && r.URL.Path == "/v1/health" {
					h.ServeHTTP(w, r)
					return
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
				writeError(w, http.StatusUnauthorized, errUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// require lets a request through to h only if its caller holds need
// (0: anyone, even without credentials); otherwise it answers 403 naming
// the scope.
func require(need scope, h http.Handler) http.Handler {
	if need == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callerKey{}).(caller)
		if c.scopes&need == need {
			h.ServeHTTP(w, r)
			return
		}
		msg := fmt.Sprintf("forbidden: %s %s needs scope %s; %s has %s", r.Method, r.URL.Path, need, c.who, c.scopes)
		if c.grant != "" {
			msg += " (" + c.grant + ")"
		}
		writeError(w, http.StatusForbidden, errors.New(msg))
	})
}
