package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/shoalpb"
	"github.com/shoalmesh/shoal/region"
)

// shoal migrate: checked here against the region's state, so that a move
// that cannot work is refused before anything moves; carried out by the
// region leader (region/migrate.go).

func (p *Peer) migrate(ctx context.Context, req api.MigrateRequest) (int, api.MigrateResponse, error) {
	var resp api.MigrateResponse
	if req.Kind == "" || req.Name == "" || req.From == "" || req.To == "" {
		return http.StatusBadRequest, resp, fmt.Errorf("migrate needs a kind, a name, --from and --to")
	}
	if req.From == req.To {
		return http.StatusBadRequest, resp, fmt.Errorf("--from and --to are both %s", req.From)
	}
	keys := p.findObjects(req.APIVersion, req.Kind, req.Namespace, req.Name)
	switch {
	case len(keys) == 0:
		return http.StatusNotFound, resp, fmt.Errorf("%s %s not found", req.Kind, joinNS(req.Namespace, req.Name))
	case len(keys) > 1:
		return http.StatusConflict, resp, fmt.Errorf("%s %s is ambiguous: it exists in %d apiVersions; give apiVersion", req.Kind, joinNS(req.Namespace, req.Name), len(keys))
	}
	key := keys[0]
	resp = api.MigrateResponse{Workload: key.Display(), From: req.From, To: req.To, DryRun: req.DryRun, Room: -1}
	code, err := 0, error(nil)
	p.fsm.Read(func(s *region.State) {
		code, err = p.checkMigration(s, key, &resp)
	})
	if err != nil {
		return code, resp, err
	}
	resp.Plan = []string{
		fmt.Sprintf("%s's share on %s (%d replicas) goes to %s, on every placement from now on (shoal migrate back to undo)", key.Display(), req.From, resp.Replicas, req.To),
		fmt.Sprintf("%s keeps its replicas until the workload is Ready at its full count, %s's included", req.From, req.To),
		fmt.Sprintf("if %s fails meanwhile, the share returns to %s (which still runs it) and the move resumes once %s is back", req.To, req.From, req.To),
	}
	if req.DryRun {
		return http.StatusOK, resp, nil
	}
	cmd := &shoalpb.Migrate{Workload: key.Proto(), From: req.From, To: req.To}
	if err := p.commit(ctx, &shoalpb.Command{Cmd: &shoalpb.Command_Migrate{Migrate: cmd}}); err != nil {
		return http.StatusServiceUnavailable, resp, fmt.Errorf("region %s: %v", p.cfg.Region, err)
	}
	return http.StatusOK, resp, nil
}

// checkMigration refuses, with the reason, a move that cannot work: it
// fills resp's replicas and room.
func (p *Peer) checkMigration(s *region.State, key api.ObjectKey, resp *api.MigrateResponse) (int, error) {
	b := s.Binding(key)
	if b.GetPolicy() == "" {
		return http.StatusConflict, fmt.Errorf("%s is not placed (no policy selects it): nothing to migrate", key.Display())
	}
	for _, name := range []string{resp.From, resp.To} {
		rec, in := findCluster(s, name)
		switch {
		case rec == nil:
			return http.StatusNotFound, fmt.Errorf("cluster %s is not a member of the mesh", name)
		case s.Cluster(name) == nil:
			return http.StatusConflict, fmt.Errorf("cluster %s is in region %s: migrate moves a workload inside a region; ask a peer of %s", name, in, in)
		}
	}
	bound := false
	for _, t := range b.GetClusters() {
		if t.GetName() == resp.From {
			resp.Replicas, bound = t.GetReplicas(), true
		}
	}
	if !bound {
		return http.StatusConflict, fmt.Errorf("%s does not run on %s: nothing to move", key.Display(), resp.From)
	}
	to := s.Cluster(resp.To)
	if h := region.EffectiveHealth(to); h != shoalpb.Health_HEALTH_READY {
		return http.StatusConflict, fmt.Errorf("cluster %s is %s: it cannot take %s", resp.To, region.HealthName(h), key.Display())
	}
	for _, t := range to.GetTaints() {
		if t.GetEffect() == api.TaintEffectNoExecute || t.GetEffect() == api.TaintEffectNoSchedule {
			return http.StatusConflict, fmt.Errorf("cluster %s is tainted %s:%s: it cannot take %s", resp.To, t.GetKey(), t.GetEffect(), key.Display())
		}
	}
	tmpl, err := api.ParseTemplate(s.Object(key).GetManifest())
	if err != nil {
		return http.StatusUnprocessableEntity, fmt.Errorf("%s: %v", key.Display(), err)
	}
	if room, unknown := region.RoomFor(to, tmpl.PerReplica); !unknown {
		resp.Room = room
		if room < int64(resp.Replicas) {
			return http.StatusConflict, fmt.Errorf("cluster %s has room for %d more replicas of %s (each cpu %dm, memory %d bytes), the move needs %d: nothing moved",
				resp.To, room, key.Display(), tmpl.PerReplica.CPUMilli, tmpl.PerReplica.MemoryBytes, resp.Replicas)
		}
	}
	return 0, nil
}
