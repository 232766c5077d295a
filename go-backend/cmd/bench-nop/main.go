// Command bench-nop is baseline B2 of the benchmark harness (bench/): a Go
// program that starts and exits at once, the floor of spawning the sidecar.
package main

func main() {}
