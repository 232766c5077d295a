// Command server is the anysync backend sidecar: the built-in services
// (anysync.v1.HealthService and grpc.health.v1.Health) and the document
// store (anysync.v1.StoreService, package storeservice, spaces under the dataDir option). The
// Tauri plugin spawns it, writes the bootstrap line on its stdin, and reads
// the handshake line from its stdout; see package backend and
// go-backend/README.md. An app with services of its own builds its own
// binary the same way, with its services as Main's arguments.
package main

import (
	anysyncv1 "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/storeservice"
)

func main() {
	backend.Main(backend.GRPCService(&anysyncv1.StoreService_ServiceDesc, storeservice.FromSettings(storeservice.Options{})))
}
