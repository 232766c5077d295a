// Package api is the gomobile boundary of the Go backend.
//
// Everything exported here must stay gobind-compatible (see
// golang.org/x/mobile/cmd/gobind): only functions and structs built from
// strings, integers, booleans, byte slices and errors. gRPC and protobuf
// types live in api/proto and api/server and are never exported from this
// package, so the same backend can later be bound for Android and iOS.
package api

import "github.com/anysync/tauri-plugin-anysync/go-backend/internal/version"

// Version returns the backend's semantic version, e.g. "0.1.0".
func Version() string { return version.Version }

// ProtocolVersion returns the launch-protocol version the backend speaks.
func ProtocolVersion() int { return version.ProtocolVersion }

// Info describes the backend build. The zero value is not meaningful; use
// GetInfo.
type Info struct {
	// Version is the backend's semantic version.
	Version string
	// ProtocolVersion is the launch-protocol version the backend speaks.
	ProtocolVersion int
}

// GetInfo returns the backend's build description. It never returns nil.
func GetInfo() *Info {
	return &Info{Version: Version(), ProtocolVersion: ProtocolVersion()}
}
