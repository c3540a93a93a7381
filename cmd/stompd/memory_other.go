//go:build !linux

package main

// physicalMemory is unknown off Linux: -max-memory auto then sets no limit, and says so.
func physicalMemory() int64 { return 0 }
