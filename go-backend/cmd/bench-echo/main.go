// Command bench-echo is baseline B0 of the benchmark harness (bench/): a raw
// TCP echo server on a kernel-chosen loopback port. It prints
// {"addr":"127.0.0.1:PORT"} on stdout, echoes length-prefixed frames (see
// benchbase.Echo) and exits when its stdin closes.
package main

import "github.com/anysync/tauri-plugin-anysync/go-backend/internal/benchbase"

func main() { benchbase.Main("bench-echo", benchbase.ServeEcho) }
