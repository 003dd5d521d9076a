package node

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalmesh/shoal/api/client"
	"github.com/shoalmesh/shoal/transport"
)

// TestTLSPeerScopes calls a read, a write and an admin endpoint as every
// kind of caller and checks who gets through and who gets a 403 naming the
// scope.
func TestTLSPeerScopes(t *testing.T) {
	k := newTestPKI(t)
	crt, key := k.issue("eu-eu-1", transport.PeerIdentity("prod", "eu", "eu-1"))
	otherPeerCrt, otherPeerKey := k.issue("eu-eu-2", transport.PeerIdentity("prod", "eu", "eu-2"))
	aliceCrt, aliceKey := k.issue("client-alice", transport.ClientIdentity("prod", "alice"))
	bobCrt, bobKey := k.issue("client-bob", transport.ClientIdentity("prod", "bob"))
	tokens := filepath.Join(k.dir, "tokens")
	writeFile(t, tokens, "# name scopes\nreader read\nwriter write\noperator read,write,admin\nlegacy\n")
	clients := filepath.Join(k.dir, "clients")
	writeFile(t, clients, "alice admin\n* read\n")
	m := newMeshWith(t, func(c *Config) {
		c.TLSCA, c.TLSCert, c.TLSKey = k.caFile(), crt, key
		c.HTTPTokenFile, c.HTTPClientScopesFile = tokens, clients
	}, "eu-1")
	p := m.peers["eu-1"]
	dial := func(o client.Options) *client.Client {
		t.Helper()
		o.CACert = k.caFile()
		c, err := client.NewWith(p.URL(), o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	self := dial(client.Options{ClientCert: crt, ClientKey: key})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := self.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}

	read := func(c *client.Client) error { _, err := c.Status(ctx); return err }
	write := func(c *client.Client) error { _, err := c.Apply(ctx, []byte(configMap("scoped"))); return err }
	admin := func(c *client.Client) error { return c.SetSimulatedReady(ctx, true) }
	type want struct{ read, write, admin bool }
	for _, tt := range []struct {
		name string
		c    *client.Client
		want want
	}{
		{"read token", dial(client.Options{Token: "reader"}), want{true, false, false}},
		{"write token", dial(client.Options{Token: "writer"}), want{false, true, false}},
		{"admin token", dial(client.Options{Token: "operator"}), want{true, true, true}},
		{"token listed without scopes", dial(client.Options{Token: "legacy"}), want{true, true, false}},
		{"listed client", dial(client.Options{ClientCert: aliceCrt, ClientKey: aliceKey}), want{false, false, true}},
		{"client under *", dial(client.Options{ClientCert: bobCrt, ClientKey: bobKey}), want{true, false, false}},
		{"another peer", dial(client.Options{ClientCert: otherPeerCrt, ClientKey: otherPeerKey}), want{true, false, false}},
		{"the peer itself", self, want{true, true, true}},
	} {
		for _, call := range []struct {
			scope string
			do    func(*client.Client) error
			ok    bool
		}{{"read", read, tt.want.read}, {"write", write, tt.want.write}, {"admin", admin, tt.want.admin}} {
			err := call.do(tt.c)
			var apiErr *client.APIError
			switch {
			case call.ok && err != nil:
				t.Errorf("%s, %s endpoint: %v", tt.name, call.scope, err)
			case !call.ok && (!errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden):
				t.Errorf("%s, %s endpoint: %v, want 403", tt.name, call.scope, err)
			case !call.ok && !strings.Contains(apiErr.Message, "needs scope "+call.scope):
				t.Errorf("%s, %s endpoint: message %q does not name the scope", tt.name, call.scope, apiErr.Message)
			}
		}
	}

	// Leave is admin too; refused, the peer stays.
	err := dial(client.Options{Token: "writer"}).Leave(ctx)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden || !strings.Contains(apiErr.Message, "POST /v1/agent/leave needs scope admin") {
		t.Errorf("leave with a write token: %v, want 403 naming admin", err)
	}
	// Health stays open; no credentials elsewhere is still 401.
	anon := dial(client.Options{})
	if err := anon.Health(ctx); err != nil {
		t.Errorf("health without credentials: %v", err)
	}
	if _, err := anon.Status(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("status without credentials: %v, want 401", err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAccessFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, tokens, clients string
		want                  string // error substring; "" valid
	}{
		{"old token file", "# ops\n\ns3cret\nother\n", "", ""},
		{"tokens with scopes", "a read\nb read,write,admin\n", "alice admin\n* read\n", ""},
		{"comments after the scopes", "a read # dashboard\nb#c #\n", "alice admin # ops\n", ""},
		{"unknown scope", "a read,delete\n", "", `line 1: unknown scope "delete"`},
		{"space in the scope list", "a read, write\n", "", "line 1: want token and optionally its scopes"},
		{"token twice", "a read\nb\na write\n", "", "line 3: the token is listed twice"},
		{"no token", "# none\n", "", "has no token"},
		{"bad client name", "", "Alice read\n", "line 1: client \"Alice\" must be a DNS label"},
		{"client twice", "", "alice\nalice read\n", "line 2: client alice is listed twice"},
		{"star twice", "", "* read\n* write\n", "line 2: * is listed twice"},
		{"empty scope", "", "alice read,\n", `unknown scope ""`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.tokens != "" {
				path := filepath.Join(dir, "tokens")
				writeFile(t, path, tt.tokens)
				_, err = loadTokens(path)
			}
			if err == nil && tt.clients != "" {
				path := filepath.Join(dir, "clients")
				writeFile(t, path, tt.clients)
				_, _, err = loadClientScopes(path)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("%v, want an error saying %q", err, tt.want)
			}
		})
	}
	path := filepath.Join(dir, "tokens")
	writeFile(t, path, "plain\nscoped admin\n")
	toks, err := loadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &access{tokens: toks}
	for header, want := range map[string]scope{
		"Bearer plain": defaultScopes, "bearer scoped": scopeAdmin, "Bearer plai": 0, "Bearer plainx": 0,
		"plain": 0, "Basic plain": 0, "Bearer ": 0, "": 0,
	} {
		if got := a.tokenScopes(header); got != want {
			t.Errorf("Authorization %q: scopes %s, want %s", header, got, want)
		}
	}
}
