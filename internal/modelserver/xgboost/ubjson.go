package xgboost

import (
	"encoding/binary"
	"math"
)

// ubjParser decodes the UBJSON dialect XGBoost writes (big-endian, typed
// and counted containers, keys without an 'S' marker).
type ubjParser struct {
	b   []byte
	pos int
}

func parseUBJSONModel(b []byte) (any, error) {
	p := &ubjParser{b: b}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (p *ubjParser) errf(msg string) error {
	return corrupt("ubjson at byte %d: %s", p.pos, msg)
}

func (p *ubjParser) need(n int) error {
	if n < 0 || len(p.b)-p.pos < n {
		return p.errf("unexpected end")
	}
	return nil
}

func (p *ubjParser) byte1() (byte, error) {
	if err := p.need(1); err != nil {
		return 0, err
	}
	c := p.b[p.pos]
	p.pos++
	return c, nil
}

func (p *ubjParser) marker() (byte, error) {
	for {
		c, err := p.byte1()
		if err != nil || c != 'N' {
			return c, err
		}
	}
}

// integer reads an integer of the type given by marker t.
func (p *ubjParser) integer(t byte) (int64, error) {
	var n int
	switch t {
	case 'i', 'U':
		n = 1
	case 'I':
		n = 2
	case 'l':
		n = 4
	case 'L':
		n = 8
	default:
		return 0, p.errf("expected integer type")
	}
	if err := p.need(n); err != nil {
		return 0, err
	}
	b := p.b[p.pos : p.pos+n]
	p.pos += n
	switch t {
	case 'i':
		return int64(int8(b[0])), nil
	case 'U':
		return int64(b[0]), nil
	case 'I':
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 'l':
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	default:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
}

func (p *ubjParser) length() (int, error) {
	t, err := p.marker()
	if err != nil {
		return 0, err
	}
	n, err := p.integer(t)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(len(p.b)-p.pos) {
		return 0, p.errf("length out of range")
	}
	return int(n), nil
}

func (p *ubjParser) str() (string, error) {
	n, err := p.length()
	if err != nil {
		return "", err
	}
	s := string(p.b[p.pos : p.pos+n])
	p.pos += n
	return s, nil
}

func (p *ubjParser) value(depth int) (any, error) {
	t, err := p.marker()
	if err != nil {
		return nil, err
	}
	return p.typed(t, depth)
}

func (p *ubjParser) typed(t byte, depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errf("nesting too deep")
	}
	switch t {
	case 'Z':
		return nil, nil
	case 'T':
		return true, nil
	case 'F':
		return false, nil
	case 'i', 'U', 'I', 'l', 'L':
		return p.integer(t)
	case 'd':
		if err := p.need(4); err != nil {
			return nil, err
		}
		v := math.Float32frombits(binary.BigEndian.Uint32(p.b[p.pos:]))
		p.pos += 4
		return float64(v), nil
	case 'D':
		if err := p.need(8); err != nil {
			return nil, err
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(p.b[p.pos:]))
		p.pos += 8
		return v, nil
	case 'C':
		c, err := p.byte1()
		return string(rune(c)), err
	case 'S', 'H':
		return p.str()
	case '[':
		return p.array(depth)
	case '{':
		return p.object(depth)
	}
	return nil, p.errf("unknown marker " + string(rune(t)))
}

// header reads the optional $type and #count of a container.
func (p *ubjParser) header() (elem byte, count int, err error) {
	count = -1
	if p.pos < len(p.b) && p.b[p.pos] == '$' {
		p.pos++
		if elem, err = p.byte1(); err != nil {
			return 0, 0, err
		}
		if p.pos >= len(p.b) || p.b[p.pos] != '#' {
			return 0, 0, p.errf("typed container without count")
		}
	}
	if p.pos < len(p.b) && p.b[p.pos] == '#' {
		p.pos++
		if count, err = p.length(); err != nil {
			return 0, 0, err
		}
	}
	return elem, count, nil
}

func elemSize(t byte) int {
	switch t {
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return 1 // every other value takes at least one byte
}

func (p *ubjParser) array(depth int) (any, error) {
	elem, count, err := p.header()
	if err != nil {
		return nil, err
	}
	if count >= 0 && elem != 0 {
		if count > (len(p.b)-p.pos)/elemSize(elem) {
			return nil, p.errf("array count out of range")
		}
		b := p.b[p.pos:]
		switch elem {
		case 'd':
			out := make([]float32, count)
			for i := range out {
				out[i] = math.Float32frombits(binary.BigEndian.Uint32(b[4*i:]))
			}
			p.pos += 4 * count
			return out, nil
		case 'D':
			out := make([]float64, count)
			for i := range out {
				out[i] = math.Float64frombits(binary.BigEndian.Uint64(b[8*i:]))
			}
			p.pos += 8 * count
			return out, nil
		case 'U':
			out := make([]uint8, count)
			copy(out, b)
			p.pos += count
			return out, nil
		case 'i':
			out := make([]int32, count)
			for i := range out {
				out[i] = int32(int8(b[i]))
			}
			p.pos += count
			return out, nil
		case 'I':
			out := make([]int32, count)
			for i := range out {
				out[i] = int32(int16(binary.BigEndian.Uint16(b[2*i:])))
			}
			p.pos += 2 * count
			return out, nil
		case 'l':
			out := make([]int32, count)
			for i := range out {
				out[i] = int32(binary.BigEndian.Uint32(b[4*i:]))
			}
			p.pos += 4 * count
			return out, nil
		case 'L':
			out := make([]int64, count)
			for i := range out {
				out[i] = int64(binary.BigEndian.Uint64(b[8*i:]))
			}
			p.pos += 8 * count
			return out, nil
		}
		out := make([]any, count)
		for i := range out {
			if out[i], err = p.typed(elem, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var out []any
	if count >= 0 {
		out = make([]any, 0, count)
	}
	for i := 0; count < 0 || i < count; i++ {
		if count < 0 {
			if p.pos >= len(p.b) {
				return nil, p.errf("unterminated array")
			}
			if p.b[p.pos] == ']' {
				p.pos++
				break
			}
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func (p *ubjParser) object(depth int) (any, error) {
	elem, count, err := p.header()
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	for i := 0; count < 0 || i < count; i++ {
		if count < 0 {
			if p.pos >= len(p.b) {
				return nil, p.errf("unterminated object")
			}
			if p.b[p.pos] == '}' {
				p.pos++
				break
			}
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		var v any
		if elem != 0 {
			v, err = p.typed(elem, depth+1)
		} else {
			v, err = p.value(depth + 1)
		}
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}
