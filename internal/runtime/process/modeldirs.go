package process

// ModelDirs returns the model directories of the instances this Runtime
// runs, for the artifact cache, which must not evict them.
func (r *Runtime) ModelDirs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	dirs := make([]string, 0, len(r.instances))
	for _, in := range r.instances {
		if in.spec.ModelDir != "" {
			dirs = append(dirs, in.spec.ModelDir)
		}
	}
	return dirs
}
