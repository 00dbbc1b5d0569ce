package modelserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/modelserver"
	"github.com/berth-io/berth/internal/modelserver/xgboost"
)

const fixtures = "xgboost/testdata"

// modelDir copies one fixture model into its own directory, as a model.tar.gz
// would unpack.
func modelDir(t *testing.T, fixture, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, fixture, file))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "xgboost-model"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start runs a server on a free loopback port and returns its base URL; the
// server stops when the test ends.
func start(t *testing.T, cfg modelserver.Config) string {
	t.Helper()
	cfg.Port = 0
	cfg.Logger = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := modelserver.New(xgboost.New(xgboost.Options{}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx, func(a net.Addr) { addrc <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return "http://" + a.String()
	case err := <-errc:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start in time")
	}
	return ""
}

func do(t *testing.T, method, url, ct, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestSingleModelContract(t *testing.T) {
	cfg := modelserver.DefaultConfig()
	cfg.ModelDir = modelDir(t, "binary_logistic", "xgboost-model")
	cfg.MaxConcurrentTransforms = 3
	base := start(t, cfg)

	if code, _, _ := do(t, "GET", base+"/ping", "", ""); code != 200 {
		t.Fatalf("ping %d", code)
	}
	code, body, _ := do(t, "GET", base+"/execution-parameters", "", "")
	if code != 200 || body != `{"MaxConcurrentTransforms":3,"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":6}` {
		t.Fatalf("execution-parameters %d %s", code, body)
	}
	code, body, h := do(t, "POST", base+"/invocations", "text/csv", "0.5,-1.25,,2,0.1,-0.3\n1,1,1,1,1,1")
	if code != 200 || h.Get("Content-Type") != "text/csv" || strings.Count(body, ",") != 1 {
		t.Fatalf("invocations %d %q %q", code, h.Get("Content-Type"), body)
	}
	code, body, _ = do(t, "POST", base+"/invocations", "text/csv", "1,2,zz")
	if code != 400 || !strings.Contains(body, "row 1, column 3") {
		t.Fatalf("bad csv %d %q", code, body)
	}
	if code, _, _ = do(t, "POST", base+"/invocations", "text/csv", ""); code != 204 {
		t.Fatalf("empty body %d", code)
	}
	if code, _, _ = do(t, "POST", base+"/invocations", "text/csv", strings.Repeat("1,", 4<<20)); code != 413 {
		t.Fatalf("large body %d", code)
	}
	if code, _, _ = do(t, "POST", base+"/invocations", "image/png", "x"); code != 415 {
		t.Fatalf("bad content type %d", code)
	}
}

func TestMultiModelAPI(t *testing.T) {
	cfg := modelserver.DefaultConfig()
	cfg.MultiModel = true
	cfg.ModelDir = ""
	a := modelDir(t, "binary_logistic", "model.json")
	b := modelDir(t, "multi_softprob", "model.ubj")
	big := modelDir(t, "forest_multi", "xgboost-model")
	cfg.MemoryBudget = 10000 // a and b fit (~8 KB in memory), big does not
	base := start(t, cfg)

	load := func(name, url string) (int, string) {
		body, _ := json.Marshal(map[string]string{"model_name": name, "url": url})
		code, resp, _ := do(t, "POST", base+"/models", "application/json", string(body))
		return code, resp
	}
	if code, resp := load("a", a); code != 200 {
		t.Fatalf("load a: %d %s", code, resp)
	}
	if code, _ := load("a", a); code != 409 {
		t.Fatalf("reload a: %d", code)
	}
	if code, resp := load("b", b); code != 200 {
		t.Fatalf("load b: %d %s", code, resp)
	}
	if code, _ := load("c", filepath.Join(a, "missing")); code != 404 {
		t.Fatalf("missing dir: %d", code)
	}
	if code, resp := load("big", big); code != 507 {
		t.Fatalf("over budget: %d %s", code, resp)
	}
	if code, _, _ := do(t, "POST", base+"/models", "application/json", `{"model_name":""}`); code != 400 {
		t.Fatalf("bad load request: %d", code)
	}

	code, body, _ := do(t, "GET", base+"/models", "", "")
	var list struct {
		Models []struct{ ModelName, ModelURL string } `json:"models"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || len(list.Models) != 2 || list.Models[0].ModelName != "a" {
		t.Fatalf("list %d %s %v", code, body, err)
	}
	code, body, _ = do(t, "GET", base+"/models?page_size=1", "", "")
	if code != 200 || !strings.Contains(body, `"nextPageToken":"1"`) {
		t.Fatalf("paged list %d %s", code, body)
	}
	code, body, _ = do(t, "GET", base+"/models/b", "", "")
	if code != 200 || !strings.Contains(body, `"modelName":"b"`) {
		t.Fatalf("describe %d %s", code, body)
	}
	if code, _, _ = do(t, "GET", base+"/models/zz", "", ""); code != 404 {
		t.Fatalf("describe unknown %d", code)
	}

	row := "0.5,-1.25,,2,0.1,-0.3"
	code, body, _ = do(t, "POST", base+"/models/b/invoke", "text/csv", row)
	if code != 200 || !strings.HasPrefix(body, "[") {
		t.Fatalf("invoke b %d %q", code, body)
	}
	if code, _, _ = do(t, "POST", base+"/models/zz/invoke", "text/csv", row); code != 404 {
		t.Fatalf("invoke unknown %d", code)
	}
	if code, _, _ = do(t, "POST", base+"/invocations", "text/csv", row); code != 404 {
		t.Fatalf("invocations without default model %d", code)
	}
	if code, _, _ = do(t, "DELETE", base+"/models/a", "", ""); code != 200 {
		t.Fatalf("unload %d", code)
	}
	if code, _, _ = do(t, "DELETE", base+"/models/a", "", ""); code != 404 {
		t.Fatalf("unload twice %d", code)
	}
	if code, _, _ = do(t, "POST", base+"/models/a/invoke", "text/csv", row); code != 404 {
		t.Fatalf("invoke unloaded %d", code)
	}
}

func TestStartupFailsWithoutModel(t *testing.T) {
	cfg := modelserver.DefaultConfig()
	cfg.ModelDir = t.TempDir()
	cfg.Port = 0
	srv, err := modelserver.New(xgboost.New(xgboost.Options{}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(context.Background(), nil); err == nil {
		t.Fatal("server started without a model")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"SAGEMAKER_BIND_TO_PORT": "9091", "SM_MODEL_DIR": "/m", "SAGEMAKER_BIND_ALL": "true",
		"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2",
		"BERTH_MODEL_MEMORY_BUDGET": "1000",
	}
	c, err := modelserver.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9091 || c.ModelDir != "/m" || !c.BindAll || c.MaxPayloadBytes != 20<<20 ||
		c.MaxConcurrentTransforms != 2 || c.MemoryBudget != 1000 || c.MultiModel {
		t.Fatalf("config %+v", c)
	}
	env = map[string]string{"SAGEMAKER_BIND_TO_PORT": "x"}
	if _, err := modelserver.ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("bad port accepted")
	}
	d := modelserver.DefaultConfig()
	if d.Port != 8080 || d.ModelDir != "/opt/ml/model" || d.BindAll {
		t.Fatalf("defaults %+v", d)
	}
}

func TestErrorStatus(t *testing.T) {
	err := modelserver.Errorf(418, "teapot %w", io.EOF)
	if modelserver.StatusOf(err) != 418 || !bytes.Contains([]byte(err.Error()), []byte("teapot")) {
		t.Fatalf("%v", err)
	}
	if modelserver.StatusOf(io.EOF) != 500 {
		t.Fatal("plain error is not 500")
	}
}

// TestParquetOverHTTP: Parquet bodies through the server's HTTP handling:
// answered like CSV, bad files 400 with the reason, bodies over the payload
// limit 413 before any parsing.
func TestParquetOverHTTP(t *testing.T) {
	cfg := modelserver.DefaultConfig()
	cfg.ModelDir = modelDir(t, "multi_softprob", "model.json")
	cfg.MaxPayloadBytes = 16 << 10
	base := start(t, cfg)
	rowsPQ, err := os.ReadFile(filepath.Join(fixtures, "multi_softprob", "rows.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	rowsCSV, err := os.ReadFile(filepath.Join(fixtures, "multi_softprob", "rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	code, want, _ := do(t, "POST", base+"/invocations", "text/csv", string(rowsCSV))
	if code != 200 {
		t.Fatalf("csv %d %q", code, want)
	}
	code, got, h := do(t, "POST", base+"/invocations", "application/x-parquet", string(rowsPQ))
	if code != 200 || got != want || h.Get("Content-Type") != "text/csv" {
		t.Fatalf("parquet %d %q %.100q, want %.100q", code, h.Get("Content-Type"), got, want)
	}
	if code, body, _ := do(t, "POST", base+"/invocations", "application/x-parquet", "PAR1\x00\x00\x00\x00PAR1"); code != 400 || !strings.Contains(body, "cannot parse application/x-parquet payload") {
		t.Fatalf("empty footer %d %q", code, body)
	}
	big := append(bytes.Repeat([]byte{0}, 16<<10), rowsPQ...)
	if code, _, _ := do(t, "POST", base+"/invocations", "application/x-parquet", string(big)); code != 413 {
		t.Fatalf("oversized body %d", code)
	}
}
