package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
)

// builtinKinds resolves the kinds of the Kubernetes API that lifecycle
// commands name without an apiVersion (kind, lowercase, or plural).
var builtinKinds = map[string][2]string{
	"deployment": {"apps/v1", "Deployment"}, "statefulset": {"apps/v1", "StatefulSet"},
	"daemonset": {"apps/v1", "DaemonSet"}, "replicaset": {"apps/v1", "ReplicaSet"},
	"job": {"batch/v1", "Job"}, "cronjob": {"batch/v1", "CronJob"},
	"service": {"v1", "Service"}, "configmap": {"v1", "ConfigMap"}, "secret": {"v1", "Secret"},
	"persistentvolumeclaim": {"v1", "PersistentVolumeClaim"}, "serviceaccount": {"v1", "ServiceAccount"},
	"pod": {"v1", "Pod"}, "namespace": {"v1", "Namespace"},
}

// resolveKind gives apiVersion and kind for KIND, with --api-version
// winning; a kind outside the built-in list needs --api-version.
func resolveKind(kind, apiVersion string) (string, string, error) {
	k := strings.ToLower(kind)
	b, ok := builtinKinds[k]
	if !ok {
		b, ok = builtinKinds[strings.TrimSuffix(k, "s")]
	}
	switch {
	case apiVersion != "" && ok:
		return apiVersion, b[1], nil
	case apiVersion != "":
		return apiVersion, kind, nil
	case ok:
		return b[0], b[1], nil
	}
	return "", "", usageErr("kind %q is not a built-in Kubernetes kind: give --api-version (e.g. --api-version example.com/v1)", kind)
}

// clientFor gives a client for the peer of cluster, found through the
// peer at --server (it lists every cluster with its peer's address).
func (e *cliEnv) clientFor(ctx context.Context, cluster string) (*client.Client, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	cs, err := c.Clusters(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, cv := range cs {
		names = append(names, cv.Name)
		if cv.Name != cluster {
			continue
		}
		if cv.Address == "" {
			return nil, fmt.Errorf("cluster %s: its peer's address is unknown; run the command with --server set to that peer", cluster)
		}
		scheme := "http"
		if u, err := url.Parse(e.server); err == nil && u.Scheme == "https" {
			scheme = "https"
		}
		return client.NewWith(scheme+"://"+cv.Address, e.auth)
	}
	return nil, fmt.Errorf("cluster %s is not a member of the mesh (members: %s)", cluster, strings.Join(names, ", "))
}

// runPromote adopts an object that runs in a member cluster into Shoal.
func runPromote(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "promote", "promote KIND NAMESPACE/NAME --cluster C [--deps] [--api-version V] [--dry-run]")
	cluster := fs.String("cluster", "", "the member cluster the object runs in (required)")
	deps := fs.Bool("deps", false, "promote the ConfigMaps, Secrets, PVCs and ServiceAccounts its pod template names too (propagateDeps)")
	apiVersion := fs.String("api-version", "", "the object's apiVersion (needed for kinds outside the Kubernetes core)")
	dryRun := fs.Bool("dry-run", false, "show what would be written, write nothing")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 || *cluster == "" {
		return usageErr("want: shoal promote KIND NAMESPACE/NAME --cluster C")
	}
	av, kind, err := resolveKind(rest[0], *apiVersion)
	if err != nil {
		return err
	}
	ns, name := splitNamespaced(rest[1])
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	c, err := env.clientFor(ctx, *cluster)
	if err != nil {
		return err
	}
	resp, err := c.Promote(ctx, api.PromoteRequest{APIVersion: av, Kind: kind, Namespace: ns, Name: name, Cluster: *cluster, Deps: *deps, DryRun: *dryRun})
	if err != nil {
		return err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(env.stderr, "warning:", w)
	}
	if resp.DryRun {
		fmt.Fprintf(env.stdout, "# dry run: nothing written. Promoting would write:\n%s", resp.Manifests)
		return nil
	}
	for _, o := range resp.Objects {
		fmt.Fprintf(env.stdout, "%s promoted from %s (uid %s kept)\n", o, *cluster, resp.UIDs[o])
	}
	fmt.Fprintf(env.stdout, "%s binds it to %s; edit it to spread the workload (shoal get policies -o yaml)\n", resp.Policy, *cluster)
	return nil
}

// runMigrate moves a workload's share from one cluster to another.
func runMigrate(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "migrate", "migrate KIND NAMESPACE/NAME --from A --to B [--dry-run]")
	from := fs.String("from", "", "the cluster the workload runs on now (required)")
	to := fs.String("to", "", "the cluster to move it to, in the same region (required)")
	dryRun := fs.Bool("dry-run", false, "show the plan, move nothing")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 || *from == "" || *to == "" {
		return usageErr("want: shoal migrate KIND NAMESPACE/NAME --from A --to B")
	}
	ns, name := splitNamespaced(rest[1])
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := c.Migrate(ctx, api.MigrateRequest{Kind: rest[0], Namespace: ns, Name: name, From: *from, To: *to, DryRun: *dryRun})
	if err != nil {
		return err
	}
	room := "unknown"
	if resp.Room >= 0 {
		room = fmt.Sprint(resp.Room)
	}
	if resp.DryRun {
		fmt.Fprintf(env.stdout, "# dry run: nothing moved. %s: %d replicas from %s to %s (room on %s: %s)\n", resp.Workload, resp.Replicas, resp.From, resp.To, resp.To, room)
	} else {
		fmt.Fprintf(env.stdout, "%s: moving %d replicas from %s to %s (describe shows the progress)\n", resp.Workload, resp.Replicas, resp.From, resp.To)
	}
	for _, step := range resp.Plan {
		fmt.Fprintln(env.stdout, "  -", step)
	}
	return nil
}

// runClone copies a workload as it runs on one cluster into another.
func runClone(env *cliEnv, args []string) error {
	fs := newFlagSet(env, "clone", "clone KIND NAMESPACE/NAME --from A --to B [--namespace N] [--name NEW] [--dry-run]")
	from := fs.String("from", "", "the cluster whose copy is cloned (required)")
	to := fs.String("to", "", "the cluster the clone runs on (required)")
	namespace := fs.String("namespace", "", "the clone's namespace (default: the original's)")
	name := fs.String("name", "", "the clone's name (default: the original's)")
	dryRun := fs.Bool("dry-run", false, "show what would be written, write nothing")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 || *from == "" || *to == "" {
		return usageErr("want: shoal clone KIND NAMESPACE/NAME --from A --to B [--namespace N] [--name NEW]")
	}
	ns, n := splitNamespaced(rest[1])
	c, err := env.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := c.Clone(ctx, api.CloneRequest{Kind: rest[0], Namespace: ns, Name: n, From: *from, To: *to,
		ToNamespace: *namespace, ToName: *name, DryRun: *dryRun})
	if err != nil {
		return err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(env.stderr, "warning:", w)
	}
	if resp.DryRun {
		fmt.Fprintf(env.stdout, "# dry run: nothing written. Cloning would write:\n%s", resp.Manifests)
		return nil
	}
	for _, o := range resp.Objects {
		fmt.Fprintf(env.stdout, "%s created (a clone of what runs on %s)\n", o, *from)
	}
	fmt.Fprintf(env.stdout, "%s binds it to %s; the clone is independent of the original\n", resp.Policy, *to)
	return nil
}
