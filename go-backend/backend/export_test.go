package backend

import "time"

// SetStartupTimeouts shortens the start-up deadlines for a test; the
// returned function restores them. Tests using it must not run in
// parallel.
func SetStartupTimeouts(config, handshake time.Duration) (restore func()) {
	oldConfig, oldHandshake := configTimeout, handshakeTimeout
	configTimeout, handshakeTimeout = config, handshake
	return func() { configTimeout, handshakeTimeout = oldConfig, oldHandshake }
}
