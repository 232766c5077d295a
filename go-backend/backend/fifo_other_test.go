//go:build !unix

package backend_test

import "testing"

// mkfifo skips the test: its named pipe and /dev/zero are Unix's.
func mkfifo(t *testing.T, _ string) {
	t.Skip("no named pipes on this OS")
}
