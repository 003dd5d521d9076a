package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/shoalmesh/shoal/api"
	"github.com/shoalmesh/shoal/api/client"
)

// WriteNamespace holds the ConfigMaps the harness writes.
const WriteNamespace = "chaos"

// writer is a stream of ConfigMap writes and deletes, each through a
// random running peer and retried (on other peers too) until one
// acknowledges it: an apply of the same content and a delete of what is
// gone are harmless again, so a retry never makes the outcome
// ambiguous, and the last acknowledged operation of each key is what
// every region must end with. A delete that finds nothing at its first
// try deleted nothing (the region has not yet received the key's last
// write, taken by another region) and is not counted.
type writer struct {
	r      *runner
	w      Writes
	cancel context.CancelFunc
	done   chan struct{}

	// rng draws the keys and the deletes, apart from the schedule's.
	rng     *rand.Rand
	present map[int]bool
	seq     int
}

func startWriter(r *runner, w Writes) *writer {
	if w.Rate <= 0 {
		w.Rate = 10
	}
	if w.Keys <= 0 {
		w.Keys = 50
	}
	ctx, cancel := context.WithCancel(context.Background())
	if w.For > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), w.For.D())
	}
	r.mu.Lock()
	stream := uint64(len(r.writers))
	r.mu.Unlock()
	wr := &writer{r: r, w: w, cancel: cancel, done: make(chan struct{}), present: map[int]bool{},
		rng: rand.New(rand.NewPCG(uint64(r.opts.Seed), 0x3717+stream))}
	r.note("writes: %.0f/s over %d ConfigMaps in namespace %s, %.0f%% deletes", w.Rate, w.Keys, WriteNamespace, w.Deletes*100)
	go wr.run(ctx)
	return wr
}

func (wr *writer) run(ctx context.Context) {
	defer close(wr.done)
	every := time.Duration(float64(time.Second) / wr.w.Rate)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k := wr.rng.IntN(wr.w.Keys)
		del := wr.present[k] && wr.rng.Float64() < wr.w.Deletes
		wr.seq++
		// An operation begun is finished even when the stream is told to
		// stop, or its outcome would be unknown.
		if err := wr.one(k, del, wr.seq); err != nil {
			wr.r.note("writes stopped: %v", err)
			return
		}
	}
}

// one applies or deletes key k until a peer acknowledges it (for at most
// two minutes: past that the mesh lost every peer for longer than any
// scenario means to).
func (wr *writer) one(k int, del bool, seq int) error {
	name := fmt.Sprintf("k-%03d", k)
	key := WriteNamespace + "/" + name
	value := fmt.Sprint(seq)
	doc := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: %s}\ndata: {value: %q}\n", name, WriteNamespace, value)
	attempt := Event{Kind: EventAttempt, Key: key, Value: value}
	if del {
		attempt = Event{Kind: EventAttempt, Key: key, Detail: "delete"}
	}
	wr.r.record(attempt)
	deadline := time.Now().Add(2 * time.Minute)
	backoff := 100 * time.Millisecond
	var last error
	for tries := 0; time.Now().Before(deadline); tries++ {
		c, who, err := wr.r.liveClient("")
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var resp api.ApplyResponse
			if del {
				resp, err = c.Delete(ctx, "ConfigMap", WriteNamespace, name)
			} else {
				_, err = c.Apply(ctx, []byte(doc))
			}
			cancel()
			var apiErr *client.APIError
			notFound := errors.As(err, &apiErr) && apiErr.Status == 404 ||
				err == nil && len(resp.Results) == 1 && resp.Results[0].Result == "not found"
			if del && notFound && tries == 0 {
				// This region does not hold the key yet (its last write
				// was taken by another region and is on its way): the
				// delete deleted nothing, and that write will stand.
				wr.r.record(Event{Kind: EventAttempt, Key: key, Detail: "delete found nothing"})
				return nil
			}
			if del && notFound {
				err = nil // an earlier attempt deleted it
			}
			if err == nil {
				ev := Event{Kind: EventWrite, Key: key, Value: value, Via: who}
				if del {
					ev = Event{Kind: EventDelete, Key: key, Via: who}
				}
				wr.r.record(ev)
				wr.present[k] = !del
				return nil
			}
			if errors.As(err, &apiErr) && apiErr.Status == 400 {
				return fmt.Errorf("%s refused: %w", key, err)
			}
		}
		last = err
		time.Sleep(backoff)
		backoff = time.Duration(math.Min(float64(2*backoff), float64(2*time.Second)))
	}
	return fmt.Errorf("no peer acknowledged %s for two minutes: %w", key, last)
}

func (wr *writer) stop() {
	wr.cancel()
	<-wr.done
}

// readKeys reads the harness's ConfigMaps and their values from a peer.
func readKeys(ctx context.Context, c *client.Client) (map[string]string, error) {
	ws, err := c.Workloads(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, w := range ws {
		if w.Kind != "ConfigMap" || w.Namespace != WriteNamespace {
			continue
		}
		ds, err := c.Describe(ctx, "ConfigMap", WriteNamespace, w.Name)
		if err != nil {
			return nil, err
		}
		value := ""
		for _, d := range ds {
			if m, ok := d.Manifest.(map[string]any); ok {
				if data, ok := m["data"].(map[string]any); ok {
					value = fmt.Sprint(data["value"])
				}
			}
		}
		out[WriteNamespace+"/"+w.Name] = value
	}
	return out, nil
}

// BulkNamespace holds the ConfigMaps of bulk steps.
const BulkNamespace = "chaos-bulk"

// bulk writes b.Count ConfigMaps in one apply through a peer of b.Region,
// each with a value new to this step, so that every one is a change.
func (r *runner) bulk(ctx context.Context, b Bulk) error {
	c, who, err := r.liveClient(b.Region)
	if err != nil {
		return err
	}
	stamp := time.Now().UnixNano()
	var doc strings.Builder
	for i := range b.Count {
		fmt.Fprintf(&doc, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: bulk-%04d, namespace: %s}\ndata: {value: \"%d\"}\n", i, BulkNamespace, stamp)
	}
	began := time.Now()
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := c.Apply(actx, []byte(doc.String())); err != nil {
		return fmt.Errorf("bulk write of %d ConfigMaps via %s: %w", b.Count, who, err)
	}
	r.note("bulk: %d ConfigMaps changed via %s in %s", b.Count, who, time.Since(began).Round(time.Millisecond))
	return nil
}
