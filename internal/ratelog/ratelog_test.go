package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestBurstThenSummary(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := New(slog.NewTextHandler(&buf, nil), Options{Burst: 3, Interval: time.Minute, Now: c.now})
	log := slog.New(h).With("component", "api")

	for i := range 1000 {
		log.Error("request failed", "i", i)
		c.t = c.t.Add(time.Millisecond)
	}
	got := lines(&buf)
	if len(got) != 3 {
		t.Fatalf("first interval wrote %d lines, want 3:\n%s", len(got), strings.Join(got, "\n"))
	}
	if !strings.Contains(got[2], "rate_limit=") || strings.Contains(got[1], "rate_limit=") {
		t.Errorf("only the last line of the burst should say that more are suppressed:\n%s", strings.Join(got, "\n"))
	}
	// Another kind has its own burst; a derived logger shares the counts.
	log.Warn("request failed", "i", 0)
	slog.New(h).Error("request failed")
	if got := lines(&buf); len(got) != 1 || !strings.Contains(got[0], "level=WARN") {
		t.Fatalf("other kind / shared count: %q", got)
	}

	c.t = c.t.Add(time.Minute)
	log.Error("request failed", "i", "next")
	got = lines(&buf)
	if len(got) != 2 {
		t.Fatalf("next interval wrote %q, want a summary and the line", got)
	}
	if want := fmt.Sprintf("count=%d", 1000-3+1); !strings.Contains(got[0], "suppressed similar log lines") || !strings.Contains(got[0], want) ||
		!strings.Contains(got[0], `message="request failed"`) || !strings.Contains(got[0], "component=api") {
		t.Errorf("summary = %q, want %s", got[0], want)
	}
	if !strings.Contains(got[1], "i=next") {
		t.Errorf("line after summary = %q", got[1])
	}
	// Nothing suppressed in the last interval: no summary.
	c.t = c.t.Add(time.Minute)
	log.Error("request failed")
	if got := lines(&buf); len(got) != 1 {
		t.Errorf("quiet interval: %q", got)
	}
}

func TestManyKindsStayBounded(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	h := New(slog.NewTextHandler(&buf, nil), Options{Burst: 1, Interval: time.Minute, Now: c.now})
	log := slog.New(h)
	for i := range 5 * maxKinds {
		log.Error(fmt.Sprintf("dynamic message %d", i))
	}
	if n := len(h.st.kinds); n > maxKinds+1 { // +1: the overflow kind
		t.Errorf("tracking %d kinds, want at most %d", n, maxKinds+1)
	}
	if n := len(lines(&buf)); n > maxKinds+1 {
		t.Errorf("wrote %d lines for %d distinct messages in one interval, want at most %d", n, 5*maxKinds, maxKinds+1)
	}
}

func TestDisabledLevelsAreNotCounted(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	h := New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}), Options{Burst: 2, Now: c.now})
	log := slog.New(h)
	for range 10 {
		log.Debug("request refused")
	}
	log.Info("request refused")
	if got := lines(&buf); len(got) != 1 {
		t.Errorf("got %q", got)
	}
}

func TestBelowMinLevelUnlimited(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	h := New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Options{Burst: 2, Now: c.now})
	log := slog.New(h)
	for range 20 {
		log.Debug("request refused")
		log.Info("request failed")
	}
	got := lines(&buf)
	debug := 0
	for _, l := range got {
		if strings.Contains(l, "level=DEBUG") {
			debug++
		}
	}
	if debug != 20 || len(got) != 22 {
		t.Errorf("%d lines, %d of them debug; want 22 and 20", len(got), debug)
	}
}
