package testenv

import "syscall"

// sysProcAttr makes the kernel SIGKILL a server when the test binary dies,
// so that a crashed or killed test run leaves no orphans behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
