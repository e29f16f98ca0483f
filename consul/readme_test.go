package consul_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// readmeQuickStartMarker is the line of README.md right before the quick
// start's code block.
const readmeQuickStartMarker = "<!-- quick start: the body of Example_service in consul/example_service_test.go -->"

// TestReadmeQuickStart checks that the README's quick start is, line for
// line, the body of Example_service, which the compiler checks.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), readmeQuickStartMarker+"\n```go\n")
	if !ok {
		t.Fatalf("README.md lacks the line %q followed by a ```go block", readmeQuickStartMarker)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatal("README.md: the quick start's code block does not end")
	}

	src, err := os.ReadFile("example_service_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example_service_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var body string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Example_service" {
			from, to := fset.Position(fn.Body.Lbrace).Offset+1, fset.Position(fn.Body.Rbrace).Offset
			body = strings.Trim(string(src[from:to]), "\n")
		}
	}
	if body == "" {
		t.Fatal("example_service_test.go has no Example_service")
	}
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	want := strings.Join(lines, "\n") + "\n"
	if block != want {
		t.Errorf("README.md's quick start differs from Example_service's body:\nREADME:\n%s\nExample_service:\n%s", block, want)
	}
}
