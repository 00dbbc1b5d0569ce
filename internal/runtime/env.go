package runtime

import (
	"strconv"
	"strings"
)

// contractEnv are the variables a runtime sets for the container contract;
// a model's Environment must not override them.
var contractEnv = map[string]bool{
	"SAGEMAKER_BIND_TO_PORT":    true,
	"SAGEMAKER_SAFE_PORT_RANGE": true,
	"SM_MODEL_DIR":              true,
}

// loaderEnv are variables, besides LD_*, whose value makes glibc load or
// run code, or reconfigure its dynamic loader, in any program that starts
// with them (glibc drops them for set-user-ID programs for that reason).
var loaderEnv = map[string]bool{
	"GCONV_PATH":     true, // character-set converters are shared objects
	"GETCONF_DIR":    true, // getconf executes programs from it
	"GLIBC_TUNABLES": true, // parsed by ld.so itself
}

// RefusedProcessEnv says why a model's Environment may not hold key when
// the model runs as a local process, or returns "" when it may. A local
// process runs on the host with berth's chosen user: a variable that makes
// the dynamic loader load a file (LD_PRELOAD=<a file from the model
// archive>) would run code the image's author never chose, and the
// contract variables are berth's to set. Docker images are not affected:
// there the variables act inside the container.
func RefusedProcessEnv(key string) string {
	switch {
	case contractEnv[key]:
		return "berth sets it for every model process (the SageMaker container contract)"
	case strings.HasPrefix(key, "LD_"):
		return "it changes how the dynamic loader loads code into the model process"
	case loaderEnv[key]:
		return "it makes the C library load or run code from a path it names"
	}
	return ""
}

// ContractEnv returns the SageMaker container contract variables for a
// server that listens on bindPort, may use the ports safeLo-safeHi
// (inclusive) for itself, and finds its model in modelDir (omitted when
// empty). A runtime sets them last, over the image's and the model's.
func ContractEnv(bindPort, safeLo, safeHi int, modelDir string) map[string]string {
	env := map[string]string{
		"SAGEMAKER_BIND_TO_PORT":    strconv.Itoa(bindPort),
		"SAGEMAKER_SAFE_PORT_RANGE": strconv.Itoa(safeLo) + "-" + strconv.Itoa(safeHi),
	}
	if modelDir != "" {
		env["SM_MODEL_DIR"] = modelDir
	}
	return env
}
