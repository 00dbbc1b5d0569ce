// Package fsutil holds the small file-system steps that several packages
// need to make their writes durable.
package fsutil

import (
	"fmt"
	"os"
)

// SyncDir flushes a directory's entries to disk, making the renames,
// creations and removals done in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
