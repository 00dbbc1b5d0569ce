package xgboost

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds adds the smaller fixture models of one format as seeds.
func fuzzSeeds(f *testing.F, file string) {
	f.Helper()
	for _, c := range []string{"binary_logistic", "multi_softmax", "dart_binary", "gblinear_multi", "categorical", "count_poisson"} {
		b, err := os.ReadFile(filepath.Join("testdata", c, file))
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("binf"))
	f.Add([]byte("{"))
	f.Add([]byte(`{"learner":{}}`))
}

// checkDecoded asserts a decode either fails with ErrCorruptModel or gives
// a model that predicts without panicking.
func checkDecoded(t *testing.T, b *Booster, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrCorruptModel) {
			t.Fatalf("error does not wrap ErrCorruptModel: %v", err)
		}
		return
	}
	cols := max(b.NumFeature, 1)
	if cols > 1<<12 {
		return
	}
	rows := make([]float32, 3*cols)
	for i := range rows[:cols] {
		rows[i] = float32(math.NaN())
	}
	for i := range rows[2*cols:] {
		rows[2*cols+i] = float32(i) - 1.5
	}
	if _, err := b.Predict(context.Background(), rows, cols, 1); err != nil {
		t.Fatalf("predict on decoded model: %v", err)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	fuzzSeeds(f, "model.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := fuzzJSON(data)
		checkDecoded(t, b, err)
	})
}

func FuzzDecodeUBJSON(f *testing.F) {
	fuzzSeeds(f, "model.ubj")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := fuzzUBJSON(data)
		checkDecoded(t, b, err)
	})
}

func FuzzDecodeBinary(f *testing.F) {
	fuzzSeeds(f, "xgboost-model")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := fuzzBinary(data)
		checkDecoded(t, b, err)
		b, err = Decode(data)
		checkDecoded(t, b, err)
	})
}

// TestTruncatedModels feeds every prefix-truncation and a few byte flips of
// each fixture to the decoders: errors only, never a panic.
func TestTruncatedModels(t *testing.T) {
	for _, mf := range modelFiles {
		b, err := os.ReadFile(filepath.Join("testdata", "binary_logistic", mf.name))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n += max(1, len(b)/300) {
			if m, err := Decode(b[:n]); err == nil {
				checkDecoded(t, m, nil)
			} else if !errors.Is(err, ErrCorruptModel) {
				t.Fatalf("%s[:%d]: %v", mf.name, n, err)
			}
		}
		for i := 0; i < len(b); i += 7 {
			c := append([]byte(nil), b...)
			c[i] ^= 0xff
			m, err := Decode(c)
			checkDecoded(t, m, err)
		}
	}
}

// fuzzJSON reads a JSON model.
func fuzzJSON(b []byte) (*Booster, error) { return decodeWith(decodeTree(parseJSONModel(b))) }

// fuzzUBJSON reads a UBJSON model.
func fuzzUBJSON(b []byte) (*Booster, error) { return decodeWith(decodeTree(parseUBJSONModel(b))) }

// fuzzBinary reads a legacy binary model.
func fuzzBinary(b []byte) (*Booster, error) { return decodeWith(decodeBinary(b)) }

func decodeWith(raw *rawModel, err error) (*Booster, error) {
	if err != nil {
		return nil, err
	}
	return raw.build()
}
