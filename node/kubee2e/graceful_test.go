package kubee2e_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// identities reads what shop/web is made of in one member cluster: the
// uids of the Deployment, Service and ConfigMap, and the Service's
// ClusterIP. An object deleted and re-created has a new uid (and a new
// ClusterIP).
func (r *region) identities(ctx context.Context, cluster string) (map[string]string, error) {
	c := r.cluster(cluster).Client
	out := map[string]string{}
	d, err := c.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: deployment: %w", cluster, err)
	}
	out["Deployment"] = string(d.UID)
	s, err := c.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: service: %w", cluster, err)
	}
	out["Service"], out["ClusterIP"] = string(s.UID), s.Spec.ClusterIP
	cm, err := c.CoreV1().ConfigMaps("shop").Get(ctx, "web-config", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: configmap: %w", cluster, err)
	}
	out["ConfigMap"] = string(cm.UID)
	return out, nil
}

// readySampler samples web's Ready replicas summed over the member
// clusters. A cluster whose API server does not answer counts with what it
// last showed: its kubelets keep running its pods while the API server is
// down, they only cannot be seen.
type readySampler struct {
	r    *region
	mu   sync.Mutex
	last map[string]int32
	min  int32
	at   time.Time
	how  string // the clusters' counts at the minimum
	n    int
}

func (r *region) sampleReady(ctx context.Context) (*readySampler, func()) {
	s := &readySampler{r: r, last: map[string]int32{}, min: 1 << 30}
	// A first full sample before anything is stopped: a cluster that
	// cannot be read later counts with what it showed then.
	for len(s.last) < len(r.cp.Clusters) && ctx.Err() == nil {
		s.sample(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			s.sample(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	return s, func() { cancel(); wg.Wait() }
}

func (s *readySampler) sample(ctx context.Context) {
	var sum int32
	for _, c := range s.r.cp.Clusters {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		d, err := c.Client.AppsV1().Deployments("shop").Get(cctx, "web", metav1.GetOptions{})
		cancel()
		s.mu.Lock()
		if err == nil {
			s.last[c.Name] = d.Status.ReadyReplicas
		}
		sum += s.last[c.Name]
		s.mu.Unlock()
	}
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if sum < s.min {
		s.min, s.at, s.how = sum, time.Now(), fmt.Sprint(s.last)
	}
}

func (s *readySampler) lowest() (int32, time.Time, string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.min, s.at, s.how, s.n
}

// A member whose API server dies fails over quickly, and when it comes
// back keeps the identity of what it runs: no object whose workload is
// placed there again is deleted and re-created (same uids, same Service
// ClusterIP), replicas are scaled instead, the Ready replicas summed over
// the clusters never drop below the desired count through failover and
// failback, and only the replicas that left it move back. Several trials.
func testAPIServerLossKeepsIdentities(t *testing.T, ctx context.Context, r *region) {
	const desired = 4
	r.eventually("web runs 2/1/1 Ready", func() error { return r.webRuns(ctx, map[string]int32{"eu-1": 2, "eu-2": 1, "eu-3": 1}) })
	before := map[string]map[string]string{}
	for _, c := range r.cp.Clusters {
		ids, err := r.identities(ctx, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		before[c.Name] = ids
	}
	for trial := 1; trial <= 3; trial++ {
		sampler, stop := r.sampleReady(ctx)
		c1 := r.cluster("eu-1")
		c1.StopAPIServer()
		r.eventually(fmt.Sprintf("trial %d: eu-1 NotReady", trial), func() error {
			cs, err := r.client.Clusters(ctx)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Name == "eu-1" && c.Health != "NotReady" {
					return fmt.Errorf("eu-1 is %s", c.Health)
				}
			}
			return nil
		})
		// Weights 1:1 between eu-2 and eu-3 over 4 replicas.
		r.eventually(fmt.Sprintf("trial %d: replicas Ready in eu-2 and eu-3", trial), func() error {
			return r.webRuns(ctx, map[string]int32{"eu-2": 2, "eu-3": 2})
		})
		if err := c1.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		r.eventually(fmt.Sprintf("trial %d: failback, web 2/1/1 again", trial), func() error {
			if err := r.webRuns(ctx, map[string]int32{"eu-1": 2, "eu-2": 1, "eu-3": 1}); err != nil {
				return err
			}
			ws, err := r.client.Workloads(ctx)
			if err != nil {
				return err
			}
			for _, w := range ws {
				for _, p := range w.Placements {
					if p.Evicting {
						return fmt.Errorf("%s/%s still evicting on %s", w.Kind, w.Name, p.Cluster)
					}
				}
			}
			return nil
		})
		stop()
		if low, at, how, n := sampler.lowest(); low < desired {
			t.Errorf("trial %d: web's Ready replicas dropped to %d (desired %d: %s) at %s (%d samples)",
				trial, low, desired, how, at.Format(time.RFC3339Nano), n)
		} else {
			t.Logf("trial %d: web's Ready replicas never below %d (lowest %d over %d samples)", trial, desired, low, n)
		}
		for _, c := range r.cp.Clusters {
			ids, err := r.identities(ctx, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids) != fmt.Sprint(before[c.Name]) {
				t.Fatalf("trial %d: %s's objects were re-created:\nnow    %v\nbefore %v", trial, c.Name, ids, before[c.Name])
			}
		}
		// No orphaned ReplicaSet left pods behind: eu-1 runs web's 2.
		pods, err := c1.Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		var live []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				live = append(live, p.Name)
			}
		}
		sort.Strings(live)
		if len(live) != 2 {
			t.Errorf("trial %d: eu-1 runs %d web pods, want 2: %v", trial, len(live), live)
		}
	}
}

// The edge promise on real clusters: every peer is killed, one restarts
// alone, with no leader to be had: its cluster keeps every object with the
// same uid, and it says it runs from stale state; when the others return
// it catches up, and still nothing was re-created.
func testCutOffRestartKeepsObjects(t *testing.T, ctx context.Context, r *region) {
	before := map[string]map[string]string{}
	for _, c := range r.cp.Clusters {
		ids, err := r.identities(ctx, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		before[c.Name] = ids
	}
	for _, n := range []string{"eu-1", "eu-2", "eu-3"} {
		r.kill(n)
	}
	r.restart("eu-2")
	c, err := r.clientOf("eu-2")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Stale || !st.Held {
		t.Fatalf("a peer restarted alone: stale=%v held=%v, want both", st.Stale, st.Held)
	}
	end := time.Now().Add(8 * time.Second) // several resyncs and election rounds
	for time.Now().Before(end) {
		ids, err := r.identities(ctx, "eu-2")
		if err != nil {
			t.Fatalf("while cut off: %v", err)
		}
		if fmt.Sprint(ids) != fmt.Sprint(before["eu-2"]) {
			t.Fatalf("a cut-off restarted peer re-created its objects:\nnow    %v\nbefore %v", ids, before["eu-2"])
		}
		time.Sleep(200 * time.Millisecond) // observation window for a negative condition
	}
	r.restart("eu-1")
	r.restart("eu-3")
	r.eventually("eu-2 caught up", func() error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.Stale || st.Held || st.Leader == "" {
			return fmt.Errorf("stale=%v held=%v leader=%q", st.Stale, st.Held, st.Leader)
		}
		return nil
	})
	r.eventually("web runs 2/1/1 Ready", func() error { return r.webRuns(ctx, map[string]int32{"eu-1": 2, "eu-2": 1, "eu-3": 1}) })
	for _, cl := range r.cp.Clusters {
		ids, err := r.identities(ctx, cl.Name)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ids) != fmt.Sprint(before[cl.Name]) {
			t.Fatalf("after the restart %s's objects were re-created:\nnow    %v\nbefore %v", cl.Name, ids, before[cl.Name])
		}
	}
}
