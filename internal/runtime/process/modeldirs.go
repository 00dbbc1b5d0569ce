package process

// ModelDirs returns the model directories of the instances this Runtime
// runs, for the artifact cache, which must not evict them.
func (r *Runtime) ModelDirs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var dirs []string
	seen := make(map[*Instance]bool)
	for _, in := range r.instances {
		if seen[in] {
			continue
		}
		seen[in] = true
		for _, c := range in.spec.Containers {
			if c.Model.LocalDir != "" {
				dirs = append(dirs, c.Model.LocalDir)
			}
		}
	}
	return dirs
}
