// Command vulncheck reads the JSON output of govulncheck (-format json) on
// standard input and reports every vulnerability that the code calls, one
// line each. It exits 1 if a called vulnerability is in a required module,
// which a change of go.mod fixes. A called vulnerability in the standard
// library is in the Go toolchain that ran the check, not in the module: it
// is reported as a warning naming the Go release that fixes it, and fails
// the check only with -stdlib.
//
//	govulncheck -format json ./... | go run ./.ci/vulncheck
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// message is the part of one govulncheck JSON message this command reads.
type message struct {
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

// called is one vulnerability the code calls.
type called struct {
	id, module, version, fixed string
}

func main() {
	stdlibFails := flag.Bool("stdlib", false, "fail on called vulnerabilities of the standard library too")
	flag.Parse()
	found, summaries, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
	failed := false
	for _, c := range found {
		fixed := c.fixed
		if fixed == "" {
			fixed = "no fixed version yet"
		}
		kind := "VULNERABLE"
		if c.module == "stdlib" {
			kind = "toolchain"
			if *stdlibFails {
				failed = true
			}
		} else {
			failed = true
		}
		fmt.Printf("%s: %s in %s@%s, fixed in %s: %s\n", kind, c.id, c.module, c.version, fixed, summaries[c.id])
	}
	switch {
	case failed:
		fmt.Println("vulncheck: the code calls vulnerable functions of the modules above: raise their versions in go.mod")
		os.Exit(1)
	case len(found) > 0:
		fmt.Println("vulncheck: no called vulnerability in any required module; the standard library's above are fixed by a newer Go release")
	default:
		fmt.Println("vulncheck: no called vulnerability")
	}
}

// read decodes the stream of messages and returns the called
// vulnerabilities, sorted and without duplicates, and each OSV's summary.
func read(r io.Reader) ([]called, map[string]string, error) {
	dec := json.NewDecoder(r)
	summaries := map[string]string{}
	seen := map[called]bool{}
	var found []called
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("reading govulncheck output: %w", err)
		}
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		f := m.Finding
		// Only a trace that reaches a function is a call; a trace that
		// stops at a package or a module is code that is only imported
		// or required.
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue
		}
		c := called{id: f.OSV, module: f.Trace[0].Module, version: f.Trace[0].Version, fixed: f.FixedVersion}
		if !seen[c] {
			seen[c] = true
			found = append(found, c)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if a.module != b.module {
			return a.module < b.module
		}
		return strings.Compare(a.id, b.id) < 0
	})
	return found, summaries, nil
}
