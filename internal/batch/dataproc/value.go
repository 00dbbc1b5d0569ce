package dataproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// kind is the JSON type of a value.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

// value is a JSON value that keeps what a round trip through map[string]any
// and float64 would lose: the order of an object's members and the exact
// text of numbers ("1.10" stays "1.10"). CSV fields are strings holding the
// field's original text.
type value struct {
	kind kind
	// text is the literal for null, bool and number, and the decoded
	// content of a string.
	text []byte
	arr  []value
	obj  []member
}

// member is one key/value pair of an object, in document order.
type member struct {
	key string
	val value
}

// get returns the member named key.
func (v *value) get(key string) (value, bool) {
	for i := range v.obj {
		if v.obj[i].key == key {
			return v.obj[i].val, true
		}
	}
	return value{}, false
}

// set replaces the member named key, or appends it.
func (v *value) set(key string, val value) {
	for i := range v.obj {
		if v.obj[i].key == key {
			v.obj[i].val = val
			return
		}
	}
	v.obj = append(v.obj, member{key: key, val: val})
}

// parseJSON decodes a stream of whitespace-separated JSON values (one for
// application/json, one a line for JSON Lines).
func parseJSON(data []byte) ([]value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out []value
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: not JSON: %w", ErrInvalidRecord, err)
		}
		v, err := decodeValue(dec, tok)
		if err != nil {
			return nil, fmt.Errorf("%w: not JSON: %w", ErrInvalidRecord, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty JSON record", ErrInvalidRecord)
	}
	return out, nil
}

// decodeValue builds the value that starts with tok. The decoder checks the
// syntax (and bounds the nesting depth), so only the shape is built here.
func decodeValue(dec *json.Decoder, tok json.Token) (value, error) {
	switch t := tok.(type) {
	case nil:
		return value{kind: kindNull, text: []byte("null")}, nil
	case bool:
		if t {
			return value{kind: kindBool, text: []byte("true")}, nil
		}
		return value{kind: kindBool, text: []byte("false")}, nil
	case json.Number:
		return value{kind: kindNumber, text: []byte(t)}, nil
	case string:
		return value{kind: kindString, text: []byte(t)}, nil
	case json.Delim:
		switch t {
		case '[':
			v := value{kind: kindArray, arr: []value{}}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return value{}, err
				}
				e, err := decodeValue(dec, tok)
				if err != nil {
					return value{}, err
				}
				v.arr = append(v.arr, e)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return value{}, err
			}
			return v, nil
		case '{':
			v := value{kind: kindObject, obj: []member{}}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return value{}, err
				}
				key, ok := tok.(string)
				if !ok {
					return value{}, fmt.Errorf("object key is %T", tok)
				}
				tok, err = dec.Token()
				if err != nil {
					return value{}, err
				}
				e, err := decodeValue(dec, tok)
				if err != nil {
					return value{}, err
				}
				// A repeated key keeps its first position and its last
				// value, as encoding/json does for the value.
				v.set(key, e)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return value{}, err
			}
			return v, nil
		}
	}
	return value{}, fmt.Errorf("unexpected token %v", tok)
}

// appendJSON writes v as compact JSON.
func appendJSON(dst []byte, v value) []byte {
	switch v.kind {
	case kindString:
		return appendJSONString(dst, v.text)
	case kindArray:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, e)
		}
		return append(dst, ']')
	case kindObject:
		dst = append(dst, '{')
		for i, m := range v.obj {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, []byte(m.key))
			dst = append(dst, ':')
			dst = appendJSON(dst, m.val)
		}
		return append(dst, '}')
	default:
		return append(dst, v.text...)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string. Invalid UTF-8 (possible in a
// CSV field) becomes U+FFFD so the output is always valid JSON.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// isJSONNumber reports whether s is a number in JSON's grammar.
func isJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}
