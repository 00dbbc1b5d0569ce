package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

var _ Runtime = (*Mux)(nil)

// Mux is a Runtime that hands every instance to the runtime registered for
// its image kind. Register every runtime before the Mux is used.
type Mux struct {
	kinds    []ImageKind // in registration order
	runtimes map[ImageKind]Runtime
}

// NewMux returns a Mux with no runtime registered.
func NewMux() *Mux {
	return &Mux{runtimes: make(map[ImageKind]Runtime)}
}

// Register makes r run the images of kind. It panics if kind already has
// a runtime: that is a wiring mistake.
func (m *Mux) Register(kind ImageKind, r Runtime) {
	if _, ok := m.runtimes[kind]; ok {
		panic(fmt.Sprintf("runtime: kind %q registered twice", kind))
	}
	m.kinds = append(m.kinds, kind)
	m.runtimes[kind] = r
}

// Runtime returns the runtime registered for kind.
func (m *Mux) Runtime(kind ImageKind) (Runtime, bool) {
	r, ok := m.runtimes[kind]
	return r, ok
}

// Start starts spec on the runtime for its image kind, or fails with an
// error wrapping ErrUnknownKind that names the image.
func (m *Mux) Start(ctx context.Context, spec InstanceSpec) (Instance, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("start instance: %w", err)
	}
	kind := spec.Kind()
	r, ok := m.runtimes[kind]
	if !ok {
		img := spec.Containers[0].Image.Name
		if kind == "" {
			return nil, fmt.Errorf("start instance %s: %w: image %s has none", spec.ID, ErrUnknownKind, img)
		}
		return nil, fmt.Errorf("start instance %s: %w: image %s is of kind %q, which this berth does not run (it runs %s)",
			spec.ID, ErrUnknownKind, img, kind, m.kindList())
	}
	return r.Start(ctx, spec)
}

func (m *Mux) kindList() string {
	if len(m.kinds) == 0 {
		return "none"
	}
	s := ""
	for i, k := range slices.Sorted(slices.Values(m.kinds)) {
		if i > 0 {
			s += ", "
		}
		s += string(k)
	}
	return s
}

// Recover recovers every registered runtime, in registration order, and
// returns what they adopted and cleaned up together; one runtime's error
// does not keep the others from recovering.
func (m *Mux) Recover(ctx context.Context) (adopted []Instance, cleaned int, err error) {
	var errs []error
	for _, k := range m.kinds {
		a, n, err := m.runtimes[k].Recover(ctx)
		adopted = append(adopted, a...)
		cleaned += n
		if err != nil {
			errs = append(errs, fmt.Errorf("%s runtime: %w", k, err))
		}
	}
	return adopted, cleaned, errors.Join(errs...)
}

// Close closes every registered runtime.
func (m *Mux) Close(ctx context.Context) error {
	var errs []error
	for _, k := range m.kinds {
		if err := m.runtimes[k].Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s runtime: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// ModelDirs returns the model directories in use by the registered
// runtimes that report them (see ModelDirer).
func (m *Mux) ModelDirs() []string {
	var dirs []string
	for _, k := range m.kinds {
		if md, ok := m.runtimes[k].(ModelDirer); ok {
			dirs = append(dirs, md.ModelDirs()...)
		}
	}
	return dirs
}
