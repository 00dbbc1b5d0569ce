package awsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/fault"
)

// Timestamp is an awsJson timestamp: epoch seconds as a JSON number, with
// fractions for sub-second precision.
type Timestamp struct{ time.Time }

// NewTimestamp wraps t; the zero time encodes as null.
func NewTimestamp(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	return &Timestamp{t}
}

// MarshalJSON writes epoch seconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds, or an ISO 8601 string as some
// clients send.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return t.setEpoch(f)
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q is neither epoch seconds nor ISO 8601", s)
		}
		t.Time = v
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s is not a number", b)
	}
	return t.setEpoch(f)
}

func (t *Timestamp) setEpoch(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return fmt.Errorf("timestamp %v is out of range", f)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// TimePtr returns the time or nil.
func (t *Timestamp) TimePtr() *time.Time {
	if t == nil {
		return nil
	}
	return &t.Time
}

// MaxJSONBody bounds an awsJson request body.
const MaxJSONBody = 8 << 20

// DecodeJSON reads an awsJson request body into v. Malformed JSON and
// members of the wrong type become Invalid errors that name the member.
func DecodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxJSONBody+1))
	if err != nil {
		return fault.Wrap(fault.Invalid, err, "Could not read the request body")
	}
	if len(body) > MaxJSONBody {
		return fault.New(fault.Invalid, "The request body is larger than %d bytes", MaxJSONBody)
	}
	return UnmarshalJSON(body, v)
}

// UnmarshalJSON decodes an awsJson body, with errors that name the member.
func UnmarshalJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "the request body"
			}
			return fault.Wrap(fault.Invalid, err, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must be of type %s, not %s", lowerFirstPath(field), jsonTypeName(te.Type.String()), te.Value)
		case errors.As(err, &se):
			return fault.Wrap(fault.Invalid, err, "The request body is not valid JSON (at byte %d): %s", se.Offset, se.Error())
		default:
			return fault.Wrap(fault.Invalid, err, "The request body is not valid JSON: %s", err.Error())
		}
	}
	if dec.More() {
		return fault.New(fault.Invalid, "The request body has data after the JSON object")
	}
	return nil
}

// lowerFirstPath writes a Go decoder path (ProductionVariants.ModelName)
// as SageMaker names members (productionVariants.modelName).
func lowerFirstPath(p string) string {
	parts := strings.Split(p, ".")
	for i, s := range parts {
		if s != "" {
			parts[i] = strings.ToLower(s[:1]) + s[1:]
		}
	}
	return strings.Join(parts, ".")
}

func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "number"
	case strings.Contains(goType, "string"):
		return "string"
	case strings.Contains(goType, "bool"):
		return "boolean"
	case strings.HasPrefix(goType, "[]") || strings.HasPrefix(goType, "*[]"):
		return "list"
	case strings.Contains(goType, "map"), strings.Contains(goType, "struct"), strings.Contains(goType, "."):
		return "structure"
	}
	return goType
}

// WriteJSON writes an awsJson success response.
func WriteJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte("{}")
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}
