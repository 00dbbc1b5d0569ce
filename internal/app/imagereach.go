package app

import (
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/runtime/process"
)

// warnUnreachableImages warns, per image, about absolute paths in its
// command or working directory that exist but that model processes
// running as ra cannot pass through to — typically a script in a clone
// under root's private home directory. Such an image starts berth fine
// and fails every endpoint later with "Permission denied"; the warning
// says so before the first CreateEndpoint. Paths are only the command's
// arguments that look like files: berth cannot know which are.
func warnUnreachableImages(logger *slog.Logger, ra *process.RunAs, images map[string]config.Image) {
	for _, name := range slices.Sorted(maps.Keys(images)) {
		img := images[name]
		paths := append(slices.Clone(img.Command), img.WorkDir)
		for _, p := range paths {
			if !filepath.IsAbs(p) {
				continue
			}
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if err := ra.Reachable(p); err != nil {
				logger.Warn("image "+name+" will fail to start: model processes run as runtime.run_as_user and cannot reach a file its command names; keep the file where that user can read it (not under a private home directory), or set another runtime.run_as_user",
					"image", name, "path", p, "err", err)
			}
		}
	}
}
