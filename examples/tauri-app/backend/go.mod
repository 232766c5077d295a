module github.com/anysync/tauri-plugin-anysync/examples/tauri-app/backend

go 1.26.8

require (
	github.com/anysync/tauri-plugin-anysync/go-backend v0.0.0
	google.golang.org/grpc v1.80.0
	google.golang.org/protobuf v1.36.11
)

require (
	golang.org/x/net v0.49.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.33.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260120221211-b8f7ae30c516 // indirect
)

replace github.com/anysync/tauri-plugin-anysync/go-backend => ../../../go-backend
