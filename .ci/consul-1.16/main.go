// Command consul is a Consul 1.16 agent built from the Go module proxy, for
// the tests of consul-leader. It runs only the agent subcommand:
//
//	consul agent -dev -client 127.0.0.1 ...
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/consul/command/agent"
	"github.com/hashicorp/consul/command/cli"
	mcli "github.com/mitchellh/cli"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 || args[0] != "agent" {
		fmt.Fprintln(os.Stderr, "usage: consul agent [options]")
		os.Exit(2)
	}
	ui := &cli.BasicUI{BasicUi: mcli.BasicUi{Reader: os.Stdin, Writer: os.Stdout, ErrorWriter: os.Stderr}}
	os.Exit(agent.New(ui).Run(args[1:]))
}
