package sagemaker

import (
	"context"
	"net/http"
	"time"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/controlplane"
)

// ---- transform jobs ----

func (h *Handler) createTransformJob(ctx context.Context, r *http.Request) (any, error) {
	var in controlplane.TransformJobRequest
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	if err := h.cp.CreateTransformJob(ctx, in); err != nil {
		return nil, err
	}
	return arnOutput{"TransformJobArn": h.cp.ARN("transform-job", in.TransformJobName)}, nil
}

type transformJobNameInput struct {
	TransformJobName string
}

type describeTransformJobOutput struct {
	controlplane.TransformJobRequest
	TransformJobArn    string
	TransformJobStatus string
	FailureReason      string `json:",omitempty"`
	CreationTime       *awsapi.Timestamp
	TransformStartTime *awsapi.Timestamp `json:",omitempty"`
	TransformEndTime   *awsapi.Timestamp `json:",omitempty"`
}

func timePtr(t *time.Time) *awsapi.Timestamp {
	if t == nil {
		return nil
	}
	return awsapi.NewTimestamp(*t)
}

func (h *Handler) describeTransformJob(ctx context.Context, r *http.Request) (any, error) {
	var in transformJobNameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	j, err := h.cp.DescribeTransformJob(ctx, in.TransformJobName)
	if err != nil {
		return nil, err
	}
	out := describeTransformJobOutput{
		TransformJobRequest: j.TransformJobRequest,
		TransformJobArn:     h.cp.ARN("transform-job", j.TransformJobName),
		TransformJobStatus:  j.Status,
		FailureReason:       j.FailureReason,
		CreationTime:        awsapi.NewTimestamp(j.Created),
		TransformStartTime:  timePtr(j.StartTime),
		TransformEndTime:    timePtr(j.EndTime),
	}
	out.Tags = nil // DescribeTransformJob does not return tags
	return out, nil
}

type transformJobSummary struct {
	TransformJobName   string
	TransformJobArn    string
	CreationTime       *awsapi.Timestamp
	TransformEndTime   *awsapi.Timestamp `json:",omitempty"`
	LastModifiedTime   *awsapi.Timestamp
	TransformJobStatus string
	FailureReason      string `json:",omitempty"`
}

func (h *Handler) listTransformJobs(ctx context.Context, r *http.Request) (any, error) {
	var in listInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	recs, next, err := h.cp.ListTransformJobs(ctx, in.query())
	if err != nil {
		return nil, err
	}
	out := struct {
		TransformJobSummaries []transformJobSummary
		NextToken             string `json:"NextToken,omitempty"`
	}{TransformJobSummaries: []transformJobSummary{}, NextToken: next}
	for _, j := range recs {
		out.TransformJobSummaries = append(out.TransformJobSummaries, transformJobSummary{
			TransformJobName:   j.TransformJobName,
			TransformJobArn:    h.cp.ARN("transform-job", j.TransformJobName),
			CreationTime:       awsapi.NewTimestamp(j.Created),
			TransformEndTime:   timePtr(j.EndTime),
			LastModifiedTime:   awsapi.NewTimestamp(j.Modified),
			TransformJobStatus: j.Status,
			FailureReason:      j.FailureReason,
		})
	}
	return out, nil
}

func (h *Handler) stopTransformJob(ctx context.Context, r *http.Request) (any, error) {
	var in transformJobNameInput
	if err := awsapi.DecodeJSON(r, &in); err != nil {
		return nil, err
	}
	return struct{}{}, h.cp.StopTransformJob(ctx, in.TransformJobName)
}
