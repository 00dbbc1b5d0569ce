package controlplane

// Transform jobs (batch transform) as a resource kind. The API calls here
// validate, persist the job as desired state and notify the job's
// reconcile loop (s.jobs); syncJob is that loop's pass. A pass over an
// InProgress job runs the whole job: it starts the model's instances,
// publishes them to the router under a table of the job's own, and hands
// the data path to internal/batch. StopTransformJob marks the job Stopping
// and interrupts the pass; a restart (Restore) notifies every unfinished
// job, whose new pass skips the objects checkpointed in the store.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/batch"
	"github.com/berth-io/berth/internal/batch/dataproc"
	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/router"
	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/store"
)

const kindTransformJob = "transform-job"

// Transform job statuses.
const (
	JobInProgress = "InProgress"
	JobCompleted  = "Completed"
	JobFailed     = "Failed"
	JobStopping   = "Stopping"
	JobStopped    = "Stopped"
)

// Defaults SageMaker applies to a transform job.
const (
	defaultMaxPayloadMB       = 6
	defaultMaxConcurrent      = 1
	defaultInvocationsTimeout = 600
	defaultInvocationsRetries = 3
)

// JobInvoker sends a transform job's mini-batches: the router.
type JobInvoker interface {
	Invoke(ctx context.Context, endpoint string, req router.Request) (*router.Response, error)
}

// TransformJobRequest is CreateTransformJob's input, stored as the job's
// desired state.
type TransformJobRequest struct {
	TransformJobName        string
	ModelName               string
	MaxConcurrentTransforms *int32              `json:",omitempty"`
	ModelClientConfig       *ModelClientConfig  `json:",omitempty"`
	MaxPayloadInMB          *int32              `json:",omitempty"`
	BatchStrategy           string              `json:",omitempty"`
	Environment             map[string]string   `json:",omitempty"`
	TransformInput          *TransformInput     `json:",omitempty"`
	TransformOutput         *TransformOutput    `json:",omitempty"`
	TransformResources      *TransformResources `json:",omitempty"`
	DataProcessing          *DataProcessing     `json:",omitempty"`
	DataCaptureConfig       json.RawMessage     `json:",omitempty"`
	ExperimentConfig        json.RawMessage     `json:",omitempty"`
	Tags                    []Tag               `json:",omitempty"`
}

// ModelClientConfig bounds each invocation of a transform job.
type ModelClientConfig struct {
	InvocationsTimeoutInSeconds *int32 `json:",omitempty"`
	InvocationsMaxRetries       *int32 `json:",omitempty"`
}

// TransformInput says where a job's input is and how to cut it.
type TransformInput struct {
	DataSource      *TransformDataSource `json:",omitempty"`
	ContentType     string               `json:",omitempty"`
	CompressionType string               `json:",omitempty"`
	SplitType       string               `json:",omitempty"`
}

// TransformDataSource holds the S3 source.
type TransformDataSource struct {
	S3DataSource *TransformS3DataSource `json:",omitempty"`
}

// TransformS3DataSource is the input location.
type TransformS3DataSource struct {
	S3DataType string
	S3Uri      string
}

// TransformOutput says where and how output is written.
type TransformOutput struct {
	S3OutputPath string
	Accept       string `json:",omitempty"`
	AssembleWith string `json:",omitempty"`
	KmsKeyId     string `json:",omitempty"`
}

// TransformResources is the job's fleet.
type TransformResources struct {
	InstanceType   string
	InstanceCount  *int32 `json:",omitempty"`
	VolumeKmsKeyId string `json:",omitempty"`
}

// DataProcessing is the job's input/output filtering and join.
type DataProcessing struct {
	InputFilter  string `json:",omitempty"`
	OutputFilter string `json:",omitempty"`
	JoinSource   string `json:",omitempty"`
}

// TransformJob is a stored transform job: the request, the model frozen
// at creation, and what the loop observed.
type TransformJob struct {
	TransformJobRequest
	// Model is the model as it was when the job was created (SageMaker
	// copies it, so deleting the model does not break the job).
	Model         Model      `json:"FrozenModel"`
	FailureReason string     `json:",omitempty"`
	StartTime     *time.Time `json:",omitempty"`
	EndTime       *time.Time `json:",omitempty"`
}

// TransformJobRecord is a stored job with its status and times.
type TransformJobRecord struct {
	TransformJob
	Status   string
	Created  time.Time
	Modified time.Time
}

var (
	s3URIPattern     = regexp.MustCompile(`^(https|s3)://([^/]+)/?(.*)$`)
	jobEnvKeyPattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`) // and at most 1024 long
)

var transformInstanceTypes = []string{"ml.m4.xlarge", "ml.m4.2xlarge", "ml.m4.4xlarge", "ml.m4.10xlarge", "ml.m4.16xlarge", "ml.c4.xlarge", "ml.c4.2xlarge", "ml.c4.4xlarge", "ml.c4.8xlarge", "ml.p2.xlarge", "ml.p2.8xlarge", "ml.p2.16xlarge", "ml.p3.2xlarge", "ml.p3.8xlarge", "ml.p3.16xlarge", "ml.c5.xlarge", "ml.c5.2xlarge", "ml.c5.4xlarge", "ml.c5.9xlarge", "ml.c5.18xlarge", "ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge", "ml.m5.12xlarge", "ml.m5.24xlarge", "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g4dn.4xlarge", "ml.g4dn.8xlarge", "ml.g4dn.12xlarge", "ml.g4dn.16xlarge"}

func validateTransformJob(j *TransformJobRequest) error {
	var v validator
	v.name("transformJobName", j.TransformJobName)
	v.name("modelName", j.ModelName)
	if p := j.MaxConcurrentTransforms; p != nil && *p < 0 {
		v.add("Value '%d' at 'maxConcurrentTransforms' failed to satisfy constraint: Member must have value greater than or equal to 0", *p)
	}
	if p := j.MaxPayloadInMB; p != nil && (*p < 0 || *p > 100) {
		v.add("Value '%d' at 'maxPayloadInMB' failed to satisfy constraint: Member must have value between 0 and 100", *p)
	}
	v.enum("batchStrategy", j.BatchStrategy, "MultiRecord", "SingleRecord")
	if c := j.ModelClientConfig; c != nil {
		if p := c.InvocationsTimeoutInSeconds; p != nil && (*p < 1 || *p > 3600) {
			v.add("Value '%d' at 'modelClientConfig.invocationsTimeoutInSeconds' failed to satisfy constraint: Member must have value between 1 and 3600", *p)
		}
		if p := c.InvocationsMaxRetries; p != nil && (*p < 0 || *p > 3) {
			v.add("Value '%d' at 'modelClientConfig.invocationsMaxRetries' failed to satisfy constraint: Member must have value between 0 and 3", *p)
		}
	}
	if len(j.Environment) > 16 {
		v.add("Value at 'environment' failed to satisfy constraint: Member must have length less than or equal to 16")
	}
	for k, val := range j.Environment {
		if len(k) > 1024 || !jobEnvKeyPattern.MatchString(k) {
			v.add("Value '%s' at 'environment' failed to satisfy constraint: Map keys must satisfy constraints: [Member must have length less than or equal to 1024, Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]{0,1023}]", k)
		}
		if len(val) > 10240 {
			v.add("Value at 'environment' failed to satisfy constraint: Map value must have length less than or equal to 10240")
		}
		if strings.IndexByte(val, 0) >= 0 {
			v.add("Value at 'environment.%s' failed to satisfy constraint: Member must not contain the NUL character", k)
		}
	}
	v.required("transformInput", j.TransformInput != nil)
	if in := j.TransformInput; in != nil {
		v.required("transformInput.dataSource", in.DataSource != nil)
		if in.DataSource != nil {
			v.required("transformInput.dataSource.s3DataSource", in.DataSource.S3DataSource != nil)
			if s := in.DataSource.S3DataSource; s != nil {
				v.required("transformInput.dataSource.s3DataSource.s3DataType", s.S3DataType != "")
				v.enum("transformInput.dataSource.s3DataSource.s3DataType", s.S3DataType, "ManifestFile", "S3Prefix", "AugmentedManifestFile")
				v.s3URI("transformInput.dataSource.s3DataSource.s3Uri", s.S3Uri)
			}
		}
		v.maxLen("transformInput.contentType", in.ContentType, 256)
		v.enum("transformInput.compressionType", in.CompressionType, "None", "Gzip")
		v.enum("transformInput.splitType", in.SplitType, "None", "Line", "RecordIO", "TFRecord")
	}
	v.required("transformOutput", j.TransformOutput != nil)
	if out := j.TransformOutput; out != nil {
		v.s3URI("transformOutput.s3OutputPath", out.S3OutputPath)
		v.maxLen("transformOutput.accept", out.Accept, 256)
		v.enum("transformOutput.assembleWith", out.AssembleWith, "None", "Line")
		v.maxLen("transformOutput.kmsKeyId", out.KmsKeyId, 2048)
	}
	v.required("transformResources", j.TransformResources != nil)
	if r := j.TransformResources; r != nil {
		v.required("transformResources.instanceType", r.InstanceType != "")
		v.enum("transformResources.instanceType", r.InstanceType, transformInstanceTypes...)
		v.required("transformResources.instanceCount", r.InstanceCount != nil)
		if r.InstanceCount != nil && *r.InstanceCount < 1 {
			v.add("Value '%d' at 'transformResources.instanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1", *r.InstanceCount)
		}
	}
	if dp := j.DataProcessing; dp != nil {
		v.maxLen("dataProcessing.inputFilter", dp.InputFilter, 63)
		v.maxLen("dataProcessing.outputFilter", dp.OutputFilter, 63)
		v.enum("dataProcessing.joinSource", dp.JoinSource, "Input", "None")
	}
	v.tags("tags", j.Tags)
	if err := v.err(); err != nil {
		return err
	}
	// Cross-field rules, checked once every field is well formed.
	payload := int32(defaultMaxPayloadMB)
	if j.MaxPayloadInMB != nil {
		payload = *j.MaxPayloadInMB
	}
	if mct := j.MaxConcurrentTransforms; mct != nil && int64(*mct)*int64(payload) > 100 {
		return fault.New(fault.Invalid, "MaxConcurrentTransforms (%d) multiplied by MaxPayloadInMB (%d) must not exceed 100 MB.", *mct, payload)
	}
	if j.BatchStrategy == "MultiRecord" && (j.TransformInput.SplitType == "" || j.TransformInput.SplitType == "None") {
		return fault.New(fault.Invalid, "BatchStrategy MultiRecord needs a SplitType (Line, RecordIO or TFRecord) to cut records from; with SplitType None each object is one record, so use SingleRecord.")
	}
	return nil
}

func (v *validator) s3URI(field, uri string) {
	switch {
	case uri == "":
		v.required(field, false)
	case len(uri) > 1024:
		v.maxLen(field, uri, 1024)
	case !s3URIPattern.MatchString(uri):
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$", uri, field)
	}
}

// checkTransformSupported refuses what berth's transform jobs do not do yet.
func checkTransformSupported(j *TransformJobRequest) error {
	unsupported := func(what string) error {
		return fault.New(fault.Invalid, "berth does not support %s for transform jobs yet.", what)
	}
	in := j.TransformInput
	switch {
	case in.DataSource.S3DataSource.S3DataType != "S3Prefix":
		return unsupported("S3DataType " + in.DataSource.S3DataSource.S3DataType)
	case strings.HasPrefix(in.DataSource.S3DataSource.S3Uri, "https://"), strings.HasPrefix(j.TransformOutput.S3OutputPath, "https://"):
		return unsupported("https:// locations (use s3:// URIs)")
	case j.MaxPayloadInMB != nil && *j.MaxPayloadInMB == 0:
		return unsupported("MaxPayloadInMB 0 (unbounded, chunked payloads)")
	case len(j.DataCaptureConfig) > 0 && string(j.DataCaptureConfig) != "null":
		return unsupported("DataCaptureConfig")
	}
	_, err := newProcessor(j)
	return err
}

// newProcessor compiles the job's DataProcessing; nil when it has none.
// SageMaker filters and joins JSON and CSV input only, so a binary
// SplitType (RecordIO, TFRecord) cannot be combined with it, and the
// content types must be ones the filters read.
func newProcessor(j *TransformJobRequest) (*dataproc.Processor, error) {
	dp := j.DataProcessing
	if dp == nil {
		return nil, nil
	}
	p, err := dataproc.New(dataproc.Config{
		InputFilter:  dp.InputFilter,
		OutputFilter: dp.OutputFilter,
		JoinSource:   dp.JoinSource,
		ContentType:  j.TransformInput.ContentType,
		Accept:       j.TransformOutput.Accept,
	})
	if err != nil {
		// The field comes first in err; drop the sentinel's own words so
		// they do not repeat the prefix.
		msg := strings.Replace(err.Error(), dataproc.ErrInvalidConfig.Error()+": ", "", 1)
		return nil, fault.New(fault.Invalid, "Invalid DataProcessing: %s", msg)
	}
	if p.Identity() {
		return nil, nil
	}
	if split := j.TransformInput.SplitType; split == "RecordIO" || split == "TFRecord" {
		return nil, fault.New(fault.Invalid, "DataProcessing (InputFilter, OutputFilter, JoinSource Input) applies to JSON and CSV input only; it cannot be used with SplitType %s.", split)
	}
	return p, nil
}

// CreateTransformJob validates and stores a transform job as InProgress,
// then wakes its loop, which runs it.
func (s *Service) CreateTransformJob(ctx context.Context, req TransformJobRequest) error {
	if err := validateTransformJob(&req); err != nil {
		return err
	}
	if err := checkTransformSupported(&req); err != nil {
		return err
	}
	if s.opts.Objects == nil || s.opts.Jobs == nil {
		return fault.New(fault.Invalid, "berth does not support transform jobs in this configuration (no object store or router).")
	}
	m, err := s.getModel(ctx, req.ModelName)
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return fault.New(fault.Invalid, "Could not find model %q.", s.ARN("model", req.ModelName))
		}
		return err
	}
	if m.PrimaryContainer == nil {
		return fault.New(fault.Invalid, "berth does not support models without a PrimaryContainer for transform jobs yet.")
	}
	// The job's Environment reaches the model process as the model's own
	// does, so it obeys the same rules (see checkProcessEnv).
	if img, err := s.opts.Images.Resolve(m.PrimaryContainer.Image); err == nil && img.Kind == runtime.KindProcess {
		for _, k := range slices.Sorted(maps.Keys(req.Environment)) {
			if why := runtime.RefusedProcessEnv(k); why != "" {
				return fault.New(fault.Invalid, "Environment variable %s at 'environment' is not allowed for image %s, which berth runs as a local process: %s.", k, m.PrimaryContainer.Image, why)
			}
		}
	}
	job := TransformJob{TransformJobRequest: req, Model: m.Model}
	job.Model.Tags = nil
	// A job name stays taken after the job ends, as in SageMaker.
	if err := s.create(ctx, kindTransformJob, req.TransformJobName, JobInProgress, job, "transform job"); err != nil {
		if fault.KindOf(err) == fault.Exists {
			return fault.New(fault.InUse, "Job name must be unique within an AWS account and region, and a job with this name already exists (%s).", s.ARN(kindTransformJob, req.TransformJobName))
		}
		return err
	}
	s.jobs.notify(loopKey(req.TransformJobName))
	return nil
}

func (s *Service) getTransformJob(ctx context.Context, name string) (TransformJobRecord, error) {
	rec, err := s.opts.Store.Get(ctx, kindTransformJob, name)
	if errors.Is(err, store.ErrNotFound) {
		return TransformJobRecord{}, fault.New(fault.NotFound, "Could not find requested job with name %s", name)
	}
	if err != nil {
		return TransformJobRecord{}, err
	}
	return decodeTransformJob(rec)
}

func decodeTransformJob(rec store.Record) (TransformJobRecord, error) {
	var j TransformJob
	if err := json.Unmarshal(rec.Body, &j); err != nil {
		return TransformJobRecord{}, fmt.Errorf("decode transform job %q: %w", rec.Name, err)
	}
	return TransformJobRecord{TransformJob: j, Status: rec.Status, Created: rec.Created, Modified: rec.Modified}, nil
}

// DescribeTransformJob returns a stored transform job.
func (s *Service) DescribeTransformJob(ctx context.Context, name string) (TransformJobRecord, error) {
	if err := nameArg("transformJobName", name); err != nil {
		return TransformJobRecord{}, err
	}
	return s.getTransformJob(ctx, name)
}

var transformJobList = listSpec{kind: kindTransformJob, sortKeys: []string{"Name", "CreationTime", "Status"},
	statuses: []string{JobInProgress, JobCompleted, JobFailed, JobStopping, JobStopped}}

// ListTransformJobs lists transform jobs.
func (s *Service) ListTransformJobs(ctx context.Context, q ListQuery) ([]TransformJobRecord, string, error) {
	recs, next, err := s.list(ctx, transformJobList, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]TransformJobRecord, 0, len(recs))
	for _, r := range recs {
		j, err := decodeTransformJob(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, j)
	}
	return out, next, nil
}

// StopTransformJob marks an InProgress job Stopping and interrupts its
// run; the loop then writes Stopped. Stopping a job that has ended does
// nothing, as in SageMaker.
func (s *Service) StopTransformJob(ctx context.Context, name string) error {
	if err := nameArg("transformJobName", name); err != nil {
		return err
	}
	changed := false
	_, err := s.opts.Store.Update(ctx, kindTransformJob, name, func(rec *store.Record) error {
		if rec.Status != JobInProgress {
			return nil
		}
		rec.Status, rec.Modified, changed = JobStopping, s.opts.Now(), true
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.NotFound, "Could not find requested job with name %s", name)
	}
	if err != nil {
		return err
	}
	if changed {
		s.jobs.interrupt(loopKey(name))
	}
	return nil
}

// changeJob reads, changes and writes back a job in one transaction.
func (s *Service) changeJob(ctx context.Context, name string, change func(status string, j *TransformJob) string) error {
	_, err := s.opts.Store.Update(ctx, kindTransformJob, name, func(rec *store.Record) error {
		var j TransformJob
		if err := json.Unmarshal(rec.Body, &j); err != nil {
			return fmt.Errorf("decode transform job %q: %w", name, err)
		}
		status := change(rec.Status, &j)
		data, err := json.Marshal(j)
		if err != nil {
			return err
		}
		rec.Body, rec.Status, rec.Modified = data, status, s.opts.Now()
		return nil
	})
	return err
}

// finishJob writes a final status and forgets the job's checkpoints.
func (s *Service) finishJob(name, status, reason string) {
	ctx := context.Background()
	now := s.opts.Now()
	err := s.changeJob(ctx, name, func(_ string, j *TransformJob) string {
		j.FailureReason = truncate(reason, 1024)
		j.EndTime = &now
		return status
	})
	if err != nil {
		s.log.Error("write transform job status", "job", name, "status", status, "err", err)
		return
	}
	if err := s.opts.Store.ClearProgress(ctx, name); err != nil {
		s.log.Warn("clear transform job checkpoints", "job", name, "err", err)
	}
}

// syncJob is a pass of a transform job's loop. A pass over an InProgress
// job runs it to its end (or until interrupted).
func (s *Service) syncJob(ctx context.Context, key string) syncResult {
	rec, err := s.opts.Store.Get(ctx, kindTransformJob, key)
	if errors.Is(err, store.ErrNotFound) {
		return syncResult{gone: true}
	}
	if err != nil {
		return syncResult{after: s.opts.RetryBackoff}
	}
	j, err := decodeTransformJob(rec)
	if err != nil {
		s.log.Error("read transform job", "job", key, "err", err)
		return syncResult{gone: true}
	}
	name := rec.Name
	switch rec.Status {
	case JobStopping:
		s.finishJob(name, JobStopped, "")
		return syncResult{gone: true}
	case JobInProgress:
	default:
		return syncResult{gone: true}
	}
	err = s.runJob(ctx, name, &j.TransformJob)
	if ctx.Err() != nil {
		// Stopped, or berth is shutting down (the job resumes after the
		// restart): look at the status again.
		if cur, gerr := s.opts.Store.Get(context.Background(), kindTransformJob, name); gerr == nil && cur.Status == JobStopping {
			s.finishJob(name, JobStopped, "")
			return syncResult{gone: true}
		}
		return syncResult{after: s.opts.RetryBackoff}
	}
	if err == nil {
		s.finishJob(name, JobCompleted, "")
		return syncResult{gone: true}
	}
	var f *batch.Failure
	reason := err.Error()
	if errors.As(err, &f) {
		reason = f.Reason
	}
	s.log.Info("transform job failed", "job", name, "reason", reason)
	s.finishJob(name, JobFailed, s.hidePaths(reason))
	return syncResult{gone: true}
}

func (s *Service) hidePaths(msg string) string {
	if s.hide == nil {
		return msg
	}
	return s.hide.Replace(msg)
}

// jobParams are a job's effective settings.
type jobParams struct {
	maxConcurrent int
	maxPayloadMB  int
	strategy      string
}

// runJob starts the job's instances, runs its data path and stops them.
func (s *Service) runJob(ctx context.Context, name string, j *TransformJob) error {
	if j.StartTime == nil {
		now := s.opts.Now()
		if err := s.changeJob(ctx, name, func(status string, cur *TransformJob) string {
			cur.StartTime = &now
			return status
		}); err != nil {
			return err
		}
	}
	req := j.TransformJobRequest
	p := jobParams{maxConcurrent: defaultMaxConcurrent, maxPayloadMB: defaultMaxPayloadMB, strategy: "SingleRecord"}
	if req.MaxConcurrentTransforms != nil && *req.MaxConcurrentTransforms > 0 {
		p.maxConcurrent = int(*req.MaxConcurrentTransforms)
	}
	if req.MaxPayloadInMB != nil {
		p.maxPayloadMB = int(*req.MaxPayloadInMB)
	}
	if req.BatchStrategy != "" {
		p.strategy = req.BatchStrategy
	}

	c := j.Model.PrimaryContainer
	img, err := s.opts.Images.Resolve(c.Image)
	if err != nil {
		return &batch.Failure{Reason: fault.Message(err)}
	}
	var model runtime.ModelSource
	if src, ok := sourceOf(c); ok {
		dir, err := s.opts.Artifacts.Fetch(ctx, src)
		if err != nil {
			return &batch.Failure{Reason: fmt.Sprintf("Could not fetch model data %s: %v", src.URL, err)}
		}
		model = runtime.ModelSource{LocalDir: dir, URI: src.URL}
	}
	env := map[string]string{}
	for k, v := range c.Environment {
		env[k] = v
	}
	for k, v := range req.Environment {
		env[k] = v
	}
	env["SAGEMAKER_BATCH"] = "true"
	env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = strconv.Itoa(p.maxPayloadMB)
	env["SAGEMAKER_BATCH_STRATEGY"] = map[string]string{"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}[p.strategy]
	env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = strconv.Itoa(p.maxConcurrent)

	n := int(*req.TransformResources.InstanceCount)
	insts := make([]runtime.Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = s.opts.Runtime.Start(ctx, runtime.InstanceSpec{
				ID:             fmt.Sprintf("%s/%s/%s", kindTransformJob, strings.ToLower(name), shortID()),
				Containers:     []runtime.ContainerSpec{{Name: runtime.PrimaryContainer, Image: img, Env: env, Model: model}},
				StartupTimeout: s.opts.StartupTimeout,
			})
		}()
	}
	wg.Wait()
	var started []runtime.Instance
	for _, in := range insts {
		if in != nil {
			started = append(started, in)
		}
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopInstances(stopCtx, started)
	}()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &batch.Failure{Reason: "Could not start the model's instances: " + err.Error()}
	}

	// The container's own answer fills in what the request left out.
	if ep := executionParameters(ctx, started[0].URL()); ep != nil {
		p = p.withExecutionParameters(&req, ep)
	}

	table := "transform-job:" + loopKey(name)
	s.opts.Router.Publish(&router.Endpoint{Name: table, Variants: []*router.Variant{{
		Name: "AllTraffic", Weight: 1, Instances: asRouter(started), MaxConcurrency: p.maxConcurrent,
	}}})
	defer s.opts.Router.Remove(table)

	timeout := time.Duration(defaultInvocationsTimeout) * time.Second
	retries := defaultInvocationsRetries
	if mc := req.ModelClientConfig; mc != nil {
		if mc.InvocationsTimeoutInSeconds != nil {
			timeout = time.Duration(*mc.InvocationsTimeoutInSeconds) * time.Second
		}
		if mc.InvocationsMaxRetries != nil {
			retries = int(*mc.InvocationsMaxRetries)
		}
	}
	in, _ := objstore.ParseS3URI(req.TransformInput.DataSource.S3DataSource.S3Uri)
	out, _ := objstore.ParseS3URI(req.TransformOutput.S3OutputPath)
	done, err := s.opts.Store.DoneObjects(ctx, name)
	if err != nil {
		return err
	}
	proc, err := newProcessor(&req)
	if err != nil {
		return &batch.Failure{Reason: fault.Message(err)}
	}
	split := req.TransformInput.SplitType
	if split == "" {
		split = "None"
	}
	bj := batch.Job{
		InputBucket: in.Bucket, InputPrefix: in.Key,
		OutputBucket: out.Bucket, OutputPrefix: out.Key,
		CompressionType: req.TransformInput.CompressionType,
		SplitType:       split, BatchStrategy: p.strategy, AssembleWith: req.TransformOutput.AssembleWith,
		Process:    proc,
		Accept:     req.TransformOutput.Accept,
		MaxPayload: int64(p.maxPayloadMB) << 20,
		Slots:      n * p.maxConcurrent,
		MaxRetries: retries,
		Skip:       done,
		Done: func(ctx context.Context, key string) error {
			return s.opts.Store.MarkObjectDone(ctx, name, key)
		},
	}
	invoke := func(ctx context.Context, body []byte) ([]byte, error) {
		resp, err := s.opts.Jobs.Invoke(ctx, table, router.Request{
			Body:           body,
			ContentLength:  int64(len(body)),
			ContentType:    req.TransformInput.ContentType,
			Accept:         req.TransformOutput.Accept,
			Timeout:        timeout,
			MaxConcurrency: p.maxConcurrent,
		})
		if err != nil {
			return nil, invokeError(err)
		}
		return resp.Body, nil
	}
	_, err = batch.Run(ctx, s.opts.Objects, bj, invoke)
	return err
}

// modelStatusError gives the batch runner the container's status.
type modelStatusError struct{ *router.ModelError }

func (e modelStatusError) Status() int { return e.OriginalStatus }

func (e modelStatusError) Error() string {
	if e.Timeout {
		return "the model did not answer within InvocationsTimeoutInSeconds"
	}
	return fmt.Sprintf("the model answered %d: %s", e.OriginalStatus, e.OriginalBody)
}

func invokeError(err error) error {
	var me *router.ModelError
	if errors.As(err, &me) {
		return modelStatusError{me}
	}
	switch fault.KindOf(err) {
	case fault.Unavailable, fault.Throttled:
		return &batch.RetryableError{Err: err}
	}
	return err
}

// withExecutionParameters returns p with what the request left out taken
// from the container's answer to GET /execution-parameters.
func (p jobParams) withExecutionParameters(req *TransformJobRequest, ep *execParams) jobParams {
	if (req.MaxConcurrentTransforms == nil || *req.MaxConcurrentTransforms == 0) && ep.MaxConcurrentTransforms > 0 {
		p.maxConcurrent = ep.MaxConcurrentTransforms
	}
	if req.MaxPayloadInMB == nil && ep.MaxPayloadInMB > 0 && ep.MaxPayloadInMB <= 100 {
		p.maxPayloadMB = ep.MaxPayloadInMB
	}
	if req.BatchStrategy == "" {
		switch ep.BatchStrategy {
		case "MULTI_RECORD", "MultiRecord":
			if split := req.TransformInput.SplitType; split != "" && split != "None" {
				p.strategy = "MultiRecord"
			}
		case "SINGLE_RECORD", "SingleRecord":
			p.strategy = "SingleRecord"
		}
	}
	// The container is not trusted to size berth's memory: its answer
	// keeps to the limit the request itself must meet
	// (MaxConcurrentTransforms × MaxPayloadInMB ≤ 100 MB).
	if p.maxConcurrent*p.maxPayloadMB > 100 {
		p.maxConcurrent = max(1, 100/p.maxPayloadMB)
	}
	return p
}

// execParams is a container's answer to GET /execution-parameters.
type execParams struct {
	MaxConcurrentTransforms int
	BatchStrategy           string
	MaxPayloadInMB          int
}

// executionParameters asks the container for its preferred settings; nil
// when it has none (404, or any failure: the defaults apply).
func executionParameters(ctx context.Context, base string) *execParams {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/execution-parameters", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var p execParams
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p); err != nil {
		return nil
	}
	return &p
}

// restoreJobs hands every unfinished transform job back to its loop.
func (s *Service) restoreJobs(ctx context.Context) error {
	recs, err := s.opts.Store.List(ctx, kindTransformJob)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.Status == JobInProgress || rec.Status == JobStopping {
			s.jobs.notify(loopKey(rec.Name))
		}
	}
	return nil
}
