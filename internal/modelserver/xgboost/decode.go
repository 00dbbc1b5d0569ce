package xgboost

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func nanF64() float64 { return math.NaN() }
func posInf() float64 { return math.Inf(1) }

// Format names a model file format.
type Format string

// Model file formats.
const (
	FormatJSON   Format = "json"
	FormatUBJSON Format = "ubjson"
	FormatBinary Format = "binary"
)

// DetectFormat tells the format of a model file from its content.
func DetectFormat(b []byte) Format {
	if len(b) >= 2 && b[0] == '{' {
		switch b[1] {
		case '"', ' ', '\n', '\r', '\t', '}':
			return FormatJSON
		}
		return FormatUBJSON
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) > 0 && t[0] == '{' {
		return FormatJSON
	}
	return FormatBinary
}

// Decode reads a model in any of the three formats, or a Python pickle of
// an xgboost Booster (as SageMaker's XGBoost 1.0–1.2 containers saved
// models).
func Decode(b []byte) (*Booster, error) {
	raw, err := decodeAny(b, 0)
	if err != nil {
		return nil, err
	}
	return raw.build()
}

func decodeAny(b []byte, depth int) (*rawModel, error) {
	if len(b) > 2 && b[0] == 0x80 && depth == 0 { // pickle protocol 2+
		payload, err := unpickleBooster(b)
		if err != nil {
			return nil, err
		}
		return decodeAny(payload, depth+1)
	}
	switch DetectFormat(b) {
	case FormatJSON:
		return decodeTree(parseJSONModel(b))
	case FormatUBJSON:
		raw, err := decodeTree(parseUBJSONModel(b))
		if err != nil {
			// A legacy binary model without the "binf" header can start
			// with '{' when its base_score's low byte is 0x7b.
			if raw2, err2 := decodeBinary(b); err2 == nil {
				return raw2, nil
			}
		}
		return raw, err
	}
	return decodeBinary(b)
}

// unpickleBooster finds the serialised booster inside a pickle of
// xgboost.core.Booster: the bytes passed to builtins.bytearray.
func unpickleBooster(b []byte) ([]byte, error) {
	i := bytes.Index(b, []byte("bytearray"))
	if i < 0 {
		return nil, corrupt("pickle holds no xgboost Booster")
	}
	b = b[i+len("bytearray"):]
	// Skip the opcodes that follow the name: MEMOIZE, STACK_GLOBAL, the
	// newline ending a GLOBAL, BINPUT and LONG_BINPUT.
	for len(b) > 0 {
		switch {
		case b[0] == 0x94 || b[0] == 0x93 || b[0] == '\n':
			b = b[1:]
			continue
		case b[0] == 'q' && len(b) >= 2:
			b = b[2:]
			continue
		case b[0] == 'r' && len(b) >= 5:
			b = b[5:]
			continue
		}
		break
	}
	var n uint64
	switch {
	case len(b) >= 5 && b[0] == 'B': // BINBYTES
		n, b = uint64(binary.LittleEndian.Uint32(b[1:])), b[5:]
	case len(b) >= 2 && b[0] == 'C': // SHORT_BINBYTES
		n, b = uint64(b[1]), b[2:]
	case len(b) >= 9 && (b[0] == 0x8e || b[0] == 0x96): // BINBYTES8, BYTEARRAY8
		n, b = binary.LittleEndian.Uint64(b[1:]), b[9:]
	default:
		return nil, corrupt("unsupported pickle layout for an xgboost Booster")
	}
	if n > uint64(len(b)) {
		return nil, corrupt("pickle truncated")
	}
	return b[:n], nil
}

// maxModelBytes bounds the size of a model file we read.
const maxModelBytes = 2 << 30

// LoadFile reads and decodes one model file.
func LoadFile(path string) (*Booster, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if st.Size() > maxModelBytes {
		return nil, fmt.Errorf("load model %s: %w", path, corrupt("file too large (%d bytes)", st.Size()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", filepath.Base(path), err)
	}
	return m, nil
}

// --- generic tree (JSON / UBJSON) ---

func get(v any, keys ...string) (any, error) {
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, corrupt("%s is not an object", strings.Join(keys[:i], "."))
		}
		if v, ok = m[k]; !ok {
			return nil, corrupt("missing %s", strings.Join(keys[:i+1], "."))
		}
	}
	return v, nil
}

func getOpt(v any, keys ...string) any {
	x, err := get(v, keys...)
	if err != nil {
		return nil
	}
	return x
}

// num reads a number that XGBoost may store as a JSON number or a string.
func num(v any, what string) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, corrupt("%s: bad number %q", what, truncate(x, 32))
		}
		return f, nil
	}
	return 0, corrupt("%s: not a number", what)
}

func intParam(v any, what string, def int64) (int64, error) {
	if v == nil {
		return def, nil
	}
	f, err := num(v, what)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<40 {
		return 0, corrupt("%s: %v is not an integer", what, f)
	}
	return int64(f), nil
}

func floats(v any, what string) ([]float32, error) {
	switch x := v.(type) {
	case []float32:
		return x, nil
	case []float64:
		out := make([]float32, len(x))
		for i, f := range x {
			out[i] = float32(f)
		}
		return out, nil
	case []any:
		out := make([]float32, len(x))
		for i, e := range x {
			f, err := num(e, what)
			if err != nil {
				return nil, err
			}
			out[i] = float32(f)
		}
		return out, nil
	}
	return nil, corrupt("%s: not a number array", what)
}

func ints(v any, what string) ([]int64, error) {
	toInt := func(f float64) (int64, error) {
		if f != math.Trunc(f) || math.Abs(f) > 1<<40 {
			return 0, corrupt("%s: %v is not an integer", what, f)
		}
		return int64(f), nil
	}
	switch x := v.(type) {
	case []int64:
		return x, nil
	case []int32:
		out := make([]int64, len(x))
		for i, e := range x {
			out[i] = int64(e)
		}
		return out, nil
	case []uint8:
		out := make([]int64, len(x))
		for i, e := range x {
			out[i] = int64(e)
		}
		return out, nil
	case []float64:
		out := make([]int64, len(x))
		for i, f := range x {
			n, err := toInt(f)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case []float32:
		out := make([]int64, len(x))
		for i, f := range x {
			n, err := toInt(float64(f))
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case []any:
		out := make([]int64, len(x))
		for i, e := range x {
			switch b := e.(type) {
			case bool:
				if b {
					out[i] = 1
				}
				continue
			case int64:
				out[i] = b
				continue
			}
			f, err := num(e, what)
			if err != nil {
				return nil, err
			}
			if out[i], err = toInt(f); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, corrupt("%s: not an integer array", what)
}

func int32s(v []int64, what string) ([]int32, error) {
	out := make([]int32, len(v))
	for i, x := range v {
		if x < math.MinInt32 || x > math.MaxInt32 {
			return nil, corrupt("%s: %d out of range", what, x)
		}
		out[i] = int32(x)
	}
	return out, nil
}

func decodeTree(root any, err error) (*rawModel, error) {
	if err != nil {
		return nil, err
	}
	m := &rawModel{}
	if ver, ok := getOpt(root, "version").([]float64); ok && len(ver) == 3 {
		for i, x := range ver {
			m.version[i] = int(x)
		}
	} else if ver, err := ints(getOpt(root, "version"), "version"); err == nil && len(ver) == 3 {
		for i, x := range ver {
			m.version[i] = int(x)
		}
	}
	if m, ok := root.(map[string]any); ok && m["learner"] == nil && m["Model"] != nil {
		root = m["Model"] // a memory snapshot: {"Config": ..., "Model": ...}
	}
	lp, err := get(root, "learner", "learner_model_param")
	if err != nil {
		return nil, err
	}
	bs, err := num(getOpt(lp, "base_score"), "base_score")
	if err != nil {
		return nil, err
	}
	m.baseScore = float32(bs)
	if m.numFeature, err = intParam(getOpt(lp, "num_feature"), "num_feature", 0); err != nil {
		return nil, err
	}
	if m.numClass, err = intParam(getOpt(lp, "num_class"), "num_class", 0); err != nil {
		return nil, err
	}
	if m.numTarget, err = intParam(getOpt(lp, "num_target"), "num_target", 1); err != nil {
		return nil, err
	}
	name, err := get(root, "learner", "objective", "name")
	if err != nil {
		return nil, err
	}
	var ok bool
	if m.objective, ok = name.(string); !ok {
		return nil, corrupt("objective name is not a string")
	}
	gb, err := get(root, "learner", "gradient_booster")
	if err != nil {
		return nil, err
	}
	kind, _ := getOpt(gb, "name").(string)
	m.kind = kind
	switch kind {
	case KindGBLinear:
		w, err := get(gb, "model", "weights")
		if err != nil {
			return nil, err
		}
		if m.linear, err = floats(w, "gblinear weights"); err != nil {
			return nil, err
		}
		return m, nil
	case KindDart:
		wd, err := get(gb, "weight_drop")
		if err != nil {
			return nil, err
		}
		if m.weightDrop, err = floats(wd, "weight_drop"); err != nil {
			return nil, err
		}
		if gb, err = get(gb, "gbtree"); err != nil {
			return nil, err
		}
	case KindGBTree:
	default:
		return nil, corrupt("unsupported booster %q (want gbtree, dart or gblinear)", kind)
	}
	model, err := get(gb, "model")
	if err != nil {
		return nil, err
	}
	ti, err := get(model, "tree_info")
	if err != nil {
		return nil, err
	}
	if m.treeInfo, err = ints(ti, "tree_info"); err != nil {
		return nil, err
	}
	trees, ok := getOpt(model, "trees").([]any)
	if !ok {
		return nil, corrupt("model.trees is not an array")
	}
	m.trees = make([]rawTree, len(trees))
	for i, t := range trees {
		if err := decodeOneTree(t, &m.trees[i]); err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
	}
	return m, nil
}

func decodeOneTree(t any, out *rawTree) error {
	if sz := getOpt(t, "tree_param", "size_leaf_vector"); sz != nil {
		n, err := intParam(sz, "size_leaf_vector", 0)
		if err != nil {
			return err
		}
		if n > 1 {
			return corrupt("vector-leaf trees are not supported")
		}
	}
	field := func(k string) ([]int64, error) {
		v, err := get(t, k)
		if err != nil {
			return nil, err
		}
		return ints(v, k)
	}
	l, err := field("left_children")
	if err != nil {
		return err
	}
	r, err := field("right_children")
	if err != nil {
		return err
	}
	if out.left, err = int32s(l, "left_children"); err != nil {
		return err
	}
	if out.right, err = int32s(r, "right_children"); err != nil {
		return err
	}
	if out.feat, err = field("split_indices"); err != nil {
		return err
	}
	dl, err := field("default_left")
	if err != nil {
		return err
	}
	out.defaultLeft = make([]bool, len(dl))
	for i, x := range dl {
		out.defaultLeft[i] = x != 0
	}
	sc, err := get(t, "split_conditions")
	if err != nil {
		return err
	}
	if out.cond, err = floats(sc, "split_conditions"); err != nil {
		return err
	}
	st := getOpt(t, "split_type")
	if st == nil {
		return nil
	}
	types, err := ints(st, "split_type")
	if err != nil {
		return err
	}
	hasCat := false
	for _, x := range types {
		if x != 0 {
			hasCat = true
		}
	}
	if !hasCat {
		return nil
	}
	if len(types) != len(out.left) {
		return corrupt("split_type has %d entries for %d nodes", len(types), len(out.left))
	}
	var cn, cs, csz, cats []int64
	for _, f := range []struct {
		k   string
		dst *[]int64
	}{{"categories_nodes", &cn}, {"categories_segments", &cs}, {"categories_sizes", &csz}, {"categories", &cats}} {
		if *f.dst, err = field(f.k); err != nil {
			return err
		}
	}
	if len(cn) != len(cs) || len(cn) != len(csz) {
		return corrupt("categorical arrays differ in length")
	}
	out.cats = make(map[int32][]int64, len(cn))
	for i, nid := range cn {
		beg, size := cs[i], csz[i]
		if nid < 0 || nid >= int64(len(types)) || types[nid] == 0 {
			return corrupt("categories_nodes: bad node %d", nid)
		}
		if beg < 0 || size < 0 || beg > int64(len(cats)) || size > int64(len(cats))-beg {
			return corrupt("categories segment out of range at node %d", nid)
		}
		set := append([]int64(nil), cats[beg:beg+size]...)
		sort.Slice(set, func(a, b int) bool { return set[a] < set[b] })
		out.cats[int32(nid)] = set
	}
	for nid, x := range types {
		if x == 0 || out.left[nid] == -1 {
			continue
		}
		if _, ok := out.cats[int32(nid)]; !ok {
			return corrupt("categorical node %d has no categories", nid)
		}
	}
	return nil
}
