//go:build !linux

package testenv

import "syscall"

// sysProcAttr has no portable way outside Linux to tie a server's life to
// the test binary; Main still stops servers at a normal exit.
func sysProcAttr() *syscall.SysProcAttr { return nil }
