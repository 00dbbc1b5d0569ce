// Package fdlimit sizes berth to its open-file limit: Raise lifts the
// soft RLIMIT_NOFILE to the hard limit at start-up, and MaxConnections
// derives from it how many client connections berth may hold open while
// keeping descriptors for everything else it needs.
package fdlimit

// reserve is kept back for what berth opens whatever its clients do: model
// processes' log pipes and pid files, health checks, the listener, the
// SQLite database and its journal, the artifact cache.
const reserve = 256

// ceiling bounds the limit the derived cap is computed from, for systems
// whose hard limit is unlimited.
const ceiling = 1 << 20

// MaxConnections returns the client connections to allow under an
// open-file limit of limit descriptors: half of what is left after a fixed
// reserve, the other half being for what each client connection may cost
// besides its own socket while its request runs (an upstream connection to
// a model instance, an object file of an S3 transfer). It is at least 16,
// and 0 (no cap) when the limit is unknown (0).
func MaxConnections(limit uint64) int {
	if limit == 0 {
		return 0
	}
	limit = min(limit, ceiling)
	if limit < reserve+32 {
		return 16
	}
	return int(limit-reserve) / 2
}
