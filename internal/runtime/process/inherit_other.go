//go:build !unix

package process

func closeInheritedOnExec() {}
