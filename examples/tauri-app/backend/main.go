// Command backend is the example app's own Go backend: the plugin's public
// backend package with the app's CounterService and the plugin's document
// store (anysync.v1.StoreService, the notes of the page) registered on it.
// The plugin's build helper builds it in place of the built-in sidecar; it
// speaks the same launch protocol and serves the built-in health services
// too. The store keeps its spaces under the dataDir the plugin hands over
// (app_data_dir()/anysync).
package main

import (
	anysyncv1 "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/backend"
	"github.com/anysync/tauri-plugin-anysync/go-backend/storeservice"

	"github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/internal/counter"
	examplev1 "github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend/proto/example/v1"
)

func main() {
	backend.Main(
		backend.GRPCService(&examplev1.CounterService_ServiceDesc, counter.New()),
		backend.GRPCService(&anysyncv1.StoreService_ServiceDesc, storeservice.FromSettings(storeservice.Options{})),
	)
}
