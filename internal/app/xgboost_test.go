package app_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// TestSageMakerXGBoostImage deploys a model.tar.gz holding an xgboost-model
// file (XGBoost's legacy binary format, as SageMaker training writes it)
// with the SageMaker XGBoost image URI, unchanged, and checks berth's
// built-in server predicts what python xgboost predicted for the fixture.
func TestSageMakerXGBoostImage(t *testing.T) {
	fixture := filepath.Join("..", "modelserver", "xgboost", "testdata", "binary_logistic")
	model, err := os.ReadFile(filepath.Join(fixture, "xgboost-model"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := os.ReadFile(filepath.Join(fixture, "rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var expected struct{ Predict []float64 }
	data, err := os.ReadFile(filepath.Join(fixture, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}

	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.upload(t, "models", "xgb/model.tar.gz", modelTarGz(t, map[string]string{"xgboost-model": string(model)}))
	_, err = s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("xgb"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image:        aws.String("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
			ModelDataUrl: aws.String("s3://models/xgb/model.tar.gz"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.createConfig(t, "xgb", "xgb", 1)
	s.createEndpoint(t, "xgb", "xgb")
	s.waitInService(t, "xgb")

	out, err := s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("xgb"),
		ContentType:  aws.String("text/csv"),
		Body:         rows,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.FieldsFunc(strings.TrimSpace(string(out.Body)), func(r rune) bool { return r == ',' || r == '\n' })
	if len(got) != len(expected.Predict) {
		t.Fatalf("%d predictions, want %d: %.200s", len(got), len(expected.Predict), out.Body)
	}
	for i, g := range got {
		v, err := strconv.ParseFloat(g, 64)
		if err != nil {
			t.Fatalf("prediction %d: %v", i, err)
		}
		if want := expected.Predict[i]; math.Abs(v-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("row %d: %v, python xgboost %v", i, v, want)
		}
	}

	// A malformed row is the client's error, named by the model server.
	_, err = s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("xgb"), ContentType: aws.String("text/csv"), Body: []byte("1,2,abc\n"),
	})
	if code, msg := apiError(err); code != "ModelError" || !strings.Contains(msg, "(400)") {
		t.Errorf("malformed row: %s %s", code, msg)
	}
}
