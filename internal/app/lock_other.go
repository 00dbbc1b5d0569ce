//go:build !unix

package app

import "os"

// tryLock does not lock where flock is missing: two berths on one data
// dir are not detected there.
func tryLock(*os.File) (held bool, err error) { return false, nil }

func unlock(*os.File) error { return nil }
