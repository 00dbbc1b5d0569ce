package xgboost

import (
	"errors"
	"fmt"
	"math"
)

// ErrCorruptModel is wrapped by every error that reports a malformed or
// unsupported model file.
var ErrCorruptModel = errors.New("invalid xgboost model")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptModel, fmt.Sprintf(format, args...))
}

// Booster kinds.
const (
	KindGBTree   = "gbtree"
	KindDart     = "dart"
	KindGBLinear = "gblinear"
)

// node flag bits, stored in node.feat above the feature index.
const (
	leafBit   = 1 << 31
	defLeft   = 1 << 30
	catBit    = 1 << 29
	featMask  = catBit - 1
	maxFeats  = featMask
	maxNodes  = 1 << 30
	maxGroups = 1 << 16
)

// node is one tree node in the flat layout. For a split, the left child is
// at index left and the right child at left+1; val is the threshold (or, for
// a categorical split, the index into Booster.catSets stored as bits). For a
// leaf, val is the leaf value.
type node struct {
	val  float32
	feat uint32
	left int32
}

// Booster is a loaded, immutable XGBoost model. It is safe for concurrent
// use.
type Booster struct {
	// Objective is the training objective, e.g. "binary:logistic".
	Objective string
	// Kind is gbtree, dart or gblinear.
	Kind string
	// NumFeature is the number of input features the model was trained on.
	NumFeature int
	// NumClass is num_class from the model (0 unless multi-class).
	NumClass int
	// BaseScore is base_score as stored in the model (in prediction space).
	BaseScore float32
	// Version is the XGBoost version that wrote the model, when known.
	Version [3]int

	baseMargin float32
	groups     int // output groups: max(1, NumClass)
	obj        objective

	nodes     []node
	roots     []int32
	depth     []int32 // edges on the longest root-to-leaf path, per tree
	treeGroup []int32
	treeW     []float32 // dart weights; nil for gbtree
	catSets   [][]uint64
	hasCat    bool

	linear []float32 // gblinear: weights[(fid*groups)+g], then bias per group
}

// NumGroups is the number of margins per row: NumClass for multi-class
// models, 1 otherwise.
func (b *Booster) NumGroups() int { return b.groups }

// NumTrees is the number of trees (0 for gblinear).
func (b *Booster) NumTrees() int { return len(b.roots) }

// MemoryBytes estimates the memory the model holds.
func (b *Booster) MemoryBytes() int64 {
	n := int64(len(b.nodes))*12 + int64(len(b.roots))*12 + int64(len(b.linear))*4
	for _, s := range b.catSets {
		n += int64(len(s))*8 + 24
	}
	return n + 512
}

// rawTree is a tree as read from a file, before validation and re-layout.
type rawTree struct {
	left, right []int32
	feat        []int64
	cond        []float32
	defaultLeft []bool
	// cats maps node id to the sorted list of categories that go right;
	// nil for a tree without categorical splits.
	cats map[int32][]int64
}

// rawModel is a model as read from a file.
type rawModel struct {
	objective  string
	kind       string
	numFeature int64
	numClass   int64
	numTarget  int64
	baseScore  float32
	version    [3]int
	trees      []rawTree
	treeInfo   []int64
	weightDrop []float32
	linear     []float32
}

// build validates m and turns it into a Booster.
func (m *rawModel) build() (*Booster, error) {
	if m.numFeature < 0 || m.numFeature > maxFeats {
		return nil, corrupt("num_feature %d out of range", m.numFeature)
	}
	if m.numClass < 0 || m.numClass > maxGroups {
		return nil, corrupt("num_class %d out of range", m.numClass)
	}
	if m.numTarget > 1 {
		return nil, corrupt("multi-target models (num_target=%d) are not supported", m.numTarget)
	}
	obj, err := lookupObjective(m.objective)
	if err != nil {
		return nil, err
	}
	b := &Booster{
		Objective:  m.objective,
		Kind:       m.kind,
		NumFeature: int(m.numFeature),
		NumClass:   int(m.numClass),
		BaseScore:  m.baseScore,
		Version:    m.version,
		groups:     max(1, int(m.numClass)),
		obj:        obj,
	}
	b.baseMargin = obj.probToMargin(m.baseScore)
	switch m.kind {
	case KindGBLinear:
		want := (m.numFeature + 1) * int64(b.groups)
		if int64(len(m.linear)) != want {
			return nil, corrupt("gblinear has %d weights, want (num_feature+1)*groups = %d", len(m.linear), want)
		}
		b.linear = m.linear
		return b, nil
	case KindGBTree, KindDart:
	default:
		return nil, corrupt("unsupported booster %q (want gbtree, dart or gblinear)", m.kind)
	}
	if len(m.treeInfo) != len(m.trees) {
		return nil, corrupt("tree_info has %d entries for %d trees", len(m.treeInfo), len(m.trees))
	}
	if m.kind == KindDart {
		if len(m.weightDrop) != len(m.trees) {
			return nil, corrupt("dart weight_drop has %d entries for %d trees", len(m.weightDrop), len(m.trees))
		}
		b.treeW = m.weightDrop
	}
	total := 0
	for i := range m.trees {
		total += len(m.trees[i].left)
	}
	if total > maxNodes {
		return nil, corrupt("model has too many nodes (%d)", total)
	}
	b.nodes = make([]node, 0, total)
	b.roots = make([]int32, len(m.trees))
	b.depth = make([]int32, len(m.trees))
	b.treeGroup = make([]int32, len(m.trees))
	for i := range m.trees {
		g := m.treeInfo[i]
		if g < 0 || g >= int64(b.groups) {
			return nil, corrupt("tree %d: group %d out of range [0,%d)", i, g, b.groups)
		}
		b.treeGroup[i] = int32(g)
		b.roots[i] = int32(len(b.nodes))
		d, err := b.addTree(i, &m.trees[i])
		if err != nil {
			return nil, err
		}
		b.depth[i] = d
	}
	return b, nil
}

// addTree validates t and appends it breadth-first so that every split's
// children are adjacent. It returns the tree's depth.
func (b *Booster) addTree(ti int, t *rawTree) (int32, error) {
	n := len(t.left)
	if n == 0 {
		return 0, corrupt("tree %d has no nodes", ti)
	}
	if len(t.right) != n || len(t.feat) != n || len(t.cond) != n || len(t.defaultLeft) != n {
		return 0, corrupt("tree %d: node arrays differ in length", ti)
	}
	seen := make([]bool, n)
	level := make([]int32, 1, n) // level[qi] is the depth of queue[qi]
	var depth int32
	seen[0] = true
	queue := []int32{0}
	base := int32(len(b.nodes))
	b.nodes = append(b.nodes, node{})
	for qi := 0; qi < len(queue); qi++ {
		id := queue[qi]
		pos := base + int32(qi)
		depth = max(depth, level[qi])
		l, r := t.left[id], t.right[id]
		if l == -1 {
			if r != -1 {
				return 0, corrupt("tree %d node %d: left child is -1 but right is %d", ti, id, r)
			}
			b.nodes[pos] = node{val: t.cond[id], feat: leafBit}
			continue
		}
		if l < 0 || int(l) >= n || r < 0 || int(r) >= n || l == r {
			return 0, corrupt("tree %d node %d: bad children %d,%d", ti, id, l, r)
		}
		if seen[l] || seen[r] {
			return 0, corrupt("tree %d node %d: child reached twice", ti, id)
		}
		seen[l], seen[r] = true, true
		f := t.feat[id]
		if f < 0 || f >= int64(b.NumFeature) {
			return 0, corrupt("tree %d node %d: split feature %d out of range [0,%d)", ti, id, f, b.NumFeature)
		}
		nd := node{val: t.cond[id], feat: uint32(f), left: base + int32(len(queue))}
		if t.defaultLeft[id] {
			nd.feat |= defLeft
		}
		if cats, ok := t.cats[id]; ok {
			set, err := catBitset(cats)
			if err != nil {
				return 0, fmt.Errorf("tree %d node %d: %w", ti, id, err)
			}
			nd.feat |= catBit
			nd.val = math.Float32frombits(uint32(len(b.catSets)))
			b.catSets = append(b.catSets, set)
			b.hasCat = true
		}
		b.nodes[pos] = nd
		queue = append(queue, l, r)
		level = append(level, level[qi]+1, level[qi]+1)
		b.nodes = append(b.nodes, node{}, node{})
	}
	return depth, nil
}

// maxCategory mirrors XGBoost: categories must be exactly representable as
// float32 integers.
const maxCategory = 1 << 24

func catBitset(cats []int64) ([]uint64, error) {
	hi := int64(-1)
	for _, c := range cats {
		if c < 0 || c >= maxCategory {
			return nil, corrupt("category %d out of range", c)
		}
		hi = max(hi, c)
	}
	set := make([]uint64, hi/64+1)
	for _, c := range cats {
		set[c/64] |= 1 << (c % 64)
	}
	return set, nil
}
