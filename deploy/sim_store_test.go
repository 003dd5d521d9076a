package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shoalmesh/shoal/api"
)

// A file bbolt opens but whose records or pages are damaged gives an error
// naming the file, never a panic.
func TestSimStoreDamagedFile(t *testing.T) {
	key := []byte("apps/v1/Deployment/default/web")
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"record not JSON", func(t *testing.T, path string) {
			putRaw(t, path, simObjectsBucket, key, []byte("{"))
		}},
		{"record under another key", func(t *testing.T, path string) {
			putRaw(t, path, simObjectsBucket, []byte("v1/ConfigMap/default/x"), []byte(`{"key":{"apiVersion":"v1","kind":"ConfigMap","name":"y"},"uid":"u"}`))
		}},
		{"ready switch", func(t *testing.T, path string) {
			putRaw(t, path, simMetaBucket, simReadyKey, []byte("maybe"))
		}},
		{"newer format", func(t *testing.T, path string) {
			putRaw(t, path, simMetaBucket, simFormatKey, []byte("2"))
		}},
		{"data pages overwritten", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			page := os.Getpagesize()
			for i := 2 * page; i < len(b); i++ { // the two meta pages stay valid
				b[i] = byte(i*7 + 3)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, recs, _, err := openSimStore(dir, time.Second)
			if err != nil || len(recs) != 0 {
				t.Fatalf("new store: %v, %d records", err, len(recs))
			}
			if err := s.put(simRecord{Key: mustParseKey(t, string(key)), UID: "u1", Seq: 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, simStoreFile)
			tc.damage(t, path)
			_, _, _, err = openSimStore(dir, time.Second)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move") {
				t.Fatalf("open of a damaged file: %v", err)
			}
			// The failed open let go of the file's lock.
			_, _, _, err2 := openSimStore(dir, 50*time.Millisecond)
			if err2 == nil || strings.Contains(err2.Error(), "in use") || !strings.Contains(err2.Error(), "move") {
				t.Fatalf("second open of a damaged file: %v; first: %v", err2, err)
			}
		})
	}
}

func putRaw(t *testing.T, path string, bucket, key, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, value) }); err != nil {
		t.Fatal(err)
	}
}

func mustParseKey(t *testing.T, s string) api.ObjectKey {
	t.Helper()
	k, ok := parseKey(s)
	if !ok {
		t.Fatalf("bad key %q", s)
	}
	return k
}
