package etcd

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	l := zapToSlog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Debug("hidden")
	l.With(zap.String("endpoint", "127.0.0.1:2379")).Warn("retrying", zap.Int("attempt", 2), zap.Error(errTest))
	out := buf.String()
	for _, want := range []string{"level=WARN", `msg=retrying`, "component=etcd-client", "endpoint=127.0.0.1:2379", "attempt=2", "err=boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("a debug entry passed an info handler: %q", out)
	}
}

var errTest = testError("boom")

type testError string

func (e testError) Error() string { return string(e) }
