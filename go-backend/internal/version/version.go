// Package version holds the backend's identity: the one place its semantic
// version and the launch-protocol version are defined.
package version

// Version is the backend's semantic version. It is reported in the launch
// handshake, in HealthService.Check and by --version.
const Version = "0.1.0"

// ProtocolVersion is the launch-protocol version this backend speaks: the
// shape of the bootstrap line it reads on stdin and of the handshake line it
// writes on stdout. The parent refuses a backend whose version differs.
const ProtocolVersion = 1
