package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/region"
)

// testBodyLimit is the MaxBodyBytes of the single-peer API tests: small
// enough to exceed cheaply, large enough for the examples.
const testBodyLimit = 16 << 10

// newSinglePeer starts a one-peer region (eu-1) with a small body limit and
// waits for it to lead.
func newSinglePeer(t testing.TB) (*mesh, *Peer) {
	m := newMeshWith(t, func(c *Config) { c.MaxBodyBytes = testBodyLimit }, "eu-1")
	p := m.peers["eu-1"]
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := m.client("eu-1").WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return m, p
}

// call sends one request to the peer's API and returns the status code and
// the body, which must be JSON.
func call(t testing.TB, p *Peer, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json; body %s", method, path, ct, data)
	}
	if !json.Valid(data) {
		t.Errorf("%s %s: answer is not JSON: %q", method, path, data)
	}
	return resp.StatusCode, data
}

// errorMessage decodes an error answer.
func errorMessage(t testing.TB, data []byte) string {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
		t.Fatalf("not an error answer: %s", data)
	}
	return e.Error
}

func mustApply(t testing.TB, p *Peer, yaml string) api.ApplyResponse {
	t.Helper()
	code, data := call(t, p, http.MethodPost, "/v1/apply", []byte(yaml))
	if code != http.StatusOK {
		t.Fatalf("apply: %d %s", code, data)
	}
	var r api.ApplyResponse
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func configMap(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: default\ndata:\n  k: v\n", name)
}

func objectNames(p *Peer) map[string]bool {
	out := map[string]bool{}
	p.FSM().Read(func(s *region.State) {
		for _, o := range s.Objects() {
			out[api.KeyFromProto(o.GetKey()).Display()] = true
		}
	})
	return out
}

func TestHTTPRejectsBadInput(t *testing.T) {
	_, p := newSinglePeer(t)
	badSpread, err := os.ReadFile("../api/testdata/bad-spread.yaml")
	if err != nil {
		t.Fatal(err)
	}
	web, err := os.ReadFile("../examples/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body string
		code int
		want []string
	}{
		{"malformed YAML", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n", 400,
			[]string{"document 1", "malformed"}},
		{"malformed after a good document", configMap("ok") + "---\nkind: [\n", 400,
			[]string{"document 2", "malformed"}},
		{"unknown policy kind", "apiVersion: policy.karmada.io/v1alpha1\nkind: SchedulingPolicy\nmetadata:\n  name: x\n", 400,
			[]string{"document 1", "unknown policy kind", "SchedulingPolicy"}},
		{"unknown policy apiVersion", "apiVersion: policy.karmada.io/v9\nkind: PropagationPolicy\nmetadata:\n  name: x\n", 400,
			[]string{"document 1", "unknown policy kind", "policy.karmada.io/v9"}},
		{"override policy without spec", "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata:\n  name: x\n", 400,
			[]string{"document 1 (OverridePolicy default/x)", "spec: is required"}},
		{"minGroups over maxGroups", configMap("first") + "---\n" + string(badSpread), 400,
			[]string{"document 2", "PropagationPolicy default/web-pp", "spec.placement.spreadConstraints[0]", "maxGroups (1)", "minGroups (2)"}},
		{"unknown policy field", strings.Replace(string(badSpread), "spreadByField", "spreadByFeild", 1), 400,
			[]string{"document 1", "PropagationPolicy default/web-pp", "spreadByFeild", "unknown field"}},
		{"empty file", "", 400, []string{"no objects"}},
		{"only separators and comments", "---\n# nothing here\n---\n", 400, []string{"no objects"}},
		{"missing name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", 400, []string{"document 1", "metadata.name"}},
		{"same object twice", configMap("twice") + "---\n" + configMap("other") + "---\n" + configMap("twice"), 400,
			[]string{"document 3", "ConfigMap default/twice", "already document 1"}},
		{"last document bad", string(web) + "\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: broken\nspec:\n  placement:\n    replicaScheduling:\n      replicaSchedulingType: Sometimes\n", 400,
			[]string{"document 3", "PropagationPolicy default/broken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, data := call(t, p, http.MethodPost, "/v1/apply", []byte(tc.body))
			if code != tc.code {
				t.Fatalf("code %d, want %d: %s", code, tc.code, data)
			}
			msg := errorMessage(t, data)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}

	// Nothing of the rejected requests was written. A good apply after them
	// returns only once applied here, so any write of theirs would show.
	mustApply(t, p, configMap("sentinel"))
	got := objectNames(p)
	want := map[string]bool{"ConfigMap default/sentinel": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("objects after rejected applies: %v, want only the sentinel", got)
	}
	code, data := call(t, p, http.MethodGet, "/v1/workloads", nil)
	var ws []api.WorkloadView
	if code != 200 || json.Unmarshal(data, &ws) != nil || len(ws) != 1 || ws[0].Name != "sentinel" {
		t.Fatalf("GET /v1/workloads after rejected applies: %d %s", code, data)
	}
}

// TestHTTPKindWithVersionCannotReplaceAPolicy is the regression test of a
// key collision: apiVersion policy.karmada.io with kind
// v1alpha1/PropagationPolicy joined to the same state key as the policy
// default/web and silently replaced it.
func TestHTTPKindWithVersionCannotReplaceAPolicy(t *testing.T) {
	_, p := newSinglePeer(t)
	mustApply(t, p, string(readExamples(t)))
	policy := api.ObjectKey{APIVersion: api.PolicyAPIVersion, Kind: api.KindPropagationPolicy, Namespace: "default", Name: "web"}
	manifest := func() string {
		var m string
		p.FSM().Read(func(s *region.State) { m = string(s.Object(policy).GetManifest()) })
		return m
	}
	before := manifest()
	if before == "" {
		t.Fatal("the example policy default/web is not in the region state")
	}
	code, data := call(t, p, http.MethodPost, "/v1/apply", []byte(`apiVersion: policy.karmada.io
kind: v1alpha1/PropagationPolicy
metadata:
  name: web
  namespace: default
data:
  replaced: "yes"
`))
	if code != http.StatusBadRequest {
		t.Fatalf("apply: %d %s, want 400", code, data)
	}
	msg := errorMessage(t, data)
	for _, w := range []string{"document 1", `kind "v1alpha1/PropagationPolicy"`, "must not contain '/'", `apiVersion "policy.karmada.io"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
	// A write acknowledged after the rejected one is applied here, so a
	// replacement would show.
	mustApply(t, p, configMap("sentinel"))
	if after := manifest(); after != before {
		t.Fatalf("policy default/web changed:\nbefore %s\nafter  %s", before, after)
	}
}

func TestHTTPBodyLimit(t *testing.T) {
	_, p := newSinglePeer(t)
	big := configMap("big") + "  blob: " + strings.Repeat("x", 2*testBodyLimit) + "\n"
	for _, path := range []string{"/v1/apply", "/v1/delete"} {
		code, data := call(t, p, http.MethodPost, path, []byte(big))
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST %s over the limit: %d %s", path, code, data)
		}
		if msg := errorMessage(t, data); !strings.Contains(msg, fmt.Sprint(testBodyLimit)) || !strings.Contains(msg, "limit") {
			t.Errorf("POST %s: message %q does not state the limit", path, msg)
		}
	}
	if got := objectNames(p); len(got) != 0 {
		t.Fatalf("objects after a rejected body: %v", got)
	}
	// Just under the limit is accepted.
	mustApply(t, p, configMap("fits")+"  blob: "+strings.Repeat("y", testBodyLimit/2)+"\n")
}

func TestHTTPOddPoliciesAreAcceptedAndExplained(t *testing.T) {
	m, p := newSinglePeer(t)
	c := m.client("eu-1")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	mustApply(t, p, `apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: lonely
  namespace: default
spec:
  resourceSelectors:
    - apiVersion: apps/v1
      kind: Deployment
      name: does-not-exist
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ghost
  namespace: default
spec:
  replicas: 2
  selector: {matchLabels: {app: ghost}}
  template:
    metadata: {labels: {app: ghost}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: ghost
  namespace: default
spec:
  resourceSelectors:
    - apiVersion: apps/v1
      kind: Deployment
      name: ghost
  placement:
    clusterAffinity:
      clusterNames: [nowhere-1, nowhere-2]
`)
	eventually(t, "ghost is unschedulable and says why", func() error {
		ds, err := c.Describe(ctx, "Deployment", "default", "ghost")
		if err != nil {
			return err
		}
		d := ds[0]
		if !d.Unschedulable || d.Policy == "" || !strings.Contains(d.Reason, "0/1 clusters are feasible") ||
			!strings.Contains(d.Reason, "not in clusterNames") || len(d.Placements) != 0 {
			return fmt.Errorf("unschedulable %v, policy %q, reason %q, placements %v", d.Unschedulable, d.Policy, d.Reason, d.Placements)
		}
		return nil
	})
	ps, err := c.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	selects := map[string][]string{}
	for _, pv := range ps {
		selects[pv.Name] = pv.Selects
	}
	if s, ok := selects["lonely"]; !ok || s == nil || len(s) != 0 {
		t.Errorf("policy lonely: selects %#v, want an empty list", s)
	}
	if s := selects["ghost"]; len(s) != 1 || s[0] != "Deployment default/ghost" {
		t.Errorf("policy ghost: selects %v", s)
	}
}

func TestHTTPNotFoundAndDelete(t *testing.T) {
	m, p := newSinglePeer(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/v1/nothing"},
		{http.MethodGet, "/v2/workloads"},
		{http.MethodPost, "/v1/agent/teleport"},
	} {
		code, data := call(t, p, tc.method, tc.path, nil)
		if code != http.StatusNotFound || !strings.Contains(errorMessage(t, data), tc.path) {
			t.Errorf("%s %s: %d %s, want 404 naming the path", tc.method, tc.path, code, data)
		}
	}
	code, data := call(t, p, http.MethodDelete, "/v1/objects?kind=Deployment&namespace=default&name=web", nil)
	if code != http.StatusNotFound || !strings.Contains(errorMessage(t, data), "default/web not found") {
		t.Errorf("delete of a missing object: %d %s", code, data)
	}
	code, data = call(t, p, http.MethodDelete, "/v1/objects?namespace=default&name=web", nil)
	if code != http.StatusBadRequest {
		t.Errorf("delete without kind: %d %s", code, data)
	}

	mustApply(t, p, string(readExamples(t)))
	eventually(t, "web and log-agent run in the simulated cluster", func() error {
		if r := m.running(webKey); r["eu-1"] != 8 {
			return fmt.Errorf("web %v", r)
		}
		if r := m.running(agentKey); r["eu-1"] != 2 {
			return fmt.Errorf("log-agent %v", r)
		}
		return nil
	})
	code, data = call(t, p, http.MethodDelete, "/v1/objects?kind=deployment&namespace=default&name=web", nil)
	var resp api.ApplyResponse
	if code != 200 || json.Unmarshal(data, &resp) != nil || len(resp.Results) != 1 || resp.Results[0].Result != "deleted" {
		t.Fatalf("delete web: %d %s", code, data)
	}
	if objectNames(p)["Deployment default/web"] {
		t.Fatal("web is still in the region state after an acknowledged delete")
	}
	eventually(t, "the simulated cluster drops web", func() error {
		if _, ok := p.Sim().Objects()[webKey]; ok {
			return fmt.Errorf("web still in the cluster")
		}
		return nil
	})
	if r := m.running(agentKey); r["eu-1"] != 2 {
		t.Errorf("log-agent disturbed by deleting web: %v", r)
	}
	code, data = call(t, p, http.MethodDelete, "/v1/objects?kind=Deployment&namespace=default&name=web", nil)
	if code != http.StatusNotFound {
		t.Errorf("second delete: %d %s", code, data)
	}
	// Delete by documents removes the rest.
	code, data = call(t, p, http.MethodPost, "/v1/delete", readExamples(t))
	if code != 200 {
		t.Fatalf("delete -f examples: %d %s", code, data)
	}
	eventually(t, "the simulated cluster is empty", func() error {
		if objs := p.Sim().Objects(); len(objs) != 0 {
			return fmt.Errorf("left: %v", objs)
		}
		return nil
	})
}

// FuzzApplyEndpoint posts arbitrary bodies to the apply and delete handlers
// of a live peer: every answer is JSON, 2xx or 4xx; a 5xx is allowed only
// for a commit that failed (503/504), never a panic turned into 500.
func FuzzApplyEndpoint(f *testing.F) {
	for _, s := range []string{
		"", "---", "{}", "[]", "null", "{\"apiVersion\":\"v1\"}", "\x00\xff",
		configMap("seed"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: \"\"\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: -3}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 99999999999}\n",
		"apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: all}\nspec: {resourceSelectors: [{apiVersion: v1, kind: ConfigMap}]}\n",
		"apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p}\nspec: {placement: {spreadConstraints: [{spreadByField: zone, maxGroups: -1}]}}\n",
		"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"j\"}}{\"apiVersion\":\"v1\"",
		"a: &a [*a, *a]\nb: *a\n",
	} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"web.yaml", "log-agent.yaml"} {
		if data, err := os.ReadFile("../examples/" + name); err == nil {
			f.Add(data)
		}
	}
	_, p := newSinglePeer(f)
	h := p.routes()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/apply", "/v1/delete"} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			cancel()
			code, data := rec.Code, rec.Body.Bytes()
			switch {
			case code >= 200 && code < 300:
				var r api.ApplyResponse
				if err := json.Unmarshal(data, &r); err != nil || len(r.Results) == 0 {
					t.Fatalf("POST %s: %d with %q", path, code, data)
				}
			case code >= 400 && code < 500, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
				var e api.ErrorResponse
				if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
					t.Fatalf("POST %s: %d with %q", path, code, data)
				}
			default:
				t.Fatalf("POST %s with %q: %d %s", path, body, code, data)
			}
		}
	})
}

// Concurrent applies of one object each learn what their own write did:
// distinct generations, one "created", and every answer visible on the
// peer that gave it — never 200 with generation 0.
func TestHTTPConcurrentAppliesReportTheirOwnResult(t *testing.T) {
	_, p := newSinglePeer(t)
	const n = 8
	type answer struct {
		resp api.ApplyResponse
		err  error
	}
	answers := make(chan answer, n)
	for i := range n {
		go func() {
			doc := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n  namespace: default\ndata:\n  writer: \"%d\"\n", i)
			code, data := call(t, p, http.MethodPost, "/v1/apply", []byte(doc))
			var a answer
			if code != http.StatusOK {
				a.err = fmt.Errorf("apply %d: %d %s", i, code, data)
			} else {
				a.err = json.Unmarshal(data, &a.resp)
			}
			answers <- a
		}()
	}
	gens := map[int64]string{}
	created := 0
	for range n {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		r := a.resp.Results[0]
		if r.Generation == 0 || !a.resp.Visible {
			t.Fatalf("answer %+v: generation 0 or not visible", a.resp)
		}
		if prev, dup := gens[r.Generation]; dup {
			t.Fatalf("two writes were told generation %d (%s and %s)", r.Generation, prev, r.Result)
		}
		gens[r.Generation] = r.Result
		if r.Result == "created" {
			created++
		}
	}
	if created != 1 || len(gens) != n {
		t.Fatalf("results %v: want one created and %d distinct generations", gens, n)
	}
}
