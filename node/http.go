package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/consensus"
	"github.com/shoalmesh/shoal/region"
)

// route is one endpoint of the HTTP API and the scope a caller needs for
// it.
type route struct {
	method, path string
	need         scope // 0: anyone, even without credentials
	handle       http.HandlerFunc
}

// apiRoutes is the versioned HTTP API. Reads are served from this peer's
// copy of the region state; writes are committed through Raft (forwarded
// to the leader) and acknowledged only once committed and applied here.
func (p *Peer) apiRoutes() []route {
	return []route{
		{http.MethodGet, "/v1/health", 0, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{http.MethodGet, "/v1/status", scopeRead, p.handleStatus},
		{http.MethodGet, "/v1/clusters", scopeRead, p.handleClusters},
		{http.MethodGet, "/v1/workloads", scopeRead, p.handleWorkloads},
		{http.MethodGet, "/v1/workloads/describe", scopeRead, p.handleDescribe},
		{http.MethodGet, "/v1/policies", scopeRead, p.handlePolicies},
		{http.MethodGet, "/v1/events", scopeRead, p.handleEvents},
		{http.MethodPost, "/v1/apply", scopeWrite, p.handleApply},
		{http.MethodPost, "/v1/delete", scopeWrite, p.handleDeleteDocs},
		{http.MethodDelete, "/v1/objects", scopeWrite, p.handleDeleteObject},
		{http.MethodPost, "/v1/rebalance", scopeWrite, p.handleRebalance},
		{http.MethodPost, "/v1/promote", scopeWrite, lifecycleHandler(p, "{apiVersion, kind, namespace, name, cluster, deps, dryRun}", p.promote)},
		{http.MethodPost, "/v1/migrate", scopeWrite, lifecycleHandler(p, "{kind, namespace, name, from, to, dryRun}", p.migrate)},
		{http.MethodPost, "/v1/clone", scopeWrite, lifecycleHandler(p, "{kind, namespace, name, from, to, toNamespace, toName, dryRun}", p.clone)},
		{http.MethodPost, "/v1/agent/leave", scopeAdmin, p.handleLeave},
		{http.MethodPost, "/v1/regions/forget", scopeAdmin, p.handleForgetRegion},
		{http.MethodPost, "/v1/agent/faults", scopeAdmin, p.handleFault},
		{http.MethodPut, "/v1/agent/simulation", scopeAdmin, p.handleSimulation},
		{http.MethodGet, "/v1/simulation", scopeRead, p.handleSimulationView},
	}
}

// routes serves apiRoutes: the caller is authenticated first (401), then
// checked for the route's scope (403).
func (p *Peer) routes() http.Handler {
	mux := http.NewServeMux()
	routes := p.apiRoutes()
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.path, require(rt.need, rt.handle))
	}
	withMethodChecks(mux, routes)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s (see the README's HTTP API)", r.Method, r.URL.Path))
	})
	return recoverer(p, p.access.authenticate(mux))
}

// recoverer turns a panic in a handler into a 500, so no request can take
// the peer down.
func recoverer(p *Peer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				p.logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, fmt.Errorf("internal error"))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, api.ErrorResponse{Error: err.Error()})
}

// readBody reads a request body up to the configured limit. A body that
// announces more (Content-Length) is refused before any of it is read;
// nothing is allocated by what the request announces.
func (p *Peer) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooBig := func() {
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Errorf("request body is over the limit of %d bytes; split the file into several applies", p.cfg.MaxBodyBytes))
	}
	if r.ContentLength > p.cfg.MaxBodyBytes {
		tooBig()
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.MaxBodyBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			tooBig()
			return nil, false
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading request body: %v", err))
		return nil, false
	}
	return body, true
}

// writeStatus maps a commit error to an HTTP status and message.
func writeCommitError(w http.ResponseWriter, region string, err error) {
	switch {
	case errors.Is(err, consensus.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the documents are too large to commit together: %v", err))
	case errors.Is(err, consensus.ErrRejected):
		writeError(w, http.StatusUnprocessableEntity, err)
	case errors.Is(err, consensus.ErrForbidden), errors.Is(err, consensus.ErrRefused):
		writeError(w, http.StatusForbidden, fmt.Errorf("region %s refused the write from this peer: %v", region, err))
	case errors.Is(err, consensus.ErrTimeout), errors.Is(err, consensus.ErrLeadershipLost), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, fmt.Errorf("region %s: the write may or may not have been committed (%v); apply again, it is idempotent", region, err))
	case errors.Is(err, consensus.ErrNoLeader), errors.Is(err, consensus.ErrNotLeader):
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("region %s has no leader right now (%v); retry shortly", region, err))
	default:
		writeError(w, http.StatusServiceUnavailable, err)
	}
}

func (p *Peer) handleApply(w http.ResponseWriter, r *http.Request) {
	body, ok := p.readBody(w, r)
	if !ok {
		return
	}
	docs, err := api.DecodeDocuments(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if dup := duplicateDocument(docs); dup != "" {
		writeError(w, http.StatusBadRequest, errors.New(dup))
		return
	}
	resp := api.ApplyResponse{}
	cmd := &shoalpb.ApplyObjects{}
	keys := make([]api.ObjectKey, 0, len(docs))
	for _, d := range docs {
		resp.Warnings = append(resp.Warnings, d.Warnings...)
		cmd.Objects = append(cmd.Objects, &shoalpb.Object{Key: d.Key.Proto(), Manifest: d.Manifest})
		keys = append(keys, d.Key)
	}
	res, err := p.commitResult(r.Context(), &shoalpb.Command{Cmd: &shoalpb.Command_ApplyObjects{ApplyObjects: cmd}})
	if err != nil {
		writeCommitError(w, p.cfg.Region, err)
		return
	}
	p.answerWrite(w, r, res, keys)
}

// answerWrite answers a committed apply or delete with what the state
// machine did to each object at the write's own log index (concurrent
// writes of one object each get their own result), once this peer has
// applied it, so that the client reads its own write here.
func (p *Peer) answerWrite(w http.ResponseWriter, r *http.Request, res consensus.Result, keys []api.ObjectKey) {
	resp := api.ApplyResponse{Index: res.Index}
	var results shoalpb.ObjectResults
	if err := proto.Unmarshal(res.Response, &results); err != nil || len(results.GetResults()) != len(keys) {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("region %s committed the write at index %d but its answer is unreadable", p.cfg.Region, res.Index))
		return
	}
	for i, o := range results.GetResults() {
		resp.Results = append(resp.Results, api.ApplyResult{Document: i + 1, Object: keys[i].Display(),
			Result: o.GetResult(), Generation: o.GetGeneration()})
	}
	resp.Visible = p.awaitApplied(r.Context(), res.Index)
	if !resp.Visible {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf(
			"committed at index %d, but this peer has not applied it yet: a read from it may not show the write; read again shortly", res.Index))
	}
	writeJSON(w, http.StatusOK, resp)
}

func duplicateDocument(docs []api.Document) string {
	seen := map[string]int{}
	for _, d := range docs {
		if first, ok := seen[d.Key.String()]; ok {
			// Documents are counted from 1, as DocumentError does.
			return fmt.Sprintf("document %d (%s): the same object is already document %d", d.Index+1, d.Key.Display(), first+1)
		}
		seen[d.Key.String()] = d.Index
	}
	return ""
}

// awaitApplied waits until this peer applied the write, so that the client
// reads its own write from the same peer; false if it did not in time.
func (p *Peer) awaitApplied(ctx context.Context, idx uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()
	return p.fsm.WaitApplied(ctx.Done(), idx)
}

func (p *Peer) handleDeleteDocs(w http.ResponseWriter, r *http.Request) {
	body, ok := p.readBody(w, r)
	if !ok {
		return
	}
	docs, err := api.DecodeDocuments(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	keys := make([]api.ObjectKey, 0, len(docs))
	for _, d := range docs {
		keys = append(keys, d.Key)
	}
	p.deleteKeys(w, r, keys)
}

func (p *Peer) handleDeleteObject(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, name := q.Get("kind"), q.Get("name")
	if kind == "" || name == "" {
		writeError(w, http.StatusBadRequest, errors.New("kind and name are required query parameters"))
		return
	}
	keys := p.findObjects(q.Get("apiVersion"), kind, q.Get("namespace"), name)
	if len(keys) == 0 {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s %s not found", kind, joinNS(q.Get("namespace"), name)))
		return
	}
	if len(keys) > 1 {
		writeError(w, http.StatusConflict, fmt.Errorf("%s %s is ambiguous: it exists in %d apiVersions; give apiVersion", kind, joinNS(q.Get("namespace"), name), len(keys)))
		return
	}
	p.deleteKeys(w, r, keys)
}

func joinNS(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// findObjects finds live objects by kind (case-insensitive), namespace and
// name, and by apiVersion when given.
func (p *Peer) findObjects(apiVersion, kind, namespace, name string) []api.ObjectKey {
	var out []api.ObjectKey
	p.fsm.Read(func(s *region.State) {
		for _, o := range s.Objects() {
			k := api.KeyFromProto(o.GetKey())
			if strings.EqualFold(k.Kind, kind) && k.Namespace == namespace && k.Name == name &&
				(apiVersion == "" || apiVersion == k.APIVersion) {
				out = append(out, k)
			}
		}
	})
	return out
}

func (p *Peer) deleteKeys(w http.ResponseWriter, r *http.Request, keys []api.ObjectKey) {
	cmd := &shoalpb.DeleteObjects{}
	p.fsm.Read(func(s *region.State) {
		for _, k := range keys {
			cmd.Keys = append(cmd.Keys, k.Proto())
			if s.Binding(k).GetPreserveResourcesOnDeletion() {
				cmd.Preserve = append(cmd.Preserve, k.Proto())
			}
		}
	})
	res, err := p.commitResult(r.Context(), &shoalpb.Command{Cmd: &shoalpb.Command_DeleteObjects{DeleteObjects: cmd}})
	if err != nil {
		writeCommitError(w, p.cfg.Region, err)
		return
	}
	p.answerWrite(w, r, res, keys)
}

func (p *Peer) handleLeave(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "leaving"})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Leave(ctx); err != nil {
			p.logger.Error("leave", "err", err)
		}
	}()
}

func (p *Peer) handleSimulation(w http.ResponseWriter, r *http.Request) {
	if p.sim == nil {
		writeError(w, http.StatusConflict, errors.New("this peer drives a real cluster through client-go; it has no simulated cluster to switch"))
		return
	}
	body, ok := p.readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		Ready           *bool `json:"ready"`
		CapacityPercent *int  `json:"capacityPercent"`
	}
	const want = `body must be {"ready": true|false}, {"capacityPercent": 0..100} or both`
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s: %v", want, err))
		return
	}
	if req.Ready == nil && req.CapacityPercent == nil {
		writeError(w, http.StatusBadRequest, errors.New(want))
		return
	}
	if c := req.CapacityPercent; c != nil && (*c < 0 || *c > 100) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("capacityPercent %d: want a percent from 0 (drained: nothing new fits) to 100 (full)", *c))
		return
	}
	if req.Ready != nil {
		if err := p.sim.SetReady(*req.Ready); err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("the simulated cluster could not record the switch: %v", err))
			return
		}
	}
	if req.CapacityPercent != nil {
		if err := p.sim.SetCapacityPercent(*req.CapacityPercent); err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("the simulated cluster could not record its capacity: %v", err))
			return
		}
	}
	health, _, _ := p.sim.Health(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"ready": health == shoalpb.Health_HEALTH_READY, "capacityPercent": p.sim.CapacityPercent()})
}

// handleForgetRegion drops a dead region from the region's records for
// good (shoal region forget NAME).
func (p *Peer) handleForgetRegion(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, errors.New("name is a required query parameter: the region to forget"))
		return
	}
	var rec *shoalpb.RemoteRegion
	p.fsm.Read(func(s *region.State) { rec = s.Region(name) })
	switch {
	case rec == nil:
		writeError(w, http.StatusNotFound, fmt.Errorf("region %s is not known to region %s", name, p.cfg.Region))
		return
	case !rec.GetDead():
		writeError(w, http.StatusConflict, fmt.Errorf("region %s is alive (last heard %s): only a region dead for placement can be forgotten",
			name, msTime(rec.GetHeardUnixMs())))
		return
	}
	cmd := &shoalpb.Command{Cmd: &shoalpb.Command_ForgetRegion{ForgetRegion: &shoalpb.ForgetRegion{Region: name}}}
	if err := p.commit(r.Context(), cmd); err != nil {
		writeCommitError(w, p.cfg.Region, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"forgotten": name})
}

// handleRebalance asks for a fresh placement of the named workloads, once
// (shoal rebalance; Karmada's WorkloadRebalancer).
func (p *Peer) handleRebalance(w http.ResponseWriter, r *http.Request) {
	body, ok := p.readBody(w, r)
	if !ok {
		return
	}
	var req api.RebalanceRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("a rebalance request is JSON {\"workloads\": [{\"kind\", \"namespace\", \"name\"}]}: %v", err))
		return
	}
	if len(req.Workloads) == 0 {
		writeError(w, http.StatusBadRequest, errors.New("name at least one workload to rebalance"))
		return
	}
	cmd := &shoalpb.Rebalance{}
	var names []string
	for _, wl := range req.Workloads {
		keys := p.findObjects(wl.APIVersion, wl.Kind, wl.Namespace, wl.Name)
		switch {
		case wl.Kind == "" || wl.Name == "":
			writeError(w, http.StatusBadRequest, fmt.Errorf("a workload to rebalance needs a kind and a name: %+v", wl))
			return
		case len(keys) == 0:
			writeError(w, http.StatusNotFound, fmt.Errorf("%s %s not found", wl.Kind, joinNS(wl.Namespace, wl.Name)))
			return
		case len(keys) > 1:
			writeError(w, http.StatusConflict, fmt.Errorf("%s %s is ambiguous: it exists in %d apiVersions; give apiVersion", wl.Kind, joinNS(wl.Namespace, wl.Name), len(keys)))
			return
		}
		cmd.Workloads = append(cmd.Workloads, keys[0].Proto())
		names = append(names, keys[0].Display())
	}
	if err := p.commit(r.Context(), &shoalpb.Command{Cmd: &shoalpb.Command_Rebalance{Rebalance: cmd}}); err != nil {
		writeCommitError(w, p.cfg.Region, err)
		return
	}
	writeJSON(w, http.StatusOK, api.RebalanceResponse{Requested: names})
}
