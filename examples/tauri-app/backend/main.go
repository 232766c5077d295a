// Command backend is the example app's own Go backend: the plugin's public
// backend package with the app's CounterService registered on it. The
// plugin's build helper builds it in place of the built-in sidecar; it
// speaks the same launch protocol and serves the built-in health services
// too.
package main

import (
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"

	"github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/internal/counter"
	examplev1 "github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/proto/example/v1"
)

func main() {
	backend.Main(backend.GRPCService(&examplev1.CounterService_ServiceDesc, counter.New()))
}
