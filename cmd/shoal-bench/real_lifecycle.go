package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/deploy"
)

const (
	realPromoteCount    = 100
	realMigrateName     = "lc-000"
	realMigrateReplicas = 4
)

// benchRealLifecycle promotes 100 Deployments that run in one real member
// (created there directly, outside Shoal) and then migrates one of them
// between two members, back and forth.
func benchRealLifecycle(ctx context.Context, b *bencher) ([]*benchFigure, error) {
	prom := &benchFigure{
		Title: fmt.Sprintf("Real clusters, promote: %d running Deployments of one member adopted → all managed by Shoal", realPromoteCount),
		Unit:  "ms", Compare: "karmadactl promote adopts one resource per call",
	}
	restarts := &benchFigure{
		Title: fmt.Sprintf("Real clusters, promote: pods replaced while %d Deployments were adopted", realPromoteCount),
		Unit:  "pods", Target: "0",
		Check: func(s benchStats) bool { return s.Max == 0 },
	}
	minReady := &benchFigure{
		Title: fmt.Sprintf("Real clusters, migrate: fewest Ready replicas of a %d-replica Deployment seen during a move between two members", realMigrateReplicas),
		Unit:  "replicas", Target: fmt.Sprintf("never below %d", realMigrateReplicas),
		Check: func(s benchStats) bool { return s.Min >= realMigrateReplicas },
	}
	took := &benchFigure{
		Title: fmt.Sprintf("Real clusters, migrate: a %d-replica Deployment moved between two members (Ready there, gone from the source)", realMigrateReplicas),
		Unit:  "ms",
	}
	figs := []*benchFigure{prom, restarts, minReady, took}
	r, err := startRealRegion(ctx, b, nil)
	if err != nil {
		return figs, err
	}
	defer r.close()
	eu1 := r.clusters["eu-1"].Client
	names := make([]string, realPromoteCount)
	for i := range names {
		names[i] = fmt.Sprintf("lc-%03d", i)
		replicas := int32(1)
		if names[i] == realMigrateName {
			replicas = realMigrateReplicas
		}
		if _, err := eu1.AppsV1().Deployments(realNamespace).Create(ctx, lifecycleDeployment(names[i], replicas), metav1.CreateOptions{}); err != nil {
			return figs, err
		}
	}
	w, err := watchDeployments(ctx, r.members("eu-1", "eu-2"))
	if err != nil {
		return figs, err
	}
	defer w.close()
	if _, err := w.wait(ctx, 3*time.Minute, "the Deployments Ready in eu-1", func() error {
		for _, n := range names {
			want := int32(1)
			if n == realMigrateName {
				want = realMigrateReplicas
			}
			if err := deploymentReady(w.get("eu-1", n), want); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
		return nil
	}); err != nil {
		return figs, err
	}
	podsBefore, err := podUIDs(ctx, r, "eu-1")
	if err != nil {
		return figs, err
	}

	// Promote, one request per Deployment as a user would, 8 at a time.
	via := r.mesh.clients["eu-1"]
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	sem := make(chan struct{}, 8)
	for _, n := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := via.Promote(ctx, api.PromoteRequest{APIVersion: "apps/v1", Kind: "Deployment", Namespace: realNamespace, Name: n, Cluster: "eu-1"})
			if err != nil {
				errs <- fmt.Errorf("promote %s: %w", n, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return figs, err
	}
	acked := time.Since(t0)
	done, err := w.wait(ctx, 3*time.Minute, "every promoted Deployment managed by Shoal", func() error {
		for _, n := range names {
			d := w.get("eu-1", n)
			if d == nil || d.Labels[deploy.ManagedByLabel] != deploy.ManagedByValue {
				return fmt.Errorf("%s not yet Shoal's", n)
			}
		}
		return nil
	})
	if err != nil {
		return figs, err
	}
	prom.Samples = append(prom.Samples, ms(done.Sub(t0)))
	time.Sleep(5 * time.Second) // a rollout, had adoption started one, would have replaced pods by now
	podsAfter, err := podUIDs(ctx, r, "eu-1")
	if err != nil {
		return figs, err
	}
	replaced := 0
	for _, u := range podsBefore {
		if !slices.Contains(podsAfter, u) {
			replaced++
		}
	}
	restarts.Samples = append(restarts.Samples, float64(replaced))
	b.progress("  promoted %d Deployments: acknowledged after %s, all labelled Shoal's after %s; %d of %d pods replaced",
		realPromoteCount, acked.Round(time.Millisecond), done.Sub(t0).Round(time.Millisecond), replaced, len(podsBefore))
	prom.How = fmt.Sprintf("%s %d Deployments (1 replica each, one of %d) are created directly in eu-1 with client-go, "+
		"outside Shoal, and wait until Ready. Then `POST /v1/promote` is sent for each to eu-1's peer (8 requests at a "+
		"time, as 8 users of `shoal promote` would). The figure runs from the first request to the moment the "+
		"informer on eu-1 shows every Deployment labelled managed-by Shoal (the peer has applied its template over "+
		"the live object). One sample per run. All %d requests were acknowledged after %s.",
		realSetup, realPromoteCount, realMigrateReplicas, realPromoteCount, acked.Round(time.Millisecond))
	restarts.How = fmt.Sprintf("The pods of the %d Deployments in eu-1 are listed before the promotion and 5 s after the last "+
		"Deployment became Shoal's; a pod of before that is gone (by uid) counts as replaced. %d pods before.",
		realPromoteCount, len(podsBefore))

	// Migrate lc-000 eu-1 -> eu-2 and back, several times.
	n := max(b.trials/4, 3)
	from, to := "eu-1", "eu-2"
	for i := range n {
		low, dur, err := realMigrateTrial(ctx, r, w, from, to)
		if err != nil {
			return figs, fmt.Errorf("migrate trial %d (%s -> %s): %w", i+1, from, to, err)
		}
		minReady.Samples = append(minReady.Samples, float64(low))
		took.Samples = append(took.Samples, dur)
		b.progress("  migrate %d/%d %s -> %s: %.2fs, fewest Ready %d", i+1, n, from, to, dur/1000, low)
		from, to = to, from
	}
	minReady.How = fmt.Sprintf("%s Deployment %s (%d replicas, promoted above, bound to eu-1 alone) is moved with "+
		"`POST /v1/migrate` between eu-1 and eu-2, %d times alternately (a move back cancels the migration, which "+
		"is graceful too). The informers on both members are sampled every %s and on every watch event; a sample is "+
		"the sum of status.readyReplicas in both. The figure is the fewest Ready seen per move.",
		realSetup, realMigrateName, realMigrateReplicas, n, realPoll)
	took.How = "As above: from the migrate request to the moment the target has the Deployment Ready at its full " +
		"count and the source no longer holds it."
	return figs, nil
}

// realMigrateTrial moves realMigrateName from one member to the other and
// returns the fewest Ready replicas seen and the time it took (ms).
func realMigrateTrial(ctx context.Context, r *realRegion, w *deployWatch, from, to string) (int32, float64, error) {
	ready := func(c string) int32 {
		if d := w.get(c, realMigrateName); d != nil {
			return d.Status.ReadyReplicas
		}
		return 0
	}
	low := ready(from) + ready(to)
	t0 := time.Now()
	if _, err := r.mesh.clients["eu-1"].Migrate(ctx, api.MigrateRequest{Kind: "Deployment", Namespace: realNamespace, Name: realMigrateName, From: from, To: to}); err != nil {
		return 0, 0, err
	}
	done, err := w.wait(ctx, 2*time.Minute, "moved to "+to, func() error {
		low = min(low, ready(from)+ready(to))
		if err := deploymentReady(w.get(to, realMigrateName), realMigrateReplicas); err != nil {
			return fmt.Errorf("%s: %w", to, err)
		}
		if w.get(from, realMigrateName) != nil {
			return fmt.Errorf("still in %s", from)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return low, ms(done.Sub(t0)), nil
}

func lifecycleDeployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: realNamespace, Labels: map[string]string{"app": name}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}},
			},
		},
	}
}

// podUIDs lists the uids of the pods in realNamespace of a member.
func podUIDs(ctx context.Context, r *realRegion, cluster string) ([]string, error) {
	pods, err := r.clusters[cluster].Client.CoreV1().Pods(realNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, string(p.UID))
		}
	}
	return out, nil
}
