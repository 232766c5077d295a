//go:build race

package store

// raceDetector: the race detector slows SQLite (transpiled C) about
// twentyfold; single-goroutine property tests run fewer cases under it.
const raceDetector = true
