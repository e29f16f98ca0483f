//go:build !linux

// Command consul-leader runs a program only while it leads; it needs Linux
// (process groups, CLOCK_MONOTONIC shared by every process).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "consul-leader: this command runs on Linux only")
	os.Exit(1)
}
