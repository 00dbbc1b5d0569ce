package xgboost

import (
	"bytes"
	"strconv"
)

// The JSON and UBJSON model decoders both produce a generic value tree:
// map[string]any, []any, string, float64, int64, bool, nil, and for numeric
// arrays []float64 (JSON) or typed slices []float32, []int32, []int64,
// []uint8, []float64 (UBJSON typed arrays). XGBoost's JSON contains NaN and
// Infinity, which encoding/json rejects, so this is a small parser of our own.

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 64

type jsonParser struct {
	b   []byte
	pos int
}

func parseJSONModel(b []byte) (any, error) {
	p := &jsonParser{b: b}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.b) {
		return nil, p.errf("trailing data")
	}
	return v, nil
}

func (p *jsonParser) errf(msg string) error {
	return corrupt("json at byte %d: %s", p.pos, msg)
}

func (p *jsonParser) ws() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errf("nesting too deep")
	}
	p.ws()
	if p.pos >= len(p.b) {
		return nil, p.errf("unexpected end")
	}
	switch c := p.b[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.lit("true")
	case c == 'f':
		return false, p.lit("false")
	case c == 'n':
		return nil, p.lit("null")
	default:
		return p.number()
	}
}

func (p *jsonParser) lit(s string) error {
	if !bytes.HasPrefix(p.b[p.pos:], []byte(s)) {
		return p.errf("invalid literal")
	}
	p.pos += len(s)
	return nil
}

func (p *jsonParser) number() (float64, error) {
	start := p.pos
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			p.pos++
			continue
		}
		break
	}
	s := string(p.b[start:p.pos])
	switch s {
	case "NaN", "-NaN", "nan", "-nan":
		return nanF64(), nil
	case "Infinity", "inf":
		return posInf(), nil
	case "-Infinity", "-inf":
		return -posInf(), nil
	}
	if s == "" {
		return 0, p.errf("unexpected character")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, p.errf("bad number " + strconv.Quote(truncate(s, 32)))
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (p *jsonParser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case '"':
			s := p.b[start:p.pos]
			p.pos++
			return string(s), nil
		case '\\':
			// Rare in models; fall back to strconv for the whole literal.
			end := p.pos
			for end < len(p.b) && p.b[end] != '"' {
				if p.b[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(p.b) {
				return "", p.errf("unterminated string")
			}
			s, err := strconv.Unquote(string(p.b[start-1 : end+1]))
			if err != nil {
				return "", p.errf("bad string escape")
			}
			p.pos = end + 1
			return s, nil
		default:
			p.pos++
		}
	}
	return "", p.errf("unterminated string")
}

func (p *jsonParser) object(depth int) (map[string]any, error) {
	p.pos++
	m := map[string]any{}
	p.ws()
	if p.pos < len(p.b) && p.b[p.pos] == '}' {
		p.pos++
		return m, nil
	}
	for {
		p.ws()
		if p.pos >= len(p.b) || p.b[p.pos] != '"' {
			return nil, p.errf("expected object key")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.pos >= len(p.b) || p.b[p.pos] != ':' {
			return nil, p.errf("expected ':'")
		}
		p.pos++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.ws()
		if p.pos >= len(p.b) {
			return nil, p.errf("unexpected end in object")
		}
		switch p.b[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return m, nil
		default:
			return nil, p.errf("expected ',' or '}'")
		}
	}
}

// array returns []float64 when every element is a number, else []any.
func (p *jsonParser) array(depth int) (any, error) {
	p.pos++
	p.ws()
	if p.pos < len(p.b) && p.b[p.pos] == ']' {
		p.pos++
		return []any{}, nil
	}
	var nums []float64
	var vals []any
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if f, ok := v.(float64); ok && vals == nil {
			nums = append(nums, f)
		} else {
			if vals == nil {
				vals = make([]any, 0, len(nums)+1)
				for _, f := range nums {
					vals = append(vals, f)
				}
				nums = nil
			}
			vals = append(vals, v)
		}
		p.ws()
		if p.pos >= len(p.b) {
			return nil, p.errf("unexpected end in array")
		}
		switch p.b[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			if vals != nil {
				return vals, nil
			}
			return nums, nil
		default:
			return nil, p.errf("expected ',' or ']'")
		}
	}
}
