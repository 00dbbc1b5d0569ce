package controlplane

import "time"

// The resource shapes below follow the SageMaker API members of the same
// names, so that what a client sends is what Describe returns. Times are
// kept out of them: the store records creation and modification times.

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// ContainerDefinition is one container of a model.
type ContainerDefinition struct {
	ContainerHostname          string             `json:"ContainerHostname,omitempty"`
	Image                      string             `json:"Image,omitempty"`
	ImageConfig                *ImageConfig       `json:"ImageConfig,omitempty"`
	Mode                       string             `json:"Mode,omitempty"`
	ModelDataUrl               string             `json:"ModelDataUrl,omitempty"`
	ModelDataSource            *ModelDataSource   `json:"ModelDataSource,omitempty"`
	Environment                map[string]string  `json:"Environment,omitempty"`
	ModelPackageName           string             `json:"ModelPackageName,omitempty"`
	InferenceSpecificationName string             `json:"InferenceSpecificationName,omitempty"`
	MultiModelConfig           *MultiModelConfig  `json:"MultiModelConfig,omitempty"`
	AdditionalModelDataSources []AdditionalSource `json:"AdditionalModelDataSources,omitempty"`
}

// ImageConfig says where the image comes from.
type ImageConfig struct {
	RepositoryAccessMode string          `json:"RepositoryAccessMode,omitempty"`
	RepositoryAuthConfig *RepositoryAuth `json:"RepositoryAuthConfig,omitempty"`
}

// RepositoryAuth names the credentials of a private registry.
type RepositoryAuth struct {
	RepositoryCredentialsProviderArn string `json:"RepositoryCredentialsProviderArn,omitempty"`
}

// ModelDataSource locates uncompressed or compressed model data.
type ModelDataSource struct {
	S3DataSource *S3ModelDataSource `json:"S3DataSource,omitempty"`
}

// S3ModelDataSource is model data in S3.
type S3ModelDataSource struct {
	S3Uri             string             `json:"S3Uri,omitempty"`
	S3DataType        string             `json:"S3DataType,omitempty"`
	CompressionType   string             `json:"CompressionType,omitempty"`
	ModelAccessConfig *ModelAccessConfig `json:"ModelAccessConfig,omitempty"`
}

// ModelAccessConfig records acceptance of a model's licence.
type ModelAccessConfig struct {
	AcceptEula bool `json:"AcceptEula"`
}

// AdditionalSource is an extra model data channel.
type AdditionalSource struct {
	ChannelName  string             `json:"ChannelName,omitempty"`
	S3DataSource *S3ModelDataSource `json:"S3DataSource,omitempty"`
}

// MultiModelConfig tunes a multi-model container.
type MultiModelConfig struct {
	ModelCacheSetting string `json:"ModelCacheSetting,omitempty"`
}

// InferenceExecutionConfig says how the containers of a multi-container
// model are called.
type InferenceExecutionConfig struct {
	Mode string `json:"Mode,omitempty"`
}

// VpcConfig is accepted and recorded; berth does not place instances in
// a VPC.
type VpcConfig struct {
	SecurityGroupIds []string `json:"SecurityGroupIds,omitempty"`
	Subnets          []string `json:"Subnets,omitempty"`
}

// Model is the body of CreateModel, as stored.
type Model struct {
	ModelName                string                    `json:"ModelName"`
	PrimaryContainer         *ContainerDefinition      `json:"PrimaryContainer,omitempty"`
	Containers               []ContainerDefinition     `json:"Containers,omitempty"`
	InferenceExecutionConfig *InferenceExecutionConfig `json:"InferenceExecutionConfig,omitempty"`
	ExecutionRoleArn         string                    `json:"ExecutionRoleArn,omitempty"`
	Tags                     []Tag                     `json:"Tags,omitempty"`
	VpcConfig                *VpcConfig                `json:"VpcConfig,omitempty"`
	EnableNetworkIsolation   bool                      `json:"EnableNetworkIsolation,omitempty"`
}

// ProductionVariant is one variant of an endpoint config.
type ProductionVariant struct {
	VariantName                                 string            `json:"VariantName"`
	ModelName                                   string            `json:"ModelName,omitempty"`
	InitialInstanceCount                        *int32            `json:"InitialInstanceCount,omitempty"`
	InstanceType                                string            `json:"InstanceType,omitempty"`
	InitialVariantWeight                        *float32          `json:"InitialVariantWeight,omitempty"`
	AcceleratorType                             string            `json:"AcceleratorType,omitempty"`
	CoreDumpConfig                              *CoreDumpConfig   `json:"CoreDumpConfig,omitempty"`
	ServerlessConfig                            *ServerlessConfig `json:"ServerlessConfig,omitempty"`
	VolumeSizeInGB                              *int32            `json:"VolumeSizeInGB,omitempty"`
	ModelDataDownloadTimeoutInSeconds           *int32            `json:"ModelDataDownloadTimeoutInSeconds,omitempty"`
	ContainerStartupHealthCheckTimeoutInSeconds *int32            `json:"ContainerStartupHealthCheckTimeoutInSeconds,omitempty"`
	EnableSSMAccess                             *bool             `json:"EnableSSMAccess,omitempty"`
	RoutingConfig                               *RoutingConfig    `json:"RoutingConfig,omitempty"`
	InferenceAmiVersion                         string            `json:"InferenceAmiVersion,omitempty"`
}

// CoreDumpConfig says where core dumps go.
type CoreDumpConfig struct {
	DestinationS3Uri string `json:"DestinationS3Uri,omitempty"`
	KmsKeyId         string `json:"KmsKeyId,omitempty"`
}

// ServerlessConfig sizes a serverless variant.
type ServerlessConfig struct {
	MemorySizeInMB         int32  `json:"MemorySizeInMB,omitempty"`
	MaxConcurrency         int32  `json:"MaxConcurrency,omitempty"`
	ProvisionedConcurrency *int32 `json:"ProvisionedConcurrency,omitempty"`
}

// RoutingConfig picks how requests are spread over a variant's instances.
type RoutingConfig struct {
	RoutingStrategy string `json:"RoutingStrategy,omitempty"`
}

// EndpointConfig is the body of CreateEndpointConfig, as stored.
type EndpointConfig struct {
	EndpointConfigName       string              `json:"EndpointConfigName"`
	ProductionVariants       []ProductionVariant `json:"ProductionVariants"`
	DataCaptureConfig        *DataCaptureConfig  `json:"DataCaptureConfig,omitempty"`
	Tags                     []Tag               `json:"Tags,omitempty"`
	KmsKeyId                 string              `json:"KmsKeyId,omitempty"`
	AsyncInferenceConfig     map[string]any      `json:"AsyncInferenceConfig,omitempty"`
	ExplainerConfig          map[string]any      `json:"ExplainerConfig,omitempty"`
	ShadowProductionVariants []ProductionVariant `json:"ShadowProductionVariants,omitempty"`
	ExecutionRoleArn         string              `json:"ExecutionRoleArn,omitempty"`
	VpcConfig                *VpcConfig          `json:"VpcConfig,omitempty"`
	EnableNetworkIsolation   bool                `json:"EnableNetworkIsolation,omitempty"`
}

// DesiredWeightAndCapacity is one entry of
// UpdateEndpointWeightsAndCapacities.
type DesiredWeightAndCapacity struct {
	VariantName          string   `json:"VariantName"`
	DesiredWeight        *float32 `json:"DesiredWeight,omitempty"`
	DesiredInstanceCount *int32   `json:"DesiredInstanceCount,omitempty"`
}

// Endpoint statuses, as SageMaker names them.
const (
	StatusCreating       = "Creating"
	StatusUpdating       = "Updating"
	StatusSystemUpdating = "SystemUpdating"
	StatusRollingBack    = "RollingBack"
	StatusInService      = "InService"
	StatusDeleting       = "Deleting"
	StatusFailed         = "Failed"
)

// Endpoint is the stored state of an endpoint. Deployed is a snapshot of
// the config and models it runs, so that deleting them (which SageMaker
// allows) never stops a running endpoint.
type Endpoint struct {
	EndpointName       string            `json:"EndpointName"`
	EndpointConfigName string            `json:"EndpointConfigName"`
	FailureReason      string            `json:"FailureReason,omitempty"`
	Tags               []Tag             `json:"Tags,omitempty"`
	DeploymentConfig   *DeploymentConfig `json:"DeploymentConfig,omitempty"`
	Deployed           *Deployment       `json:"Deployed,omitempty"`
	Pending            *Deployment       `json:"Pending,omitempty"`
	Variants           []VariantState    `json:"Variants,omitempty"`

	// The fields below are the reconcile loop's; bodies stored before
	// they existed decode with them empty, which the loop reads as
	// "generation 0, no instances, no update begun".

	// Generation counts the changes of desired state: CreateEndpoint
	// sets 1, and UpdateEndpoint, UpdateEndpointWeightsAndCapacities and
	// DeleteEndpoint each add one.
	Generation int64 `json:"Generation,omitempty"`
	// Update is the progress of the blue/green update to Pending.
	Update *UpdateProgress `json:"Update,omitempty"`
	// Instances are the instances the loop started and holds, by spec ID.
	Instances []InstanceRef `json:"Instances,omitempty"`
}

// UpdateProgress is how far a blue/green update has gone, persisted at
// each step so that a restart resumes it.
type UpdateProgress struct {
	// Policy is the DeploymentConfig the update follows.
	Policy *DeploymentConfig `json:"Policy,omitempty"`
	// Step is the traffic step in force, from 1 (see shiftSteps); 0
	// while the new fleet is starting and takes no traffic.
	Step int `json:"Step,omitempty"`
	// StepStarted is when Step took effect.
	StepStarted time.Time `json:"StepStarted,omitzero"`
}

// InstanceRef names one instance an endpoint runs.
type InstanceRef struct {
	ID      string `json:"ID"`
	Variant string `json:"Variant"`
	// Pending marks an instance of the new fleet of an update.
	Pending bool `json:"Pending,omitempty"`
}

// Deployment is a config with the models it names, frozen when an
// endpoint is created or updated.
type Deployment struct {
	Config EndpointConfig   `json:"Config"`
	Models map[string]Model `json:"Models"`
}

// VariantState is the live weight and size of one deployed variant.
type VariantState struct {
	Shadow               bool            `json:"Shadow,omitempty"`
	VariantName          string          `json:"VariantName"`
	CurrentWeight        float32         `json:"CurrentWeight"`
	DesiredWeight        float32         `json:"DesiredWeight"`
	CurrentInstanceCount int32           `json:"CurrentInstanceCount"`
	DesiredInstanceCount int32           `json:"DesiredInstanceCount"`
	DeployedImages       []DeployedImage `json:"DeployedImages,omitempty"`
}

// DeployedImage records the image a variant's container runs.
type DeployedImage struct {
	SpecifiedImage string  `json:"SpecifiedImage,omitempty"`
	ResolvedImage  string  `json:"ResolvedImage,omitempty"`
	ResolutionTime float64 `json:"ResolutionTime,omitempty"`
}

// DataCaptureConfig asks for a sample of requests and responses to be
// written to DestinationS3Uri.
type DataCaptureConfig struct {
	EnableCapture             *bool                     `json:"EnableCapture,omitempty"`
	InitialSamplingPercentage *int32                    `json:"InitialSamplingPercentage,omitempty"`
	DestinationS3Uri          string                    `json:"DestinationS3Uri,omitempty"`
	KmsKeyId                  string                    `json:"KmsKeyId,omitempty"`
	CaptureOptions            []CaptureOption           `json:"CaptureOptions,omitempty"`
	CaptureContentTypeHeader  *CaptureContentTypeHeader `json:"CaptureContentTypeHeader,omitempty"`
}

// CaptureOption picks the halves of an invocation to capture.
type CaptureOption struct {
	CaptureMode string `json:"CaptureMode"`
}

// CaptureContentTypeHeader names content types captured as text.
type CaptureContentTypeHeader struct {
	CsvContentTypes  []string `json:"CsvContentTypes,omitempty"`
	JsonContentTypes []string `json:"JsonContentTypes,omitempty"`
}

// DeploymentConfig says how UpdateEndpoint moves traffic to a new fleet.
type DeploymentConfig struct {
	BlueGreenUpdatePolicy     *BlueGreenUpdatePolicy     `json:"BlueGreenUpdatePolicy,omitempty"`
	RollingUpdatePolicy       map[string]any             `json:"RollingUpdatePolicy,omitempty"`
	AutoRollbackConfiguration *AutoRollbackConfiguration `json:"AutoRollbackConfiguration,omitempty"`
}

// BlueGreenUpdatePolicy shifts traffic from the old fleet to the new one.
type BlueGreenUpdatePolicy struct {
	TrafficRoutingConfiguration      *TrafficRoutingConfig `json:"TrafficRoutingConfiguration,omitempty"`
	TerminationWaitInSeconds         *int32                `json:"TerminationWaitInSeconds,omitempty"`
	MaximumExecutionTimeoutInSeconds *int32                `json:"MaximumExecutionTimeoutInSeconds,omitempty"`
}

// TrafficRoutingConfig is ALL_AT_ONCE, CANARY or LINEAR shifting.
type TrafficRoutingConfig struct {
	Type                  string        `json:"Type"`
	WaitIntervalInSeconds *int32        `json:"WaitIntervalInSeconds,omitempty"`
	CanarySize            *CapacitySize `json:"CanarySize,omitempty"`
	LinearStepSize        *CapacitySize `json:"LinearStepSize,omitempty"`
}

// CapacitySize is a share of the new fleet: INSTANCE_COUNT or
// CAPACITY_PERCENT.
type CapacitySize struct {
	Type  string `json:"Type"`
	Value int32  `json:"Value"`
}

// AutoRollbackConfiguration names alarms that roll an update back.
type AutoRollbackConfiguration struct {
	Alarms []Alarm `json:"Alarms,omitempty"`
}

// Alarm is a CloudWatch alarm name.
type Alarm struct {
	AlarmName string `json:"AlarmName"`
}
