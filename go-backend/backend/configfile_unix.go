//go:build unix

package backend

import (
	"os"
	"syscall"
)

// openNoBlock opens name for reading; O_NONBLOCK makes opening a FIFO
// return at once instead of waiting for a writer (reading a regular file is
// not affected by it).
func openNoBlock(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
