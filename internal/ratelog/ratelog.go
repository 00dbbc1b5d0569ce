// Package ratelog bounds how many log lines of one kind berth writes, so
// that a flood of failing requests cannot flood the log (and the disk)
// with one line each. Its Handler wraps a slog.Handler: of the records
// with the same level and message, the first Burst in each Interval pass,
// the last of them noting that more will be suppressed; the rest are
// counted, and the count goes out as one summary line ("suppressed
// similar log lines") before the next record of that kind that passes.
// Messages should be constant, with the details in attributes: each
// distinct message is a kind of its own.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Options configures a Handler. Zero fields take their defaults.
type Options struct {
	// Burst is how many records of one kind pass per Interval. Default 10.
	Burst int
	// Interval is the window Burst applies to. Default 1 minute.
	Interval time.Duration
	// MinLevel is the lowest level limited; records below it (debug
	// traces an operator turned on) all pass. The zero value is
	// slog.LevelInfo.
	MinLevel slog.Level
	// Now returns the current time; default time.Now. Tests inject a
	// clock so that they need not sleep.
	Now func() time.Time
}

// maxKinds bounds the kinds tracked: messages are normally constants, but
// some loggers (a library's, adapted) build them from their arguments.
// Past it, new kinds share one overflow kind.
const maxKinds = 1024

// Handler is a slog.Handler that rate-limits records by kind (level and
// message) before passing them to the wrapped handler. Handlers derived
// with WithAttrs and WithGroup share their parent's counts.
type Handler struct {
	next slog.Handler
	st   *state
}

var _ slog.Handler = (*Handler)(nil)

type state struct {
	opts  Options
	mu    sync.Mutex
	kinds map[kind]*window
}

type kind struct {
	level slog.Level
	msg   string
}

// window counts one kind's records in the current interval.
type window struct {
	start      time.Time
	passed     int
	suppressed int
}

// New returns a Handler that passes at most opts.Burst records of each
// kind per opts.Interval to next.
func New(next slog.Handler, opts Options) *Handler {
	if opts.Burst <= 0 {
		opts.Burst = 10
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{next: next, st: &state{opts: opts, kinds: make(map[kind]*window)}}
}

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on unless its kind has used up this interval's burst.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.st.opts.MinLevel {
		return h.next.Handle(ctx, r)
	}
	now := h.st.opts.Now()
	pass, last, carried, since := h.st.admit(kind{r.Level, r.Message}, now)
	if !pass {
		return nil
	}
	if carried > 0 {
		sum := slog.NewRecord(now, r.Level, "suppressed similar log lines", 0)
		sum.AddAttrs(slog.String("message", r.Message), slog.Int("count", carried), slog.Time("since", since))
		if err := h.next.Handle(ctx, sum); err != nil {
			return err
		}
	}
	if last {
		r = r.Clone()
		r.AddAttrs(slog.String("rate_limit", "further lines like this are counted, not written, for up to "+h.st.opts.Interval.String()))
	}
	return h.next.Handle(ctx, r)
}

// admit counts a record of kind k at now. pass says whether it is
// written, last whether it is the last of this interval's burst; carried
// is the count suppressed in the kind's previous interval (which began at
// since), to be reported now.
func (s *state) admit(k kind, now time.Time) (pass, last bool, carried int, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.kinds[k]
	if w == nil {
		if len(s.kinds) >= maxKinds {
			s.prune(now)
			if len(s.kinds) >= maxKinds {
				k = kind{k.level, "(too many kinds of log lines)"}
			}
		}
		if w = s.kinds[k]; w == nil {
			w = &window{start: now}
			s.kinds[k] = w
		}
	}
	if now.Sub(w.start) >= s.opts.Interval {
		carried, since = w.suppressed, w.start
		*w = window{start: now}
	}
	if w.passed < s.opts.Burst {
		w.passed++
		return true, w.passed == s.opts.Burst, carried, since
	}
	w.suppressed++
	return false, false, 0, time.Time{}
}

// prune forgets kinds whose interval has ended with nothing suppressed.
func (s *state) prune(now time.Time) {
	for k, w := range s.kinds {
		if now.Sub(w.start) >= s.opts.Interval && w.suppressed == 0 {
			delete(s.kinds, k)
		}
	}
}

// WithAttrs returns a Handler that shares h's counts.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), st: h.st}
}

// WithGroup returns a Handler that shares h's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st}
}
