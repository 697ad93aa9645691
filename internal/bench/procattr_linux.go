package bench

import "syscall"

// childAttr makes the kernel stop the app under test if the bench dies first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
