//go:build !unix

package backend

import (
	"fmt"
	"os"
)

// openNoBlock opens name for reading after checking that it is a regular
// file, so that opening cannot block on a pipe or a device.
func openNoBlock(name string) (*os.File, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v): the config file must be a plain JSON file", name, fi.Mode().Type())
	}
	return os.Open(name)
}
