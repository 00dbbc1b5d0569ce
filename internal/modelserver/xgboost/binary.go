package xgboost

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Sizes of the fixed C structs in XGBoost 1.x's legacy binary format
// (little-endian).
const (
	learnerParamSize = 136 // LearnerModelParamLegacy
	gbtreeParamSize  = 160 // GBTreeModelParam
	treeParamSize    = 148 // TreeParam
	nodeSize         = 20  // RegTree::Node
	statSize         = 16  // RTreeNodeStat
	linearParamSize  = 136 // GBLinearModelParam
)

type binReader struct {
	b   []byte
	pos int
}

func (r *binReader) errf(msg string) error {
	return corrupt("binary at byte %d: %s", r.pos, msg)
}

func (r *binReader) take(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, r.errf("unexpected end of file")
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *binReader) u64() (uint64, error) {
	s, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (r *binReader) str(maxLen int) (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(maxLen) {
		return "", r.errf("string too long")
	}
	s, err := r.take(int(n))
	return string(s), err
}

func (r *binReader) floatVec() ([]float32, error) {
	n, err := r.u64()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.pos)/4 {
		return nil, r.errf("vector length out of range")
	}
	s, _ := r.take(int(n) * 4)
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(s[4*i:]))
	}
	return out, nil
}

func le32(b []byte, off int) int32 { return int32(binary.LittleEndian.Uint32(b[off:])) }

// binaryMagic optionally starts a legacy binary model.
var binaryMagic = []byte("binf")

func decodeBinary(b []byte) (*rawModel, error) {
	r := &binReader{b: b}
	if bytes.HasPrefix(b, binaryMagic) {
		r.pos = 4
	}
	p, err := r.take(learnerParamSize)
	if err != nil {
		return nil, err
	}
	m := &rawModel{
		baseScore:  math.Float32frombits(binary.LittleEndian.Uint32(p[0:])),
		numFeature: int64(binary.LittleEndian.Uint32(p[4:])),
		numClass:   int64(le32(p, 8)),
		numTarget:  1,
	}
	m.version = [3]int{int(le32(p, 20)), int(le32(p, 24)), 0}
	if m.version[0] >= 1 && m.version[1] >= 6 {
		if nt := le32(p, 28); nt > 1 {
			m.numTarget = int64(nt)
		}
	}
	if m.objective, err = r.str(256); err != nil {
		return nil, err
	}
	if m.kind, err = r.str(256); err != nil {
		return nil, err
	}
	switch m.kind {
	case KindGBTree, KindDart:
		return m, r.trees(m)
	case KindGBLinear:
		if _, err := r.take(linearParamSize); err != nil {
			return nil, err
		}
		m.linear, err = r.floatVec()
		return m, err
	}
	return nil, corrupt("unsupported booster %q (want gbtree, dart or gblinear)", truncate(m.kind, 32))
}

func (r *binReader) trees(m *rawModel) error {
	p, err := r.take(gbtreeParamSize)
	if err != nil {
		return err
	}
	n := le32(p, 0)
	if n < 0 || int(n) > (len(r.b)-r.pos)/(treeParamSize+nodeSize+statSize) {
		return r.errf("tree count out of range")
	}
	if sz := le32(p, 28); sz != 0 {
		return corrupt("vector-leaf trees are not supported")
	}
	m.trees = make([]rawTree, n)
	for i := range m.trees {
		if err := r.tree(&m.trees[i]); err != nil {
			return err
		}
	}
	info, err := r.take(4 * int(n))
	if err != nil {
		return err
	}
	m.treeInfo = make([]int64, n)
	for i := range m.treeInfo {
		m.treeInfo[i] = int64(le32(info, 4*i))
	}
	if m.kind == KindDart {
		if m.weightDrop, err = r.floatVec(); err != nil {
			return err
		}
	}
	return nil
}

func (r *binReader) tree(t *rawTree) error {
	p, err := r.take(treeParamSize)
	if err != nil {
		return err
	}
	n := le32(p, 4)
	if le32(p, 20) != 0 {
		return corrupt("vector-leaf trees are not supported")
	}
	if n <= 0 || int(n) > (len(r.b)-r.pos)/(nodeSize+statSize) {
		return r.errf("node count out of range")
	}
	nodes, _ := r.take(int(n) * nodeSize)
	if _, err := r.take(int(n) * statSize); err != nil {
		return err
	}
	t.left = make([]int32, n)
	t.right = make([]int32, n)
	t.feat = make([]int64, n)
	t.cond = make([]float32, n)
	t.defaultLeft = make([]bool, n)
	for i := range t.left {
		o := i * nodeSize
		t.left[i] = le32(nodes, o+4)
		t.right[i] = le32(nodes, o+8)
		s := binary.LittleEndian.Uint32(nodes[o+12:])
		t.feat[i] = int64(s & (1<<31 - 1))
		t.defaultLeft[i] = s>>31 != 0
		t.cond[i] = math.Float32frombits(binary.LittleEndian.Uint32(nodes[o+16:]))
	}
	return nil
}
