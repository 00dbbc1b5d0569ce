package controlplane

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/berth-io/berth/internal/fault"
)

// Name patterns from the SageMaker API reference. SageMaker anchors them
// on the whole name.
var (
	namePattern      = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)
	roleArnPattern   = regexp.MustCompile(`^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	modelURLPattern  = regexp.MustCompile(`^(https|s3|file)://([^/]*)/?(.*)$`)
	envKeyPattern    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	imagePattern     = regexp.MustCompile(`^[\S]+$`)
	tagKeyPattern    = regexp.MustCompile(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
	nameContainsExpr = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)
)

// validator collects the constraint violations of one request and reports
// them the way SageMaker does: "N validation errors detected: Value … at
// 'field' failed to satisfy constraint: …".
type validator struct {
	problems []string
}

func (v *validator) add(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) required(field string, present bool) {
	if !present {
		v.add("Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
}

func (v *validator) name(field, value string) {
	switch {
	case value == "":
		v.required(field, false)
	case len(value) > 63:
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to 63", value, field)
	case !namePattern.MatchString(value):
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", value, field)
	}
}

func (v *validator) maxLen(field, value string, n int) {
	if len(value) > n {
		v.add("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, n)
	}
}

func (v *validator) enum(field, value string, allowed ...string) {
	if value == "" {
		return
	}
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.add("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]", value, field, strings.Join(allowed, ", "))
}

func (v *validator) tags(field string, tags []Tag) {
	if len(tags) > 50 {
		v.add("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to 50", field)
	}
	for i, t := range tags {
		f := fmt.Sprintf("%s.%d", field, i+1)
		if t.Key == "" || len(t.Key) > 128 || !tagKeyPattern.MatchString(t.Key) {
			v.add("Value '%s' at '%s.key' failed to satisfy constraint: Member must have length between 1 and 128 and match ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$", t.Key, f)
		}
		if len(t.Value) > 256 || !tagKeyPattern.MatchString(t.Value) {
			v.add("Value at '%s.value' failed to satisfy constraint: Member must have length less than or equal to 256 and match ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$", f)
		}
	}
}

// err returns the collected problems as one Invalid error, or nil.
func (v *validator) err() error {
	switch len(v.problems) {
	case 0:
		return nil
	case 1:
		return fault.New(fault.Invalid, "1 validation error detected: %s", v.problems[0])
	default:
		return fault.New(fault.Invalid, "%d validation errors detected: %s", len(v.problems), strings.Join(v.problems, "; "))
	}
}

func validateModel(m *Model) error {
	var v validator
	v.name("modelName", m.ModelName)
	if m.ExecutionRoleArn != "" && !roleArnPattern.MatchString(m.ExecutionRoleArn) {
		v.add("Value '%s' at 'executionRoleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+$", m.ExecutionRoleArn)
	}
	v.tags("tags", m.Tags)
	switch {
	case m.PrimaryContainer == nil && len(m.Containers) == 0:
		v.add("Value null at 'primaryContainer' failed to satisfy constraint: either PrimaryContainer or Containers must be set")
	case m.PrimaryContainer != nil && len(m.Containers) > 0:
		v.add("Value at 'containers' failed to satisfy constraint: set PrimaryContainer or Containers, not both")
	}
	if m.PrimaryContainer != nil {
		validateContainer(&v, "primaryContainer", m.PrimaryContainer)
	}
	if len(m.Containers) > 15 {
		v.add("Value at 'containers' failed to satisfy constraint: Member must have length less than or equal to 15")
	}
	for i := range m.Containers {
		validateContainer(&v, fmt.Sprintf("containers.%d", i+1), &m.Containers[i])
	}
	if m.InferenceExecutionConfig != nil {
		v.enum("inferenceExecutionConfig.mode", m.InferenceExecutionConfig.Mode, "Serial", "Direct")
	}
	return v.err()
}

func validateContainer(v *validator, field string, c *ContainerDefinition) {
	if c.ContainerHostname != "" {
		v.name(field+".containerHostname", c.ContainerHostname)
	}
	if c.Image == "" && c.ModelPackageName == "" {
		v.add("Value null at '%s.image' failed to satisfy constraint: Member must not be null", field)
	}
	if c.Image != "" && (len(c.Image) > 255 || !imagePattern.MatchString(c.Image)) {
		v.add("Value '%s' at '%s.image' failed to satisfy constraint: Member must have length less than or equal to 255 and contain no whitespace", c.Image, field)
	}
	v.enum(field+".mode", c.Mode, "SingleModel", "MultiModel")
	if c.ModelDataUrl != "" {
		v.maxLen(field+".modelDataUrl", c.ModelDataUrl, 1024)
		if !modelURLPattern.MatchString(c.ModelDataUrl) {
			v.add("Value '%s' at '%s.modelDataUrl' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(https|s3|file)://([^/]+)/?(.*)$", c.ModelDataUrl, field)
		}
	}
	if c.ModelDataUrl != "" && c.ModelDataSource != nil {
		v.add("Value at '%s.modelDataSource' failed to satisfy constraint: set ModelDataUrl or ModelDataSource, not both", field)
	}
	if ds := c.ModelDataSource; ds != nil {
		if ds.S3DataSource == nil {
			v.required(field+".modelDataSource.s3DataSource", false)
		} else {
			s := ds.S3DataSource
			f := field + ".modelDataSource.s3DataSource"
			if !strings.HasPrefix(s.S3Uri, "s3://") && !strings.HasPrefix(s.S3Uri, "file://") {
				v.add("Value '%s' at '%s.s3Uri' failed to satisfy constraint: Member must be an s3:// URI", s.S3Uri, f)
			}
			v.required(f+".s3DataType", s.S3DataType != "")
			v.enum(f+".s3DataType", s.S3DataType, "S3Prefix", "S3Object")
			v.required(f+".compressionType", s.CompressionType != "")
			v.enum(f+".compressionType", s.CompressionType, "None", "Gzip")
			if s.S3DataType == "S3Prefix" && s.CompressionType == "Gzip" {
				v.add("Value at '%s' failed to satisfy constraint: CompressionType Gzip requires S3DataType S3Object", f)
			}
			if s.S3DataType == "S3Object" && s.CompressionType == "None" {
				v.add("Value at '%s' failed to satisfy constraint: S3DataType S3Object requires CompressionType Gzip", f)
			}
			if s.S3DataType == "S3Prefix" && !strings.HasSuffix(s.S3Uri, "/") {
				v.add("Value '%s' at '%s.s3Uri' failed to satisfy constraint: an S3Prefix must end with '/'", s.S3Uri, f)
			}
		}
	}
	if len(c.Environment) > 100 {
		v.add("Value at '%s.environment' failed to satisfy constraint: Member must have length less than or equal to 100", field)
	}
	for k, val := range c.Environment {
		if len(k) > 1024 || !envKeyPattern.MatchString(k) {
			v.add("Value '%s' at '%s.environment' failed to satisfy constraint: keys must match [a-zA-Z_][a-zA-Z0-9_]* and be at most 1024 characters", k, field)
		}
		if len(val) > 1024 {
			v.add("Value at '%s.environment.%s' failed to satisfy constraint: Member must have length less than or equal to 1024", field, k)
		}
		if strings.IndexByte(val, 0) >= 0 {
			// No process environment can hold it: refuse it here rather
			// than fail the endpoint later.
			v.add("Value at '%s.environment.%s' failed to satisfy constraint: Member must not contain the NUL character", field, k)
		}
	}
	if c.MultiModelConfig != nil {
		v.enum(field+".multiModelConfig.modelCacheSetting", c.MultiModelConfig.ModelCacheSetting, "Enabled", "Disabled")
	}
	if c.ImageConfig != nil {
		v.enum(field+".imageConfig.repositoryAccessMode", c.ImageConfig.RepositoryAccessMode, "Platform", "Vpc")
	}
}

func validateEndpointConfig(c *EndpointConfig) error {
	var v validator
	v.name("endpointConfigName", c.EndpointConfigName)
	v.tags("tags", c.Tags)
	v.maxLen("kmsKeyId", c.KmsKeyId, 2048)
	if len(c.ProductionVariants) == 0 {
		v.add("Value '[]' at 'productionVariants' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(c.ProductionVariants) > 10 {
		v.add("Value at 'productionVariants' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	seen := map[string]bool{}
	for i := range c.ProductionVariants {
		pv := &c.ProductionVariants[i]
		f := fmt.Sprintf("productionVariants.%d.member", i+1)
		validateVariant(&v, f, pv)
		key := strings.ToLower(pv.VariantName)
		if seen[key] {
			v.add("Value '%s' at '%s.variantName' failed to satisfy constraint: variant names must be unique within an endpoint config", pv.VariantName, f)
		}
		seen[key] = true
	}
	if len(c.ShadowProductionVariants) > 1 {
		v.add("Value at 'shadowProductionVariants' failed to satisfy constraint: Member must have length less than or equal to 1")
	}
	for i := range c.ShadowProductionVariants {
		pv := &c.ShadowProductionVariants[i]
		f := fmt.Sprintf("shadowProductionVariants.%d.member", i+1)
		validateVariant(&v, f, pv)
		key := strings.ToLower(pv.VariantName)
		if seen[key] {
			v.add("Value '%s' at '%s.variantName' failed to satisfy constraint: variant names must be unique within an endpoint config", pv.VariantName, f)
		}
		seen[key] = true
	}
	validateDataCapture(&v, c.DataCaptureConfig)
	return v.err()
}

func validateVariant(v *validator, f string, pv *ProductionVariant) {
	v.name(f+".variantName", pv.VariantName)
	v.name(f+".modelName", pv.ModelName)
	if pv.ServerlessConfig == nil && pv.InitialInstanceCount == nil {
		v.add("Value null at '%s.initialInstanceCount' failed to satisfy constraint: InitialInstanceCount is required unless ServerlessConfig is set", f)
	}
	if pv.InitialInstanceCount != nil && *pv.InitialInstanceCount < 1 {
		v.add("Value '%d' at '%s.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1", *pv.InitialInstanceCount, f)
	}
	if pv.InitialVariantWeight != nil && *pv.InitialVariantWeight < 0 {
		v.add("Value '%g' at '%s.initialVariantWeight' failed to satisfy constraint: Member must have value greater than or equal to 0", *pv.InitialVariantWeight, f)
	}
	if pv.InstanceType != "" && !strings.HasPrefix(pv.InstanceType, "ml.") {
		v.add("Value '%s' at '%s.instanceType' failed to satisfy constraint: Member must be an ml.* instance type", pv.InstanceType, f)
	}
	if t := pv.ContainerStartupHealthCheckTimeoutInSeconds; t != nil && (*t < 60 || *t > 3600) {
		v.add("Value '%d' at '%s.containerStartupHealthCheckTimeoutInSeconds' failed to satisfy constraint: Member must have value between 60 and 3600", *t, f)
	}
	if t := pv.ModelDataDownloadTimeoutInSeconds; t != nil && (*t < 60 || *t > 3600) {
		v.add("Value '%d' at '%s.modelDataDownloadTimeoutInSeconds' failed to satisfy constraint: Member must have value between 60 and 3600", *t, f)
	}
	if t := pv.VolumeSizeInGB; t != nil && (*t < 1 || *t > 512) {
		v.add("Value '%d' at '%s.volumeSizeInGB' failed to satisfy constraint: Member must have value between 1 and 512", *t, f)
	}
	if pv.RoutingConfig != nil {
		v.enum(f+".routingConfig.routingStrategy", pv.RoutingConfig.RoutingStrategy, "LEAST_OUTSTANDING_REQUESTS", "RANDOM")
	}
	if pv.AcceleratorType != "" && !strings.HasPrefix(pv.AcceleratorType, "ml.eia") {
		v.add("Value '%s' at '%s.acceleratorType' failed to satisfy constraint: Member must satisfy enum value set: [ml.eia1.medium, ml.eia1.large, ml.eia1.xlarge, ml.eia2.medium, ml.eia2.large, ml.eia2.xlarge]", pv.AcceleratorType, f)
	}
}

// validateNameContains checks a List call's NameContains filter.
func validateNameContains(s string) error {
	if s == "" {
		return nil
	}
	var v validator
	if len(s) > 63 || !nameContainsExpr.MatchString(s) {
		v.add("Value '%s' at 'nameContains' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-]+", s)
	}
	return v.err()
}

func validateDataCapture(v *validator, dc *DataCaptureConfig) {
	if dc == nil {
		return
	}
	const f = "dataCaptureConfig"
	v.required(f+".initialSamplingPercentage", dc.InitialSamplingPercentage != nil)
	if p := dc.InitialSamplingPercentage; p != nil && (*p < 0 || *p > 100) {
		v.add("Value '%d' at '%s.initialSamplingPercentage' failed to satisfy constraint: Member must have value between 0 and 100", *p, f)
	}
	v.required(f+".destinationS3Uri", dc.DestinationS3Uri != "")
	if dc.DestinationS3Uri != "" && !strings.HasPrefix(dc.DestinationS3Uri, "s3://") {
		v.add("Value '%s' at '%s.destinationS3Uri' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(https|s3)://([^/])/?(.*)$", dc.DestinationS3Uri, f)
	}
	if len(dc.CaptureOptions) < 1 || len(dc.CaptureOptions) > 2 {
		v.add("Value at '%s.captureOptions' failed to satisfy constraint: Member must have length between 1 and 2", f)
	}
	for i, o := range dc.CaptureOptions {
		v.enum(fmt.Sprintf("%s.captureOptions.%d.member.captureMode", f, i+1), o.CaptureMode, "Input", "Output", "InputAndOutput")
		if o.CaptureMode == "" {
			v.required(fmt.Sprintf("%s.captureOptions.%d.member.captureMode", f, i+1), false)
		}
	}
}

func validateDeploymentConfig(v *validator, dc *DeploymentConfig) {
	if dc == nil {
		return
	}
	const f = "deploymentConfig"
	if dc.RollingUpdatePolicy != nil {
		v.add("Value at '%s.rollingUpdatePolicy' failed to satisfy constraint: berth supports BlueGreenUpdatePolicy only", f)
	}
	bg := dc.BlueGreenUpdatePolicy
	if bg == nil {
		if dc.RollingUpdatePolicy == nil {
			v.required(f+".blueGreenUpdatePolicy", false)
		}
		return
	}
	if t := bg.TerminationWaitInSeconds; t != nil && (*t < 0 || *t > 3600) {
		v.add("Value '%d' at '%s.blueGreenUpdatePolicy.terminationWaitInSeconds' failed to satisfy constraint: Member must have value between 0 and 3600", *t, f)
	}
	if t := bg.MaximumExecutionTimeoutInSeconds; t != nil && (*t < 600 || *t > 14400) {
		v.add("Value '%d' at '%s.blueGreenUpdatePolicy.maximumExecutionTimeoutInSeconds' failed to satisfy constraint: Member must have value between 600 and 14400", *t, f)
	}
	tr := bg.TrafficRoutingConfiguration
	tf := f + ".blueGreenUpdatePolicy.trafficRoutingConfiguration"
	if tr == nil {
		v.required(tf, false)
		return
	}
	v.required(tf+".type", tr.Type != "")
	v.enum(tf+".type", tr.Type, "ALL_AT_ONCE", "CANARY", "LINEAR")
	v.required(tf+".waitIntervalInSeconds", tr.WaitIntervalInSeconds != nil)
	if w := tr.WaitIntervalInSeconds; w != nil && (*w < 0 || *w > 3600) {
		v.add("Value '%d' at '%s.waitIntervalInSeconds' failed to satisfy constraint: Member must have value between 0 and 3600", *w, tf)
	}
	size := func(name string, c *CapacitySize) {
		if c == nil {
			v.add("Value null at '%s.%s' failed to satisfy constraint: required for traffic routing type %s", tf, name, tr.Type)
			return
		}
		v.enum(tf+"."+name+".type", c.Type, "INSTANCE_COUNT", "CAPACITY_PERCENT")
		if c.Value < 1 || (c.Type == "CAPACITY_PERCENT" && c.Value > 100) {
			v.add("Value '%d' at '%s.%s.value' failed to satisfy constraint: Member must be at least 1 (and at most 100 for CAPACITY_PERCENT)", c.Value, tf, name)
		}
	}
	switch tr.Type {
	case "CANARY":
		size("canarySize", tr.CanarySize)
	case "LINEAR":
		size("linearStepSize", tr.LinearStepSize)
	}
}
