package serving

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts a model server in its own process group, so that stopping it reaches whatever
// it started, and has the kernel kill it if the local SageMaker dies without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// groupAlive reports whether any process of the group still runs. Zombies do not count: once
// their parent is gone they are init's to reap, and some inits never do.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	want := strconv.Itoa(pgid)
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// state ppid pgrp ...
		if len(fields) > 2 && fields[2] == want && fields[0] != "Z" {
			return true
		}
	}
	return false
}
