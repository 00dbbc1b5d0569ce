//go:build !unix

package fdlimit

// Raise does nothing where there is no RLIMIT_NOFILE; the limit is
// unknown (0), so MaxConnections derives no cap.
func Raise() (uint64, error) { return 0, nil }
