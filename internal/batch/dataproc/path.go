package dataproc

import (
	"fmt"
	"strings"

	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"
)

// MaxFilterLength is the longest InputFilter or OutputFilter SageMaker
// accepts.
const MaxFilterLength = 63

// filter is a compiled JSONPath expression restricted to SageMaker's subset:
// the root `$`, child names (`.name`, `['a','b']`), the wildcard `*`,
// indexes (negative from the end, `[1,3,5]`) and slices (`[2:5]`, `[:5]`,
// `[2:]`). Descendant segments (`..`), filter expressions (`?`) and slice
// steps are not part of it and are refused.
type filter struct {
	expr     string
	segments [][]spec.Selector
	// definite is true when every segment is a single name or index: the
	// result is then that one value rather than an array of matches.
	definite bool
}

// compileFilter parses expr. "" and "$" select the whole record and compile
// to nil.
func compileFilter(expr string) (*filter, error) {
	if expr == "" || expr == "$" {
		return nil, nil
	}
	if len(expr) > MaxFilterLength {
		return nil, fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidConfig, expr, MaxFilterLength)
	}
	p, err := jsonpath.Parse(normalizeDotBracket(expr))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidConfig, expr, err)
	}
	f := &filter{expr: expr, definite: true}
	for _, seg := range p.Query().Segments() {
		if seg.IsDescendant() {
			return nil, fmt.Errorf("%w: %q: descendant segments (..) are not supported", ErrInvalidConfig, expr)
		}
		sels := seg.Selectors()
		for _, s := range sels {
			switch s := s.(type) {
			case spec.Name, spec.Index, spec.WildcardSelector, *spec.WildcardSelector:
			case spec.SliceSelector:
				if s.Step() != 1 {
					return nil, fmt.Errorf("%w: %q: slice steps are not supported", ErrInvalidConfig, expr)
				}
			case *spec.SliceSelector:
				if s.Step() != 1 {
					return nil, fmt.Errorf("%w: %q: slice steps are not supported", ErrInvalidConfig, expr)
				}
			default:
				return nil, fmt.Errorf("%w: %q: selector %v is not supported", ErrInvalidConfig, expr, s)
			}
		}
		if len(sels) != 1 || !isSingular(sels[0]) {
			f.definite = false
		}
		f.segments = append(f.segments, sels)
	}
	return f, nil
}

func isSingular(s spec.Selector) bool {
	switch s.(type) {
	case spec.Name, spec.Index:
		return true
	}
	return false
}

// normalizeDotBracket rewrites `.[` as `[` outside quoted names: SageMaker's
// documentation writes `$.field1.['child1','child2']`, which RFC 9535 does
// not allow.
func normalizeDotBracket(expr string) string {
	if !strings.Contains(expr, ".[") {
		return expr
	}
	var b strings.Builder
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(expr) {
				b.WriteByte(c)
				i++
				c = expr[i]
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '.' && i+1 < len(expr) && expr[i+1] == '[':
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// apply evaluates f on root. The result follows the JSONPath implementation
// SageMaker documents (Jayway): a definite path (`$.features`, `$[0]`)
// yields the selected value itself; any other path yields an array of
// the matches (`$[1:]`, `$[0,5:]`), except that a final segment of several
// names (`$['id','SageMakerOutput']`) yields, for each object, an object of
// those members in the order named. Selecting nothing is an error, and so
// is, in a definite path, an index outside the array or a missing name.
func (f *filter) apply(root value) (value, error) {
	nodes := []value{root}
	for si, sels := range f.segments {
		last := si == len(f.segments)-1
		if last && len(sels) > 1 && allNames(sels) {
			out := make([]value, 0, len(nodes))
			for _, n := range nodes {
				if n.kind != kindObject {
					continue
				}
				obj := value{kind: kindObject, obj: []member{}}
				for _, s := range sels {
					if v, ok := n.get(string(s.(spec.Name))); ok {
						obj.obj = append(obj.obj, member{key: string(s.(spec.Name)), val: v})
					}
				}
				if len(obj.obj) > 0 {
					out = append(out, obj)
				}
			}
			if len(out) == 0 {
				return value{}, f.noMatch("none of the names is present")
			}
			if len(out) == 1 && f.definitePrefix() {
				return out[0], nil
			}
			return value{kind: kindArray, arr: out}, nil
		}
		var next []value
		for _, n := range nodes {
			for _, s := range sels {
				var err error
				next, err = f.selectInto(next, n, s, len(sels) == 1)
				if err != nil {
					return value{}, err
				}
			}
		}
		nodes = next
		if len(nodes) == 0 {
			return value{}, f.noMatch("no element matches")
		}
		// Unions may select the same values again at every segment
		// ($[*,*][*,*]…), which multiplies the result; a selection of
		// more values than the record holds is refused before it can
		// grow past the record's size many times over.
		if len(nodes) > len(sels) && len(nodes) > countValues(root) {
			return value{}, fmt.Errorf("%w: %s selects more values than the record holds", ErrUnsupported, f.expr)
		}
	}
	if f.definite {
		return nodes[0], nil
	}
	return value{kind: kindArray, arr: nodes}, nil
}

// countValues returns the number of values in v, v included.
func countValues(v value) int {
	n := 1
	for _, e := range v.arr {
		n += countValues(e)
	}
	for _, m := range v.obj {
		n += countValues(m.val)
	}
	return n
}

// definitePrefix reports whether all segments but the last are definite.
func (f *filter) definitePrefix() bool {
	for _, sels := range f.segments[:len(f.segments)-1] {
		if len(sels) != 1 || !isSingular(sels[0]) {
			return false
		}
	}
	return true
}

func allNames(sels []spec.Selector) bool {
	for _, s := range sels {
		if _, ok := s.(spec.Name); !ok {
			return false
		}
	}
	return true
}

// selectInto appends what s selects from n. In a definite path (alone is
// then true) a missing name or index is an error; elsewhere it only adds
// nothing.
func (f *filter) selectInto(dst []value, n value, s spec.Selector, alone bool) ([]value, error) {
	switch s := s.(type) {
	case spec.Name:
		if n.kind == kindObject {
			if v, ok := n.get(string(s)); ok {
				return append(dst, v), nil
			}
		}
		if alone && f.definite {
			return nil, f.noMatch(fmt.Sprintf("no member %q", string(s)))
		}
	case spec.Index:
		if n.kind == kindArray {
			i := int(s)
			if i < 0 {
				i += len(n.arr)
			}
			if i >= 0 && i < len(n.arr) {
				return append(dst, n.arr[i]), nil
			}
			if alone && f.definite {
				return nil, f.noMatch(fmt.Sprintf("index %d is outside an array of %d elements", int(s), len(n.arr)))
			}
		} else if alone && f.definite {
			return nil, f.noMatch(fmt.Sprintf("index %d applied to a non-array", int(s)))
		}
	case spec.WildcardSelector, *spec.WildcardSelector:
		switch n.kind {
		case kindArray:
			return append(dst, n.arr...), nil
		case kindObject:
			for _, m := range n.obj {
				dst = append(dst, m.val)
			}
		}
	case spec.SliceSelector:
		return sliceInto(dst, n, s), nil
	case *spec.SliceSelector:
		return sliceInto(dst, n, *s), nil
	}
	return dst, nil
}

func sliceInto(dst []value, n value, s spec.SliceSelector) []value {
	if n.kind != kindArray {
		return dst
	}
	lo, hi := s.Bounds(len(n.arr))
	if lo < hi {
		dst = append(dst, n.arr[lo:hi]...)
	}
	return dst
}

func (f *filter) noMatch(why string) error {
	return fmt.Errorf("%w: %s: %s", ErrNoMatch, f.expr, why)
}
