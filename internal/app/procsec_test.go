package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// createModelErr runs CreateModel for a test-image container and returns
// its error; the model must not exist afterwards if it failed.
func (s *server) createModelErr(t *testing.T, name string, c smtypes.ContainerDefinition) error {
	t.Helper()
	ctx := context.Background()
	if c.Image == nil {
		c.Image = aws.String(testImage)
	}
	_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String(name),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/berth"),
		PrimaryContainer: &c,
	})
	if err != nil {
		if _, derr := s.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(name)}); derr == nil {
			t.Errorf("model %s exists after a failed CreateModel", name)
		}
	}
	return err
}

// TestModelEnvironmentRefused: keys that steer the dynamic loader or
// berth's contract are refused for local-process images, naming the key,
// and nothing is created. LD_PRELOAD pointing into the model's own archive
// would otherwise run the archive's code inside a trusted image.
func TestModelEnvironmentRefused(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "models", "m/model.tar.gz", modelTarGz(t, map[string]string{"x.so": "not really"}))
	for _, key := range []string{
		"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG_OUTPUT", "GCONV_PATH", "GLIBC_TUNABLES",
		"SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_SAFE_PORT_RANGE", "SM_MODEL_DIR",
	} {
		t.Run(key, func(t *testing.T) {
			err := s.createModelErr(t, "env-"+strings.ToLower(strings.ReplaceAll(key, "_", "-")), smtypes.ContainerDefinition{
				ModelDataUrl: aws.String("s3://models/m/model.tar.gz"),
				Environment:  map[string]string{"FINE": "1", key: "../../artifacts/x.so"},
			})
			code, msg := apiError(err)
			if code != "ValidationException" || !strings.Contains(msg, key) {
				t.Errorf("CreateModel with %s: %s %q, want a ValidationException naming it", key, code, msg)
			}
		})
	}
	// Ordinary keys still pass, including ones that merely look alike.
	if err := s.createModelErr(t, "env-ok", smtypes.ContainerDefinition{Environment: map[string]string{"ld_preload": "x", "MY_LD_PRELOAD": "x", "SAGEMAKER_PROGRAM": "x"}}); err != nil {
		t.Errorf("CreateModel with ordinary keys: %v", err)
	}
}

// TestFileModelDataRefused: file:// model data outside the allowed
// directories is a ValidationException naming the URL and the config key;
// inside them it serves.
func TestFileModelDataRefused(t *testing.T) {
	allowed := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{allowed, outside} {
		if err := os.WriteFile(filepath.Join(d, "model.txt"), []byte("local weights"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}

	for _, cfgDirs := range [][]string{nil, {allowed}} {
		cfg := testConfig(t, t.TempDir())
		cfg.ModelData.AllowedFileDirs = cfgDirs
		s := startServer(t, cfg)
		for _, u := range []string{
			"file:///etc/passwd",
			"file://" + outside,
			"file://" + filepath.Join(outside, "missing.tar.gz"),
			"file://" + filepath.Join(allowed, "escape"),
			"file://" + allowed + "/../" + filepath.Base(outside),
		} {
			for _, c := range []smtypes.ContainerDefinition{
				{ModelDataUrl: aws.String(u)},
				{ModelDataSource: &smtypes.ModelDataSource{S3DataSource: &smtypes.S3ModelDataSource{S3Uri: aws.String(u + "/"), S3DataType: smtypes.S3ModelDataTypeS3Prefix, CompressionType: smtypes.ModelCompressionTypeNone}}},
			} {
				err := s.createModelErr(t, "filemodel", c)
				code, msg := apiError(err)
				if code != "ValidationException" || !strings.Contains(msg, "file://") || !strings.Contains(msg, "model_data.allowed_file_dirs") {
					t.Errorf("dirs %v, CreateModel %s: %s %q; want a ValidationException naming the URL and model_data.allowed_file_dirs", cfgDirs, u, code, msg)
				}
				if strings.Contains(msg, "no such file") {
					t.Errorf("refusal of %s tells whether it exists: %q", u, msg)
				}
			}
		}
		if cfgDirs != nil {
			s.deploy(t, "local", map[string]string{"TESTSERVER_MODE": "model-file"}, "file://"+allowed, 1)
			if got, err := s.invoke(t, "local", "x"); err != nil || got != "local weights" {
				t.Errorf("invoke a model from an allowed dir = %q, %v", got, err)
			}
		}
	}
}
