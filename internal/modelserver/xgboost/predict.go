package xgboost

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// parallelRows is the batch size from which prediction is split across
// goroutines.
const parallelRows = 512

// Margins computes raw margins (output_margin) for rows, a row-major matrix
// with stride cols >= NumFeature; NaN marks a missing value. The result has
// NumGroups values per row. Large batches are spread over up to workers
// goroutines (0 means GOMAXPROCS); all of them have returned when Margins
// returns.
func (b *Booster) Margins(ctx context.Context, rows []float32, cols, workers int) ([]float32, error) {
	if cols < b.NumFeature {
		return nil, fmt.Errorf("rows have %d columns, model needs %d", cols, b.NumFeature)
	}
	if cols == 0 {
		return nil, fmt.Errorf("rows have no columns")
	}
	n := len(rows) / cols
	out := make([]float32, n*b.groups)
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if n < parallelRows || workers == 1 {
		b.marginRange(rows, cols, out, 0, n)
		return out, nil
	}
	chunks := min(workers, (n+parallelRows/2-1)/(parallelRows/2))
	per := (n + chunks - 1) / chunks
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		hi := min(n, lo+per)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ctx.Err() != nil {
				return
			}
			b.marginRange(rows, cols, out, lo, hi)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	return out, nil
}

// Predict computes transformed predictions, as xgboost's Booster.predict
// does. For multi:softmax it returns one class index per row; otherwise
// NumGroups values per row.
func (b *Booster) Predict(ctx context.Context, rows []float32, cols, workers int) ([]float32, error) {
	m, err := b.Margins(ctx, rows, cols, workers)
	if err != nil {
		return nil, err
	}
	return b.Transform(m), nil
}

// OutputsPerRow is the number of values Predict returns per row.
func (b *Booster) OutputsPerRow() int {
	if b.obj.argmax {
		return 1
	}
	return b.groups
}

// Transform turns margins from Margins into predictions. It may reuse
// margins' storage.
func (b *Booster) Transform(margins []float32) []float32 {
	g := b.groups
	if b.obj.argmax {
		out := make([]float32, len(margins)/g)
		for r := range out {
			row := margins[r*g : r*g+g]
			best := 0
			for i, v := range row {
				if v > row[best] {
					best = i
				}
			}
			out[r] = float32(best)
		}
		return out
	}
	if b.obj.transform == nil {
		return margins
	}
	if b.obj.name == "multi:softprob" {
		for r := 0; r+g <= len(margins); r += g {
			b.obj.transform(margins[r : r+g])
		}
		return margins
	}
	b.obj.transform(margins)
	return margins
}

func (b *Booster) marginRange(rows []float32, cols int, out []float32, lo, hi int) {
	g := b.groups
	for r := lo; r < hi; r++ {
		acc := out[r*g : r*g+g]
		for i := range acc {
			acc[i] = b.baseMargin
		}
	}
	switch {
	case b.linear != nil:
		b.linearRange(rows, cols, out, lo, hi)
	case g == 1 && b.treeW == nil && !b.hasCat:
		b.scalarRange(rows, cols, out, lo, hi)
	default:
		b.generalRange(rows, cols, out, lo, hi)
	}
}

// block is the number of rows evaluated against one tree before moving to
// the next, which keeps a tree's nodes in cache (XGBoost does the same).
const block = 64

// lanes is how many rows walk one tree in lockstep: independent walks
// overlap their memory latency.
const lanes = 8

// scalarRange is the fast path: one output group, numeric splits, no dart.
func (b *Booster) scalarRange(rows []float32, cols int, out []float32, lo, hi int) {
	nodes := b.nodes
	if hi-lo < lanes {
		for r := lo; r < hi; r++ {
			b.scalarRow(rows[r*cols:r*cols+cols], &out[r])
		}
		return
	}
	for blo := lo; blo < hi; blo += block {
		bhi := min(hi, blo+block)
		for t, root := range b.roots {
			r := blo
			for ; r+lanes <= bhi; r += lanes {
				var idx [lanes]int32
				for k := range idx {
					idx[k] = root
				}
				for range b.depth[t] {
					for k := range idx {
						nd := nodes[idx[k]]
						// A leaf stays put; its feature bits index 0,
						// which every row has.
						v := rows[(r+k)*cols+int(nd.feat&featMask)]
						next := nd.left + 1 - (b2i(v < nd.val) | (b2i(v != v) & int32(nd.feat>>30&1)))
						if nd.feat&leafBit != 0 {
							next = idx[k]
						}
						idx[k] = next
					}
				}
				for k := range idx {
					out[r+k] += nodes[idx[k]].val
				}
			}
			for ; r < bhi; r++ {
				row := rows[r*cols : r*cols+cols]
				i := root
				for {
					nd := nodes[i]
					if nd.feat&leafBit != 0 {
						out[r] += nd.val
						break
					}
					v := row[nd.feat&featMask]
					// Branch-free: go right unless v < threshold or v is
					// missing and the default is left.
					i = nd.left + 1 - (b2i(v < nd.val) | (b2i(v != v) & int32(nd.feat>>30&1)))
				}
			}
		}
	}
}

// scalarRow predicts one row of a small batch, walking lanes trees in
// lockstep; leaves are still added in tree order.
func (b *Booster) scalarRow(row []float32, out *float32) {
	nodes := b.nodes
	acc := *out
	t := 0
	for ; t+lanes <= len(b.roots); t += lanes {
		var idx [lanes]int32
		copy(idx[:], b.roots[t:t+lanes])
		depth := int32(0)
		for _, d := range b.depth[t : t+lanes] {
			depth = max(depth, d)
		}
		for range depth {
			for k := range idx {
				nd := nodes[idx[k]]
				v := row[nd.feat&featMask]
				next := nd.left + 1 - (b2i(v < nd.val) | (b2i(v != v) & int32(nd.feat>>30&1)))
				if nd.feat&leafBit != 0 {
					next = idx[k]
				}
				idx[k] = next
			}
		}
		for k := range idx {
			acc += nodes[idx[k]].val
		}
	}
	for ; t < len(b.roots); t++ {
		i := b.roots[t]
		for {
			nd := nodes[i]
			if nd.feat&leafBit != 0 {
				acc += nd.val
				break
			}
			v := row[nd.feat&featMask]
			i = nd.left + 1 - (b2i(v < nd.val) | (b2i(v != v) & int32(nd.feat>>30&1)))
		}
	}
	*out = acc
}

func (b *Booster) generalRange(rows []float32, cols int, out []float32, lo, hi int) {
	g := b.groups
	for blo := lo; blo < hi; blo += block {
		bhi := min(hi, blo+block)
		for t, root := range b.roots {
			grp := int(b.treeGroup[t])
			for r := blo; r < bhi; r++ {
				leaf := b.leaf(root, rows[r*cols:r*cols+cols])
				if b.treeW != nil {
					leaf = float32(leaf * b.treeW[t])
				}
				out[r*g+grp] += leaf
			}
		}
	}
}

// leaf walks one tree for one row, with categorical support.
func (b *Booster) leaf(root int32, row []float32) float32 {
	i := root
	for {
		nd := b.nodes[i]
		if nd.feat&leafBit != 0 {
			return nd.val
		}
		v := row[nd.feat&featMask]
		switch {
		case v != v:
			if nd.feat&defLeft != 0 {
				i = nd.left
			} else {
				i = nd.left + 1
			}
		case nd.feat&catBit != 0:
			if inCategory(b.catSets[math.Float32bits(nd.val)], v) {
				i = nd.left + 1
			} else {
				i = nd.left
			}
		case v < nd.val:
			i = nd.left
		default:
			i = nd.left + 1
		}
	}
}

// inCategory reports whether the value v is one of the categories in set;
// values that are not valid categories (negative, too large) are not.
func inCategory(set []uint64, v float32) bool {
	if !(v >= 0) || v >= maxCategory {
		return false
	}
	c := int(v)
	w := c / 64
	return w < len(set) && set[w]&(1<<(c%64)) != 0
}

func (b *Booster) linearRange(rows []float32, cols int, out []float32, lo, hi int) {
	g := b.groups
	nf := b.NumFeature
	bias := b.linear[nf*g:]
	for r := lo; r < hi; r++ {
		row := rows[r*cols : r*cols+nf]
		for k := 0; k < g; k++ {
			psum := bias[k] + b.baseMargin
			for f, v := range row {
				if v == v {
					psum += float32(v * b.linear[f*g+k])
				}
			}
			out[r*g+k] = psum
		}
	}
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
