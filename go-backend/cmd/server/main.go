// Command server is the anysync backend sidecar with the built-in services
// only (anysync.v1.HealthService and grpc.health.v1.Health). The Tauri
// plugin spawns it, writes the bootstrap line on its stdin, and reads the
// handshake line from its stdout; see package backend and
// go-backend/README.md. An app with services of its own builds its own
// binary the same way, with its services as Main's arguments.
package main

import "github.com/anysync/tauri-plugin-anysync/go-backend/backend"

func main() { backend.Main() }
