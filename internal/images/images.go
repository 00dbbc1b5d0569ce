// Package images resolves the Image of a container definition to something
// a runtime can run: a command from the config file's images: catalog, one
// of berth's built-in model servers, or (later) a Docker image.
package images

import (
	"fmt"
	"regexp"
	"sort"

	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/runtime"
)

// Catalog resolves image names.
type Catalog struct {
	configured map[string]config.Image
	builtins   map[string]string // image name → framework
	executable string            // berth's own binary, for built-ins
}

// sageMakerImage matches the registry paths of SageMaker's framework
// images in any account and region, e.g.
// 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1.
var sageMakerImage = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/sagemaker-([a-z0-9-]+):[A-Za-z0-9._-]+$`)

// New returns a catalog. frameworks are the built-in model servers
// compiled into executable (run as "executable model-server <framework>").
func New(configured map[string]config.Image, executable string, frameworks []string) *Catalog {
	c := &Catalog{configured: configured, builtins: map[string]string{}, executable: executable}
	for _, f := range frameworks {
		c.builtins["berth/"+f] = f
	}
	return c
}

// Resolve returns the runnable image for name, or an Invalid error that
// names the image and the ways to provide one.
func (c *Catalog) Resolve(name string) (runtime.Image, error) {
	if img, ok := c.configured[name]; ok {
		return runtime.Image{Name: name, Kind: runtime.KindProcess, Command: img.Command, Env: img.Env, WorkDir: img.WorkDir}, nil
	}
	framework, ok := c.builtins[name]
	if !ok {
		if m := sageMakerImage.FindStringSubmatch(name); m != nil {
			framework, ok = c.builtins["berth/"+m[2]]
		}
	}
	if ok {
		return runtime.Image{Name: name, Kind: runtime.KindProcess, Command: []string{c.executable, "model-server", framework}}, nil
	}
	return runtime.Image{}, fault.New(fault.Invalid,
		"Image %q is not available to berth. Provide it in one of three ways: "+
			"(1) map it to a local command in the images: section of the config file (--config); "+
			"(2) use a built-in image (%s, or the SageMaker image URIs they stand for); "+
			"(3) run it as a Docker image (not available in this version of berth).",
		name, c.builtinList())
}

func (c *Catalog) builtinList() string {
	if len(c.builtins) == 0 {
		return "none in this build"
	}
	names := make([]string, 0, len(c.builtins))
	for n := range c.builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}
