package main

import (
	"fmt"
	"io"
)

func runBenchCompare(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "not yet")
	return 1
}
