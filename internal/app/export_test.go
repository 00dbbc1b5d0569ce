package app

// OpenConns returns the number of client connections open, for the tests
// of client limits.
func (a *App) OpenConns() int {
	if a.fast == nil {
		return 0
	}
	return a.fast.OpenConns()
}
