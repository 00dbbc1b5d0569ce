// Package sagemaker speaks the SageMaker control-plane protocol
// (awsJson1_1, POST / with X-Amz-Target: SageMaker.<Operation>) and
// translates each operation to the control plane.
package sagemaker

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/controlplane"
)

// operation decodes a request, calls the control plane and returns the
// response body.
type operation func(ctx context.Context, r *http.Request) (any, error)

// Handler serves the SageMaker control plane.
type Handler struct {
	cp     *controlplane.Service
	ops    map[string]operation
	logger *slog.Logger
}

// NewHandler returns the control-plane handler.
func NewHandler(cp *controlplane.Service, logger *slog.Logger) *Handler {
	h := &Handler{cp: cp, logger: logger.With("component", "sagemaker-api")}
	h.ops = map[string]operation{
		"CreateModel":                        h.createModel,
		"DescribeModel":                      h.describeModel,
		"ListModels":                         h.listModels,
		"DeleteModel":                        h.deleteModel,
		"CreateEndpointConfig":               h.createEndpointConfig,
		"DescribeEndpointConfig":             h.describeEndpointConfig,
		"ListEndpointConfigs":                h.listEndpointConfigs,
		"DeleteEndpointConfig":               h.deleteEndpointConfig,
		"CreateEndpoint":                     h.createEndpoint,
		"DescribeEndpoint":                   h.describeEndpoint,
		"ListEndpoints":                      h.listEndpoints,
		"DeleteEndpoint":                     h.deleteEndpoint,
		"UpdateEndpoint":                     h.updateEndpoint,
		"UpdateEndpointWeightsAndCapacities": h.updateWeights,
		"CreateTransformJob":                 h.createTransformJob,
		"DescribeTransformJob":               h.describeTransformJob,
		"ListTransformJobs":                  h.listTransformJobs,
		"StopTransformJob":                   h.stopTransformJob,
		"AddTags":                            h.addTags,
		"DeleteTags":                         h.deleteTags,
		"ListTags":                           h.listTags,
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "SageMaker.")
	fn := h.ops[op]
	if !ok || fn == nil || r.Method != http.MethodPost {
		awsapi.WriteError(w, r, h.logger, awsapi.SageMakerCatalog, &awsapi.Error{
			Status:  http.StatusBadRequest,
			Code:    "UnknownOperationException",
			Message: "berth does not support the SageMaker operation " + strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "SageMaker.") + " yet",
		})
		return
	}
	out, err := fn(r.Context(), r)
	if err != nil {
		awsapi.WriteError(w, r, h.logger, awsapi.SageMakerCatalog, err)
		return
	}
	awsapi.WriteJSON(w, out)
}

// ---- models ----

type arnOutput map[string]string

func (h *Handler) createModel(ctx context.Context, r *http.Request) (any, error) {
	var in controlplane.Model
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	if err := h.cp.CreateModel(ctx, in); err != nil {
		return nil, err
	}
	return arnOutput{"ModelArn": h.cp.ARN("model", in.ModelName)}, nil
}

type nameInput struct {
	ModelName          string
	EndpointConfigName string
	EndpointName       string
}

type describeModelOutput struct {
	controlplane.Model
	ModelArn     string
	CreationTime *awsapi.Timestamp
}

func (h *Handler) describeModel(ctx context.Context, r *http.Request) (any, error) {
	var in nameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	m, err := h.cp.DescribeModel(ctx, in.ModelName)
	if err != nil {
		return nil, err
	}
	out := describeModelOutput{Model: m.Model, ModelArn: h.cp.ARN("model", m.ModelName), CreationTime: awsapi.NewTimestamp(m.Created)}
	out.Model.Tags = nil // DescribeModel does not return tags
	return out, nil
}

func (h *Handler) deleteModel(ctx context.Context, r *http.Request) (any, error) {
	var in nameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	return struct{}{}, h.cp.DeleteModel(ctx, in.ModelName)
}

type listInput struct {
	NameContains           string
	StatusEquals           string
	CreationTimeBefore     *awsapi.Timestamp
	CreationTimeAfter      *awsapi.Timestamp
	LastModifiedTimeBefore *awsapi.Timestamp
	LastModifiedTimeAfter  *awsapi.Timestamp
	SortBy                 string
	SortOrder              string
	MaxResults             *int32
	NextToken              string
}

func (in listInput) query() controlplane.ListQuery {
	return controlplane.ListQuery{
		NameContains:           in.NameContains,
		StatusEquals:           in.StatusEquals,
		CreationTimeBefore:     in.CreationTimeBefore.TimePtr(),
		CreationTimeAfter:      in.CreationTimeAfter.TimePtr(),
		LastModifiedTimeBefore: in.LastModifiedTimeBefore.TimePtr(),
		LastModifiedTimeAfter:  in.LastModifiedTimeAfter.TimePtr(),
		SortBy:                 in.SortBy,
		SortOrder:              in.SortOrder,
		MaxResults:             in.MaxResults,
		NextToken:              in.NextToken,
	}
}

type modelSummary struct {
	ModelName    string
	ModelArn     string
	CreationTime *awsapi.Timestamp
}

func (h *Handler) listModels(ctx context.Context, r *http.Request) (any, error) {
	var in listInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	recs, next, err := h.cp.ListModels(ctx, in.query())
	if err != nil {
		return nil, err
	}
	out := struct {
		Models    []modelSummary
		NextToken string `json:"NextToken,omitempty"`
	}{Models: []modelSummary{}, NextToken: next}
	for _, m := range recs {
		out.Models = append(out.Models, modelSummary{m.ModelName, h.cp.ARN("model", m.ModelName), awsapi.NewTimestamp(m.Created)})
	}
	return out, nil
}

// ---- endpoint configs ----

func (h *Handler) createEndpointConfig(ctx context.Context, r *http.Request) (any, error) {
	var in controlplane.EndpointConfig
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	if err := h.cp.CreateEndpointConfig(ctx, in); err != nil {
		return nil, err
	}
	return arnOutput{"EndpointConfigArn": h.cp.ARN("endpoint-config", in.EndpointConfigName)}, nil
}

type describeEndpointConfigOutput struct {
	controlplane.EndpointConfig
	EndpointConfigArn string
	CreationTime      *awsapi.Timestamp
}

func (h *Handler) describeEndpointConfig(ctx context.Context, r *http.Request) (any, error) {
	var in nameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	c, err := h.cp.DescribeEndpointConfig(ctx, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	out := describeEndpointConfigOutput{EndpointConfig: c.EndpointConfig, EndpointConfigArn: h.cp.ARN("endpoint-config", c.EndpointConfigName), CreationTime: awsapi.NewTimestamp(c.Created)}
	out.EndpointConfig.Tags = nil
	return out, nil
}

func (h *Handler) deleteEndpointConfig(ctx context.Context, r *http.Request) (any, error) {
	var in nameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	return struct{}{}, h.cp.DeleteEndpointConfig(ctx, in.EndpointConfigName)
}

type endpointConfigSummary struct {
	EndpointConfigName string
	EndpointConfigArn  string
	CreationTime       *awsapi.Timestamp
}

func (h *Handler) listEndpointConfigs(ctx context.Context, r *http.Request) (any, error) {
	var in listInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	recs, next, err := h.cp.ListEndpointConfigs(ctx, in.query())
	if err != nil {
		return nil, err
	}
	out := struct {
		EndpointConfigs []endpointConfigSummary
		NextToken       string `json:"NextToken,omitempty"`
	}{EndpointConfigs: []endpointConfigSummary{}, NextToken: next}
	for _, c := range recs {
		out.EndpointConfigs = append(out.EndpointConfigs, endpointConfigSummary{c.EndpointConfigName, h.cp.ARN("endpoint-config", c.EndpointConfigName), awsapi.NewTimestamp(c.Created)})
	}
	return out, nil
}

// ---- endpoints ----

type createEndpointInput struct {
	EndpointName       string
	EndpointConfigName string
	DeploymentConfig   *controlplane.DeploymentConfig
	Tags               []controlplane.Tag
}

func (h *Handler) createEndpoint(ctx context.Context, r *http.Request) (any, error) {
	var in createEndpointInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	if err := h.cp.CreateEndpoint(ctx, in.EndpointName, in.EndpointConfigName, in.Tags, in.DeploymentConfig); err != nil {
		return nil, err
	}
	return arnOutput{"EndpointArn": h.cp.ARN("endpoint", in.EndpointName)}, nil
}

type variantSummary struct {
	VariantName          string
	DeployedImages       []deployedImage `json:",omitempty"`
	CurrentWeight        float32
	DesiredWeight        float32
	CurrentInstanceCount int32
	DesiredInstanceCount int32
}

type deployedImage struct {
	SpecifiedImage string            `json:",omitempty"`
	ResolvedImage  string            `json:",omitempty"`
	ResolutionTime *awsapi.Timestamp `json:",omitempty"`
}

type describeEndpointOutput struct {
	EndpointName             string
	EndpointArn              string
	EndpointConfigName       string
	ProductionVariants       []variantSummary `json:",omitempty"`
	EndpointStatus           string
	FailureReason            string `json:",omitempty"`
	CreationTime             *awsapi.Timestamp
	LastModifiedTime         *awsapi.Timestamp
	LastDeploymentConfig     *controlplane.DeploymentConfig `json:",omitempty"`
	DataCaptureConfig        *dataCaptureSummary            `json:",omitempty"`
	ShadowProductionVariants []variantSummary               `json:",omitempty"`
}

type dataCaptureSummary struct {
	EnableCapture             bool
	CaptureStatus             string
	CurrentSamplingPercentage int32
	DestinationS3Uri          string
	KmsKeyId                  string `json:",omitempty"`
}

func (h *Handler) describeEndpoint(ctx context.Context, r *http.Request) (any, error) {
	var in nameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	e, err := h.cp.DescribeEndpoint(ctx, in.EndpointName)
	if err != nil {
		return nil, err
	}
	out := describeEndpointOutput{
		EndpointName:         e.EndpointName,
		EndpointArn:          h.cp.ARN("endpoint", e.EndpointName),
		EndpointConfigName:   e.EndpointConfigName,
		EndpointStatus:       e.Status,
		FailureReason:        e.FailureReason,
		CreationTime:         awsapi.NewTimestamp(e.Created),
		LastModifiedTime:     awsapi.NewTimestamp(e.Modified),
		LastDeploymentConfig: e.DeploymentConfig,
	}
	if e.Deployed != nil && e.Deployed.Config.DataCaptureConfig != nil {
		dc := e.Deployed.Config.DataCaptureConfig
		enabled := dc.EnableCapture == nil || *dc.EnableCapture
		sum := &dataCaptureSummary{EnableCapture: enabled, CaptureStatus: "Stopped", DestinationS3Uri: dc.DestinationS3Uri, KmsKeyId: dc.KmsKeyId}
		if enabled {
			sum.CaptureStatus = "Started"
		}
		if dc.InitialSamplingPercentage != nil {
			sum.CurrentSamplingPercentage = *dc.InitialSamplingPercentage
		}
		out.DataCaptureConfig = sum
	}
	for _, v := range e.Variants {
		vs := variantSummary{
			VariantName:          v.VariantName,
			CurrentWeight:        v.CurrentWeight,
			DesiredWeight:        v.DesiredWeight,
			CurrentInstanceCount: v.CurrentInstanceCount,
			DesiredInstanceCount: v.DesiredInstanceCount,
		}
		for _, img := range v.DeployedImages {
			di := deployedImage{SpecifiedImage: img.SpecifiedImage, ResolvedImage: img.ResolvedImage}
			if img.ResolutionTime > 0 {
				di.ResolutionTime = &awsapi.Timestamp{Time: timeFromEpoch(img.ResolutionTime)}
			}
			vs.DeployedImages = append(vs.DeployedImages, di)
		}
		if v.Shadow {
			out.ShadowProductionVariants = append(out.ShadowProductionVariants, vs)
		} else {
			out.ProductionVariants = append(out.ProductionVariants, vs)
		}
	}
	return out, nil
}

func (h *Handler) deleteEndpoint(ctx context.Context, r *http.Request) (any, error) {
	var in nameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	return struct{}{}, h.cp.DeleteEndpoint(ctx, in.EndpointName)
}

type endpointSummary struct {
	EndpointName     string
	EndpointArn      string
	CreationTime     *awsapi.Timestamp
	LastModifiedTime *awsapi.Timestamp
	EndpointStatus   string
}

func (h *Handler) listEndpoints(ctx context.Context, r *http.Request) (any, error) {
	var in listInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	recs, next, err := h.cp.ListEndpoints(ctx, in.query())
	if err != nil {
		return nil, err
	}
	out := struct {
		Endpoints []endpointSummary
		NextToken string `json:"NextToken,omitempty"`
	}{Endpoints: []endpointSummary{}, NextToken: next}
	for _, e := range recs {
		out.Endpoints = append(out.Endpoints, endpointSummary{e.EndpointName, h.cp.ARN("endpoint", e.EndpointName), awsapi.NewTimestamp(e.Created), awsapi.NewTimestamp(e.Modified), e.Status})
	}
	return out, nil
}

type updateEndpointInput struct {
	EndpointName                     string
	EndpointConfigName               string
	RetainAllVariantProperties       bool
	ExcludeRetainedVariantProperties []map[string]any
	DeploymentConfig                 *controlplane.DeploymentConfig
	RetainDeploymentConfig           bool
}

func (h *Handler) updateEndpoint(ctx context.Context, r *http.Request) (any, error) {
	var in updateEndpointInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	if err := h.cp.UpdateEndpoint(ctx, in.EndpointName, in.EndpointConfigName, in.DeploymentConfig, in.RetainDeploymentConfig); err != nil {
		return nil, err
	}
	return arnOutput{"EndpointArn": h.cp.ARN("endpoint", in.EndpointName)}, nil
}

type updateWeightsInput struct {
	EndpointName                string
	DesiredWeightsAndCapacities []controlplane.DesiredWeightAndCapacity
}

func (h *Handler) updateWeights(ctx context.Context, r *http.Request) (any, error) {
	var in updateWeightsInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	if err := h.cp.UpdateEndpointWeightsAndCapacities(ctx, in.EndpointName, in.DesiredWeightsAndCapacities); err != nil {
		return nil, err
	}
	return arnOutput{"EndpointArn": h.cp.ARN("endpoint", in.EndpointName)}, nil
}

func timeFromEpoch(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// ---- tags ----

type tagsInput struct {
	ResourceArn string
	Tags        []controlplane.Tag
	TagKeys     []string
	MaxResults  *int32
	NextToken   string
}

func (h *Handler) addTags(ctx context.Context, r *http.Request) (any, error) {
	var in tagsInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	tags, err := h.cp.AddTags(ctx, in.ResourceArn, in.Tags)
	if err != nil {
		return nil, err
	}
	return struct{ Tags []controlplane.Tag }{tags}, nil
}

func (h *Handler) deleteTags(ctx context.Context, r *http.Request) (any, error) {
	var in tagsInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	return struct{}{}, h.cp.DeleteTags(ctx, in.ResourceArn, in.TagKeys)
}

func (h *Handler) listTags(ctx context.Context, r *http.Request) (any, error) {
	var in tagsInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	tags, err := h.cp.ListTags(ctx, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []controlplane.Tag{}
	}
	// A resource has at most 50 tags, so one page always holds them all.
	return struct{ Tags []controlplane.Tag }{tags}, nil
}
