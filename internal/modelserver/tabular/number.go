package tabular

import (
	"math"
	"strconv"
)

// ParseNumber parses one field the way the SageMaker container does
// (Python float() then float32): it accepts surrounding blanks, a sign,
// decimals, exponents, "nan" and "inf"/"infinity" in any case. The value is
// rounded to float64 first and then to float32, like numpy's astype chain.
// It does not allocate.
func ParseNumber(b []byte) (float32, bool) {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if f, ok := fastFloat(b); ok {
		return float32(f), true
	}
	return slowFloat(b)
}

// fastFloat handles plain decimals whose value is exactly computable from
// an integer mantissa below 2^53 and a power of ten up to 1e22 (Clinger's
// fast path), which covers almost all real-world CSV.
func fastFloat(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 40 {
		return 0, false
	}
	i := 0
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		i++
	}
	var mant uint64
	digits, exp := 0, 0
	sawDigit, sawDot := false, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			sawDigit = true
			if mant == 0 && c == '0' {
				if sawDot {
					exp--
				}
				continue
			}
			if digits >= 19 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if sawDot {
				exp--
			}
		case c == '.' && !sawDot:
			sawDot = true
		case c == 'e' || c == 'E':
			if !sawDigit {
				return 0, false
			}
			e, ok := smallInt(b[i+1:])
			if !ok {
				return 0, false
			}
			exp += e
			i = len(b)
		default:
			return 0, false
		}
	}
	if !sawDigit || mant>>53 != 0 {
		return 0, false
	}
	f := float64(mant)
	switch {
	case mant == 0:
	case exp == 0:
	case exp > 0 && exp <= 22:
		f *= pow10[exp]
	case exp < 0 && exp >= -22:
		f /= pow10[-exp]
	default:
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}

func smallInt(b []byte) (int, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 4 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func slowFloat(b []byte) (float32, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var buf [64]byte
	s := b
	if len(b) <= len(buf) {
		// Lower-case a copy so "NaN"/"Infinity" compare cheaply.
		n := copy(buf[:], b)
		for i := 0; i < n; i++ {
			if c := buf[i]; c >= 'A' && c <= 'Z' {
				buf[i] = c + 'a' - 'A'
			}
		}
		s = buf[:n]
	}
	sign := 1.0
	body := s
	if body[0] == '-' || body[0] == '+' {
		if body[0] == '-' {
			sign = -1
		}
		body = body[1:]
	}
	switch string(body) {
	case "nan":
		return float32(math.NaN()), true
	case "inf", "infinity":
		return float32(math.Inf(int(sign))), true
	}
	// Python float() accepts '_' between digits and rejects hex; strconv
	// accepts both, so reject them here.
	for _, c := range body {
		if c == '_' || c == 'x' || c == 'p' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return float32(f), true
		}
		return 0, false
	}
	return float32(f), true
}
