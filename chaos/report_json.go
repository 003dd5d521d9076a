package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteJSON writes the report as indented JSON (report.json). Times are RFC
// 3339; durations (Recovery.Took and the RecoveryStats fields) are Go's
// time.Duration, whole nanoseconds. It writes in one call, so w gets the
// whole report or an error.
func (r *Report) WriteJSON(w io.Writer) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	// Messages and evidence quote Kubernetes objects and peers' answers;
	// "<" and "&" stay readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("chaos: encode report: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Save writes the report to dir as report.json and timeline.svg, creating
// dir (0755) if needed. Each file is written to a temporary file in dir and
// renamed into place, so a reader sees either the previous file or the
// whole new one, never part of one. On an error the temporary file is
// removed; a report.json already renamed into place stays.
func (r *Report) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chaos: save report: %w", err)
	}
	if err := writeAtomic(dir, "report.json", r.WriteJSON); err != nil {
		return err
	}
	return writeAtomic(dir, "timeline.svg", r.WriteSVG)
}

// writeAtomic writes dir/name through write by way of a temporary file in
// dir, synced and renamed. The errors of write come back as they are.
func writeAtomic(dir, name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("chaos: save %s: %w", name, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := write(f); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(fmt.Errorf("chaos: save %s: %w", name, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("chaos: save %s: %w", name, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("chaos: save %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("chaos: save %s: %w", name, err)
	}
	return nil
}
