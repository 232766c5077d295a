package backend

import (
	"fmt"
	"io"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/config"
)

// ReadConfigFile reads the --config file: a regular file of at most
// config.MaxFileBytes. Anything else (a FIFO, a device such as /dev/zero or
// /dev/stdin, a directory, a larger file) is an error, returned before
// reading a byte of it, so that the read can neither block nor exhaust
// memory. It is what Main uses, and what Run uses when Env.ReadFile is nil.
func ReadConfigFile(name string) ([]byte, error) {
	f, err := openNoBlock(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v): the config file must be a plain JSON file", name, fi.Mode().Type())
	}
	if fi.Size() > config.MaxFileBytes {
		return nil, fmt.Errorf("%s is %d bytes; the limit is %d", name, fi.Size(), config.MaxFileBytes)
	}
	// The file may grow after Stat: read one byte past the bound to know.
	data, err := io.ReadAll(io.LimitReader(f, config.MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > config.MaxFileBytes {
		return nil, fmt.Errorf("%s is more than %d bytes, the limit", name, config.MaxFileBytes)
	}
	return data, nil
}
