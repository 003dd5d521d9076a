package consensus

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// raftLogger adapts raft's hclog.Logger calls to slog, so raft's own logs
// come out through the node's handler with structured fields. Levels map
// as trace → Debug-4, debug → Debug, info → Info, warn → Warn, error →
// Error; the slog handler decides what is shown (SetLevel is ignored).
type raftLogger struct {
	log     *slog.Logger // with implied args
	name    string
	implied []any
}

var _ hclog.Logger = (*raftLogger)(nil)

func newRaftLogger(l *slog.Logger) hclog.Logger {
	return &raftLogger{log: l, name: "raft"}
}

func slogLevel(l hclog.Level) (slog.Level, bool) {
	switch l {
	case hclog.Off:
		return 0, false
	case hclog.Trace:
		return slog.LevelDebug - 4, true
	case hclog.Debug:
		return slog.LevelDebug, true
	case hclog.Warn:
		return slog.LevelWarn, true
	case hclog.Error:
		return slog.LevelError, true
	}
	return slog.LevelInfo, true
}

func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	sl, ok := slogLevel(level)
	if !ok || !r.log.Enabled(context.Background(), sl) {
		return
	}
	r.log.Log(context.Background(), sl, msg, append([]any{"logger", r.name}, args...)...)
}

func (r *raftLogger) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLogger) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLogger) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }

func (r *raftLogger) enabled(l hclog.Level) bool {
	sl, _ := slogLevel(l)
	return r.log.Enabled(context.Background(), sl)
}

func (r *raftLogger) IsTrace() bool { return r.enabled(hclog.Trace) }
func (r *raftLogger) IsDebug() bool { return r.enabled(hclog.Debug) }
func (r *raftLogger) IsInfo() bool  { return r.enabled(hclog.Info) }
func (r *raftLogger) IsWarn() bool  { return r.enabled(hclog.Warn) }
func (r *raftLogger) IsError() bool { return r.enabled(hclog.Error) }

func (r *raftLogger) ImpliedArgs() []any { return r.implied }

func (r *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{log: r.log.With(args...), name: r.name, implied: append(append([]any{}, r.implied...), args...)}
}

func (r *raftLogger) Name() string { return r.name }

func (r *raftLogger) Named(name string) hclog.Logger {
	return &raftLogger{log: r.log, name: r.name + "." + name, implied: r.implied}
}

func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{log: r.log, name: name, implied: r.implied}
}

func (r *raftLogger) SetLevel(hclog.Level) {}

func (r *raftLogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if r.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (r *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(r.StandardWriter(opts), "", 0)
}

func (r *raftLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return lineWriter{r}
}

// lineWriter logs each written line at Info.
type lineWriter struct{ r *raftLogger }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		if len(line) > 0 {
			w.r.Info(string(line))
		}
	}
	return len(p), nil
}
