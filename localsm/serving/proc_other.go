//go:build !linux

package serving

import "syscall"

// sysProcAttr puts a model server in its own process group, so that stopping it reaches whatever
// it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether any process of the group still exists.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}
