package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
)

// maxAnswerBytes bounds an answer read from a peer.
const maxAnswerBytes = 64 << 20

// Client talks to any peer's HTTP API. It is safe for concurrent use.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// Options says how a client reaches an HTTPS API and proves who it is.
// The zero value is a plain client.
type Options struct {
	// CACert is a PEM file with the CA the peers' certificates chain to
	// (the mesh's ca.crt); empty means the system's roots.
	CACert string
	// ClientCert and ClientKey are PEM files of a client certificate of
	// the mesh (shoal ca issue --client NAME); both or neither.
	ClientCert, ClientKey string
	// Token is a bearer token the peers accept.
	Token string
}

func (o Options) empty() bool { return o == Options{} }

// APIError is an error answered by a peer: Status is the HTTP status
// (401 no credentials the peer accepts, 403 a missing scope, 4xx bad
// input, 503/504 a write whose outcome is unknown) and Message the
// peer's explanation.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// New returns a plain client for the peer at base (http://host:port, or
// https:// verified against the system's roots).
func New(base string) (*Client, error) {
	return NewWith(base, Options{})
}

// NewWith returns a client for the peer at base that verifies the
// peer against o.CACert and presents o's certificate and token. Options
// other than none need an https:// base: credentials never travel in
// clear.
func NewWith(base string, o Options) (*Client, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("server %q is not a URL like http://127.0.0.1:7480", base)
	}
	if u.Scheme == "http" && !o.empty() {
		return nil, fmt.Errorf("server %s is plain http: a CA, client certificate or token needs an https:// server", base)
	}
	c := &Client{base: strings.TrimRight(u.String(), "/"), http: &http.Client{Timeout: 60 * time.Second}, token: o.Token}
	if u.Scheme == "https" {
		cfg, err := o.tlsConfig()
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg
		c.http.Transport = tr
	}
	return c, nil
}

func (o Options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", o.CACert)
		}
	}
	switch {
	case o.ClientCert != "" && o.ClientKey != "":
		pair, err := tls.LoadX509KeyPair(o.ClientCert, o.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case o.ClientCert != "" || o.ClientKey != "":
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	return cfg, nil
}

// Base is the peer's base URL.
func (c *Client) Base() string { return c.base }

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return fmt.Errorf("reading answer of %s: %w", c.base, err)
	}
	if len(data) > maxAnswerBytes {
		return fmt.Errorf("answer of %s %s %s is over %d bytes", c.base, method, path, maxAnswerBytes)
	}
	if resp.StatusCode >= 300 {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &APIError{Status: resp.StatusCode, Message: e.Error}
		}
		return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding answer of %s %s: %w", method, path, err)
	}
	return nil
}

// Health is GET /v1/health, which a peer answers without credentials.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/health", nil, nil)
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (api.StatusView, error) {
	var v api.StatusView
	return v, c.do(ctx, http.MethodGet, "/v1/status", nil, &v)
}

// Clusters is GET /v1/clusters.
func (c *Client) Clusters(ctx context.Context) ([]api.ClusterView, error) {
	var v []api.ClusterView
	return v, c.do(ctx, http.MethodGet, "/v1/clusters", nil, &v)
}

// Workloads is GET /v1/workloads.
func (c *Client) Workloads(ctx context.Context) ([]api.WorkloadView, error) {
	var v []api.WorkloadView
	return v, c.do(ctx, http.MethodGet, "/v1/workloads", nil, &v)
}

// Describe is GET /v1/workloads/describe.
func (c *Client) Describe(ctx context.Context, kind, namespace, name string) ([]api.WorkloadDetail, error) {
	q := url.Values{"namespace": {namespace}, "name": {name}}
	if kind != "" {
		q.Set("kind", kind)
	}
	var v []api.WorkloadDetail
	return v, c.do(ctx, http.MethodGet, "/v1/workloads/describe?"+q.Encode(), nil, &v)
}

// Policies is GET /v1/policies.
func (c *Client) Policies(ctx context.Context) ([]api.PolicyView, error) {
	var v []api.PolicyView
	return v, c.do(ctx, http.MethodGet, "/v1/policies", nil, &v)
}

// Events is GET /v1/events (cluster events).
func (c *Client) Events(ctx context.Context) ([]api.EventView, error) {
	var v []api.EventView
	return v, c.do(ctx, http.MethodGet, "/v1/events", nil, &v)
}

// Apply is POST /v1/apply with multi-document YAML.
func (c *Client) Apply(ctx context.Context, yaml []byte) (api.ApplyResponse, error) {
	var v api.ApplyResponse
	return v, c.do(ctx, http.MethodPost, "/v1/apply", yaml, &v)
}

// DeleteDocuments is POST /v1/delete with multi-document YAML.
func (c *Client) DeleteDocuments(ctx context.Context, yaml []byte) (api.ApplyResponse, error) {
	var v api.ApplyResponse
	return v, c.do(ctx, http.MethodPost, "/v1/delete", yaml, &v)
}

// Delete is DELETE /v1/objects.
func (c *Client) Delete(ctx context.Context, kind, namespace, name string) (api.ApplyResponse, error) {
	q := url.Values{"kind": {kind}, "namespace": {namespace}, "name": {name}}
	var v api.ApplyResponse
	return v, c.do(ctx, http.MethodDelete, "/v1/objects?"+q.Encode(), nil, &v)
}

// Rebalance is POST /v1/rebalance: the workloads are placed afresh once.
func (c *Client) Rebalance(ctx context.Context, workloads ...api.WorkloadRef) (api.RebalanceResponse, error) {
	body, err := json.Marshal(api.RebalanceRequest{Workloads: workloads})
	if err != nil {
		return api.RebalanceResponse{}, err
	}
	var v api.RebalanceResponse
	return v, c.do(ctx, http.MethodPost, "/v1/rebalance", body, &v)
}

// Promote is POST /v1/promote: the peer of req.Cluster adopts an object
// that runs there into Shoal.
func (c *Client) Promote(ctx context.Context, req api.PromoteRequest) (api.PromoteResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.PromoteResponse{}, err
	}
	var v api.PromoteResponse
	return v, c.do(ctx, http.MethodPost, "/v1/promote", body, &v)
}

// Migrate is POST /v1/migrate: a workload's share moves from one cluster
// of the peer's region to another.
func (c *Client) Migrate(ctx context.Context, req api.MigrateRequest) (api.MigrateResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.MigrateResponse{}, err
	}
	var v api.MigrateResponse
	return v, c.do(ctx, http.MethodPost, "/v1/migrate", body, &v)
}

// Clone is POST /v1/clone: a workload as it runs on one cluster is copied
// into another cluster as a new template with its own policy.
func (c *Client) Clone(ctx context.Context, req api.CloneRequest) (api.CloneResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.CloneResponse{}, err
	}
	var v api.CloneResponse
	return v, c.do(ctx, http.MethodPost, "/v1/clone", body, &v)
}

// Leave is POST /v1/agent/leave: the peer leaves its region and exits.
func (c *Client) Leave(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/agent/leave", []byte("{}"), nil)
}

// ForgetRegion is POST /v1/regions/forget: the region of the peer drops a
// dead region from its records for good.
func (c *Client) ForgetRegion(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/v1/regions/forget?name="+url.QueryEscape(name), []byte("{}"), nil)
}

// Fault is POST /v1/agent/faults: a fault injected into the peer's
// traffic.
func (c *Client) Fault(ctx context.Context, f api.Fault) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/v1/agent/faults", body, nil)
}

// SetSimulatedReady is PUT /v1/agent/simulation.
func (c *Client) SetSimulatedReady(ctx context.Context, ready bool) error {
	body, _ := json.Marshal(map[string]bool{"ready": ready})
	return c.do(ctx, http.MethodPut, "/v1/agent/simulation", body, nil)
}

// SetSimulatedCapacity is PUT /v1/agent/simulation with a capacity
// percent: the simulated cluster's nodes offer percent (0 to 100) of
// their allocatable; 0 drains it, nothing new fits.
func (c *Client) SetSimulatedCapacity(ctx context.Context, percent int) error {
	body, _ := json.Marshal(map[string]int{"capacityPercent": percent})
	return c.do(ctx, http.MethodPut, "/v1/agent/simulation", body, nil)
}

// Simulation is GET /v1/simulation: what the peer's simulated cluster
// holds.
func (c *Client) Simulation(ctx context.Context) (api.SimulationView, error) {
	var v api.SimulationView
	return v, c.do(ctx, http.MethodGet, "/v1/simulation", nil, &v)
}

// WaitLeader polls until the peer knows a leader, or ctx ends.
func (c *Client) WaitLeader(ctx context.Context) (api.StatusView, error) {
	for {
		st, err := c.Status(ctx)
		if err == nil && st.Leader != "" {
			return st, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("no leader elected")
			}
			return st, fmt.Errorf("waiting for a leader at %s: %w", c.base, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
