//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
)

// TestDocsGuarantee: docs/runner.md states the guarantee in the words of
// --help.
func TestDocsGuarantee(t *testing.T) {
	b, err := os.ReadFile("../../docs/runner.md")
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) string { return strings.Join(strings.Fields(strings.ReplaceAll(s, "`", "")), " ") }
	want := norm(strings.TrimPrefix(guarantee, "Guarantee: "))
	if !strings.Contains(norm(string(b)), want) {
		t.Errorf("docs/runner.md lacks the guarantee of --help:\n%s", want)
	}
}
