package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// rawCall sends an unsigned awsJson request and returns status and body.
func rawCall(t *testing.T, url, target, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out, resp.Header
}

func TestBadRequestsChangeNothing(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.upload(t, "models", "m/model.tar.gz", modelTarGz(t, map[string]string{"model.txt": "w"}))
	s.createModel(t, "good", nil, "")
	s.createConfig(t, "good", "good", 1)

	role := aws.String("arn:aws:iam::000000000000:role/berth")
	tests := []struct {
		name string
		call func() error
		want string // substring of the message
	}{
		{"model name with underscore", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("bad_name"), ExecutionRoleArn: role, PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage)}})
			return err
		}, "'modelName'"},
		{"model name too long", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(strings.Repeat("a", 64)), ExecutionRoleArn: role, PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage)}})
			return err
		}, "length less than or equal to 63"},
		{"model without container", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("nocontainer"), ExecutionRoleArn: role})
			return err
		}, "primaryContainer"},
		{"unknown image", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("noimage"), ExecutionRoleArn: role, PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("nobody/nothing:1")}})
			return err
		}, "images: section"},
		{"missing model data", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("nodata"), ExecutionRoleArn: role, PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage), ModelDataUrl: aws.String("s3://models/missing/model.tar.gz")}})
			return err
		}, "s3://models/missing/model.tar.gz"},
		{"bad environment key", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("badenv"), ExecutionRoleArn: role, PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage), Environment: map[string]string{"1BAD": "x"}}})
			return err
		}, "environment"},
		{"bad role arn", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("badrole"), ExecutionRoleArn: aws.String("not-an-arn-at-all-xxxxx"), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage)}})
			return err
		}, "executionRoleArn"},
		{"duplicate model", func() error {
			_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("GOOD"), ExecutionRoleArn: role, PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage)}})
			return err
		}, "already existing model"},
		{"config naming unknown model", func() error {
			_, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-x"), ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("ghost"), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}}})
			return err
		}, "Could not find model"},
		{"config with no variants", func() error {
			_, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-y"), ProductionVariants: []smtypes.ProductionVariant{}})
			return err
		}, "productionVariants"},
		{"config with zero instances", func() error {
			_, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-z"), ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("good"), InitialInstanceCount: aws.Int32(0)}}})
			return err
		}, "initialInstanceCount"},
		{"config with duplicate variants", func() error {
			v := smtypes.ProductionVariant{VariantName: aws.String("v"), ModelName: aws.String("good"), InitialInstanceCount: aws.Int32(1)}
			_, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("cfg-d"), ProductionVariants: []smtypes.ProductionVariant{v, v}})
			return err
		}, "unique"},
		{"duplicate config", func() error {
			_, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("good"), ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("good"), InitialInstanceCount: aws.Int32(1)}}})
			return err
		}, "already existing endpoint configuration"},
		{"endpoint naming unknown config", func() error {
			_, err := s.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep-x"), EndpointConfigName: aws.String("ghost")})
			return err
		}, "Could not find endpoint configuration"},
		{"endpoint name with dot", func() error {
			_, err := s.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("ep.x"), EndpointConfigName: aws.String("good")})
			return err
		}, "'endpointName'"},
		{"describe missing endpoint", func() error {
			_, err := s.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("ghost")})
			return err
		}, "Could not find endpoint"},
		{"delete missing model", func() error {
			_, err := s.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("ghost")})
			return err
		}, "Could not find model"},
		{"list with bad MaxResults", func() error {
			_, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1000)})
			return err
		}, "maxResults"},
		{"list with forged token", func() error {
			_, err := s.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{NextToken: aws.String("forged")})
			return err
		}, "nextToken"},
		{"update missing endpoint", func() error {
			_, err := s.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("ghost"), EndpointConfigName: aws.String("good")})
			return err
		}, "Could not find endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := apiError(tt.call())
			if code != "ValidationException" || !strings.Contains(msg, tt.want) {
				t.Errorf("got %s %q, want ValidationException containing %q", code, msg, tt.want)
			}
		})
	}

	models, _ := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{})
	configs, _ := s.sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{})
	endpoints, _ := s.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{})
	if len(models.Models) != 1 || len(configs.EndpointConfigs) != 1 || len(endpoints.Endpoints) != 0 {
		t.Errorf("bad requests left resources behind: %d models, %d configs, %d endpoints", len(models.Models), len(configs.EndpointConfigs), len(endpoints.Endpoints))
	}
}

func TestWireErrors(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	tests := []struct {
		name, target, body string
		status             int
		code, want         string
	}{
		{"malformed json", "SageMaker.CreateModel", `{"ModelName": `, 400, "ValidationException", "not valid JSON"},
		{"wrong type", "SageMaker.CreateModel", `{"ModelName": 5}`, 400, "ValidationException", "modelName"},
		{"wrong nested type", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InitialInstanceCount":"two"}]}`, 400, "ValidationException", "initialInstanceCount"},
		{"unknown enum", "SageMaker.ListEndpoints", `{"SortBy":"Size"}`, 400, "ValidationException", "sortBy"},
		{"unknown operation", "SageMaker.CreateTrainingJobX", `{}`, 400, "UnknownOperationException", "CreateTrainingJobX"},
		{"unknown service", "Foo.Bar", `{}`, 400, "UnknownOperationException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := rawCall(t, s.url, tt.target, tt.body)
			if status != tt.status || body["__type"] != tt.code || !strings.Contains(body["message"].(string), tt.want) {
				t.Errorf("got %d %v, want %d %s containing %q", status, body, tt.status, tt.code, tt.want)
			}
			if hdr.Get("X-Amzn-ErrorType") != tt.code || hdr.Get("x-amzn-RequestId") == "" {
				t.Errorf("headers: %v", hdr)
			}
		})
	}
}

func TestInvokeErrors(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.deploy(t, "small", nil, "", 1)

	_, err := s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("nowhere"), Body: []byte("x")})
	if code, msg := apiError(err); code != "ValidationError" || !strings.Contains(msg, "nowhere") {
		t.Errorf("unknown endpoint: %s %s", code, msg)
	}
	_, err = s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("small"), Body: bytes.Repeat([]byte("x"), 6<<20+1)})
	if code, msg := apiError(err); code != "ValidationError" || !strings.Contains(msg, "larger") {
		t.Errorf("oversized body: %s %s", code, msg)
	}
	_, err = s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("small"), Body: []byte("x"), TargetVariant: aws.String("Nope")})
	if code, msg := apiError(err); code != "ValidationError" || !strings.Contains(msg, "Nope") {
		t.Errorf("unknown variant: %s %s", code, msg)
	}
	out, err := s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("small"), Body: bytes.Repeat([]byte("y"), 6<<20), ContentType: aws.String("application/octet-stream")})
	if err != nil || len(out.Body) != 6<<20 {
		t.Errorf("6 MiB body: %v", err)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	for _, n := range []string{"alpha-1", "alpha-2", "beta-1", "alpha-3"} {
		s.createModel(t, n, nil, "")
	}
	var names []string
	p := sagemaker.NewListModelsPaginator(s.sm, &sagemaker.ListModelsInput{NameContains: aws.String("ALPHA"), SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyAscending, MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range out.Models {
			names = append(names, *m.ModelName)
		}
	}
	if strings.Join(names, ",") != "alpha-1,alpha-2,alpha-3" || pages != 2 {
		t.Errorf("names %v in %d pages", names, pages)
	}
	out, err := s.sm.ListModels(ctx, &sagemaker.ListModelsInput{CreationTimeAfter: aws.Time(before), MaxResults: aws.Int32(100)})
	if err != nil || len(out.Models) != 4 {
		t.Errorf("CreationTimeAfter: %v %v", out, err)
	}
	// Default order is newest first.
	if len(out.Models) == 4 && *out.Models[0].ModelName != "alpha-3" {
		t.Errorf("first model %s, want newest", *out.Models[0].ModelName)
	}
	out, err = s.sm.ListModels(ctx, &sagemaker.ListModelsInput{CreationTimeBefore: aws.Time(before)})
	if err != nil || len(out.Models) != 0 {
		t.Errorf("CreationTimeBefore: %v %v", out, err)
	}
	s.createConfig(t, "cfg", "beta-1", 1)
	s.createEndpoint(t, "ep", "cfg")
	s.waitInService(t, "ep")
	eps, err := s.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{StatusEquals: smtypes.EndpointStatusInService})
	if err != nil || len(eps.Endpoints) != 1 || eps.Endpoints[0].EndpointStatus != smtypes.EndpointStatusInService {
		t.Errorf("StatusEquals InService: %+v %v", eps, err)
	}
	eps, err = s.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{StatusEquals: smtypes.EndpointStatusFailed})
	if err != nil || len(eps.Endpoints) != 0 {
		t.Errorf("StatusEquals Failed: %+v %v", eps, err)
	}
}
