package xgboost

import (
	"math"
	"strconv"
)

// appendPyFloat appends v formatted as Python's repr(float) does (the
// shortest round-trip digits; exponent form below 1e-4 and from 1e16; a
// trailing ".0" on integral values), which is what the SageMaker XGBoost
// container emits for a float32 prediction widened to a Python float.
// json selects JSON spellings of NaN and infinities.
func appendPyFloat(dst []byte, v float64, json bool) []byte {
	switch {
	case math.IsNaN(v):
		if json {
			return append(dst, "NaN"...)
		}
		return append(dst, "nan"...)
	case math.IsInf(v, 1):
		if json {
			return append(dst, "Infinity"...)
		}
		return append(dst, "inf"...)
	case math.IsInf(v, -1):
		if json {
			return append(dst, "-Infinity"...)
		}
		return append(dst, "-inf"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], v, 'e', -1, 64) // -d.ddde±XX
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	var digits [24]byte
	nd := 0
	i := 0
	for ; i < len(e) && e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[nd] = e[i]
			nd++
		}
	}
	exp, _ := strconv.Atoi(string(e[i+1:]))
	d := digits[:nd]
	if exp < -4 || exp >= 16 {
		dst = append(dst, d[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp < 0 {
		dst = append(dst, '0', '.')
		for k := 0; k < -exp-1; k++ {
			dst = append(dst, '0')
		}
		return append(dst, d...)
	}
	intLen := exp + 1
	if nd <= intLen {
		dst = append(dst, d...)
		for k := nd; k < intLen; k++ {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	}
	dst = append(dst, d[:intLen]...)
	dst = append(dst, '.')
	return append(dst, d[intLen:]...)
}
